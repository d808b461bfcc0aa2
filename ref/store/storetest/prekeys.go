package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

var prekeyTests = []test{
	{"PutPrekeysCounts", testPutPrekeysCounts},
	{"PutPrekeysUnknownDevice", testPutPrekeysUnknown},
	{"PutPrekeysDuplicate", testPutPrekeysDuplicate},
	{"PutPrekeysMost", testPutPrekeysMost},
	{"PrekeyReplacement", testPrekeyReplacement},
	{"TakeBundleOrder", testTakeBundleOrder},
	{"TakeBundleNotReachable", testTakeBundleNotReachable},
	{"TakeBundleConcurrent", testTakeBundleConcurrent},
	{"HandoutBudget", testHandoutBudget},
	{"HandoutBudgetReopen", testHandoutBudgetReopen},
	{"HandoutBudgetClockStep", testHandoutBudgetClockStep},
}

func ptr(k store.Prekey) *store.Prekey { return &k }

func testPutPrekeysCounts(h *harness) {
	a := h.account("alice")
	steps := []struct {
		u         store.PrekeyUpdate
		want      store.Counts
		reachable bool
	}{
		{store.PrekeyUpdate{}, store.Counts{}, false},
		{store.PrekeyUpdate{OneTimeEC: pks(1, 2, 3), OneTimeKEM: pks(1, 2)}, store.Counts{EC: 3, KEM: 2}, false},
		{store.PrekeyUpdate{OneTimeEC: pks(4, 5)}, store.Counts{EC: 5, KEM: 2}, false},
		{store.PrekeyUpdate{SignedPrekey: ptr(pk(1))}, store.Counts{EC: 5, KEM: 2}, false},
		{store.PrekeyUpdate{LastResort: ptr(pk(100))}, store.Counts{EC: 5, KEM: 2}, true},
		{store.PrekeyUpdate{OneTimeKEM: pks(3)}, store.Counts{EC: 5, KEM: 3}, true},
	}
	for i, s := range steps {
		got := h.put(a, s.u)
		if got != s.want {
			h.Errorf("PutPrekeys step %d: got %+v, want %+v", i, got, s.want)
		}
		c, ok := h.counts(a)
		if c != s.want || ok != s.reachable {
			h.Errorf("PrekeyCounts after step %d: got %+v, %t, want %+v, %t", i, c, ok, s.want, s.reachable)
		}
	}
}

func testPutPrekeysUnknown(h *harness) {
	h.account("alice")
	for _, a := range []store.Address{{Account: "bob", Device: 1}, {Account: "alice", Device: 2}} {
		_, err := h.s.PutPrekeys(h.ctx, a, store.PrekeyUpdate{OneTimeEC: pks(1)})
		h.wantErr("PutPrekeys", err, store.ErrNotFound)
		_, _, err = h.s.PrekeyCounts(h.ctx, a)
		h.wantErr("PrekeyCounts", err, store.ErrNotFound)
		_, _, err = h.s.TakeBundle(h.ctx, a, store.Budget{})
		h.wantErr("TakeBundle", err, store.ErrNotFound)
	}
}

