// Command missive is the reference Missive client: it registers a device,
// sends and receives end-to-end encrypted messages, shows their status
// (sent, delivered, read) and chats interactively.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
	"github.com/missive-protocol/missive/spec"
)

const usage = `missive sends and receives end-to-end encrypted messages.

Usage:
    missive [-d DIR] init [-server ADDR] ACCOUNT   create this device's keys, register at first connection
    missive [-d DIR] send CONV TEXT...             send a message; prints its id once the server has it
    missive [-d DIR] listen [-for D] [-n N] [-read]
                                                   receive messages (and receipts) for D, or N messages
    missive [-d DIR] read CONV                     send read receipts for the messages of CONV
    missive [-d DIR] status [ID]                   the status of a sent message (default: the last ones)
    missive [-d DIR] history [CONV]                the messages sent and received
    missive [-d DIR] chat ACCOUNT                  chat interactively
    missive [-d DIR] presence ACCOUNT...           whether accounts are online, and when last seen
    missive [-d DIR] privacy [-last-seen V] [-online V] [-contacts A,B]
                                                   who sees your presence: everyone, contacts or nobody
    missive [-d DIR] whoami                        the device's account, id and identity key
    missive [-d DIR] link [-code-file F]           (primary) print a code to link a companion (also to F), and wait for it
    missive [-d DIR] join [-server ADDR] CODE      make this directory a companion device from a link code
    missive [-d DIR] devices                       the account's devices
    missive [-d DIR] unlink ID                     (primary) remove a companion device
    missive [-d DIR] safety ACCOUNT                the safety number to compare with ACCOUNT's user
    missive [-d DIR] trust ACCOUNT                 accept ACCOUNT's new identity key after a warning
    missive [-d DIR] delete ACCOUNT ID             delete a message here and on your other devices
    missive [-d DIR] group create NAME ACCOUNT...  create a group with you as its admin
    missive [-d DIR] group add|remove GROUP ACCOUNT...
    missive [-d DIR] group leave|info GROUP        leave a group, or show its members
    missive [-d DIR] group admin GROUP ACCOUNT     make a member an admin
    missive [-d DIR] group list                    the groups of this device
    missive [-d DIR] send-file [-caption T] [-view-once] [-type MIME] CONV FILE
                                                   send a picture or any file, encrypted, with progress
    missive [-d DIR] save [-o FILE] ID             download and decrypt the media of a message
    missive [-d DIR] open ID                       show view-once media, once (to standard output)
    missive [-d DIR] edit ID TEXT...               edit a message you sent (within 15 minutes)
    missive [-d DIR] unsend ID                     delete a message you sent for everyone (within 2 days)
    missive [-d DIR] timer CONV DURATION|off       disappearing messages in CONV after DURATION
    missive -version

DIR holds the device's keys, sessions and messages (default $MISSIVE_DIR,
else ~/.missive). ADDR is the server (default 127.0.0.1:7350). CONV is an
account, or #GROUP: a group's name or the start of its id. ID is a message
id, or its start, as send, listen and history print it.

Example:
    $ missive -d alice init alice
    $ missive -d bob init bob && missive -d bob listen -for 1s
    $ missive -d alice send bob hello
    sent 5f2c... to bob
    $ missive -d bob listen -n 1 -read
    alice: hello
    $ missive -d alice status
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// failure is an error with the exit code it calls for.
type failure struct {
	code int
	err  error
}

func (f failure) Error() string { return f.err.Error() }

func usageError(format string, a ...any) error {
	return failure{2, fmt.Errorf(format, a...)}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("missive", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fl.String("d", "", "")
	version := fl.Bool("version", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *version {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "missive %s (specification %s)\n", v, spec.Version)
		return 0
	}
	if *dir == "" {
		*dir = os.Getenv("MISSIVE_DIR")
	}
	if *dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			fmt.Fprintln(stderr, "missive: no directory: use -d DIR or set MISSIVE_DIR")
			return 2
		}
		*dir = filepath.Join(home, ".missive")
	}
	if fl.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	a := &app{dir: *dir, stdin: stdin, stdout: stdout, stderr: stderr}
	cmd, rest := fl.Arg(0), fl.Args()[1:]
	var err error
	switch cmd {
	case "init":
		err = a.init(rest)
	case "send":
		err = a.send(ctx, rest)
	case "listen":
		err = a.listen(ctx, rest)
	case "read":
		err = a.read(ctx, rest)
	case "status":
		err = a.status(rest)
	case "history":
		err = a.history(rest)
	case "chat":
		err = a.chat(ctx, rest)
	case "presence":
		err = a.presence(ctx, rest)
	case "privacy":
		err = a.privacy(ctx, rest)
	case "whoami":
		err = a.whoami()
	case "link":
		err = a.link(ctx, rest)
	case "join":
		err = a.join(ctx, rest)
	case "devices":
		err = a.devices()
	case "unlink":
		err = a.unlink(ctx, rest)
	case "safety":
		err = a.safety(rest)
	case "trust":
		err = a.trust(rest)
	case "delete":
		err = a.delete(ctx, rest)
	case "group":
		err = a.group(ctx, rest)
	case "send-file":
		err = a.sendFile(ctx, rest)
	case "save":
		err = a.save(ctx, rest, false)
	case "open":
		err = a.save(ctx, rest, true)
	case "edit":
		err = a.edit(ctx, rest, false)
	case "unsend":
		err = a.edit(ctx, rest, true)
	case "timer":
		err = a.timer(ctx, rest)
	default:
		err = usageError("unknown command %q (see missive -h)", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "missive: %v\n", explain(err))
		var f failure
		if errors.As(err, &f) {
			return f.code
		}
		return 1
	}
	return 0
}

// explain adds a hint to errors a person can act on.
func explain(err error) error {
	switch errcode.Of(err) {
	case errcode.StateUnknownAccount:
		return fmt.Errorf("%w (no such account on this server: check the name)", err)
	case errcode.StateAccountExists:
		return fmt.Errorf("%w (the name is taken: choose another with init)", err)
	case errcode.PolicyRateLimited:
		return fmt.Errorf("%w (too fast: wait a moment)", err)
	case errcode.AuthIdentityChanged:
		return fmt.Errorf("%w\nWARNING: this account's identity key is not the one you saw before. Someone may be\nimpersonating it, or it was registered again. Compare safety numbers (missive safety ACCOUNT)\nwith its owner by another channel, then run missive trust ACCOUNT to accept the new key", err)
	case errcode.StateUnknownLink:
		return fmt.Errorf("%w (the code was used already, expired, or its primary is not running missive link)", err)
	}
	if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "run init first") {
		return fmt.Errorf("%w", err)
	}
	return err
}

type app struct {
	dir            string
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (a *app) open() (*client.Device, error) { return client.Open(a.dir, client.Config{}) }

func (a *app) connect(ctx context.Context) (*client.Device, *client.Conn, error) {
	d, err := a.open()
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := d.Connect(cctx)
	if err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("%w (is missive-server running at %s?)", err, d.Server)
	}
	return d, c, nil
}

func (a *app) init(args []string) error {
	fl := flag.NewFlagSet("init", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	server := fl.String("server", "127.0.0.1:7350", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	if fl.NArg() != 1 {
		return usageError("init needs one account name, such as: missive init alice")
	}
	d, err := client.Init(a.dir, fl.Arg(0), *server, client.Config{})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(a.stdout, "initialized %s (device %d) in %s\nidentity key %x\n", d.Account, d.ID, a.dir, d.IdentityKey().Bytes())
	return nil
}

func (a *app) send(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return usageError("send needs an account and a text, such as: missive send bob hello")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	conv, err := a.conv(d, args[0])
	if err != nil {
		return err
	}
	m, err := c.SendTo(ctx, conv, strings.Join(args[1:], " "))
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "sent %x to %s\n", m.ID, convName(d, m))
	a.owedNote(d)
	return nil
}

// owedNote says on stderr when what the last command owes others (a sent
// transcript, receipts, read, opened or deleted content) could not go yet:
// the device sends it at its next connection (spec DEV-022).
func (a *app) owedNote(d *client.Device) {
	if n, err := d.Owed(); err == nil && n > 0 {
		fmt.Fprintf(a.stderr, "%d to tell other devices or accounts, sent at the next connection\n", n)
	}
}

// show prints an event in the terminal's words.
func (a *app) show(d *client.Device, e client.Event) {
	switch e.Kind {
	case client.EventMessage:
		m := e.Message
		switch {
		case m.Outgoing:
			fmt.Fprintf(a.stdout, "[%s] me (another device): %s\n", convName(d, m), body(m))
		case m.Group != nil:
			fmt.Fprintf(a.stdout, "[%s] %s: %s\n", convName(d, m), m.Peer, body(m))
		case m.Media != nil:
			fmt.Fprintf(a.stdout, "%s: %s\n", m.Peer, body(m))
		default:
			fmt.Fprintf(a.stdout, "%s: %s\n", m.Peer, m.Text)
		}
	case client.EventStatus:
		m := e.Message
		switch {
		case m.Deleted:
			fmt.Fprintf(a.stdout, "%x in %s: deleted by %s\n", m.ID, convName(d, m), m.Author(d.Account))
		case m.Edit.ID != nil && !m.Outgoing:
			fmt.Fprintf(a.stdout, "%x in %s: %s edited it: %s\n", m.ID, convName(d, m), m.Peer, m.Shown())
		default:
			fmt.Fprintf(a.stdout, "%x to %s: %s\n", m.ID, convName(d, m), m.Overall())
		}
	case client.EventPresence:
		fmt.Fprintln(a.stdout, presenceLine(e.Presence))
	case client.EventTyping:
		if e.Typing.Typing {
			fmt.Fprintf(a.stdout, "%s is typing...\n", e.Typing.From.Account)
		}
	case client.EventError:
		fmt.Fprintf(a.stderr, "missive: %v\n", e.Err)
	}
}

func (a *app) listen(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("listen", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	dur := fl.Duration("for", 0, "")
	n := fl.Int("n", 0, "")
	read := fl.Bool("read", false, "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	var timeout <-chan time.Time
	if *dur > 0 {
		timeout = time.After(*dur)
	}
	got := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timeout:
			return nil
		case e, ok := <-c.Events:
			if !ok {
				return fmt.Errorf("connection closed: %v", c.Err())
			}
			a.show(d, e)
			if e.Kind == client.EventMessage {
				if *read && !e.Message.Outgoing {
					var err error
					if e.Message.Group != nil {
						_, err = c.MarkReadGroup(ctx, e.Message.Group)
					} else {
						_, err = c.MarkRead(ctx, e.Message.Peer)
					}
					if err != nil {
						return err
					}
				}
				got++
				if *n > 0 && got >= *n {
					return nil
				}
			}
		}
	}
}

func (a *app) read(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError("read needs an account, such as: missive read alice")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	conv, err := a.conv(d, args[0])
	if err != nil {
		return err
	}
	var n int
	if conv.Group != nil {
		n, err = c.MarkReadGroup(ctx, conv.Group)
	} else {
		n, err = c.MarkRead(ctx, conv.Peer)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "marked %d messages from %s read\n", n, args[0])
	a.owedNote(d)
	return nil
}

func (a *app) status(args []string) error {
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if len(args) == 1 {
		id, err := hex.DecodeString(args[0])
		if err != nil {
			return usageError("%q is not a message id (hexadecimal, as send prints it)", args[0])
		}
		m, err := d.Sent(id)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, statusLine(d, m))
		for dev, s := range m.Statuses {
			fmt.Fprintf(a.stdout, "  %s/%d: %s\n", m.Peer, dev, s)
		}
		for acct, devs := range m.Members {
			for dev, s := range devs {
				fmt.Fprintf(a.stdout, "  %s/%d: %s\n", acct, dev, s)
			}
		}
		return nil
	}
	ms, err := d.AllMessages()
	if err != nil {
		return err
	}
	shown := 0
	for i := len(ms) - 1; i >= 0 && shown < 10; i-- {
		if ms[i].Outgoing {
			fmt.Fprintln(a.stdout, statusLine(d, ms[i]))
			shown++
		}
	}
	if shown == 0 {
		fmt.Fprintln(a.stdout, "no messages sent yet")
	}
	return nil
}

func statusLine(d *client.Device, m *client.Message) string {
	return fmt.Sprintf("%x to %s: %s %s %q", m.ID, convName(d, m), m.Overall(), ticks(m.Overall()), m.Shown())
}

// ticks draws a status as the seed article's ticks.
func ticks(s client.Status) string {
	switch s {
	case client.StatusSent:
		return "✓"
	case client.StatusDelivered:
		return "✓✓"
	case client.StatusRead, client.StatusPlayed:
		return "✓✓ (read)"
	}
	return "…"
}

func (a *app) history(args []string) error {
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	var ms []*client.Message
	if len(args) > 0 && strings.HasPrefix(args[0], "#") {
		conv, err := a.conv(d, args[0])
		if err != nil {
			return err
		}
		ms, err = d.GroupMessages(conv.Group)
		if err != nil {
			return err
		}
	} else {
		peer := ""
		if len(args) > 0 {
			peer = args[0]
		}
		if ms, err = d.Messages(peer); err != nil {
			return err
		}
	}
	for _, m := range ms {
		when := time.UnixMilli(int64(m.SentAt)).Format("2006-01-02 15:04")
		if m.Outgoing {
			fmt.Fprintf(a.stdout, "%s  %x  me -> %s: %s %s\n", when, m.ID[:6], convName(d, m), body(m), ticks(m.Overall()))
		} else if m.Group != nil {
			fmt.Fprintf(a.stdout, "%s  %x  [%s] %s: %s\n", when, m.ID[:6], convName(d, m), m.Peer, body(m))
		} else {
			fmt.Fprintf(a.stdout, "%s  %x  %s: %s\n", when, m.ID[:6], m.Peer, body(m))
		}
	}
	return nil
}

func presenceLine(u *wire.PresenceUpdate) string {
	state := map[uint64]string{wire.PresenceOnline: "online", wire.PresenceOffline: "offline", wire.PresenceHidden: "hidden"}[u.State]
	if u.LastSeen != nil {
		return fmt.Sprintf("%s: %s, last seen %s", u.Account, state, time.UnixMilli(int64(*u.LastSeen)).Format("2006-01-02 15:04:05"))
	}
	return fmt.Sprintf("%s: %s", u.Account, state)
}

func (a *app) presence(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("presence needs accounts, such as: missive presence bob")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	us, err := c.Subscribe(ctx, args...)
	if err != nil {
		return err
	}
	for i := range us {
		fmt.Fprintln(a.stdout, presenceLine(&us[i]))
	}
	return nil
}

var visibilities = map[string]uint8{"everyone": wire.VisibilityEveryone, "contacts": wire.VisibilityContacts, "nobody": wire.VisibilityNobody}

func (a *app) privacy(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("privacy", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	lastSeen := fl.String("last-seen", "contacts", "")
	online := fl.String("online", "contacts", "")
	contacts := fl.String("contacts", "", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	ls, ok1 := visibilities[*lastSeen]
	on, ok2 := visibilities[*online]
	if !ok1 || !ok2 {
		return usageError("visibility must be everyone, contacts or nobody")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	if err := c.SetPrivacy(ctx, ls, on); err != nil {
		return err
	}
	if *contacts != "" {
		if err := c.SetContacts(ctx, strings.Split(*contacts, ",")...); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "last seen: %s, online: %s\n", *lastSeen, *online)
	return nil
}

func (a *app) whoami() error {
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(a.stdout, "%s device %d at %s\nidentity key %x\n", d.Account, d.ID, d.Server, d.IdentityKey().Bytes())
	return nil
}

// chat is the interactive mode: lines typed are sent, messages arriving
// are shown as they come, with the ticks of what was sent.
func (a *app) chat(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError("chat needs an account, such as: missive chat bob")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	conv, err := a.conv(d, args[0])
	if err != nil {
		return err
	}
	peer := conv.Peer
	mine := func(m *client.Message) bool {
		if conv.Group != nil {
			return bytes.Equal(m.Group, conv.Group)
		}
		return m.Group == nil && m.Peer == peer
	}
	markRead := func() {
		if conv.Group != nil {
			c.MarkReadGroup(ctx, conv.Group)
		} else {
			c.MarkRead(ctx, peer)
		}
	}
	var earlier []*client.Message
	if conv.Group != nil {
		fmt.Fprintf(a.stdout, "chatting in %s. Type a message and press Enter; /quit to leave.\n", args[0])
		earlier, _ = d.GroupMessages(conv.Group)
	} else {
		if us, err := c.Subscribe(ctx, peer); err == nil && len(us) == 1 {
			fmt.Fprintf(a.stdout, "chatting with %s (%s). Type a message and press Enter; /quit to leave.\n", peer, presenceLine(&us[0]))
		}
		earlier, _ = d.Messages(peer)
	}
	for _, m := range earlier[max(0, len(earlier)-10):] {
		if m.Outgoing {
			fmt.Fprintf(a.stdout, "  me: %s %s\n", body(m), ticks(m.Overall()))
		} else {
			fmt.Fprintf(a.stdout, "  %s: %s\n", m.Peer, body(m))
		}
	}
	markRead()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(a.stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok || line == "/quit" {
				return nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			m, err := c.SendTo(ctx, conv, line)
			if err != nil {
				fmt.Fprintf(a.stderr, "missive: not sent: %v\n", explain(err))
				continue
			}
			fmt.Fprintf(a.stdout, "  me: %s %s\n", m.Text, ticks(m.Overall()))
		case e, ok := <-c.Events:
			if !ok {
				return fmt.Errorf("connection closed: %v", c.Err())
			}
			switch {
			case e.Kind == client.EventMessage && mine(e.Message) && !e.Message.Outgoing:
				fmt.Fprintf(a.stdout, "  %s: %s\n", e.Message.Peer, body(e.Message))
				markRead()
			case e.Kind == client.EventStatus && mine(e.Message):
				fmt.Fprintf(a.stdout, "  (%q %s)\n", e.Message.Shown(), ticks(e.Message.Overall()))
			case e.Kind == client.EventPresence && e.Presence.Account == peer:
				fmt.Fprintf(a.stdout, "  (%s)\n", presenceLine(e.Presence))
			default:
				a.show(d, e)
			}
		}
	}
}

func (a *app) link(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("link", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	codeFile := fl.String("code-file", "", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	if fl.NArg() > 0 {
		return usageError("link takes no arguments")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	code, complete, err := c.Link(ctx)
	if err != nil {
		return err
	}
	if *codeFile != "" {
		// For scripts: the code in a file of its own, readable by the owner only.
		if err := os.WriteFile(*codeFile, []byte(code+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "on the new device, run:\n    missive -d DIR join -server %s %s\n\n", d.Server, code)
	drawQR(a.stdout, code)
	fmt.Fprintln(a.stdout, "waiting for the new device (10 minutes)...")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	id, err := complete(wctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "linked device %d\n", id)
	// Give the history time to reach the new device.
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	defer hcancel()
	for {
		select {
		case <-hctx.Done():
			return nil
		case e, ok := <-c.Events:
			if !ok {
				return nil
			}
			if e.Kind == client.EventError {
				fmt.Fprintf(a.stderr, "missive: %v\n", e.Err)
			}
		case <-time.After(3 * time.Second):
			return nil
		}
	}
}

func (a *app) join(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("join", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	server := fl.String("server", "127.0.0.1:7350", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	if fl.NArg() != 1 {
		return usageError("join needs the code that missive link printed on the primary device")
	}
	jctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	d, err := client.LinkCompanion(jctx, a.dir, fl.Arg(0), *server, client.Config{})
	if err != nil {
		return err
	}
	defer d.Close()
	c, err := d.Connect(jctx)
	if err != nil {
		return err
	}
	c.Close()
	fmt.Fprintf(a.stdout, "this is now device %d of %s\n", d.ID, d.Account)
	return nil
}

func (a *app) devices() error {
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	l := d.DeviceList(d.Account)
	if l == nil {
		return errors.New("no device list yet: connect once (missive listen -for 1s)")
	}
	fmt.Fprintf(a.stdout, "%s, device list version %d:\n", d.Account, l.Serial)
	for _, dev := range l.Devices {
		me := ""
		if uint32(dev.Device) == d.ID {
			me = " (this device)"
		}
		role := "companion"
		if dev.Device == 1 {
			role = "primary"
		}
		fmt.Fprintf(a.stdout, "  %d  %s  %x…%s\n", dev.Device, role, dev.IdentityKey[1:9], me)
	}
	return nil
}

func (a *app) unlink(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError("unlink needs a device id, as missive devices shows it")
	}
	var id uint32
	if _, err := fmt.Sscan(args[0], &id); err != nil || id < 2 {
		return usageError("%q is not a companion device id", args[0])
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	if err := c.Unlink(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "unlinked device %d\n", id)
	return nil
}

func (a *app) safety(args []string) error {
	if len(args) != 1 {
		return usageError("safety needs an account, such as: missive safety bob")
	}
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	n := d.SafetyNumber(args[0])
	if n == "" {
		return fmt.Errorf("no identity key known for %s yet: send it a message first", args[0])
	}
	fmt.Fprintf(a.stdout, "safety number with %s:\n  %s\ncompare it with %s's screen; if they match, nobody is in the middle\n", args[0], n, args[0])
	return nil
}

func (a *app) trust(args []string) error {
	if len(args) != 1 {
		return usageError("trust needs an account")
	}
	d, err := a.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Trust(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s's next identity key will be accepted; compare safety numbers afterwards\n", args[0])
	return nil
}

func (a *app) delete(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return usageError("delete needs an account and a message id")
	}
	id, err := hex.DecodeString(args[1])
	if err != nil || len(id) != wire.MessageIDSize {
		return usageError("%q is not a message id", args[1])
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	if err := c.Delete(ctx, args[0], id); err != nil {
		return err
	}
	a.owedNote(d)
	return nil
}
