// Package storetest is the test suite every store.Store backend must pass:
// one body of tests, run against each backend by its own test (the model is
// nats-server's testAllStoreAllPermutations). A backend's test calls Run with
// a Factory that opens it.
//
// The suite checks what package store documents, and these points that it
// leaves open, on which every backend agrees (package mem is the reference):
//
//   - Prekey ids live in three spaces per device: signed prekeys, one-time
//     EC prekeys, and KEM prekeys (one-time and last-resort together, since
//     a prekey message names its KEM prekey by id alone, spec section 4.5).
//     An id ever stored in a space, even one handed out or replaced since,
//     cannot be stored again, nor appear twice in one upload.
//   - PutPrekeys fails with ErrNotFound for an unknown or removed device.
//     TakeBundle fails with ErrNotFound for an unknown, removed or
//     unreachable device, and then takes nothing. PrekeyCounts fails with
//     ErrNotFound for an unknown device and reports a removed one as
//     unreachable with no keys. "Oldest" one-time key means first uploaded.
//   - RemoveDevice fails with ErrNotFound for an unknown device and does
//     nothing for one already removed.
//   - Enqueue with no entries does nothing. The entries of one call are one
//     envelope and share the sender and message id. A remembered pair counts
//     until its forget time: at or after it (compared with the new entries'
//     AcceptedAt) the pair is forgotten even before Expire runs. Enqueue
//     fails with ErrNotFound, storing nothing, when a recipient is an unknown
//     or removed device. A Quota field of zero or less is no limit; Bytes
//     counts ciphertext bytes. On success Enqueue writes the assigned queue
//     ids into the QueueID fields of the caller's entries and returns the
//     AcceptedAt of the first entry.
//   - Pending with a limit of zero or less returns nothing. Pending, Stats,
//     SetAttempt and Ack treat an unknown device as one with an empty queue.
//   - Expire forgets a pair whose forget time is at or before now, as it
//     deletes an entry whose expiry time is at or before now.
//   - DeviceListAt returns nil for version 0 and versions never stored.
//   - GroupStates with a limit of zero or less, or a from above the current
//     version, returns nothing; a from of 0 counts as 1. Group ids are
//     compared whole: an id that begins another is another group.
//   - Blob sizes count as announced at creation, complete or not, for the
//     quota; the bytes ExpireBlobs reports are those received. ReadBlob
//     serves the bytes held of an incomplete blob too (the server checks
//     completeness); AppendBlob of no bytes is allowed.
//   - The presence methods fail with ErrNotFound for an unknown account.
//     The default privacy is contacts (1) for both visibilities.
//   - Every method returns ErrClosed after Close, a second Close included. A
//     method called with a done context returns the context's error and
//     does nothing.
//   - A store keeps no reference to the slices it is given, and the caller
//     owns the slices it gets back.
package storetest

import (
	"context"
	"errors"
	"hash/fnv"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// Factory opens a backend for the suite.
type Factory struct {
	// Name names the backend in the subtest names.
	Name string
	// Open opens, or reopens, a store whose data lives in dir. A durable
	// backend keeps its data there; another ignores dir. Open fails the
	// test itself when it cannot open the store.
	Open func(t *testing.T, dir string) store.Store
	// Durable says that data survives Close and a new Open of the same dir;
	// the suite then checks that everything does.
	Durable bool
}

// test is one subtest of the suite.
type test struct {
	name string
	fn   func(h *harness)
}

// tests returns every subtest, in the order they are listed in the files of
// this package.
func tests() []test {
	var all []test
	all = append(all, accountTests...)
	all = append(all, prekeyTests...)
	all = append(all, queueTests...)
	all = append(all, presenceTests...)
	all = append(all, lifecycleTests...)
	all = append(all, deviceListTests...)
	all = append(all, groupTests...)
	all = append(all, blobTests...)
	return all
}

// Run runs the suite against the backend f opens: every subtest on a store
// of its own, in parallel.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	t.Run(f.Name, func(t *testing.T) {
		for _, c := range tests() {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.fn(newHarness(t, f))
			})
		}
	})
}

// harness is one subtest's store and helpers. Its helpers fail the test on
// an unexpected error.
type harness struct {
	*testing.T
	f   Factory
	dir string
	s   store.Store
	ctx context.Context
}

func newHarness(t *testing.T, f Factory) *harness {
	h := &harness{T: t, f: f, dir: t.TempDir(), ctx: t.Context()}
	h.s = h.open()
	return h
}

// open opens the store on h.dir and closes it when the test ends.
func (h *harness) open() store.Store {
	h.Helper()
	s := h.f.Open(h.T, h.dir)
	if s == nil {
		h.Fatalf("%s: Open returned nil", h.f.Name)
	}
	h.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			h.Errorf("Close: %v", err)
		}
	})
	return s
}

// reopen closes the store and opens it again on the same directory.
func (h *harness) reopen() {
	h.Helper()
	if err := h.s.Close(); err != nil {
		h.Fatalf("Close: got %v, want nil", err)
	}
	h.s = h.open()
}

// t0 is the suite's epoch; times are milliseconds after it.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// at returns t0 plus ms milliseconds.
func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// ik returns a 33-byte identity key encoding derived from n.
func ik(n byte) []byte {
	k := make([]byte, 33)
	k[0] = 0x05
	for i := 1; i < len(k); i++ {
		k[i] = n + byte(i)
	}
	return k
}