func testPutPrekeysDuplicate(h *harness) {
	// Every case starts from a device holding signed prekey 1, last-resort
	// KEM prekey 100, one-time EC 1-3 and one-time KEM 1-3, of which a
	// bundle took EC 1 and KEM 1; then signed prekey 2 and last-resort 101
	// replaced 1 and 100.
	cases := []struct {
		name string
		u    store.PrekeyUpdate
		want error
	}{
		{"one-time EC held", store.PrekeyUpdate{OneTimeEC: pks(7, 2)}, store.ErrDuplicatePrekey},
		{"one-time EC taken", store.PrekeyUpdate{OneTimeEC: pks(1)}, store.ErrDuplicatePrekey},
		{"one-time EC twice in the upload", store.PrekeyUpdate{OneTimeEC: pks(8, 9, 8)}, store.ErrDuplicatePrekey},
		{"one-time KEM held", store.PrekeyUpdate{OneTimeKEM: pks(3)}, store.ErrDuplicatePrekey},
		{"one-time KEM taken", store.PrekeyUpdate{OneTimeKEM: pks(1)}, store.ErrDuplicatePrekey},
		{"one-time KEM twice in the upload", store.PrekeyUpdate{OneTimeKEM: pks(8, 8)}, store.ErrDuplicatePrekey},
		{"one-time KEM as the last-resort id", store.PrekeyUpdate{OneTimeKEM: pks(101)}, store.ErrDuplicatePrekey},
		{"one-time KEM as a replaced last-resort id", store.PrekeyUpdate{OneTimeKEM: pks(100)}, store.ErrDuplicatePrekey},
		{"last-resort as a one-time KEM id", store.PrekeyUpdate{LastResort: ptr(pk(2))}, store.ErrDuplicatePrekey},
		{"last-resort as a taken one-time KEM id", store.PrekeyUpdate{LastResort: ptr(pk(1))}, store.ErrDuplicatePrekey},
		{"last-resort current", store.PrekeyUpdate{LastResort: ptr(pk(101))}, store.ErrDuplicatePrekey},
		{"last-resort replaced", store.PrekeyUpdate{LastResort: ptr(pk(100))}, store.ErrDuplicatePrekey},
		{"last-resort and one-time KEM in the upload", store.PrekeyUpdate{LastResort: ptr(pk(9)), OneTimeKEM: pks(9)}, store.ErrDuplicatePrekey},
		{"signed current", store.PrekeyUpdate{SignedPrekey: ptr(pk(2))}, store.ErrDuplicatePrekey},
		{"signed replaced", store.PrekeyUpdate{SignedPrekey: ptr(pk(1))}, store.ErrDuplicatePrekey},
		{"valid keys beside a duplicate", store.PrekeyUpdate{SignedPrekey: ptr(pk(50)), LastResort: ptr(pk(150)), OneTimeEC: pks(50, 51), OneTimeKEM: pks(50, 3)}, store.ErrDuplicatePrekey},
		// The spaces are separate.
		{"signed as a one-time EC id", store.PrekeyUpdate{SignedPrekey: ptr(pk(3))}, nil},
		{"signed as a KEM id", store.PrekeyUpdate{SignedPrekey: ptr(pk(101))}, nil},
		{"one-time EC as a KEM id", store.PrekeyUpdate{OneTimeEC: pks(101, 100)}, nil},
		{"one-time EC as a signed id", store.PrekeyUpdate{OneTimeEC: pks(4)}, nil},
		{"one id in every space of one upload", store.PrekeyUpdate{SignedPrekey: ptr(pk(70)), OneTimeEC: pks(70), OneTimeKEM: pks(70)}, nil},
		{"last-resort as a signed and an EC id of the upload", store.PrekeyUpdate{SignedPrekey: ptr(pk(71)), LastResort: ptr(pk(71)), OneTimeEC: pks(71)}, nil},
		{"all new", store.PrekeyUpdate{SignedPrekey: ptr(pk(50)), LastResort: ptr(pk(150)), OneTimeEC: pks(50, 51), OneTimeKEM: pks(50, 51)}, nil},
	}
	for _, c := range cases {
		h.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			a := h.account("alice")
			h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(1)), LastResort: ptr(pk(100)), OneTimeEC: pks(1, 2, 3), OneTimeKEM: pks(1, 2, 3)})
			h.take(a)
			h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(2)), LastResort: ptr(pk(101))})
			before := store.Counts{EC: 2, KEM: 2}

			got, err := h.s.PutPrekeys(h.ctx, a, c.u)
			h.wantErr("PutPrekeys", err, c.want)
			if c.want != nil {
				// Nothing was stored: counts and the served keys are as before,
				// and the new ids of the refused upload are still free.
				if cnt, _ := h.counts(a); cnt != before {
					h.Errorf("PrekeyCounts after a refused upload: got %+v, want %+v", cnt, before)
				}
				b, _ := h.take(a)
				h.wantPrekey("signed prekey after a refused upload", b.SignedPrekey, pk(2))
				h.wantPrekey("KEM prekey after a refused upload", b.KEMPrekey, pk(2))
				if b.OneTimeEC == nil || b.OneTimeEC.ID != 2 {
					h.Errorf("one-time EC after a refused upload: got %+v, want id 2", b.OneTimeEC)
				}
				h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(50)), LastResort: ptr(pk(150)), OneTimeEC: pks(50, 51, 9, 8, 7), OneTimeKEM: pks(50, 9, 8)})
				return
			}
			want := before
			want.EC += len(c.u.OneTimeEC)
			want.KEM += len(c.u.OneTimeKEM)
			if got != want {
				h.Errorf("PutPrekeys: got %+v, want %+v", got, want)
			}
		})
	}
}

