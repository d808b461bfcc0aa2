package server_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	addr  string
	srv   *server.Server
	st    store.Store
	clock *clock
	seed  byte
}

// start runs a server on a loopback port with an in-memory store.
func start(t testing.TB) *env {
	t.Helper()
	return startWith(t, mem.New(), newClock(), nil)
}

// newClock returns a clock at the tests' epoch.
func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)} }

// startWith runs a server on a loopback port over st, with the clock clk,
// and the configuration that config (when not nil) changes.
func startWith(t testing.TB, st store.Store, clk *clock, config func(*server.Config)) *env {
	t.Helper()
	static, err := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{42}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Static: static, Clock: clk.Now,
		RedeliveryBase: 200 * time.Millisecond, RedeliveryMax: time.Second, ExpiryInterval: 50 * time.Millisecond}
	if config != nil {
		config(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &env{t: t, addr: ln.Addr().String(), srv: srv, st: st, clock: clk}
}

// device creates a device for account and connects it.
func (e *env) device(account string) (*client.Device, *client.Conn) {
	e.t.Helper()
	e.seed++
	d, err := client.Init(e.t.TempDir(), account, e.addr, client.Config{Rand: rand.NewChaCha8([32]byte{e.seed}), Clock: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	return d, e.connect(d)
}

func (e *env) connect(d *client.Device) *client.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.Connect(ctx)
	if err != nil {
		e.t.Fatalf("connect %s: %v", d.Account, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// next waits for the next event of a kind.
func next(t *testing.T, c *client.Conn, kind client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events:
			if !ok {
				t.Fatalf("connection closed: %v", c.Err())
			}
			if ev.Kind == client.EventError {
				t.Logf("event error: %v", ev.Err)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event of kind %d", kind)
		}
	}
}

func TestSendReceiveReceipts(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, alice := e.device("alice")
	bobDev, bob := e.device("bob")
	bob.Close() // Bob goes offline: the message waits in his queue.

	m, err := alice.Send(ctx, "bob", "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Overall(); got != client.StatusSent {
		t.Fatalf("status after send: got %v, want sent", got)
	}
	if n, err := e.st.TotalEntries(ctx); err != nil || n != 1 {
		t.Fatalf("queue entries: got %d (%v), want 1", n, err)
	}

	bob = e.connect(bobDev)
	ev := next(t, bob, client.EventMessage)
	if ev.Message.Text != "hello bob" || ev.Message.Peer != "alice" {
		t.Fatalf("got %q from %s", ev.Message.Text, ev.Message.Peer)
	}
	if st := next(t, alice, client.EventStatus); st.Message.Overall() != client.StatusDelivered {
		t.Fatalf("status: got %v, want delivered", st.Message.Overall())
	}
	if _, err := bob.MarkRead(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if st := next(t, alice, client.EventStatus); st.Message.Overall() != client.StatusRead {
		t.Fatalf("status: got %v, want read", st.Message.Overall())
	}
	// Replies go the other way on the same sessions.
	if _, err := bob.Send(ctx, "alice", "hi alice"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, alice, client.EventMessage); ev.Message.Text != "hi alice" {
		t.Fatalf("got %q", ev.Message.Text)
	}
}

func TestExpiry(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, alice := e.device("alice")
	bobDev, bob := e.device("bob")
	bob.Close()
	if _, err := alice.Send(ctx, "bob", "too late"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	e.srv.Sweep(ctx)
	if n, _ := e.st.TotalEntries(ctx); n != 0 {
		t.Fatalf("entries after expiry: got %d, want 0", n)
	}
	bob = e.connect(bobDev)
	select {
	case ev := <-bob.Events:
		if ev.Kind == client.EventMessage {
			t.Fatalf("expired message delivered: %q", ev.Message.Text)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func TestUnknownAccount(t *testing.T) {
	e := start(t)
	_, alice := e.device("alice")
	_, err := alice.Send(context.Background(), "nobody", "hello?")
	if !errors.Is(err, errcode.StateUnknownAccount) {
		t.Fatalf("got %v, want %v", err, errcode.StateUnknownAccount)
	}
}

func TestRestartKeepsQueue(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, alice := e.device("alice")
	bobDev, bob := e.device("bob")
	bob.Close()
	if _, err := alice.Send(ctx, "bob", "survive"); err != nil {
		t.Fatal(err)
	}
	// A second server over the same store plays the restarted one.
	static, _ := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{42}))
	srv2, err := server.New(server.Config{Store: e.st, Static: static, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx2)
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		t.Skipf("port not free again: %v", err)
	}
	go srv2.Serve(ln)
	defer srv2.Shutdown(ctx2)
	bob = e.connect(bobDev)
	if ev := next(t, bob, client.EventMessage); ev.Message.Text != "survive" {
		t.Fatalf("got %q", ev.Message.Text)
	}
}

// TestFanoutCorrected checks that a send that misses one of the
// recipient's devices is refused with the list of missing devices, and that
// the client corrects it: it fetches the missing device's bundle and sends
// again, and both devices receive the message.
func TestFanoutCorrected(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, alice := e.device("alice")
	_, bob1 := e.device("bob")
	// Alice talks to bob's only device: she now has a session with it.
	if _, err := alice.Send(ctx, "bob", "one device"); err != nil {
		t.Fatal(err)
	}
	next(t, bob1, client.EventMessage)
	// Bob links a second device.
	bob2Dev := e.link(bob1)
	bob2 := e.connect(bob2Dev)
	// Alice's next send names only device 1: refused, corrected, delivered.
	m, err := alice.Send(ctx, "bob", "two devices")
	if err != nil {
		t.Fatalf("send after a new device: %v", err)
	}
	if len(m.Statuses) != 2 {
		t.Errorf("statuses: got %v, want two devices", m.Statuses)
	}
	for _, c := range []*client.Conn{bob1, bob2} {
		if ev := next(t, c, client.EventMessage); ev.Message.Text != "two devices" {
			t.Errorf("got %q", ev.Message.Text)
		}
	}
}

// link links a companion to the account of primary and returns it.
func (e *env) link(primary *client.Conn) *client.Device {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, complete, err := primary.Link(ctx)
	if err != nil {
		e.t.Fatalf("Link: %v", err)
	}
	e.seed++
	type result struct {
		d   *client.Device
		err error
	}
	done := make(chan result, 1)
	dir, seed := e.t.TempDir(), e.seed
	go func() {
		d, err := client.LinkCompanion(ctx, dir, code, e.addr, client.Config{Rand: rand.NewChaCha8([32]byte{seed}), Clock: e.clock.Now})
		done <- result{d, err}
	}()
	id, err := complete(ctx)
	if err != nil {
		e.t.Fatalf("complete: %v", err)
	}
	r := <-done
	if r.err != nil {
		e.t.Fatalf("LinkCompanion: %v", r.err)
	}
	if r.d.ID != id {
		e.t.Fatalf("companion id: got %d, want %d", r.d.ID, id)
	}
	e.t.Cleanup(func() { r.d.Close() })
	return r.d
}

// unserved returns a server over an in-memory store and a loopback
// listener that nothing serves yet.
func unserved(t *testing.T) (*server.Server, net.Listener) {
	t.Helper()
	static, err := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{42}))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: mem.New(), Static: static})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ln
}

// TestServeAfterShutdown checks that a listener handed to a server shut
// down before Serve started is closed, its port free again: the
// conformance runner stops its server at once after starting it, and a
// listener left open kept the port from the restart that followed.
func TestServeAfterShutdown(t *testing.T) {
	srv, ln := unserved(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, server.ErrClosed) {
		t.Errorf("Serve after Shutdown: got %v, want ErrClosed", err)
	}
	again, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the port after Serve returned: got %v, want it free", err)
	}
	again.Close()
}
