package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// serve runs a server over st with a new static key on a free loopback
// port and returns its address and key.
func serve(t *testing.T, st store.Store, clk *clock) (string, []byte) {
	t.Helper()
	return serveConfig(t, server.Config{Store: st, Clock: clk.now})
}

// serveConfig is serve with the rest of a server's configuration.
func serveConfig(t *testing.T, cfg server.Config) (string, []byte) {
	t.Helper()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Static = static
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), static.Public
}

// TestServerKeyChanged checks TRN-005: a device whose IK handshake fails
// because the server at its address has another static key reports it,
// and neither falls back to XX nor pins the new key: it still connects to
// the server it first met.
func TestServerKeyChanged(t *testing.T) {
	w := newWorld(t)
	alice := w.device("alice")
	alice.c.Close()
	other, _ := serve(t, mem.New(), w.clock) // another server, another key
	first := alice.Server
	alice.Server = other
	if _, err := alice.Connect(ctx); !errors.Is(err, client.ErrServerKeyChanged) {
		t.Fatalf("connect to a server with another key: got %v, want %v", err, client.ErrServerKeyChanged)
	}
	alice.Server = first
	c, err := alice.Connect(ctx)
	if err != nil {
		t.Fatalf("connect to the first server again: %v", err)
	}
	c.Close()
}

// TestUndecryptableAcked checks MSG-015: a delivery the device cannot
// decrypt is reported and acknowledged, so the server deletes it instead
// of delivering it again until it expires.
func TestUndecryptableAcked(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	st := mem.New()
	addr, key := serve(t, st, clk)
	w := &world{t: t, addr: addr, clock: clk, dir: t.TempDir()}
	bob := w.device("bob")

	// mallory registers with a raw connection and sends bob bytes that
	// are no ratchet message.
	ik, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	static, _ := transport.Suite.GenerateKeypair(rand.Reader)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := transport.Client(nc, &transport.ClientConfig{Static: static, ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	binding, err := transport.Bind(ik, static.Public, 1, "mallory", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hello := &wire.Hello{Versions: []uint64{1}, Account: "mallory", Device: 1, IdentityKey: ik.Public().Encode(),
		Binding: binding, Register: wire.Ptr(true)}
	if err := tc.Call(wire.FrameHello, 1, hello, new(wire.Welcome)); err != nil {
		t.Fatal(err)
	}
	env := &wire.Envelope{Version: 1, MessageID: make([]byte, 16), Sender: wire.Address{Account: "mallory", Device: 1},
		Recipient: "bob", Messages: []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: []byte("no ratchet message")}},
		Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: 1}
	if err := tc.Call(wire.FrameSend, 2, env, new(wire.SendResult)); err != nil {
		t.Fatal(err)
	}
	if ev := bob.next(t, client.EventError); ev.Err == nil {
		t.Fatal("no error reported")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := st.TotalEntries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the undecryptable entry is still queued (%d entries): not acknowledged", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeepalive checks TRN-014: a device that has sent nothing for its
// keepalive interval sends ping, which keeps its connection open past a
// server's idle timeout; the same device with the specification's interval
// (30 s) sends nothing within the test and the server closes it as idle.
func TestKeepalive(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	const idle = 500 * time.Millisecond
	addr, _ := serveConfig(t, server.Config{Store: mem.New(), Clock: clk.now, Timeouts: transport.Timeouts{Idle: idle}})
	for _, c := range []struct {
		keepalive time.Duration
		open      bool
	}{
		{idle / 4, true},
		{0, false},
	} {
		name := "alice"
		if !c.open {
			name = "bob"
		}
		d, err := client.Init(filepath.Join(t.TempDir(), name), name, addr, client.Config{Clock: clk.now, Keepalive: c.keepalive})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := d.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var why error
		open := true
		select {
		case <-conn.Done():
			open, why = false, conn.Err()
		case <-time.After(6 * idle):
		}
		conn.Close()
		d.Close()
		if open != c.open {
			t.Errorf("keepalive %v, server idle timeout %v: within %v with nothing to send, got connection open %v, want %v (ended: %v)", c.keepalive, idle, 6*idle, open, c.open, why)
		}
	}
}

// recordingRand is a random source that keeps what each read gave.
type recordingRand struct {
	mu    sync.Mutex
	reads [][]byte
}

func (r *recordingRand) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	r.mu.Lock()
	r.reads = append(r.reads, bytes.Clone(p[:n]))
	r.mu.Unlock()
	return n, err
}

// TestMessageIDs checks MSG-002: the id of each message a device sends is
// 16 bytes of one read of its random source, and two messages with the
// same text have different ids, as the recipient sees them.
func TestMessageIDs(t *testing.T) {
	w := newWorld(t)
	src := &recordingRand{}
	alice := w.deviceWith("alice", client.Config{Rand: src})
	bob := w.device("bob")
	var ids [][]byte
	for range 2 {
		if _, err := alice.c.Send(ctx, "bob", "same text"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, bob.next(t, client.EventMessage).Message.ID)
	}
	if bytes.Equal(ids[0], ids[1]) {
		t.Errorf("two messages got the same id %x", ids[0])
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, id := range ids {
		if len(id) != wire.MessageIDSize {
			t.Errorf("message id %x: got %d bytes, want %d", id, len(id), wire.MessageIDSize)
		}
		if !slices.ContainsFunc(src.reads, func(r []byte) bool { return bytes.Equal(r, id) }) {
			t.Errorf("message id %x is not the output of one read of the device's random source", id)
		}
	}
}
