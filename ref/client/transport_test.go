package client_test

import (
	"crypto/rand"
	"errors"
	"net"
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
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Static: static, Clock: clk.now})
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
