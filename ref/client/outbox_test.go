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

	bolt "go.etcd.io/bbolt"

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
	bob    *reviewPeer // bob/1, who has a session with alice/1
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
	s.bob = sessionFrom(t, s.alice, "bob", 1, bobIK, 1, bobIK) // and a message from bob, unread
	sessionFrom(t, s.alice, "alice", 2, s.alice.identity, 2, ik2)
	own, err := devices.Sign(s.alice.identity, "alice", 2, []wire.ListedDevice{
		{Device: 1, IdentityKey: s.alice.identity.Public().Encode()}, {Device: 2, IdentityKey: ik2.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	welcome.DeviceList = &own.Signed
	clearOwed(t, s.alice)
	return s
}

// clearOwed empties the outbox of d: the delivered receipts that the
// set-up's messages owe are not what a test sends or loses.
func clearOwed(t *testing.T, d *Device) {
	t.Helper()
	if err := d.db.Update(emptyOutbox); err != nil {
		t.Fatal(err)
	}
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

// TestOwedFailureHoldsNoOther checks that an owed content whose send fails
// on this device (a read receipt to bob, whose account was reset: a new
// primary key, auth.identity_changed until the user trusts it, DEV-014)
// is kept for later without holding up what is owed after it (the deleted
// content for alice/2), as it did when the outbox stopped at its first
// failure.
func TestOwedFailureHoldsNoOther(t *testing.T) {
	welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
	newBob, _ := keys.GeneratePrivateKey(rand.Reader)
	reset, err := devices.Sign(newBob, "bob", 2, []wire.ListedDevice{{Device: 1, IdentityKey: newBob.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var toAlice int
	srv := startFake(t, welcome, nil, func(tc *transport.Conn, f *wire.Frame) {
		id := transport.RequestID(f)
		if f.Type != wire.FrameSend {
			if id != 0 {
				tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyUnexpectedFrame)})
			}
			return
		}
		var env wire.Envelope
		transport.DecodeBody(f, &env)
		if env.Recipient == "bob" {
			tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.StateFanoutMismatch),
				Fanout: &wire.FanoutMismatch{Stale: []uint64{1}}, DeviceList: &reset.Signed})
			return
		}
		mu.Lock()
		toAlice++
		mu.Unlock()
		tc.Send(wire.FrameResult, id, &wire.SendResult{AcceptedAt: 2000})
	})
	alice, _ := hostileDevice(t, "alice", srv.addr)
	ik2, _ := keys.GeneratePrivateKey(rand.Reader)
	bobIK, _ := keys.GeneratePrivateKey(rand.Reader)
	sessionFrom(t, alice, "bob", 1, bobIK, 1, bobIK)
	sessionFrom(t, alice, "alice", 2, alice.identity, 2, ik2)
	own, err := devices.Sign(alice.identity, "alice", 2, []wire.ListedDevice{
		{Device: 1, IdentityKey: alice.identity.Public().Encode()}, {Device: 2, IdentityKey: ik2.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	welcome.DeviceList = &own.Signed
	clearOwed(t, alice)

	c, err := alice.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond)
	ctx := context.Background()
	if _, err := c.MarkRead(ctx, "bob"); err != nil {
		t.Fatalf("MarkRead: %v", err)
	}
	mu.Lock()
	before := toAlice // the read content went
	mu.Unlock()
	if err := c.Delete(ctx, "bob", make([]byte, wire.MessageIDSize)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	n, _ := alice.Owed()
	mu.Lock()
	after := toAlice
	mu.Unlock()
	if after != before+1 || n != 1 {
		t.Errorf("got %d sends to alice for Delete and %d contents owed, want 1 send (the deleted content) and 1 owed (the receipt to bob)", after-before, n)
	}
}

// TestMarkReadMessageGone checks that a message gone between MarkRead's
// look and markRead's transaction (deleted by a companion's deleted
// content, or expired) does not end the transaction early: the others are
// recorded as read and their receipts owed, and it is not counted.
func TestMarkReadMessageGone(t *testing.T) {
	s := newOwingServer(t, "nobody", nil)
	d := s.alice
	var unread []*Message
	d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if cborDec.Unmarshal(v, &m) == nil && !m.Outgoing && m.Peer == "bob" {
				unread = append(unread, &m)
			}
			return nil
		})
	})
	if len(unread) != 1 {
		t.Fatalf("got %d unread messages from bob, want 1", len(unread))
	}
	gone := &Message{Seq: 1 << 40, Peer: "bob", ID: make([]byte, wire.MessageIDSize)}
	c, err := d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.markRead(context.Background(), []*Message{unread[0], gone})
	time.Sleep(300 * time.Millisecond)
	var m *Message
	d.db.View(func(tx *bolt.Tx) error { m, _ = getMessage(tx, unread[0].Seq); return nil })
	s.mu.Lock()
	toBob := 0
	for _, e := range s.stored {
		if e.recipient == "bob" {
			toBob++
		}
	}
	s.mu.Unlock()
	owed, _ := d.Owed()
	if err != nil || n != 1 || m == nil || !m.Read || toBob+owed != 1 {
		t.Errorf("got %d marked (%v), read %v, %d receipts sent and %d owed; want 1 marked, read, and its receipt sent or owed", n, err, m != nil && m.Read, toBob, owed)
	}
}

