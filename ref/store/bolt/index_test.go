package bolt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
)

// testStore opens a store in a temporary directory, closed when t ends,
// with an account of one device (id 1) for each name.
func testStore(t *testing.T, names []string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "missive.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, name := range names {
		if err := s.CreateAccount(context.Background(), name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: testBase}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// testBase is the time the stores of these tests start at.
var testBase = time.Unix(1_800_000_000, 0).UTC()

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

// indexString is what the index holds, for comparing two indexes.
func indexString(x *queueIndex) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	devices := make(map[string]string, len(x.devices))
	for k, d := range x.devices {
		devices[k] = fmt.Sprint(d.classes, d.entries, d.bytes)
	}
	return fmt.Sprint(devices, x.total)
}

// wantIndexMatchesFile checks that s's index is the one Open would build
// from its file.
func wantIndexMatchesFile(t *testing.T, s *Store) {
	t.Helper()
	file, err := loadIndex(s.db)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := indexString(s.idx), indexString(file); got != want {
		t.Errorf("index differs from the file:\n got %s\nwant %s", got, want)
	}
}

// TestIndexMatchesFileUnderLoad runs enqueues, acknowledgements, device
// removals and additions, sweeps, and calls that fail or panic after
// changing queues, from many goroutines sharing commits, and checks that
// the index then equals the one built from the file, and that no queue
// went over its quota.
func TestIndexMatchesFileUnderLoad(t *testing.T) {
	ctx := context.Background()
	accounts := []string{"a", "b", "c"}
	s := testStore(t, accounts, WithMaxBatchDelay(2*time.Millisecond))
	base := testBase
	quota := store.Quota{Entries: 40}
	var msg atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for range 300 {
				acc := accounts[rng.IntN(len(accounts))]
				a := store.Address{Account: acc, Device: uint32(1 + rng.IntN(40))}
				switch r := rng.IntN(10); {
				case r < 5:
					m := msg.Add(1)
					es := []store.Entry{{Recipient: a, Sender: store.Address{Account: "z", Device: 1}, MessageID: []byte(fmt.Sprint(m)), Type: 1, Kind: 1,
						Priority: uint8(rng.IntN(3)), Ciphertext: make([]byte, rng.IntN(10)), SentAt: uint64(m), AcceptedAt: base,
						ExpiresAt: base.Add(time.Duration(1+rng.IntN(500)) * time.Second)}}
					s.Enqueue(ctx, es, quota, base.Add(time.Hour))
				case r < 7:
					es, _ := s.Pending(ctx, a, base, nil, 3)
					var ids []uint64
					for _, e := range es {
						ids = append(ids, e.QueueID)
					}
					s.Ack(ctx, a, ids)
				case r == 7:
					if rng.IntN(6) == 0 {
						s.RemoveDevice(ctx, a)
					} else {
						s.AddDevice(ctx, acc, []byte{1}, base)
					}
				case r == 8:
					// A call that changes a queue, then fails or panics: the
					// group commit runs it alone and the others again.
					panics, id := rng.IntN(2) == 0, uint64(rng.IntN(1000))
					s.update(ctx, "fail", func(tx *bbolt.Tx) error {
						if err := s.ackDevice(tx, appendAddr(nil, a), []uint64{id}); err != nil {
							return err
						}
						if panics {
							panic("boom")
						}
						return errors.New("fail")
					})
				default:
					s.Expire(ctx, base.Add(time.Duration(rng.IntN(20))*time.Second))
				}
			}
		}()
	}
	wg.Wait()
	wantIndexMatchesFile(t, s)
	for k, d := range s.idx.devices {
		if d.entries > quota.Entries {
			t.Errorf("device %x: %d entries, over the quota of %d", k, d.entries, quota.Entries)
		}
	}
}

