// Command missive-demo runs a Missive server and two clients on this
// machine and shows them exchanging end-to-end encrypted messages, with the
// ticks of each message (sent, delivered, read), an offline queue and a
// reconnection. Everything stays on the loopback interface and in a
// temporary directory.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/transport"
)

const usage = `missive-demo shows a Missive server and two clients at work.

Usage:
    missive-demo [-keep]

It starts a server on a free loopback port with its data in a temporary
directory, registers alice and bob, and has them exchange messages while it
prints what each side sees. -keep leaves the directory in place.

Example:
    $ go run ./cmd/missive-demo
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("missive-demo", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	keep := fl.Bool("keep", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	dir, err := os.MkdirTemp("", "missive-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "missive-demo: %v\n", err)
		return 1
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo(ctx, dir, stdout); err != nil {
		fmt.Fprintf(stderr, "missive-demo: %v\n", err)
		return 1
	}
	if *keep {
		fmt.Fprintf(stdout, "\nthe data is in %s\n", dir)
	}
	return 0
}

// say prints one line of the transcript.
func say(w io.Writer, who, format string, a ...any) {
	fmt.Fprintf(w, "%-8s %s\n", who, fmt.Sprintf(format, a...))
}

func ticks(s client.Status) string {
	switch s {
	case client.StatusSent:
		return "✓ sent"
	case client.StatusDelivered:
		return "✓✓ delivered"
	case client.StatusRead, client.StatusPlayed:
		return "✓✓ read"
	}
	return "… pending"
}

// wait returns the next event of a kind on c.
func wait(ctx context.Context, c *client.Conn, kind client.EventKind) (client.Event, error) {
	for {
		select {
		case e, ok := <-c.Events:
			if !ok {
				return client.Event{}, fmt.Errorf("connection closed: %v", c.Err())
			}
			if e.Kind == kind {
				return e, nil
			}
		case <-ctx.Done():
			return client.Event{}, errors.New("timed out waiting for the other side")
		}
	}
}

func demo(ctx context.Context, dir string, w io.Writer) error {
	if err := os.MkdirAll(filepath.Join(dir, "server"), 0o700); err != nil {
		return err
	}
	st, err := bolt.Open(filepath.Join(dir, "server", "store.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, Static: static})
	if err != nil {
		return err
	}
	ln, err := transport.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	addr := ln.Addr().String()
	say(w, "server", "listening on %s (data in %s)", addr, filepath.Join(dir, "server"))

	open := func(name string) (*client.Device, *client.Conn, error) {
		d, err := client.Init(filepath.Join(dir, name), name, addr, client.Config{})
		if err != nil {
			return nil, nil, err
		}
		c, err := d.Connect(ctx)
		if err != nil {
			d.Close()
			return nil, nil, err
		}
		say(w, name, "registered device %d, identity key %x…", d.ID, d.IdentityKey().Bytes()[:8])
		return d, c, nil
	}
	aliceDev, alice, err := open("alice")
	if err != nil {
		return err
	}
	defer aliceDev.Close()
	defer alice.Close()
	bobDev, bob, err := open("bob")
	if err != nil {
		return err
	}
	defer bobDev.Close()

	// Online: sent, delivered, read.
	m, err := alice.Send(ctx, "bob", "Hi Bob! This is end-to-end encrypted.")
	if err != nil {
		return err
	}
	say(w, "alice", "-> bob: %q  %s", m.Text, ticks(m.Overall()))
	e, err := wait(ctx, bob, client.EventMessage)
	if err != nil {
		return err
	}
	say(w, "bob", "<- %s: %q", e.Message.Peer, e.Message.Text)
	if e, err = wait(ctx, alice, client.EventStatus); err != nil {
		return err
	}
	say(w, "alice", "   %q  %s", e.Message.Text, ticks(e.Message.Overall()))
	if _, err := bob.MarkRead(ctx, "alice"); err != nil {
		return err
	}
	say(w, "bob", "reads it")
	if e, err = wait(ctx, alice, client.EventStatus); err != nil {
		return err
	}
	say(w, "alice", "   %q  %s", e.Message.Text, ticks(e.Message.Overall()))

	// A reply.
	r, err := bob.Send(ctx, "alice", "Hello Alice, the server cannot read this.")
	if err != nil {
		return err
	}
	say(w, "bob", "-> alice: %q  %s", r.Text, ticks(r.Overall()))
	if e, err = wait(ctx, alice, client.EventMessage); err != nil {
		return err
	}
	say(w, "alice", "<- %s: %q", e.Message.Peer, e.Message.Text)

	// Offline: the server queues, then delivers on reconnection.
	bob.Close()
	say(w, "bob", "goes offline")
	m, err = alice.Send(ctx, "bob", "Are you there?")
	if err != nil {
		return err
	}
	say(w, "alice", "-> bob: %q  %s (queued on the server)", m.Text, ticks(m.Overall()))
	bob, err = bobDev.Connect(ctx)
	if err != nil {
		return err
	}
	defer bob.Close()
	say(w, "bob", "comes back online")
	if e, err = wait(ctx, bob, client.EventMessage); err != nil {
		return err
	}
	say(w, "bob", "<- %s: %q", e.Message.Peer, e.Message.Text)
	if e, err = wait(ctx, alice, client.EventStatus); err != nil {
		return err
	}
	say(w, "alice", "   %q  %s", e.Message.Text, ticks(e.Message.Overall()))
	fmt.Fprintln(w, "\ndone: every message was encrypted on the sending device and decrypted on the receiving one.")
	return nil
}