// TestDeliveredReceiptOwed checks that the delivered receipt of a message
// is owed in the transaction that stores the message (DEV-022): a receipt
// lost with its connection goes at the next one, though the message's
// redelivery is a duplicate that sends nothing.
func TestDeliveredReceiptOwed(t *testing.T) {
	s := newOwingServer(t, "bob", nil)
	text := "a message to tick"
	if _, _, err := s.alice.receive(s.bob.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text})); err != nil {
		t.Fatal(err)
	}
	if n, err := s.alice.Owed(); err != nil || n != 1 {
		t.Fatalf("got %d contents owed (%v) after a message was stored, want its delivered receipt", n, err)
	}
	for i := range 2 { // the first connection loses the receipt, the second sends it again
		c, err := s.alice.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done := s.storedAgain
		if i == 0 {
			done = func() bool { return !s.drop.Load() }
		}
		for deadline := time.Now().Add(5 * time.Second); !done(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("connection %d: the server has stored %v and lost %v, want the receipt lost, then stored", i+1, s.stored, s.lost)
			}
		}
		c.Close()
	}
	if s.lost[0].typ != wire.EnvelopeReceipt {
		t.Errorf("got a lost envelope of type %d, want the receipt (%d)", s.lost[0].typ, wire.EnvelopeReceipt)
	}
}

// TestDeliveryNotHeldByOwed checks that the delivery loop does not wait
// for a send of what is owed under way: alice owes a receipt to carol,
// whose sends the server never answers, and a message from bob that comes
// meanwhile must be shown at once, not once that send's time runs out.
func TestDeliveryNotHeldByOwed(t *testing.T) {
	var bob *reviewPeer
	bobText := "not held up"
	alice, bob := owingCarol(t, func(tc *transport.Conn) {
		go func() {
			time.Sleep(300 * time.Millisecond) // the send to carol is under way
			tc.Send(wire.FrameDeliver, 0, bob.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &bobText}))
		}()
	})
	c, err := alice.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-c.Events:
			if e.Kind == EventMessage && e.Message.Text == bobText {
				return
			}
		case <-timeout:
			t.Fatalf("bob's message not shown 5 s after it came, want it shown while the send to carol waits")
		}
	}
}