// testPutPrekeysMost checks PrekeyUpdate.Most: an update that would leave
// more one-time prekeys of a kind held fails with ErrQuota, storing
// nothing; ids are checked first; what a bundle took makes room.
func testPutPrekeysMost(h *harness) {
	a := h.account("alice")
	h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(1)), LastResort: ptr(pk(100)), OneTimeEC: pks(1, 2), OneTimeKEM: pks(1, 2), Most: 3})
	refused := []struct {
		name string
		u    store.PrekeyUpdate
		want error
	}{
		{"EC over", store.PrekeyUpdate{OneTimeEC: pks(3, 4), Most: 3}, store.ErrQuota},
		{"KEM over, beside EC that fit", store.PrekeyUpdate{SignedPrekey: ptr(pk(2)), LastResort: ptr(pk(101)), OneTimeEC: pks(3), OneTimeKEM: pks(3, 4), Most: 3}, store.ErrQuota},
		{"a duplicate over", store.PrekeyUpdate{OneTimeEC: pks(1, 3), Most: 3}, store.ErrDuplicatePrekey},
	}
	for _, c := range refused {
		_, err := h.s.PutPrekeys(h.ctx, a, c.u)
		h.wantErr("PutPrekeys, "+c.name, err, c.want)
	}
	if c, _ := h.counts(a); c != (store.Counts{EC: 2, KEM: 2}) {
		h.Errorf("PrekeyCounts after refused updates: got %+v, want 2 and 2", c)
	}
	// Exactly full, with the ids of the refused updates: they were not
	// stored; then a bundle makes room for one of each kind.
	if got := h.put(a, store.PrekeyUpdate{OneTimeEC: pks(3), OneTimeKEM: pks(3), Most: 3}); got != (store.Counts{EC: 3, KEM: 3}) {
		h.Errorf("PutPrekeys up to Most: got %+v, want 3 and 3", got)
	}
	b, _ := h.take(a)
	h.wantPrekey("signed prekey after refused updates", b.SignedPrekey, pk(1))
	if got := h.put(a, store.PrekeyUpdate{OneTimeEC: pks(4), OneTimeKEM: pks(4), Most: 3}); got != (store.Counts{EC: 3, KEM: 3}) {
		h.Errorf("PutPrekeys after a bundle took one of each: got %+v, want 3 and 3", got)
	}
	_, err := h.s.PutPrekeys(h.ctx, a, store.PrekeyUpdate{OneTimeKEM: pks(5), Most: 3})
	h.wantErr("PutPrekeys, one KEM over", err, store.ErrQuota)
	// Most of zero: no limit.
	if got := h.put(a, store.PrekeyUpdate{OneTimeEC: pks(5, 6, 7)}); got != (store.Counts{EC: 6, KEM: 3}) {
		h.Errorf("PutPrekeys with no Most: got %+v, want 6 and 3", got)
	}
}

func testPrekeyReplacement(h *harness) {
	a := h.account("alice")
	h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(1)), LastResort: ptr(pk(100))})
	steps := []struct {
		u                store.PrekeyUpdate
		signed, kem      store.Prekey
		lastResortServed bool
	}{
		{store.PrekeyUpdate{}, pk(1), pk(100), true},
		{store.PrekeyUpdate{SignedPrekey: ptr(pk(2))}, pk(2), pk(100), true},
		{store.PrekeyUpdate{LastResort: ptr(pk(101))}, pk(2), pk(101), true},
		{store.PrekeyUpdate{OneTimeEC: pks(5)}, pk(2), pk(101), true},
		{store.PrekeyUpdate{SignedPrekey: ptr(pk(3)), LastResort: ptr(pk(102)), OneTimeKEM: pks(7)}, pk(3), pk(7), false},
		{store.PrekeyUpdate{}, pk(3), pk(102), true},
	}
	for i, s := range steps {
		h.put(a, s.u)
		b, _ := h.take(a)
		h.wantPrekey("signed prekey", b.SignedPrekey, s.signed)
		h.wantPrekey("KEM prekey", b.KEMPrekey, s.kem)
		if b.LastResort != s.lastResortServed {
			h.Errorf("step %d: got LastResort %t, want %t", i, b.LastResort, s.lastResortServed)
		}
	}
}

