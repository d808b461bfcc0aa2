package server

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestPushDoesNotWait checks SRV-020: a frame the server sends unasked
// (typing-notice, a prekeys-low notice, device-list) to a connection that
// reads nothing does not hold up the pusher (TRN-011), and the connection
// is closed once more than MAX_PENDING_PUSHES wait. The connection runs
// over net.Pipe, whose writes wait for a reader that never comes.
func TestPushDoesNotWait(t *testing.T) {
	bob := store.Address{Account: "bob", Device: 1}
	signed, err := wire.Marshal(&wire.SignedDeviceList{List: []byte{0x80}, Signature: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		push func(s *Server, c *conn)
	}{
		{"typing-notice", func(s *Server, c *conn) {
			c.push(wire.FrameTyping, &wire.TypingNotice{From: wire.Address{Account: "alice", Device: 1}, Typing: true})
		}},
		// Another account's fetch took the device's bundle.
		{"prekeys-low", func(s *Server, c *conn) { s.prekeysLow(bob, store.Counts{EC: 1, KEM: 1}) }},
		{"device-list", func(s *Server, c *conn) { s.listChanged(bob.Account, signed, nil) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			c := readsNothing(t, byte(i))
			c.s = s
			s.devices = map[store.Address]*conn{bob: c}
			pushed := make(chan int)
			go func() {
				n := 0
				for ; n < 4*MaxPendingPushes; n++ {
					select {
					case <-c.closed:
						pushed <- n
						return
					default:
					}
					tt.push(s, c)
				}
				pushed <- n
			}()
			select {
			case n := <-pushed:
				select {
				case <-c.closed:
				default:
					t.Fatalf("after %d pushes to a connection that reads nothing: not closed, want closed", n)
				}
				// The frames that wait, and those the push goroutine took and
				// writes: each at most MAX_PENDING_PUSHES.
				if n < MaxPendingPushes || n > 2*MaxPendingPushes+1 {
					t.Errorf("pushes before the connection closed: got %d, want %d to %d", n, MaxPendingPushes, 2*MaxPendingPushes+1)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pushes to a connection that reads nothing waited for its writes")
			}
			c.work.Wait() // the push goroutine ends with the connection
		})
	}
}

// readsNothing returns the server side of a transport connection over
// net.Pipe whose device never reads.
func readsNothing(t *testing.T, seed byte) *conn {
	t.Helper()
	r := rand.NewChaCha8([32]byte{7, seed})
	serverKey, err := transport.Suite.GenerateKeypair(r)
	if err != nil {
		t.Fatal(err)
	}
	deviceKey, err := transport.Suite.GenerateKeypair(r)
	if err != nil {
		t.Fatal(err)
	}
	x, y := net.Pipe()
	accepted := make(chan *transport.Conn, 1)
	go func() {
		tc, err := transport.Server(y, &transport.ServerConfig{Static: serverKey, Rand: r})
		if err != nil {
			t.Error(err)
		}
		accepted <- tc
	}()
	device, err := transport.Client(x, &transport.ClientConfig{Static: deviceKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { device.Close() })
	tc := <-accepted
	if tc == nil {
		t.FailNow()
	}
	return &conn{tc: tc, closed: make(chan struct{}), welcomed: true}
}