// TestOwedOutcomes checks what the outbox does with an owed content by the
// server's answer (DEV-022): deleted once accepted; kept, and not tried
// again on the same connection, when the failure may pass
// (policy.quota_exceeded); kept, the pass stopped, when the server asks to
// be tried later (policy.rate_limited); dropped when refused for good
// (policy.too_large) or owed for longer than MAX_TTL, the latter unsent.
func TestOwedOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		code      errcode.Code // the server's answer to sends to bob; 0: accepted
		age       time.Duration
		wantOwed  int
		wantSends int // to bob, over two passes on one connection
	}{
		{"accepted", 0, 0, 0, 1},
		{"quota exceeded: kept, tried once per connection", errcode.PolicyQuotaExceeded, 0, 1, 1},
		{"rate limited: kept, tried at each pass", errcode.PolicyRateLimited, 0, 1, 2},
		{"refused for good: dropped", errcode.PolicyTooLarge, 0, 0, 1},
		{"older than MAX_TTL: dropped unsent", 0, wire.MaxTTL*time.Second + time.Hour, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sends atomic.Int64
			welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
			srv := startFake(t, welcome, nil, func(tc *transport.Conn, f *wire.Frame) {
				if f.Type != wire.FrameSend {
					return
				}
				sends.Add(1)
				if tt.code != 0 {
					retry := uint64(1)
					tc.Send(wire.FrameError, transport.RequestID(f), &wire.ErrorBody{Code: uint64(tt.code), RetryAfter: &retry})
					return
				}
				tc.Send(wire.FrameResult, transport.RequestID(f), &wire.SendResult{AcceptedAt: 2000})
			})
			alice, _ := hostileDevice(t, "alice", srv.addr)
			bobIK, _ := keys.GeneratePrivateKey(rand.Reader)
			sessionFrom(t, alice, "bob", 1, bobIK, 1, bobIK)
			clearOwed(t, alice)
			now := alice.now
			alice.now = func() time.Time { return now().Add(-tt.age) }
			e, err := alice.stamped("bob", wire.EnvelopeReceipt, receipts(wire.ReceiptRead, [][]byte{make([]byte, wire.MessageIDSize)})[0])
			alice.now = now
			if err != nil {
				t.Fatal(err)
			}
			if err := alice.db.Update(func(tx *bolt.Tx) error { return putOwed(tx, e) }); err != nil {
				t.Fatal(err)
			}
			c, err := alice.Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(300 * time.Millisecond) // the connection's own pass
			c.sendOwed(context.Background())   // a second pass
			if n, err := alice.Owed(); err != nil || n != tt.wantOwed || sends.Load() != int64(tt.wantSends) {
				t.Errorf("got %d owed (%v) after %d sends to bob, want %d owed after %d", n, err, sends.Load(), tt.wantOwed, tt.wantSends)
			}
		})
	}
}

// TestOperationNotHeldByOwed checks that an operation waits for a send of
// what is owed under way only within its own context: alice owes a
// receipt to carol, whose sends the server never answers, so that the
// connection's own send of it goes on; MarkRead, given a second, must
// return done by then, what it owes left in the outbox.
func TestOperationNotHeldByOwed(t *testing.T) {
	alice, _ := owingCarol(t, nil)
	c, err := alice.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond) // the connection's send to carol is under way
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.MarkRead(ctx, "bob")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("MarkRead: got %v, want it done", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MarkRead still waiting 5 s after it was called with a second, want it back when its context ends")
	}
	if n, err := alice.Owed(); err != nil || n < 2 {
		t.Errorf("got %d owed (%v), want the receipt to carol and what MarkRead owes", n, err)
	}
}

// owingCarol makes alice, with sessions with bob and carol, against a fake
// server that never answers a send to carol (greet runs at each connection,
// as startFake's), alice owing carol a read receipt: the connection's own
// send of it goes on until its time runs out. It returns alice and bob.
func owingCarol(t *testing.T, greet func(tc *transport.Conn)) (*Device, *reviewPeer) {
	t.Helper()
	welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
	srv := startFake(t, welcome, greet, func(tc *transport.Conn, f *wire.Frame) {
		if f.Type != wire.FrameSend {
			return
		}
		var env wire.Envelope
		transport.DecodeBody(f, &env)
		if env.Recipient != "carol" { // carol's are never answered
			tc.Send(wire.FrameResult, transport.RequestID(f), &wire.SendResult{AcceptedAt: 2000})
		}
	})
	alice, _ := hostileDevice(t, "alice", srv.addr)
	bobIK, _ := keys.GeneratePrivateKey(rand.Reader)
	carol, _ := keys.GeneratePrivateKey(rand.Reader)
	bob := sessionFrom(t, alice, "bob", 1, bobIK, 1, bobIK) // and a message from bob, unread
	sessionFrom(t, alice, "carol", 1, carol, 1, carol)
	clearOwed(t, alice)
	err := alice.db.Update(func(tx *bolt.Tx) error {
		e, err := alice.stamped("carol", wire.EnvelopeReceipt, receipts(wire.ReceiptRead, [][]byte{make([]byte, wire.MessageIDSize)})[0])
		if err != nil {
			return err
		}
		return putOwed(tx, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}