func testTakeBundleOrder(h *harness) {
	a := h.account("alice")
	d := h.device("alice")
	h.put(d, store.PrekeyUpdate{SignedPrekey: ptr(pk(9)), LastResort: ptr(pk(900))})
	// Oldest means first uploaded, whatever the ids.
	h.put(d, store.PrekeyUpdate{OneTimeEC: pks(30, 10, 20), OneTimeKEM: pks(7, 3)})
	h.put(d, store.PrekeyUpdate{OneTimeEC: pks(5)})
	wantEC := []uint32{30, 10, 20, 5}
	wantKEM := []uint32{7, 3}
	for i := range 6 {
		b, c := h.take(d)
		if !bytes.Equal(b.IdentityKey, ik(9)) {
			h.Errorf("take %d: got identity key %x, want %x", i, b.IdentityKey, ik(9))
		}
		h.wantPrekey("signed prekey", b.SignedPrekey, pk(9))
		if i < len(wantKEM) {
			h.wantPrekey("one-time KEM prekey", b.KEMPrekey, pk(wantKEM[i]))
			if b.LastResort {
				h.Errorf("take %d: got LastResort true, want false", i)
			}
		} else {
			h.wantPrekey("last-resort KEM prekey", b.KEMPrekey, pk(900))
			if !b.LastResort {
				h.Errorf("take %d: got LastResort false, want true", i)
			}
		}
		if i < len(wantEC) {
			if b.OneTimeEC == nil {
				h.Fatalf("take %d: got no one-time EC prekey, want %d", i, wantEC[i])
			}
			h.wantPrekey("one-time EC prekey", *b.OneTimeEC, pk(wantEC[i]))
		} else if b.OneTimeEC != nil {
			h.Errorf("take %d: got one-time EC prekey %d, want none", i, b.OneTimeEC.ID)
		}
		want := store.Counts{EC: max(len(wantEC)-i-1, 0), KEM: max(len(wantKEM)-i-1, 0)}
		if c != want {
			h.Errorf("take %d: got counts %+v, want %+v", i, c, want)
		}
		if got, ok := h.counts(d); got != want || !ok {
			h.Errorf("PrekeyCounts after take %d: got %+v, %t, want %+v, true", i, got, ok, want)
		}
	}
	// New keys after exhaustion are served again.
	h.put(d, store.PrekeyUpdate{OneTimeEC: pks(40), OneTimeKEM: pks(40)})
	b, _ := h.take(d)
	if b.OneTimeEC == nil || b.OneTimeEC.ID != 40 || b.KEMPrekey.ID != 40 || b.LastResort {
		h.Errorf("take after a new upload: got EC %+v, KEM %d, LastResort %t, want 40, 40, false", b.OneTimeEC, b.KEMPrekey.ID, b.LastResort)
	}
	// Another device of the account is untouched.
	_, _, err := h.s.TakeBundle(h.ctx, a, store.Budget{})
	h.wantErr("TakeBundle(primary without keys)", err, store.ErrNotFound)
}

