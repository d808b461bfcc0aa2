package mem

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

var t0 = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

// twoDevices returns a store with the devices alice/1 and bob/1.
func twoDevices(tb testing.TB) (*Store, store.Address, store.Address) {
	tb.Helper()
	s := New()
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateAccount(context.Background(), name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: t0}); err != nil {
			tb.Fatal(err)
		}
	}
	return s, store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
}

// enqueueN enqueues n envelopes from alice to bob, the i-th expiring at
// expires(i), and returns their queue ids.
func enqueueN(tb testing.TB, s *Store, alice, bob store.Address, first, n int, expires func(i int) time.Time) []uint64 {
	tb.Helper()
	var ids []uint64
	for i := first; i < first+n; i++ {
		id := binary.BigEndian.AppendUint64(make([]byte, 8), uint64(i))
		e := []store.Entry{{Recipient: bob, Sender: alice, MessageID: id, Type: 1, Kind: 1, Ciphertext: make([]byte, 8),
			SentAt: uint64(i), AcceptedAt: t0, ExpiresAt: expires(i)}}
		if _, dup, err := s.Enqueue(context.Background(), e, store.Quota{}, t0.Add(time.Hour)); err != nil || dup {
			tb.Fatalf("enqueue %d: dup %v, err %v", i, dup, err)
		}
		ids = append(ids, e[0].QueueID)
	}
	return ids
}

// TestExpireIndexes checks Expire against the entries and pairs that are
// due, whatever the order they were stored in, and that the indexes drop
// the items of acknowledged entries.
func TestExpireIndexes(t *testing.T) {
	ctx := context.Background()
	s, alice, bob := twoDevices(t)
	// Expiry times out of order: entry i expires i%10 minutes after t0.
	ids := enqueueN(t, s, alice, bob, 0, 100, func(i int) time.Time { return t0.Add(time.Duration(i%10) * time.Minute) })
	if err := s.Ack(ctx, bob, ids[:5]); err != nil { // entries 0-4: minutes 0-4
		t.Fatal(err)
	}
	for m := range 10 {
		// At minute m, the ten entries of minute m expire, less the one
		// acknowledged for each of the first five minutes.
		got, err := s.Expire(ctx, t0.Add(time.Duration(m)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := 10
		if m < 5 {
			want = 9
		}
		if got != want {
			t.Errorf("minute %d: got %d expired, want %d", m, got, want)
		}
	}
	if n, _ := s.TotalEntries(ctx); n != 0 {
		t.Errorf("got %d entries left, want 0", n)
	}
	// The pairs are remembered until their forget time (an hour): a
	// resend is a duplicate until then, and a new envelope after.
	resend := []store.Entry{{Recipient: bob, Sender: alice, MessageID: binary.BigEndian.AppendUint64(make([]byte, 8), 3), Type: 1, Kind: 1,
		Ciphertext: make([]byte, 8), SentAt: 3, AcceptedAt: t0.Add(30 * time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}}
	if _, dup, err := s.Enqueue(ctx, resend, store.Quota{}, t0.Add(90*time.Minute)); err != nil || !dup {
		t.Fatalf("resend within the memory: dup %v, err %v; want a duplicate", dup, err)
	}
	if _, err := s.Expire(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(s.accepted) != 0 {
		t.Errorf("got %d pairs remembered past their forget time, want 0", len(s.accepted))
	}
	resend[0].AcceptedAt = t0.Add(61 * time.Minute)
	if _, dup, err := s.Enqueue(ctx, resend, store.Quota{}, t0.Add(2*time.Hour)); err != nil || dup {
		t.Fatalf("resend after the memory: dup %v, err %v; want a new envelope", dup, err)
	}

	// Acknowledged entries leave stale items, which a rebuild drops.
	s, alice, bob = twoDevices(t)
	ids = enqueueN(t, s, alice, bob, 0, 3*compactSlack, func(int) time.Time { return t0.Add(24 * time.Hour) })
	if err := s.Ack(ctx, bob, ids); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Expire(ctx, t0); err != nil || got != 0 {
		t.Fatalf("got %d expired (%v), want 0", got, err)
	}
	if s.expiry.Len() != 0 {
		t.Errorf("got %d items in the expiry index of an empty queue, want 0 after a rebuild", s.expiry.Len())
	}
	if got, want := s.forgets.Len(), len(s.accepted); got != want {
		t.Errorf("got %d items in the forget index, want %d (the pairs)", got, want)
	}
}

// BenchmarkExpireNothingDue is a server's sweep of a store holding
// 300,000 queued entries and pairs, none of them due: with the indexes it
// costs what it removes, not a pass over everything.
func BenchmarkExpireNothingDue(b *testing.B) {
	s, alice, bob := twoDevices(b)
	enqueueN(b, s, alice, bob, 0, 300_000, func(int) time.Time { return t0.Add(time.Hour) })
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if n, err := s.Expire(ctx, t0.Add(time.Minute)); err != nil || n != 0 {
			b.Fatalf("got %d expired (%v), want 0", n, err)
		}
	}
}
