package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// noPush checks that no push of type typ is waiting for d.
func (d *tdev) noPush(typ uint64) {
	d.t.Helper()
	for {
		select {
		case f := <-d.pushes:
			if f.Type == typ {
				d.t.Errorf("%s/%d: unexpected push of type %d", d.a.name, d.id, typ)
			}
		default:
			return
		}
	}
}

// TestPrekeysLow checks SRV-004: the fetch that leaves fewer than
// PREKEY_LOW one-time prekeys of a kind makes the server send the device
// notice(prekeys-low) with the lower count, and the device's next welcome
// carries the counts.
func TestPrekeysLow(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	n := server.PrekeyLow + 1
	var ec []wire.OneTimePreKey
	var kem []wire.KEMPreKey
	for i := range n {
		k, _ := keys.GeneratePrivateKey(bob.rnd)
		ec = append(ec, wire.OneTimePreKey{ID: uint64(i + 1), Key: k.Public().Encode()})
		kk, _ := keys.GenerateKEMPrivateKey(bob.rnd)
		sig, err := pqxdh.SignKEMPreKey(bob.ik, kk.Public(), bob.rnd)
		if err != nil {
			t.Fatal(err)
		}
		kem = append(kem, wire.KEMPreKey{ID: uint64(i + 2), Key: kk.Public().Encode(), Signature: sig})
	}
	var up wire.UploadResult
	bob.do(wire.FrameUploadPrekeys, &wire.PrekeyUpload{OneTime: &ec, OneTimeKEM: &kem}, &up)
	fetch := func() {
		t.Helper()
		alice.do(wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: "bob"}, new(wire.FetchResult))
	}
	fetch() // PREKEY_LOW left of each kind: no notice
	fetch() // one fewer: the notice
	var notice wire.Notice
	if err := transport.DecodeBody(bob.push(wire.FrameNotice), &notice); err != nil {
		t.Fatal(err)
	}
	want := uint64(server.PrekeyLow - 1)
	if notice.Type != wire.NoticePrekeysLow || notice.Count == nil || *notice.Count != want {
		t.Errorf("notice: got type %d, count %v, want prekeys-low with %d (the first notice, so none after the first fetch)", notice.Type, notice.Count, want)
	}
	bob.close()
	bob.connect(false)
	if bob.welcome.OneTimeEC != want || bob.welcome.OneTimeKEM != want {
		t.Errorf("welcome: got %d EC and %d KEM one-time prekeys, want %d of each", bob.welcome.OneTimeEC, bob.welcome.OneTimeKEM, want)
	}
}

// TestTypingRelay checks SRV-015: typing goes as typing-notice to the
// connected devices of the named account, only when the typist's online
// visibility lets that account see it, and is neither queued nor stored.
func TestTypingRelay(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	alice, bob, carol := e.member("alice"), e.member("bob"), e.member("carol")
	bob2 := bob.link(true)
	bob2.close() // offline: typing is not queued for it
	// Online visibility is contacts by default: bob is alice's contact,
	// carol is not.
	alice.do(wire.FrameSetContacts, &wire.Contacts{Accounts: []string{"bob"}}, new(wire.Empty))
	before, _ := e.st.TotalEntries(ctx)
	for _, to := range []string{"bob", "carol"} {
		if err := alice.c.Send(wire.FrameTyping, 0, &wire.Typing{Account: to, Typing: true}); err != nil {
			t.Fatal(err)
		}
	}
	var tn wire.TypingNotice
	if err := transport.DecodeBody(bob.push(wire.FrameTyping), &tn); err != nil {
		t.Fatal(err)
	}
	if tn.From != alice.addr() || !tn.Typing {
		t.Errorf("typing-notice: got %+v, want from %v, typing", tn, alice.addr())
	}
	if after, _ := e.st.TotalEntries(ctx); after != before {
		t.Errorf("entries: got %d after typing, want %d", after, before)
	}
	// A message after the typing frames reaches carol, and bob's other
	// device once it connects; no typing-notice came before it.
	bob2.connect(false)
	for _, d := range []*tdev{carol, bob2} {
		devices := []uint64{1}
		if d == bob2 {
			devices = []uint64{1, 2}
		}
		var res wire.SendResult
		alice.do(wire.FrameSend, marker(alice, d, devices...), &res)
		d.delivery()
		d.noPush(wire.FrameTyping)
	}
}

