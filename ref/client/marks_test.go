package client

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// TestMarksForgotten checks section 15.7's bound on marks: forgetMarks
// forgets a read, opened, deleted or expired mark made more than markKeep
// ago (2 * MAX_TTL + MAX_SENT_AHEAD: no message it names can come after
// that), keeps a younger one, and gives a mark of an older version,
// without its time, the time now, so that it is forgotten in its turn.
func TestMarksForgotten(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := offline(t, "bob", func() time.Time { return now })
	key := func(b []byte, i int) []byte { return convKey("alice", fmt.Appendf(nil, "%s-%d", b, i)) }
	old, young := now.Add(-markKeep-time.Minute), now.Add(-markKeep+time.Minute)
	err := d.db.Update(func(tx *bolt.Tx) error {
		for _, b := range markBuckets {
			for i, v := range [][]byte{u64(uint64(old.UnixMilli())), u64(uint64(young.UnixMilli())), {1}} {
				if err := tx.Bucket(b).Put(key(b, i), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.forgetMarks(); err != nil || n != len(markBuckets) {
		t.Fatalf("forgetMarks: got %d forgotten (%v), want %d: the old mark of each kind", n, err, len(markBuckets))
	}
	d.db.View(func(tx *bolt.Tx) error {
		for _, b := range markBuckets {
			if v := tx.Bucket(b).Get(key(b, 0)); v != nil {
				t.Errorf("%s: a mark made markKeep and a minute ago: got it kept, want it forgotten", b)
			}
			if v := tx.Bucket(b).Get(key(b, 1)); v == nil {
				t.Errorf("%s: a mark made a minute within markKeep: got it forgotten, want it kept", b)
			}
			if v := tx.Bucket(b).Get(key(b, 2)); len(v) != 8 || int64(binary.BigEndian.Uint64(v)) != now.UnixMilli() {
				t.Errorf("%s: a mark without its time: got %x, want the time now", b, v)
			}
		}
		return nil
	})
	now = now.Add(markKeep + time.Minute)
	if n, err := d.forgetMarks(); err != nil || n != 2*len(markBuckets) {
		t.Errorf("forgetMarks markKeep later: got %d forgotten (%v), want %d: every mark left", n, err, 2*len(markBuckets))
	}
	if markKeep != 2*time.Duration(wire.MaxTTL)*time.Second+24*time.Hour {
		t.Errorf("markKeep: got %v, want 2 * MAX_TTL + MAX_SENT_AHEAD", markKeep)
	}
}
