package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/wire"
)

// conv parses a conversation argument: ACCOUNT, or #GROUP with a group's
// name or the start of its id.
func (a *app) conv(d *client.Device, arg string) (client.Conv, error) {
	if name, ok := strings.CutPrefix(arg, "#"); ok {
		gid, err := d.FindGroup(name)
		if err != nil {
			return client.Conv{}, err
		}
		return client.Conv{Group: gid}, nil
	}
	if !wire.ValidAccount(arg) {
		return client.Conv{}, usageError("%q is neither an account nor a #group", arg)
	}
	return client.Conv{Peer: arg}, nil
}

// convName names a message's conversation for people.
func convName(d *client.Device, m *client.Message) string {
	if m.Group == nil {
		return m.Peer
	}
	if s, err := d.Group(m.Group); err == nil && s.Name != nil {
		return "#" + *s.Name
	}
	return fmt.Sprintf("#%x", m.Group[:4])
}

// body describes what a message shows: its text, media, or that it was
// deleted.
func body(m *client.Message) string {
	var b strings.Builder
	switch {
	case m.Deleted:
		return "(deleted)"
	case m.Media != nil && m.Media.ViewOnce != nil && (m.Opened || len(m.Media.Key) == 0) && !m.Outgoing:
		b.WriteString("[view-once, opened]")
	case m.Media != nil && m.Media.ViewOnce != nil:
		fmt.Fprintf(&b, "[view-once %s, %s; open with: missive open %x]", kindName(m.Media.Kind), size(m.Media.Size), m.ID[:6])
	case m.Media != nil:
		fmt.Fprintf(&b, "[%s %s, %s; save with: missive save %x]", kindName(m.Media.Kind), m.Media.MIME, size(m.Media.Size), m.ID[:6])
	}
	if t := m.Shown(); t != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	if m.Edit.ID != nil {
		b.WriteString(" (edited)")
	}
	if m.Expire > 0 {
		fmt.Fprintf(&b, " (disappears after %s)", time.Duration(m.Expire)*time.Second)
	}
	return b.String()
}

func kindName(k uint64) string {
	return map[uint64]string{wire.MediaImage: "image", wire.MediaVideo: "video", wire.MediaAudio: "audio", wire.MediaFile: "file"}[k]
}

func size(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress draws a transfer's progress on one line of standard error.
func (a *app) progress(verb string) func(done, total int) {
	last := time.Time{}
	return func(done, total int) {
		if total <= 0 || (time.Since(last) < 100*time.Millisecond && done < total) {
			return
		}
		last = time.Now()
		pct := done * 100 / total
		bar := strings.Repeat("#", pct/5) + strings.Repeat(".", 20-pct/5)
		fmt.Fprintf(a.stderr, "\r%s [%s] %3d%% %s of %s", verb, bar, pct, size(uint64(done)), size(uint64(total)))
		if done >= total {
			fmt.Fprintln(a.stderr)
		}
	}
}

func (a *app) group(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("group needs a subcommand: create, add, remove, leave, admin, info or list")
	}
	sub, rest := args[0], args[1:]
	d, err := a.open()
	if err != nil {
		return err
	}
	if sub == "list" {
		defer d.Close()
		gs, err := d.Groups()
		if err != nil {
			return err
		}
		if len(gs) == 0 {
			fmt.Fprintln(a.stdout, "no groups yet")
		}
		for _, g := range gs {
			left := ""
			if g.Left {
				left = " (left)"
			}
			fmt.Fprintf(a.stdout, "#%s  %x  %d members, version %d%s\n", g.Name, g.ID[:6], len(g.Members), g.Version, left)
		}
		return nil
	}
	d.Close()
	need := map[string]int{"create": 1, "add": 2, "remove": 2, "leave": 1, "admin": 2, "info": 1}
	n, ok := need[sub]
	if !ok {
		return usageError("unknown group subcommand %q", sub)
	}
	if len(rest) < n {
		return usageError("group %s needs more arguments (see missive -h)", sub)
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	if sub == "create" {
		gid, err := c.CreateGroup(ctx, rest[0], rest[1:]...)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "created #%s (%x) with %d members\n", rest[0], gid, len(rest))
		return nil
	}
	gid, err := d.FindGroup(strings.TrimPrefix(rest[0], "#"))
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		err = c.AddMembers(ctx, gid, rest[1:]...)
	case "remove":
		err = c.RemoveMember(ctx, gid, rest[1])
	case "leave":
		err = c.Leave(ctx, gid)
	case "admin":
		err = c.SetRole(ctx, gid, rest[1], true)
	}
	if err != nil {
		return err
	}
	s, err := d.Group(gid)
	if err != nil {
		return err
	}
	name := ""
	if s.Name != nil {
		name = *s.Name
	}
	fmt.Fprintf(a.stdout, "#%s (%x), version %d:\n", name, gid[:6], s.Serial)
	for _, m := range s.Members {
		role := "member"
		if m.Role == wire.RoleAdmin {
			role = "admin"
		}
		fmt.Fprintf(a.stdout, "  %s  %s\n", m.Account, role)
	}
	return nil
}