// marker is an envelope from d to the account of to, for its devices.
func marker(d, to *tdev, devices ...uint64) *wire.Envelope {
	mid := make([]byte, 16)
	mid[0], mid[1] = byte(to.id), to.a.name[0]
	var devs []wire.DeviceMessage
	for _, id := range devices {
		devs = append(devs, wire.DeviceMessage{Device: id, Kind: wire.KindRatchet, Ciphertext: []byte("marker")})
	}
	return &wire.Envelope{Version: 1, MessageID: mid, Sender: d.addr(), Recipient: to.a.name, Messages: devs,
		Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: 1}
}

// failing is a store whose Enqueue fails while fail is set.
type failing struct {
	store.Store
	fail atomic.Bool
}

func (f *failing) Enqueue(ctx context.Context, es []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	if f.fail.Load() {
		return time.Time{}, false, errors.New("the disk is full")
	}
	return f.Store.Enqueue(ctx, es, q, forget)
}

// TestStoreFailure checks SRV-017: a request the server cannot serve
// because its store fails is answered policy.shutting_down with a retry
// time, and the connection is closed; nothing is stored, and the device
// can send again once the store works.
func TestStoreFailure(t *testing.T) {
	st := &failing{Store: mem.New()}
	e := startWith(t, st, newClock(), nil)
	alice, bob := e.member("alice"), e.member("bob")
	st.fail.Store(true)
	code, body := alice.try(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	if code != errcode.PolicyShuttingDown || body.RetryAfter == nil || *body.RetryAfter == 0 {
		t.Fatalf("send with a failing store: got %v (retry after %v), want %v with a retry time", code, body.RetryAfter, errcode.PolicyShuttingDown)
	}
	select {
	case <-alice.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open")
	}
	if n, _ := st.TotalEntries(context.Background()); n != 0 {
		t.Errorf("entries: got %d, want 0", n)
	}
	st.fail.Store(false)
	alice.connect(false)
	alice.do(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	if dl := bob.delivery(); string(dl.Ciphertext) != "marker" {
		t.Errorf("delivery: got %q, want marker", dl.Ciphertext)
	}
}

// sweeping is a store whose queue sweep reports expire's results.
type sweeping struct {
	store.Store
	expired    int
	expire     error
	blobSweeps atomic.Int64
}

func (s *sweeping) Expire(ctx context.Context, now time.Time) (int, error) {
	return s.expired, s.expire
}

func (s *sweeping) ExpireBlobs(ctx context.Context, now time.Time) (int, int64, error) {
	s.blobSweeps.Add(1)
	return s.Store.ExpireBlobs(ctx, now)
}

// TestSweepGoesOn checks SRV-012 and MED-006 when the queue sweep fails:
// blobs are still swept, and entries deleted by a sweep that set
// unreadable records aside still count.
func TestSweepGoesOn(t *testing.T) {
	tests := []struct {
		name    string
		expired int
		err     error
		want    uint64 // missive_expired_total
	}{
		{"the sweep fails", 0, errors.New("the disk is gone"), 0},
		{"records set aside", 3, fmt.Errorf("1 record set aside: %w", store.ErrSetAside), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &sweeping{Store: mem.New(), expired: tt.expired, expire: tt.err}
			e := startWith(t, st, newClock(), func(c *server.Config) { c.ExpiryInterval = time.Hour })
			e.srv.Sweep(context.Background())
			if got := st.blobSweeps.Load(); got != 1 {
				t.Errorf("blob sweeps: got %d, want 1", got)
			}
			if got := metric(t, e.srv, "missive_expired_total"); got != tt.want {
				t.Errorf("missive_expired_total: got %d, want %d", got, tt.want)
			}
		})
	}
}
