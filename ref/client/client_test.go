package client_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// clock is a settable clock shared by the server and the devices.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type world struct {
	t     *testing.T
	addr  string
	clock *clock
	dir   string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, mem.New())
}

// newWorldOn is newWorld with a server over st, which the test may fill.
func newWorldOn(t *testing.T, st store.Store) *world {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	addr, _ := serve(t, st, clk)
	return &world{t: t, addr: addr, clock: clk, dir: t.TempDir()}
}

type dev struct {
	*client.Device
	c *client.Conn
}

func (w *world) device(name string) *dev {
	w.t.Helper()
	return w.deviceWith(name, client.Config{})
}

// deviceWith is device with a configuration (the world's clock, unless
// it sets one).
func (w *world) deviceWith(name string, cfg client.Config) *dev {
	w.t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = w.clock.now
	}
	d, err := client.Init(filepath.Join(w.dir, name), name, w.addr, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := d.Connect(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close(); d.Close() })
	return &dev{d, c}
}

// next returns the next event of a kind, failing after a while.
func (d *dev) next(t *testing.T, kind client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-d.c.Events:
			if !ok {
				t.Fatalf("%s: connection closed: %v", d.Account, d.c.Err())
			}
			if e.Kind == client.EventError {
				t.Logf("%s: %v", d.Account, e.Err)
			}
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("%s: no event of kind %d", d.Account, kind)
		}
	}
}

// quiet reports whether no message event comes for a while.
func (d *dev) quiet(t *testing.T, wait time.Duration) bool {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-d.c.Events:
			if !ok {
				return true
			}
			if e.Kind == client.EventMessage {
				t.Logf("%s got %q from %s", d.Account, e.Message.Text, e.Message.Peer)
				return false
			}
		case <-timeout:
			return true
		}
	}
}

var ctx = context.Background()