// pk returns a prekey with id and bytes derived from it.
func pk(id uint32) store.Prekey {
	return store.Prekey{ID: id, Key: []byte{0x05, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, Signature: []byte{0x51, byte(id), byte(id >> 8)}}
}

// pks returns prekeys with the ids given.
func pks(ids ...uint32) []store.Prekey {
	out := make([]store.Prekey, len(ids))
	for i, id := range ids {
		out[i] = pk(id)
	}
	return out
}

// account creates an account with primary device 1 and returns its address.
func (h *harness) account(name string) store.Address {
	h.Helper()
	if err := h.s.CreateAccount(h.ctx, name, store.Device{ID: 1, IdentityKey: ik(1), Created: at(0)}); err != nil {
		h.Fatalf("CreateAccount(%q): got %v, want nil", name, err)
	}
	return store.Address{Account: name, Device: 1}
}

// device adds a device to an account and returns its address.
func (h *harness) device(name string) store.Address {
	h.Helper()
	id, err := h.s.AddDevice(h.ctx, name, ik(9), at(1))
	if err != nil {
		h.Fatalf("AddDevice(%q): got %v, want nil", name, err)
	}
	return store.Address{Account: name, Device: id}
}

// put uploads prekeys and fails the test on an error.
func (h *harness) put(a store.Address, u store.PrekeyUpdate) store.Counts {
	h.Helper()
	c, err := h.s.PutPrekeys(h.ctx, a, u)
	if err != nil {
		h.Fatalf("PutPrekeys(%v): got %v, want nil", a, err)
	}
	return c
}

// reachable uploads signed prekey 1 and last-resort KEM prekey 1000.
func (h *harness) reachable(a store.Address) {
	h.Helper()
	sp, lr := pk(1), pk(1000)
	h.put(a, store.PrekeyUpdate{SignedPrekey: &sp, LastResort: &lr})
}

// take takes a bundle and fails the test on an error.
func (h *harness) take(a store.Address) (*store.BundleKeys, store.Counts) {
	h.Helper()
	b, c, err := h.s.TakeBundle(h.ctx, a, store.Budget{})
	if err != nil {
		h.Fatalf("TakeBundle(%v): got %v, want nil", a, err)
	}
	if b == nil {
		h.Fatalf("TakeBundle(%v): got a nil bundle", a)
	}
	return b, c
}

// counts returns a device's prekey counts and reachability.
func (h *harness) counts(a store.Address) (store.Counts, bool) {
	h.Helper()
	c, ok, err := h.s.PrekeyCounts(h.ctx, a)
	if err != nil {
		h.Fatalf("PrekeyCounts(%v): got %v, want nil", a, err)
	}
	return c, ok
}

// msg builds a queue entry from sender to recipient, accepted at t0 plus
// acceptedMs, expiring an hour later.
func msg(recipient, sender store.Address, id string, priority uint8, ciphertext string, acceptedMs int64) store.Entry {
	return store.Entry{
		Recipient:  recipient,
		MessageID:  []byte(id),
		Sender:     sender,
		Type:       1,
		Priority:   priority,
		Kind:       2,
		Ciphertext: []byte(ciphertext),
		SentAt:     sentAt(id),
		AcceptedAt: at(acceptedMs),
		ExpiresAt:  at(acceptedMs + 3600_000),
	}
}

// sentAt is the sent-at of the suite's envelopes with message id id: one
// value per id, as a device that resends an envelope gives it the sent-at
// of the first send (SRV-008 remembers the three of sender, message id and
// sent-at), and ids spread over a second before the suite's times.
func sentAt(id string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return uint64(at(0).UnixMilli()) - 1000 + uint64(h.Sum32()%1000)
}

// forgetAfter is how long the suite's enqueues remember their pair.
const forgetAfter = 30 * 24 * time.Hour

// enqueue enqueues entries (one envelope) with no quota, remembering the
// pair for forgetAfter past their acceptance, and returns the assigned ids.
func (h *harness) enqueue(entries ...store.Entry) []uint64 {
	h.Helper()
	accepted, dup, err := h.s.Enqueue(h.ctx, entries, store.Quota{}, entries[0].AcceptedAt.Add(forgetAfter))
	if err != nil {
		h.Fatalf("Enqueue(%q): got %v, want nil", entries[0].MessageID, err)
	}
	if dup {
		h.Fatalf("Enqueue(%q): got dup true, want false", entries[0].MessageID)
	}
	if !accepted.Equal(entries[0].AcceptedAt) {
		h.Fatalf("Enqueue(%q): got accepted %v, want %v", entries[0].MessageID, accepted, entries[0].AcceptedAt)
	}
	ids := make([]uint64, len(entries))
	for i, e := range entries {
		ids[i] = e.QueueID
	}
	return ids
}

// pending returns every entry of a device's queue not expired at now.
func (h *harness) pending(a store.Address, now time.Time) []store.Entry {
	h.Helper()
	es, err := h.s.Pending(h.ctx, a, now, nil, 1<<20)
	if err != nil {
		h.Fatalf("Pending(%v): got %v, want nil", a, err)
	}
	return es
}

// stats returns a device's queue stats.
func (h *harness) stats(a store.Address) store.QueueStats {
	h.Helper()
	st, err := h.s.Stats(h.ctx, a)
	if err != nil {
		h.Fatalf("Stats(%v): got %v, want nil", a, err)
	}
	return st
}

// total returns TotalEntries.
func (h *harness) total() int {
	h.Helper()
	n, err := h.s.TotalEntries(h.ctx)
	if err != nil {
		h.Fatalf("TotalEntries: got %v, want nil", err)
	}
	return n
}

// wantErr fails the test unless errors.Is(err, want); want nil means no
// error.
func (h *harness) wantErr(what string, err, want error) {
	h.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		h.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// sub returns a harness with a store of its own for a subtest t of h.
func (h *harness) sub(t *testing.T) *harness { return newHarness(t, h.f) }
