package server_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(d *client.Device, id []byte) *client.Message {
	ms, _ := d.Messages("")
	for _, m := range ms {
		if bytes.Equal(m.ID, id) {
			return m
		}
	}
	return nil
}

func TestMultiDevice(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	alice1Dev, alice1 := e.device("alice")
	alice2Dev := e.link(alice1)
	alice2 := e.connect(alice2Dev)
	alice3Dev := e.link(alice1)
	alice3 := e.connect(alice3Dev)
	_, bob := e.device("bob")

	// Bob writes to alice: every device of hers gets it.
	in, err := bob.Send(ctx, "alice", "to all of you")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{alice1, alice2, alice3} {
		if ev := next(t, c, client.EventMessage); ev.Message.Text != "to all of you" {
			t.Fatalf("got %q", ev.Message.Text)
		}
	}
	// Alice reads it on device 2: bob sees it read; devices 1 and 3 learn
	// it without sending receipts of their own.
	if n, err := alice2.MarkRead(ctx, "bob"); err != nil || n != 1 {
		t.Fatalf("MarkRead: %d, %v", n, err)
	}
	waitFor(t, "bob's status read", func() bool {
		m, _ := e.sent(bob, in.ID)
		return m != nil && m.Overall() == client.StatusRead
	})
	for _, d := range []*client.Device{alice1Dev, alice3Dev} {
		waitFor(t, "read on the other devices", func() bool {
			m := find(d, in.ID)
			return m != nil && m.Read
		})
	}

	// Alice writes from device 1: her other devices get the transcript, and
	// bob's delivered receipt reaches them too.
	out, err := alice1.Send(ctx, "bob", "from my phone")
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob, client.EventMessage)
	for _, d := range []*client.Device{alice2Dev, alice3Dev} {
		waitFor(t, "the transcript and the receipt on another device", func() bool {
			m := find(d, out.ID)
			return m != nil && m.Outgoing && m.Overall() >= client.StatusDelivered
		})
	}

	// Unlink device 3: its connection is closed and it is refused.
	if err := alice1.Unlink(ctx, alice3Dev.ID); err != nil {
		t.Fatal(err)
	}
	<-alice3.Done()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := alice3Dev.Connect(cctx); !errors.Is(err, errcode.AuthUnknownDevice) {
		t.Fatalf("revoked device connects: got %v, want %v", err, errcode.AuthUnknownDevice)
	}
	// Bob's next message reaches devices 1 and 2 only: his client learns
	// the new list from the refused fan-out.
	if _, err := bob.Send(ctx, "alice", "after the unlink"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{alice1, alice2} {
		if ev := next(t, c, client.EventMessage); ev.Message.Text != "after the unlink" {
			t.Fatalf("got %q", ev.Message.Text)
		}
	}
	if l := bob.Device().DeviceList("alice"); l == nil || len(l.Devices) != 2 {
		t.Errorf("bob's list of alice: %v", l)
	}
}

// sent returns a message a connection's device sent.
func (e *env) sent(c *client.Conn, id []byte) (*client.Message, error) {
	return c.Device().Sent(id)
}

func TestLinkCodeOnce(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, alice := e.device("alice")
	code, complete, err := alice.Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := complete(ctx)
		done <- err
	}()
	if _, err := client.LinkCompanion(ctx, t.TempDir(), code, e.addr, client.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The same code again: the link is gone.
	if _, err := client.LinkCompanion(ctx, t.TempDir(), code, e.addr, client.Config{}); !errors.Is(err, errcode.StateUnknownLink) {
		t.Fatalf("code used twice: got %v, want %v", err, errcode.StateUnknownLink)
	}
}

func TestHistoryOnLink(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, alice1 := e.device("alice")
	_, bob := e.device("bob")
	out, err := alice1.Send(ctx, "bob", "before the link")
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob, client.EventMessage)
	in, err := bob.Send(ctx, "alice", "a reply before the link")
	if err != nil {
		t.Fatal(err)
	}
	next(t, alice1, client.EventMessage)
	alice2Dev := e.link(alice1)
	e.connect(alice2Dev)
	waitFor(t, "the history on the new device", func() bool {
		o, i := find(alice2Dev, out.ID), find(alice2Dev, in.ID)
		return o != nil && o.Outgoing && o.Text == "before the link" && i != nil && !i.Outgoing
	})
	// Deleting on one device deletes on the other.
	if err := alice1.Delete(ctx, "bob", out.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion on the other device", func() bool { return find(alice2Dev, out.ID) == nil })
}

// TestOpenLinksBounded checks DEV-019: a primary holds at most
// MAX_COMPANIONS open links, and opening another ends the oldest. A link
// id that the server holds cannot be opened again (DEV-005); one it has
// ended can.
func TestOpenLinksBounded(t *testing.T) {
	e := start(t)
	alice := e.member("alice")
	open := func(n byte) errcode.Code {
		t.Helper()
		code, _ := alice.try(wire.FrameOpenLink, &wire.OpenLink{LinkID: bytes.Repeat([]byte{n}, 16)}, new(wire.Empty))
		return code
	}
	for n := range byte(wire.MaxCompanions + 1) {
		if got := open(n + 1); got != 0 {
			t.Fatalf("open link %d: got %v, want a result", n+1, got)
		}
	}
	// Held: 2 to 5; link 1 ended when link 5 opened.
	for _, step := range []struct {
		n    byte
		want errcode.Code
	}{
		{5, errcode.StateUnknownLink}, // held
		{2, errcode.StateUnknownLink}, // held
		{1, 0},                        // ended: it opens again, and ends link 2
		{2, 0},                        // and link 2 can open again, ending link 3
		{4, errcode.StateUnknownLink}, // still held
	} {
		if got := open(step.n); got != step.want {
			t.Errorf("open link %d again: got %v, want %v", step.n, got, step.want)
		}
	}
}