// TestIndexOneTransaction makes, in one transaction, enqueues to a device
// up to its quota with an acknowledgement between them, an enqueue to
// another device, the removal of the first device, and an enqueue to it:
// the quota counts the transaction's own changes, the removal takes the
// entries the transaction added, and the index then equals the file.
func TestIndexOneTransaction(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"alice", "bob"})
	base := testBase
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	entry := func(to store.Address, id string) []store.Entry {
		return []store.Entry{{Recipient: to, Sender: alice, MessageID: []byte(id), Type: 1, Kind: 1, Ciphertext: []byte(id),
			SentAt: 1, AcceptedAt: base, ExpiresAt: base.Add(time.Hour)}}
	}
	first := entry(bob, "first")
	if _, _, err := s.Enqueue(ctx, first, store.Quota{}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	quota := store.Quota{Entries: 2}
	var results []error
	err := s.update(ctx, "test", func(tx *bbolt.Tx) error {
		results = nil
		enqueue := func(es []store.Entry) error {
			op, err := newEnqueueOp(es, quota, base.Add(time.Hour))
			if err != nil {
				return err
			}
			if err := op.apply(s, tx); err != nil {
				return err
			}
			_, _, err = op.result()
			results = append(results, err)
			return nil
		}
		for _, step := range []func() error{
			func() error { return enqueue(entry(bob, "m1")) },                                         // 2 of 2
			func() error { return enqueue(entry(bob, "m2")) },                                         // over
			func() error { return s.ackDevice(tx, appendAddr(nil, bob), []uint64{first[0].QueueID}) }, // 1 of 2
			func() error { return enqueue(entry(bob, "m3")) },                                         // 2 of 2
			func() error { return enqueue(entry(alice, "m4")) },
			func() error { return s.deleteDevice(tx, appendAddr(nil, bob)) },
			func() error { return enqueue(entry(bob, "m5")) }, // no such device
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, store.ErrQuota, nil, nil, store.ErrNotFound} {
		if got := results[i]; !errors.Is(got, want) || want == nil && got != nil {
			t.Errorf("enqueue %d: got %v, want %v", i, got, want)
		}
	}
	wantIndexMatchesFile(t, s)
	if n, err := s.TotalEntries(ctx); err != nil || n != 1 {
		t.Errorf("TotalEntries: got %d, %v, want 1 (alice's)", n, err)
	}
}

// TestResyncIndex checks that the index built again after a failed commit
// is the file's, whatever the index held.
func TestResyncIndex(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"bob"})
	base := testBase
	bob := store.Address{Account: "bob", Device: 1}
	e := []store.Entry{{Recipient: bob, Sender: bob, MessageID: []byte("m"), Type: 1, Kind: 1, Ciphertext: []byte("c"),
		SentAt: 1, AcceptedAt: base, ExpiresAt: base.Add(time.Hour)}}
	if _, _, err := s.Enqueue(ctx, e, store.Quota{}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// What a commit whose sync failed could leave: changes published that
	// the file does not hold, and changes it holds that were not published.
	var stray queueTx
	stray.record(indexOp{ak: string(appendAddr(nil, bob)), kind: opRemove, id: e[0].QueueID, size: 1})
	stray.record(indexOp{ak: "nobody", kind: opAdd, id: 99, size: 5})
	s.idx.publish(&stray)
	s.resyncIndex()
	wantIndexMatchesFile(t, s)
	if st, err := s.Stats(ctx, bob); err != nil || st.Entries != 1 {
		t.Errorf("Stats after resync: got %+v, %v, want 1 entry", st, err)
	}
}

// TestPendingInChunks checks Pending over a queue where most entries are
// skipped or expired, with limits smaller and larger than what remains,
// against the in-memory store.
func TestPendingInChunks(t *testing.T) {
	ctx := context.Background()
	b, m := testStore(t, []string{"bob"}), mem.New()
	if err := m.CreateAccount(ctx, "bob", store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: testBase}); err != nil {
		t.Fatal(err)
	}
	base := testBase
	bob := store.Address{Account: "bob", Device: 1}
	skip := map[uint64]bool{}
	for _, s := range []store.Store{b, m} {
		for i := range 60 {
			ttl := time.Hour
			if i%3 == 1 {
				ttl = time.Second // expired at base + 1 s
			}
			e := []store.Entry{{Recipient: bob, Sender: bob, MessageID: []byte(fmt.Sprint(i)), Type: 1, Kind: 1, Priority: uint8(i % 4),
				Ciphertext: []byte(fmt.Sprint(i)), SentAt: 1, AcceptedAt: base, ExpiresAt: base.Add(ttl)}}
			if _, _, err := s.Enqueue(ctx, e, store.Quota{}, base.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if i%5 == 0 {
				skip[e[0].QueueID] = true
			}
		}
	}
	for _, limit := range []int{1, 2, 7, 30, 100} {
		got, err := b.Pending(ctx, bob, base.Add(time.Second), skip, limit)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Pending(ctx, bob, base.Add(time.Second), skip, limit)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := pendingIDs(got), pendingIDs(want); g != w {
			t.Errorf("Pending limit %d: got %s, want %s", limit, g, w)
		}
	}
}

// TestPendingOneMoment checks that Pending reads the queue as it was when
// it began, even when a commit adds entries between its steps: here an
// entry of a higher priority, which comes before those it has read, and
// one of the same priority, which comes after them. Returning the second
// without the first would tell the delivery path, which takes the highest
// queue id returned as the mark below which it has seen every entry, that
// the first was delivered.
func TestPendingOneMoment(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"alice", "bob"})
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	enqueue := func(id string, prio uint8) {
		t.Helper()
		es := testEntries(alice, id, bob)
		es[0].Priority = prio
		if _, _, err := s.Enqueue(ctx, es, store.Quota{}, testBase.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		enqueue(id, 0)
	}
	steps := 0
	s.pendingStep = func() {
		if steps++; steps == 1 {
			enqueue("high", 1) // stored between the first step and the next
			enqueue("low", 0)
		}
	}
	got, err := s.Pending(ctx, bob, testBase, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if steps == 0 {
		t.Fatal("Pending took no step")
	}
	if g, w := messageIDs(got), "[a b c]"; g != w {
		t.Errorf("Pending with a commit between its steps: got %s, want %s", g, w)
	}
	s.pendingStep = nil
	got, err = s.Pending(ctx, bob, testBase, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := messageIDs(got), "[high a b c low]"; g != w {
		t.Errorf("Pending after: got %s, want %s", g, w)
	}
}

func messageIDs(es []store.Entry) string {
	var ids []string
	for _, e := range es {
		ids = append(ids, string(e.MessageID))
	}
	return fmt.Sprint(ids)
}

func pendingIDs(es []store.Entry) string {
	var ids []string
	for _, e := range es {
		ids = append(ids, fmt.Sprintf("%d/p%d", e.QueueID, e.Priority))
	}
	return fmt.Sprint(ids)
}

// TestNextIDOncePerTransaction checks the queue id counter that a write
// transaction reads once and writes once, before it commits: the enqueues of
// one transaction get consecutive ids, the file's counter is one past the
// last after the commit, a transaction that fails leaves it as it was, and
// the ids go on from it after the file is opened again.
func TestNextIDOncePerTransaction(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"alice", "bob"})
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	entries := func(id string, to ...store.Address) []store.Entry { return testEntries(alice, id, to...) }
	counter := func() uint64 {
		t.Helper()
		var n uint64
		if err := s.db.View(func(tx *bbolt.Tx) (err error) {
			n, err = getUint64(tx.Bucket(bucketMeta), keyNext, 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	enqueueIn := func(tx *bbolt.Tx, es []store.Entry) []uint64 { return enqueueIn(t, s, tx, es).ids }
	var got []uint64
	err := s.update(ctx, "test", func(tx *bbolt.Tx) error {
		got = nil
		for i, to := range [][]store.Address{{bob}, {alice, bob}, {bob}} {
			got = append(got, enqueueIn(tx, entries(fmt.Sprint("m", i), to...))...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("ids of one transaction: got %v, want %v", got, want)
	}
	if n := counter(); n != 5 {
		t.Errorf("counter after the commit: got %d, want 5", n)
	}
	failed := errors.New("fail")
	if err := s.update(ctx, "test", func(tx *bbolt.Tx) error {
		enqueueIn(tx, entries("lost", bob))
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("failed transaction: got %v, want %v", err, failed)
	}
	if n := counter(); n != 5 {
		t.Errorf("counter after a failed transaction: got %d, want 5", n)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	es := entries("after", bob)
	if _, _, err := s2.Enqueue(ctx, es, store.Quota{}, testBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if es[0].QueueID != 5 {
		t.Errorf("id after reopening: got %d, want 5", es[0].QueueID)
	}
}

// testEntries returns the entries of a message from sender to each device
// of to, with id as message id and ciphertext.
func testEntries(sender store.Address, id string, to ...store.Address) []store.Entry {
	var es []store.Entry
	for _, r := range to {
		es = append(es, store.Entry{Recipient: r, Sender: sender, MessageID: []byte(id), Type: 1, Kind: 1, Ciphertext: []byte(id),
			SentAt: 1, AcceptedAt: testBase, ExpiresAt: testBase.Add(time.Hour)})
	}
	return es
}

// enqueueIn applies an enqueue of es in the write transaction tx of s.
func enqueueIn(t *testing.T, s *Store, tx *bbolt.Tx, es []store.Entry) *enqueueOp {
	t.Helper()
	op, err := newEnqueueOp(es, store.Quota{}, testBase.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := op.apply(s, tx); err != nil {
		t.Fatal(err)
	}
	return op
}

// TestEnqueueLookups checks what an enqueue looks up in the file: the pair
// bucket of version 2, missing, once per transaction (the first enqueue of
// a transaction opens the buckets, so is not counted); a recipient's device
// record only when the device has no entries; and still the record of a
// device with entries that the transaction has removed, so the enqueue is
// refused.
func TestEnqueueLookups(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"alice", "bob"})
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	if _, _, err := s.Enqueue(ctx, testEntries(alice, "m0", bob), store.Quota{}, testBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var cursors [3]int64 // bbolt's cursors (one per Get, Put or bucket search) of each enqueue
	count := func(tx *bbolt.Tx) int64 { st := tx.Stats(); return st.GetCursorCount() }
	err := s.update(ctx, "test", func(tx *bbolt.Tx) error {
		for i, to := range []store.Address{bob, bob, alice} {
			before := count(tx)
			if op := enqueueIn(t, s, tx, testEntries(alice, fmt.Sprint("m", i+1), to)); !op.stored {
				t.Fatalf("enqueue %d to %v: not stored (%v)", i, to, op.refusal)
			}
			cursors[i] = count(tx) - before
		}
		if err := s.deleteDevice(tx, appendAddr(nil, bob)); err != nil {
			return err
		}
		op := enqueueIn(t, s, tx, testEntries(alice, "m4", bob))
		if !errors.Is(op.refusal, store.ErrNotFound) {
			t.Errorf("enqueue to a device removed in the transaction: got %v, want %v", op.refusal, store.ErrNotFound)
		}
		// A record gone behind the index's back (only a corrupt file does
		// this) is found missing while the index is not known to match
		// the file.
		s.qtx.drops = s.qtx.drops[:0]
		s.unsynced = true
		defer func() { s.unsynced = false }()
		op = enqueueIn(t, s, tx, testEntries(alice, "m5", bob))
		if !errors.Is(op.refusal, store.ErrNotFound) {
			t.Errorf("enqueue to a device without a record, index unsynced: got %v, want %v", op.refusal, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// After the first, which opens the buckets: the pair's Get, and the
	// Puts of the entry, its expiry key, the pair and its forget key.
	if cursors[1] != 5 {
		t.Errorf("cursors of an enqueue to a device with entries: got %d, want 5", cursors[1])
	}
	if cursors[2] != 6 {
		t.Errorf("cursors of an enqueue to a device without entries: got %d, want 6 (its record too)", cursors[2])
	}
}

// TestAddrSize checks addrSize against appendAddr for account names whose
// length takes one, two and three bytes of uvarint.
func TestAddrSize(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384} {
		a := store.Address{Account: strings.Repeat("a", n), Device: 7}
		if got, want := addrSize(a), len(appendAddr(nil, a)); got != want {
			t.Errorf("name of %d bytes: got %d, want %d", n, got, want)
		}
	}
}
