package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/media"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// sent is an envelope the fake server answered or dropped.
type sent struct {
	recipient string
	typ       uint64
	id        []byte
	sentAt    uint64
}

// owingServer is a fake server for alice/1, listed with alice/2 and with
// sessions with alice/2 and bob/1. It answers every send, except that
// while drop is set the first send to dropTo closes the connection
// unanswered, as a connection lost before the request reached the server.
type owingServer struct {
	alice  *Device
	drop   atomic.Bool
	dropTo string
	mu     sync.Mutex
	stored []sent // answered sends
	lost   []sent // dropped sends
}

func newOwingServer(t *testing.T, dropTo string, blob []byte) *owingServer {
	t.Helper()
	s := &owingServer{dropTo: dropTo}
	s.drop.Store(true)
	welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
	srv := startFake(t, welcome, nil, func(tc *transport.Conn, f *wire.Frame) {
		id := transport.RequestID(f)
		switch f.Type {
		case wire.FrameGetBlob:
			var g wire.BlobGet
			transport.DecodeBody(f, &g)
			tc.Send(wire.FrameResult, id, &wire.BlobChunk{Size: uint64(len(blob)), Data: blob[g.Offset : g.Offset+g.Length]})
		case wire.FrameSend:
			var env wire.Envelope
			transport.DecodeBody(f, &env)
			e := sent{env.Recipient, env.Type, env.MessageID, env.SentAt}
			s.mu.Lock()
			defer s.mu.Unlock()
			if env.Recipient == s.dropTo && s.drop.CompareAndSwap(true, false) {
				s.lost = append(s.lost, e)
				tc.Close()
				return
			}
			s.stored = append(s.stored, e)
			tc.Send(wire.FrameResult, id, &wire.SendResult{AcceptedAt: 2000})
		default:
			if id != 0 {
				tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyUnexpectedFrame)})
			}
		}
	})
	s.alice, _ = hostileDevice(t, "alice", srv.addr)
	ik2, _ := keys.GeneratePrivateKey(rand.Reader)
	bobIK, _ := keys.GeneratePrivateKey(rand.Reader)
	sessionFrom(t, s.alice, "bob", 1, bobIK, 1, bobIK) // and a message from bob, unread
	sessionFrom(t, s.alice, "alice", 2, s.alice.identity, 2, ik2)
	own, err := devices.Sign(s.alice.identity, "alice", 2, []wire.ListedDevice{
		{Device: 1, IdentityKey: s.alice.identity.Public().Encode()}, {Device: 2, IdentityKey: ik2.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	welcome.DeviceList = &own.Signed
	return s
}

// storedAgain reports whether every dropped send has been answered since,
// with its message id and sent-at.
func (s *owingServer) storedAgain() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lost {
		if !slices.ContainsFunc(s.stored, func(e sent) bool {
			return e.recipient == l.recipient && bytes.Equal(e.id, l.id) && e.sentAt == l.sentAt
		}) {
			return false
		}
	}
	return len(s.lost) > 0
}

// TestOwedAfterDrop checks DEV-022: what a device owes others once it has
// recorded a change (a sent transcript, DEV-018; the read receipts and read
// content, DEV-012; the opened content and played receipt, MED-007; the
// deleted content) is sent at a later connection when the connection ends
// before the server accepts it, with the same message id and sent-at, the
// operation having succeeded; also when the device is closed and opened
// again in between.
func TestOwedAfterDrop(t *testing.T) {
	sealed, err := media.Encrypt([]byte("once"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name   string
		dropTo string
		op     func(ctx context.Context, c *Conn) error
	}{
		{"send: the sent transcript", "alice", func(ctx context.Context, c *Conn) error {
			_, err := c.Send(ctx, "bob", "hello")
			return err
		}},
		{"mark read: the read receipt", "bob", func(ctx context.Context, c *Conn) error {
			n, err := c.MarkRead(ctx, "bob")
			if err == nil && n != 1 {
				err = fmt.Errorf("marked %d messages read, want 1", n)
			}
			return err
		}},
		{"mark read: the read content", "alice", func(ctx context.Context, c *Conn) error {
			_, err := c.MarkRead(ctx, "bob")
			return err
		}},
		{"open view-once: the opened content", "alice", func(ctx context.Context, c *Conn) error {
			_, err := c.OpenViewOnce(ctx, viewOnce(sealed))
			return err
		}},
		{"open view-once: the played receipt", "bob", func(ctx context.Context, c *Conn) error {
			_, err := c.OpenViewOnce(ctx, viewOnce(sealed))
			return err
		}},
		{"delete: the deleted content", "alice", func(ctx context.Context, c *Conn) error {
			return c.Delete(ctx, "bob", make([]byte, wire.MessageIDSize))
		}},
	}
	for _, tt := range ops {
		for _, reopen := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, reopened %v", tt.name, reopen), func(t *testing.T) {
				s := newOwingServer(t, tt.dropTo, sealed.Blob)
				d := s.alice
				c, err := d.Connect(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := tt.op(context.Background(), c); err != nil {
					t.Fatalf("got %v, want the operation done, what it owes left for later", err)
				}
				c.Close()
				if s.drop.Load() {
					t.Fatalf("nothing was sent to %s", tt.dropTo)
				}
				if n, err := d.Owed(); err != nil || n == 0 {
					t.Fatalf("the outbox holds %d (%v) after the drop, want what was lost", n, err)
				}
				if reopen {
					d.Close()
					if d, err = Open(d.dir, Config{}); err != nil {
						t.Fatal(err)
					}
					defer d.Close()
				}
				c, err = d.Connect(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for deadline := time.Now().Add(5 * time.Second); !s.storedAgain(); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("after 5 s on a new connection, the server has stored %v, want again what was lost: %v", s.stored, s.lost)
					}
				}
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					n, err := d.Owed()
					if err == nil && n == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the outbox holds %d (%v) after its contents were stored, want 0", n, err)
					}
				}
			})
		}
	}
}

func viewOnce(sealed *media.Sealed) *Message {
	return &Message{ID: bytes.Repeat([]byte{7}, wire.MessageIDSize), Peer: "bob", Device: 1, Media: &wire.Media{Kind: wire.MediaImage,
		BlobID: "b", Key: sealed.Key, Digest: sealed.Digest, Size: uint64(len(sealed.Blob)), MIME: "image/png", ViewOnce: wire.Ptr(true)}}
}