func testTakeBundleNotReachable(h *harness) {
	a := h.account("alice")
	_, _, err := h.s.TakeBundle(h.ctx, a, store.Budget{})
	h.wantErr("TakeBundle(no keys)", err, store.ErrNotFound)

	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(1, 2), OneTimeKEM: pks(1, 2)})
	_, _, err = h.s.TakeBundle(h.ctx, a, store.Budget{})
	h.wantErr("TakeBundle(one-time keys only)", err, store.ErrNotFound)

	h.put(a, store.PrekeyUpdate{SignedPrekey: ptr(pk(1))})
	_, _, err = h.s.TakeBundle(h.ctx, a, store.Budget{})
	h.wantErr("TakeBundle(no last-resort key)", err, store.ErrNotFound)

	b := h.device("alice")
	h.put(b, store.PrekeyUpdate{LastResort: ptr(pk(100)), OneTimeEC: pks(1)})
	_, _, err = h.s.TakeBundle(h.ctx, b, store.Budget{})
	h.wantErr("TakeBundle(no signed prekey)", err, store.ErrNotFound)

	// A refused fetch takes nothing.
	if c, ok := h.counts(a); ok || c != (store.Counts{EC: 2, KEM: 2}) {
		h.Errorf("PrekeyCounts: got %+v, %t, want {2 2}, false", c, ok)
	}
	h.put(a, store.PrekeyUpdate{LastResort: ptr(pk(100))})
	if bundle, c := h.take(a); bundle.OneTimeEC == nil || bundle.OneTimeEC.ID != 1 || bundle.KEMPrekey.ID != 1 || c != (store.Counts{EC: 1, KEM: 1}) {
		h.Errorf("TakeBundle once reachable: got EC %+v, KEM %d, counts %+v, want 1, 1, {1 1}", bundle.OneTimeEC, bundle.KEMPrekey.ID, c)
	}
}

func testTakeBundleConcurrent(h *harness) {
	const (
		keys       = 60
		goroutines = 12
		perG       = 7 // 84 takes: 24 of them find no one-time key
	)
	a := h.account("alice")
	h.reachable(a)
	ids := make([]uint32, keys)
	for i := range ids {
		ids[i] = uint32(i + 1)
	}
	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(ids[:keys/2]...), OneTimeKEM: pks(ids[:keys/2]...)})
	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(ids[keys/2:]...), OneTimeKEM: pks(ids[keys/2:]...)})

	var (
		mu              sync.Mutex
		ec, kem         = map[uint32]int{}, map[uint32]int{}
		noEC, lastResor int
		errs            []error
		wg              sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			for range perG {
				b, _, err := h.s.TakeBundle(h.ctx, a, store.Budget{})
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case b.OneTimeEC == nil:
					noEC++
				default:
					ec[b.OneTimeEC.ID]++
				}
				if err == nil {
					if b.LastResort {
						lastResor++
					} else {
						kem[b.KEMPrekey.ID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		h.Fatalf("TakeBundle: got %d errors (first %v), want none", len(errs), errs[0])
	}
	for _, id := range ids {
		if ec[id] != 1 {
			h.Errorf("one-time EC prekey %d: handed out %d times, want 1", id, ec[id])
		}
		if kem[id] != 1 {
			h.Errorf("one-time KEM prekey %d: handed out %d times, want 1", id, kem[id])
		}
	}
	if len(ec) != keys || len(kem) != keys {
		h.Errorf("got %d EC and %d KEM distinct keys, want %d each", len(ec), len(kem), keys)
	}
	if want := goroutines*perG - keys; noEC != want || lastResor != want {
		h.Errorf("got %d bundles without EC and %d with the last-resort key, want %d each", noEC, lastResor, want)
	}
	if c, ok := h.counts(a); c != (store.Counts{}) || !ok {
		h.Errorf("PrekeyCounts: got %+v, %t, want {0 0}, true", c, ok)
	}
}

// handout is a budget of hand-outs of three bundles at once and one per
// budgetEvery (SRV-027), at now.
func handout(now time.Time) store.Budget {
	return store.Budget{Now: now, Every: budgetEvery, Burst: 3}
}

// takeWith takes a bundle of a under budget b and checks whether it
// handed out one-time keys (the oldest left, EC and KEM ids from next) or
// the last-resort key alone, and the counts it leaves.
func (h *harness) takeWith(a store.Address, b store.Budget, oneTime bool, next uint32, want store.Counts) {
	h.Helper()
	bk, c, err := h.s.TakeBundle(h.ctx, a, b)
	if err != nil {
		h.Fatalf("TakeBundle(%v): got %v, want nil", a, err)
	}
	got := bk.OneTimeEC != nil && !bk.LastResort
	if got != oneTime || (oneTime && (bk.OneTimeEC.ID != next || bk.KEMPrekey.ID != next)) ||
		(!oneTime && (bk.OneTimeEC != nil || !bk.LastResort || bk.KEMPrekey.ID != 1000)) {
		h.Errorf("TakeBundle(%v) at %v: got EC %+v, KEM %d (last resort %v); want one-time keys %v (ids %d)",
			a, b.Now.Sub(t0), bk.OneTimeEC, bk.KEMPrekey.ID, bk.LastResort, oneTime, next)
	}
	if c != want {
		h.Errorf("TakeBundle(%v) at %v: counts %+v, want %+v", a, b.Now.Sub(t0), c, want)
	}
}

// testHandoutBudget: three bundles hand out one-time keys at once, the
// fourth the last-resort key alone, removing nothing; a token comes back
// after budgetEvery; a device with no one-time key left takes no token.
// Another device's budget is its own.
func testHandoutBudget(h *harness) {
	a, b := h.account("alice"), h.account("bob")
	for _, d := range []store.Address{a, b} {
		h.reachable(d)
		h.put(d, store.PrekeyUpdate{OneTimeEC: pks(1, 2, 3, 4, 5), OneTimeKEM: pks(1, 2, 3, 4, 5)})
	}
	for i := uint32(1); i <= 3; i++ {
		h.takeWith(a, handout(t0), true, i, store.Counts{EC: 5 - int(i), KEM: 5 - int(i)})
	}
	h.takeWith(a, handout(t0), false, 0, store.Counts{EC: 2, KEM: 2})
	h.takeWith(b, handout(t0), true, 1, store.Counts{EC: 4, KEM: 4})
	h.takeWith(a, handout(t0.Add(budgetEvery-time.Second)), false, 0, store.Counts{EC: 2, KEM: 2})
	h.takeWith(a, handout(t0.Add(budgetEvery)), true, 4, store.Counts{EC: 1, KEM: 1})
	h.takeWith(a, handout(t0.Add(3*budgetEvery)), true, 5, store.Counts{})
	// None left: the last-resort key, and no token taken (the next upload
	// is handed out at once).
	h.takeWith(a, handout(t0.Add(3*budgetEvery)), false, 0, store.Counts{})
	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(6), OneTimeKEM: pks(6)})
	h.takeWith(a, handout(t0.Add(3*budgetEvery)), true, 6, store.Counts{})
}