func TestGroupSendRemoveRekey(t *testing.T) {
	w := newWorld(t)
	alice, bob, carol := w.device("alice"), w.device("bob"), w.device("carol")
	gid, err := alice.c.CreateGroup(ctx, "friends", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	m, err := alice.c.SendTo(ctx, client.Conv{Group: gid}, "hello group")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*dev{bob, carol} {
		e := d.next(t, client.EventMessage)
		if e.Message.Text != "hello group" || !bytes.Equal(e.Message.Group, gid) || e.Message.Peer != "alice" {
			t.Fatalf("%s got %+v, want alice's hello in the group", d.Account, e.Message)
		}
	}
	// Both delivered receipts fold into delivered for the whole group.
	for i := 0; i < 2; i++ {
		alice.next(t, client.EventStatus)
	}
	got, err := alice.Sent(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Overall() != client.StatusDelivered {
		t.Errorf("group status: got %v, want delivered", got.Overall())
	}
	// bob replies; alice and carol read it.
	if _, err := bob.c.SendTo(ctx, client.Conv{Group: gid}, "hi all"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*dev{alice, carol} {
		if e := d.next(t, client.EventMessage); e.Message.Text != "hi all" {
			t.Fatalf("%s got %q", d.Account, e.Message.Text)
		}
	}

	// carol is removed: what alice says next reaches bob only.
	if err := alice.c.RemoveMember(ctx, gid, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.SendTo(ctx, client.Conv{Group: gid}, "without carol"); err != nil {
		t.Fatal(err)
	}
	if e := bob.next(t, client.EventMessage); e.Message.Text != "without carol" {
		t.Fatalf("bob got %q", e.Message.Text)
	}
	if !carol.quiet(t, 500*time.Millisecond) {
		t.Fatal("carol received a message after her removal")
	}
	gs, _ := carol.Groups()
	if len(gs) != 1 || !gs[0].Left {
		t.Errorf("carol's groups: %+v, want one she left", gs)
	}
	// carol cannot send to the group any more.
	if _, err := carol.c.SendTo(ctx, client.Conv{Group: gid}, "still here?"); !errors.Is(err, errcode.PolicyNotMember) {
		t.Errorf("carol sends after removal: got %v, want policy.not_member", err)
	}
}

func TestMediaAndViewOnce(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.device("alice"), w.device("bob")
	bob.quiet(t, 100*time.Millisecond)
	picture := bytes.Repeat([]byte("pixels "), 30000) // 210 kB: several chunks
	var calls int
	m, err := alice.c.SendMedia(ctx, client.Conv{Peer: "bob"}, picture, client.MediaOptions{Kind: wire.MediaImage,
		MIME: "image/png", Caption: "a cat", Progress: func(done, total int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
	e := bob.next(t, client.EventMessage)
	if e.Message.Media == nil || e.Message.Text != "a cat" {
		t.Fatalf("bob got %+v, want the picture", e.Message)
	}
	data, err := bob.c.Download(ctx, e.Message, nil)
	if err != nil || !bytes.Equal(data, picture) {
		t.Fatalf("download: %d bytes, %v", len(data), err)
	}
	_ = m

	if _, err := alice.c.SendMedia(ctx, client.Conv{Peer: "bob"}, []byte("secret"), client.MediaOptions{ViewOnce: true}); err != nil {
		t.Fatal(err)
	}
	e = bob.next(t, client.EventMessage)
	data, err = bob.c.OpenViewOnce(ctx, e.Message)
	if err != nil || string(data) != "secret" {
		t.Fatalf("open view-once: %q, %v", data, err)
	}
	again, err := bob.MessageByID(e.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Opened || len(again.Media.Key) != 0 {
		t.Errorf("after opening: opened %v, key %x; want the key erased", again.Opened, again.Media.Key)
	}
	if _, err := bob.c.OpenViewOnce(ctx, again); err == nil {
		t.Error("view-once media opened twice")
	}
}

func TestEditDeleteTimer(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.device("alice"), w.device("bob")
	bob.quiet(t, 100*time.Millisecond)
	m, err := alice.c.Send(ctx, "bob", "helo")
	if err != nil {
		t.Fatal(err)
	}
	bob.next(t, client.EventMessage)
	if err := alice.c.Edit(ctx, client.Conv{Peer: "bob"}, m.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if e := bob.next(t, client.EventStatus); e.Message.Shown() != "hello" {
		t.Fatalf("bob sees %q after the edit, want hello", e.Message.Shown())
	}
	// After the window, the edit is refused by the sender itself (LIF-002).
	w.clock.add(16 * time.Minute)
	if err := alice.c.Edit(ctx, client.Conv{Peer: "bob"}, m.ID, "too late"); !errors.Is(err, errcode.PolicyWindowPassed) {
		t.Errorf("late edit: got %v, want policy.window_passed", err)
	}
	if err := alice.c.DeleteForEveryone(ctx, client.Conv{Peer: "bob"}, m.ID); err != nil {
		t.Fatal(err)
	}
	if e := bob.next(t, client.EventStatus); !e.Message.Deleted || e.Message.Text != "" {
		t.Fatalf("bob's copy after the delete: %+v", e.Message)
	}
	// bob cannot delete alice's message for everyone.
	if err := bob.c.DeleteForEveryone(ctx, client.Conv{Peer: "alice"}, m.ID); err == nil {
		t.Error("bob deleted alice's message")
	}

	// Disappearing messages: a timer of an hour.
	if err := alice.c.SetTimer(ctx, client.Conv{Peer: "bob"}, 3600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, "bob", "this disappears"); err != nil {
		t.Fatal(err)
	}
	e := bob.next(t, client.EventMessage)
	if e.Message.Expire != 3600 {
		t.Fatalf("expire-after: got %d, want 3600", e.Message.Expire)
	}
	if bob.Timer(client.Conv{Peer: "alice"}) != 3600 {
		t.Errorf("bob's timer: got %d, want 3600", bob.Timer(client.Conv{Peer: "alice"}))
	}
	w.clock.add(time.Hour)
	ms, err := bob.Messages("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Text == "this disappears" {
			t.Error("the message is still there after its timer")
		}
	}
}

// TestForgetProcessed checks that a device keeps a processed pair (CLI-001)
// for MAX_TTL after its envelope's expiry, and forgets it at its first
// connection after that.
func TestForgetProcessed(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.device("alice"), w.device("bob")
	if _, err := alice.c.SendTo(ctx, client.Conv{Peer: "bob"}, "kept, then forgotten"); err != nil {
		t.Fatal(err)
	}
	bob.next(t, client.EventMessage)
	waitUntil(t, "bob's processed pair", func() bool { return bob.ProcessedPairs() > 0 })
	before := bob.ProcessedPairs()
	ttl := time.Duration(wire.MaxTTL) * time.Second
	// The envelope expires at its acceptance plus client.DefaultTTL; its
	// pair is kept MAX_TTL more.
	w.clock.add(client.DefaultTTL*time.Second + ttl - time.Hour)
	bob.reconnect(t)
	if got := bob.ProcessedPairs(); got != before {
		t.Errorf("an hour before MAX_TTL after the expiry: got %d pairs, want %d", got, before)
	}
	w.clock.add(2 * time.Hour)
	bob.reconnect(t)
	if got := bob.ProcessedPairs(); got != 0 {
		t.Errorf("an hour after MAX_TTL after the expiry: got %d pairs, want 0", got)
	}
}

// TestForgetProcessedAfterReacceptance checks CLI-001 ("keeps the
// processed pairs for at least MAX_TTL after their acceptance") for a pair
// the server accepts a second time: the sender resends a message after the
// server has forgotten the first acceptance (ACCEPT_MEMORY), the server
// accepts it anew and delivers it, and the recipient, which drops it as a
// duplicate, keeps the pair for MAX_TTL after that delivery's expiry. It
// kept it only until MAX_TTL after the first delivery's expiry (from a
// review).
func TestForgetProcessedAfterReacceptance(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		name        string
		resendAfter time.Duration // after the first acceptance
		checkAfter  time.Duration // after the first acceptance
	}{
		// The first delivery expires at 30 d, so its pair went at 60 d;
		// the second acceptance, at 40 d, asks to keep it until 70 d.
		{"resent at 40 d, checked at 61 d", 40 * day, 61 * day},
		{"resent at 35 d, checked at 64 d", 35 * day, 64 * day},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
			st := mem.New()
			addr, _ := serve(t, st, clk)
			w := &world{t: t, addr: addr, clock: clk, dir: t.TempDir()}
			alice, bob := w.device("alice"), w.device("bob")
			m, err := alice.c.SendTo(ctx, client.Conv{Peer: "bob"}, "sent twice")
			if err != nil {
				t.Fatal(err)
			}
			bob.next(t, client.EventMessage)
			bobAddr := store.Address{Account: "bob", Device: bob.ID}
			drained := func() bool {
				s, err := st.Stats(ctx, bobAddr)
				return err == nil && s.Entries == 0
			}
			waitUntil(t, "bob's processed pair", func() bool { return bob.ProcessedPairs() > 0 })
			waitUntil(t, "bob's queue to empty", drained)
			before := bob.ProcessedPairs()

			w.clock.add(c.resendAfter)
			bob.c.Close()
			if err := alice.c.Resend(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			// The server forgot the first acceptance (ACCEPT_MEMORY), so it
			// queues the resend: a second acceptance of the pair.
			if s, err := st.Stats(ctx, bobAddr); err != nil || s.Entries != 1 {
				t.Fatalf("after the resend: bob's queue holds %d entries (%v), want 1", s.Entries, err)
			}
			bob.reconnect(t) // bob takes it as a duplicate (CLI-001) and acks it
			waitUntil(t, "bob to ack the resend", drained)
			if !bob.quiet(t, 300*time.Millisecond) {
				t.Fatal("bob showed the resend")
			}
			w.clock.add(c.checkAfter - c.resendAfter)
			bob.reconnect(t)
			if got := bob.ProcessedPairs(); got != before {
				t.Errorf("%v after the pair's second acceptance: got %d pairs, want %d", c.checkAfter-c.resendAfter, got, before)
			}
		})
	}
}

// reconnect closes the device's connection and connects again.
func (d *dev) reconnect(t *testing.T) {
	t.Helper()
	d.c.Close()
	c, err := d.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.c = c
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
	}
}
