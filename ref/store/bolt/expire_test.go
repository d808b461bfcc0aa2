package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// TestExpireWritesOnlyWhenDue checks that a sweep with nothing due
// commits nothing (a server sweeps every second, and each commit syncs),
// and that one with something due does its work.
func TestExpireWritesOnlyWhenDue(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "missive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	e := []store.Entry{{Recipient: bob, Sender: alice, MessageID: []byte("m1"), Type: 1, Kind: 1, Ciphertext: make([]byte, 8),
		SentAt: 1, AcceptedAt: t0, ExpiresAt: t0.Add(time.Hour)}}
	if _, _, err := s.Enqueue(ctx, e, store.Quota{}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	lastTx := func() int {
		t.Helper()
		var id int
		if err := s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, tc := range []struct {
		name     string
		now      time.Time
		expired  int
		commits  bool
		resendOK bool // a resend of m1 is a new envelope afterwards
	}{
		{"nothing due", t0.Add(30 * time.Minute), 0, false, false},
		{"the entry expires", t0.Add(90 * time.Minute), 1, true, false},
		{"nothing due again", t0.Add(100 * time.Minute), 0, false, false},
		{"the pair is forgotten", t0.Add(3 * time.Hour), 0, true, true},
	} {
		before := lastTx()
		n, err := s.Expire(ctx, tc.now)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n != tc.expired {
			t.Errorf("%s: got %d expired, want %d", tc.name, n, tc.expired)
		}
		if committed := lastTx() != before; committed != tc.commits {
			t.Errorf("%s: committed %v, want %v", tc.name, committed, tc.commits)
		}
		if tc.resendOK {
			e[0].AcceptedAt, e[0].ExpiresAt = tc.now, tc.now.Add(time.Hour)
			if _, dup, err := s.Enqueue(ctx, e, store.Quota{}, tc.now.Add(2*time.Hour)); err != nil || dup {
				t.Errorf("%s: resend: dup %v, err %v; want a new envelope", tc.name, dup, err)
			}
		}
	}
}

// TestExpireSetsAside checks that index records a sweep cannot read do not
// stop it: a malformed key of the expiry index, one that names a missing
// entry, and a malformed key of the forget index are set aside, the due
// entries and pairs are deleted all the same, Expire reports both, and the
// next sweep finds nothing wrong.
func TestExpireSetsAside(t *testing.T) {
	ctx := context.Background()
	s := testStore(t, []string{"alice", "bob"})
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	for _, id := range []string{"m1", "m2"} {
		if _, _, err := s.Enqueue(ctx, testEntries(alice, id, bob), store.Quota{}, testBase.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	due := appendTime(nil, testBase.Add(time.Minute))
	malformed := append(bytes.Clone(due), 7)
	dangling := expiryKey(due, appendAddr(nil, bob), 1<<40)
	badForget := bytes.Clone(due) // no pair key
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return errors.Join(tx.Bucket(bucketExpiry).Put(malformed, marker),
			tx.Bucket(bucketExpiry).Put(dangling, marker),
			tx.Bucket(bucketPairsExp).Put(badForget, marker))
	}); err != nil {
		t.Fatal(err)
	}

	n, err := s.Expire(ctx, testBase.Add(2*time.Hour))
	if n != 2 || !errors.Is(err, store.ErrSetAside) {
		t.Fatalf("Expire: got %d, %v; want 2, %v", n, err, store.ErrSetAside)
	}
	if total, _ := s.TotalEntries(ctx); total != 0 {
		t.Errorf("entries after the sweep: got %d, want 0", total)
	}
	var aside []string
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bucketExpiry).Cursor().First(); k != nil {
			t.Errorf("expiry index after the sweep: got key %x, want none", k)
		}
		if k, _ := tx.Bucket(bucketPairsExp).Cursor().First(); k != nil {
			t.Errorf("forget index after the sweep: got key %x, want none", k)
		}
		return tx.Bucket(bucketSetAside).ForEach(func(k, v []byte) error {
			aside = append(aside, fmt.Sprintf("%x", k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("%x00%x", bucketExpiry, malformed),
		fmt.Sprintf("%x00%x", bucketExpiry, dangling),
		fmt.Sprintf("%x00%x", bucketPairsExp, badForget),
	}
	slices.Sort(want)
	if !slices.Equal(aside, want) {
		t.Errorf("set aside: got %v, want %v", aside, want)
	}
	if n, err := s.Expire(ctx, testBase.Add(3*time.Hour)); n != 0 || err != nil {
		t.Errorf("the next sweep: got %d, %v; want 0, nil", n, err)
	}
}

// TestExpireIndexOddRecords checks the sweep with expiry-index records
// that read but are not as written: a key whose value is not the marker
// still expires its entry (the key alone names it), and a stale key whose
// time is not its entry's own is set aside without deleting the entry
// early; the entry's own key expires it at its time.
func TestExpireIndexOddRecords(t *testing.T) {
	ctx := context.Background()
	bob := store.Address{Account: "bob", Device: 1}
	tests := []struct {
		name   string
		change func(tx *bbolt.Tx, k []byte) error // given the entry's expiry key
		early  time.Time                          // a sweep before the entry's expiry
		aside  bool                               // that sweep sets a record aside
	}{
		{"a value other than the marker", func(tx *bbolt.Tx, k []byte) error {
			return tx.Bucket(bucketExpiry).Put(k, []byte{1, 2})
		}, testBase.Add(30 * time.Minute), false},
		{"a stale key of an earlier time", func(tx *bbolt.Tx, k []byte) error {
			stale := append(appendTime(nil, testBase.Add(time.Minute)), k[timeSize:]...)
			return tx.Bucket(bucketExpiry).Put(stale, marker)
		}, testBase.Add(30 * time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testStore(t, []string{"alice", "bob"})
			if _, _, err := s.Enqueue(ctx, testEntries(store.Address{Account: "alice", Device: 1}, "m1", bob), store.Quota{}, testBase.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bbolt.Tx) error {
				k, _ := tx.Bucket(bucketExpiry).Cursor().First()
				return tt.change(tx, bytes.Clone(k))
			}); err != nil {
				t.Fatal(err)
			}
			n, err := s.Expire(ctx, tt.early)
			if n != 0 || errors.Is(err, store.ErrSetAside) != tt.aside || err != nil && !tt.aside {
				t.Errorf("sweep before the expiry: got %d, %v; want 0, set aside %v", n, err, tt.aside)
			}
			if total, _ := s.TotalEntries(ctx); total != 1 {
				t.Errorf("entries before their expiry: got %d, want 1", total)
			}
			if n, err := s.Expire(ctx, testBase.Add(2*time.Hour)); n != 1 || err != nil {
				t.Errorf("sweep after the expiry: got %d, %v; want 1, nil", n, err)
			}
			if total, _ := s.TotalEntries(ctx); total != 0 {
				t.Errorf("entries after their expiry: got %d, want 0", total)
			}
		})
	}
}