func (a *app) sendFile(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("send-file", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	caption := fl.String("caption", "", "")
	viewOnce := fl.Bool("view-once", false, "")
	mimeType := fl.String("type", "", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	if fl.NArg() != 2 {
		return usageError("send-file needs a conversation and a file, such as: missive send-file bob cat.jpg")
	}
	data, err := os.ReadFile(fl.Arg(1))
	if err != nil {
		return err
	}
	if *mimeType == "" {
		*mimeType = mime.TypeByExtension(filepath.Ext(fl.Arg(1)))
		if i := strings.IndexByte(*mimeType, ';'); i >= 0 {
			*mimeType = (*mimeType)[:i]
		}
	}
	kind := uint64(wire.MediaFile)
	switch {
	case strings.HasPrefix(*mimeType, "image/"):
		kind = wire.MediaImage
	case strings.HasPrefix(*mimeType, "video/"):
		kind = wire.MediaVideo
	case strings.HasPrefix(*mimeType, "audio/"):
		kind = wire.MediaAudio
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	conv, err := a.conv(d, fl.Arg(0))
	if err != nil {
		return err
	}
	m, err := c.SendMedia(ctx, conv, data, client.MediaOptions{Kind: kind, MIME: *mimeType, Caption: *caption,
		ViewOnce: *viewOnce, Progress: a.progress("uploading")})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "sent %x to %s: %s\n", m.ID, convName(d, m), body(m))
	return nil
}

// save downloads the media of a message to a file; open shows view-once
// media once.
func (a *app) save(ctx context.Context, args []string, once bool) error {
	fl := flag.NewFlagSet("save", flag.ContinueOnError)
	fl.SetOutput(a.stderr)
	out := fl.String("o", "", "")
	if err := fl.Parse(args); err != nil {
		return failure{2, err}
	}
	if fl.NArg() != 1 {
		return usageError("needs a message id, as listen or history shows it")
	}
	id, err := hex.DecodeString(fl.Arg(0))
	if err != nil || len(id) == 0 {
		return usageError("%q is not a message id", fl.Arg(0))
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	m, err := d.MessageByID(id)
	if err != nil {
		return err
	}
	var data []byte
	if once {
		data, err = c.OpenViewOnce(ctx, m)
	} else {
		if m.Media != nil && m.Media.ViewOnce != nil {
			return usageError("view-once media cannot be saved: use missive open")
		}
		data, err = c.Download(ctx, m, a.progress("downloading"))
	}
	if err != nil {
		return err
	}
	if once {
		a.owedNote(d)
	}
	if *out == "" || *out == "-" {
		if once {
			fmt.Fprintf(a.stderr, "view-once %s from %s, %s (this is the only time it can be opened)\n", m.Media.MIME, m.Peer, size(uint64(len(data))))
		}
		_, err = a.stdout.Write(data)
		return err
	}
	if once {
		return usageError("view-once media is shown, not saved: leave out -o")
	}
	if err := os.WriteFile(*out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "saved %s to %s\n", size(uint64(len(data))), *out)
	return nil
}

// ownMessage finds a message this account sent, by the start of its id.
func ownMessage(d *client.Device, arg string) (*client.Message, error) {
	id, err := hex.DecodeString(arg)
	if err != nil || len(id) == 0 {
		return nil, usageError("%q is not a message id", arg)
	}
	m, err := d.MessageByID(id)
	if err != nil {
		return nil, err
	}
	if !m.Outgoing {
		return nil, fmt.Errorf("message %x was not sent by you: only its author edits or deletes it", m.ID)
	}
	return m, nil
}

func (a *app) edit(ctx context.Context, args []string, del bool) error {
	if (!del && len(args) < 2) || (del && len(args) != 1) {
		if del {
			return usageError("unsend needs a message id")
		}
		return usageError("edit needs a message id and the new text")
	}
	d, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	defer c.Close()
	m, err := ownMessage(d, args[0])
	if err != nil {
		return err
	}
	conv := client.Conv{Peer: m.Peer, Group: m.Group}
	if del {
		if err := c.DeleteForEveryone(ctx, conv, m.ID); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "deleted %x for everyone in %s\n", m.ID, convName(d, m))
		return nil
	}
	text := strings.Join(args[1:], " ")
	if err := c.Edit(ctx, conv, m.ID, text); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "edited %x in %s: %s\n", m.ID, convName(d, m), text)
	return nil
}

func (a *app) timer(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return usageError("timer needs a conversation and a duration (0 or off to turn it off), such as: missive timer bob 24h")
	}
	var secs uint64
	if args[1] != "0" && args[1] != "off" {
		dur, err := time.ParseDuration(args[1])
		if err != nil || dur < time.Second {
			return usageError("%q is not a duration such as 30s, 10m or 24h", args[1])
		}
		secs = uint64(dur / time.Second)
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
	if err := c.SetTimer(ctx, conv, secs); err != nil {
		return err
	}
	if secs == 0 {
		fmt.Fprintf(a.stdout, "messages in %s no longer disappear\n", conv)
	} else {
		fmt.Fprintf(a.stdout, "new messages in %s disappear after %s\n", conv, time.Duration(secs)*time.Second)
	}
	return nil
}
