package client

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// TestHandedOutKeys checks PQX-015 on a device without a server: of the
// one-time prekeys the server accepted, those beyond the newest counts it
// gives are marked handed out, and only when first seen so; keys of an
// upload not known accepted are not counted; a marked key is held until
// PREKEY_GRACE after its marking, refused at lookup from then on even
// before a sweep, then deleted by the sweep; the entry of a key used
// meanwhile goes; a marking after the present (a clock that ran ahead)
// counts from the present.
func TestHandedOutKeys(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob := offline(t, "bob", func() time.Time { return now })
	upload := func(n int, res *wire.UploadResult) *wire.PrekeyUpload {
		t.Helper()
		up, err := bob.newPrekeys(false, n)
		if err != nil {
			t.Fatal(err)
		}
		if res != nil {
			if err := bob.acceptedOneTime(up, res, false); err != nil {
				t.Fatal(err)
			}
		}
		return up
	}
	held := func(kind byte, id uint32) bool {
		t.Helper()
		ok := false
		bob.db.View(func(tx *bolt.Tx) error {
			p := prekeyStore{tx, now}
			if kind == handedEC {
				_, ok = p.OneTimePreKey(id)
			} else {
				_, ok = p.KEMPreKey(id)
			}
			return nil
		})
		return ok
	}
	note := func(ec, kem uint64) {
		t.Helper()
		if err := bob.db.Update(func(tx *bolt.Tx) error { return bob.noteHeld(tx, ec, kem) }); err != nil {
			t.Fatal(err)
		}
	}
	forget := func(want int) {
		t.Helper()
		if n, err := bob.forgetHandedOut(); n != want || err != nil {
			t.Fatalf("keys the sweep deleted at %v: got %d, %v; want %d", now, n, err, want)
		}
	}
	up1 := upload(5, &wire.UploadResult{OneTimeEC: 5, OneTimeKEM: 5}) // EC 1-5, KEM 1-5
	note(3, 5)                                                        // EC 1 and 2 handed out
	now = now.Add(time.Hour)
	upload(5, &wire.UploadResult{OneTimeEC: 8, OneTimeKEM: 10}) // EC 6-10: 1 and 2 stay marked an hour ago
	upload(5, nil)                                              // EC 11-15, KEM 11-15: answer lost, not counted
	note(8, 10)
	kem1 := uint32((*up1.OneTimeKEM)[0].ID)

	now = now.Add(wire.PrekeyGrace*time.Second - time.Hour - time.Millisecond)
	forget(0)
	for id, want := range map[uint32]bool{1: true, 2: true, 3: true} {
		if got := held(handedEC, id); got != want {
			t.Errorf("one-time EC prekey %d a millisecond before PREKEY_GRACE: held %v, want %v", id, got, want)
		}
	}
	now = now.Add(time.Millisecond)
	for id, want := range map[uint32]bool{1: false, 2: false, 3: true, 11: true} {
		if got := held(handedEC, id); got != want {
			t.Errorf("one-time EC prekey %d at PREKEY_GRACE, before the sweep: held %v, want %v", id, got, want)
		}
	}
	if !held(handedKEM, kem1) {
		t.Errorf("one-time KEM prekey %d, never counted out: not held, want held", kem1)
	}
	forget(2)

	// A key used meanwhile (PQX-010): its entry goes with the sweep.
	bob.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOPK).Delete(u32(3)) })
	entries := func() int {
		n := 0
		bob.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketHanded).Stats().KeyN; return nil })
		return n
	}
	before := entries()
	forget(0)
	if got := entries(); got != before-1 {
		t.Errorf("entries after the sweep of a used key: got %d, want %d", got, before-1)
	}

	// Marked while the clock ran a year ahead: PREKEY_GRACE from the
	// present once the clock is set right, not a year later.
	real := now
	now = now.AddDate(1, 0, 0)
	note(6, 10) // EC 4 handed out (of 4 to 10), "a year from now"
	now = real
	forget(0)
	now = now.Add(wire.PrekeyGrace * time.Second)
	forget(1)
}
