package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// TestFailedCommitPublishesNothing checks that the queue index changes only
// with a committed transaction: an enqueue and an acknowledgement made in
// a transaction that then fails leave the index, and so Pending, Stats and
// TotalEntries, as the file is; a later commit publishes its own changes
// alone; and the index built when the file is opened again is the same.
func TestFailedCommitPublishesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	base := time.Unix(1_800_000_000, 0).UTC()
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: base}); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(id string) []store.Entry {
		return []store.Entry{{Recipient: bob, Sender: alice, MessageID: []byte(id), Type: 1, Kind: 1, Ciphertext: []byte(id),
			SentAt: 1, AcceptedAt: base, ExpiresAt: base.Add(time.Hour)}}
	}
	kept := entry("kept")
	if _, _, err := s.Enqueue(ctx, kept, store.Quota{}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want ...string) {
		t.Helper()
		got, err := s.Pending(ctx, bob, base, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, string(e.MessageID))
		}
		if len(ids) != len(want) || len(ids) > 0 && ids[0] != want[0] {
			t.Errorf("%s: Pending got %v, want %v", when, ids, want)
		}
		if st, err := s.Stats(ctx, bob); err != nil || st.Entries != len(want) {
			t.Errorf("%s: Stats got %+v, %v, want %d entries", when, st, err, len(want))
		}
		if n, err := s.TotalEntries(ctx); err != nil || n != len(want) {
			t.Errorf("%s: TotalEntries got %d, %v, want %d", when, n, err, len(want))
		}
	}
	boom := errors.New("boom")
	err = s.update(ctx, "test", func(tx *bbolt.Tx) error {
		op, err := newEnqueueOp(entry("lost"), store.Quota{}, base.Add(time.Hour))
		if err != nil {
			return err
		}
		if err := op.apply(s, tx); err != nil {
			return err
		}
		if err := s.ackDevice(tx, appendAddr(nil, bob), []uint64{kept[0].QueueID}); err != nil {
			return err
		}
		if n, _ := s.queueSize(string(appendAddr(nil, bob))); n != 1 {
			t.Errorf("queue size inside the transaction: got %d entries, want 1 (one added, one deleted)", n)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed transaction: got %v, want %v", err, boom)
	}
	check("after a failed transaction", "kept")
	next := entry("next")
	if _, _, err := s.Enqueue(ctx, next, store.Quota{Entries: 2}, base.Add(time.Hour)); err != nil {
		t.Fatalf("Enqueue after a failed transaction: %v", err)
	}
	check("after the next commit", "kept", "next")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	check("after reopening", "kept", "next")
}