// testHandoutBudgetReopen: a spent budget stays spent across a reopen.
func testHandoutBudgetReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	a := h.account("alice")
	h.reachable(a)
	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(1, 2, 3, 4), OneTimeKEM: pks(1, 2, 3, 4)})
	for i := uint32(1); i <= 3; i++ {
		h.takeWith(a, handout(t0), true, i, store.Counts{EC: 4 - int(i), KEM: 4 - int(i)})
	}
	h.reopen()
	h.takeWith(a, handout(t0.Add(time.Minute)), false, 0, store.Counts{EC: 1, KEM: 1})
	h.takeWith(a, handout(t0.Add(budgetEvery)), true, 4, store.Counts{})
}

// testHandoutBudgetClockStep: a spent budget, the server's clock then
// stepped back a millisecond, hands out no burst again (a review found
// three more: a full time beyond the window counted as a full bucket),
// and a token comes back an interval later.
func testHandoutBudgetClockStep(h *harness) {
	a := h.account("alice")
	h.reachable(a)
	h.put(a, store.PrekeyUpdate{OneTimeEC: pks(1, 2, 3, 4, 5, 6, 7), OneTimeKEM: pks(1, 2, 3, 4, 5, 6, 7)})
	for i := uint32(1); i <= 3; i++ {
		h.takeWith(a, handout(t0), true, i, store.Counts{EC: 7 - int(i), KEM: 7 - int(i)})
	}
	back := t0.Add(-time.Millisecond)
	for range 3 {
		h.takeWith(a, handout(back), false, 0, store.Counts{EC: 4, KEM: 4})
	}
	h.takeWith(a, handout(back.Add(budgetEvery)), true, 4, store.Counts{EC: 3, KEM: 3})
}
