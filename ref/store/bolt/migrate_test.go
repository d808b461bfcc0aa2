package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/wire"
)

// writeV1 writes a file of schema version 1 holding the queue of device a
// with entries es (each with its Attempt), as version 1 laid it out.
func writeV1(t *testing.T, path string, a store.Address, es []store.Entry) {
	t.Helper()
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		names := [][]byte{v1Queues, v1Entries, v1Order, v2Accepted, v2Forget}
		for _, b := range allBuckets {
			if s := string(b); s != string(bucketMessages) && s != string(bucketPairs) && s != string(bucketPairsExp) {
				names = append(names, b)
			}
		}
		for _, name := range names {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		if err := meta.Put(v3Total, binary.BigEndian.AppendUint64(nil, uint64(len(es)))); err != nil {
			return err
		}
		ak := appendAddr(nil, a)
		if err := tx.Bucket(bucketDevices).Put(ak, (&deviceRec{identityKey: make([]byte, 33)}).encode()); err != nil {
			return err
		}
		rec := queueRec{next: uint64(len(es)) + 1}
		for i := range es {
			e := &es[i]
			rec.entries++
			rec.bytes += uint64(len(e.Ciphertext))
			qk := binary.BigEndian.AppendUint64(nil, e.QueueID)
			exp := appendTime(nil, e.ExpiresAt)
			v1Entry := encodeEntry(e, 0)[entryAttemptSize:]
			if err := tx.Bucket(v1Entries).Put(key(ak, qk), v1Entry); err != nil {
				return err
			}
			ov := binary.BigEndian.AppendUint32(exp, e.Attempt)
			if err := tx.Bucket(v1Order).Put(key(ak, []byte{255 - e.Priority}, qk), ov); err != nil {
				return err
			}
			if err := tx.Bucket(bucketExpiry).Put(key(appendTime(nil, e.ExpiresAt), ak, qk), marker); err != nil {
				return err
			}
		}
		return tx.Bucket(v1Queues).Put(ak, rec.encode())
	})
}

// TestMigrateV1 opens a file of schema version 1 and checks that its queue
// reads, acknowledges, expires and grows as it did, with the attempt
// counts kept and priorities from 0 to 255.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	bob := store.Address{Account: "bob", Device: 2}
	base := time.Unix(1_800_000_000, 0).UTC()
	entry := func(id uint64, priority uint8, attempt uint32, ttl time.Duration) store.Entry {
		return store.Entry{
			QueueID: id, Recipient: bob, MessageID: []byte{byte(id)}, Sender: store.Address{Account: "alice", Device: 1},
			Type: 1, Priority: priority, Kind: 0, Ciphertext: []byte("ciphertext " + string(rune('a'+id))),
			SentAt: 1000 + id, AcceptedAt: base, ExpiresAt: base.Add(ttl), Attempt: attempt,
		}
	}
	es := []store.Entry{
		entry(1, 1, 0, time.Hour),
		entry(2, 2, 3, time.Hour),
		entry(3, 0, 0, time.Minute),
		entry(4, 255, 1, time.Hour),
		entry(5, 1, 2, time.Hour),
	}
	writeV1(t, path, bob, es)
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer s.Close()
	got, err := s.Pending(ctx, bob, base, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Entry{es[3], es[1], es[0], es[4], es[2]} // by priority, then queue id
	if len(got) != len(want) {
		t.Fatalf("Pending after migration: got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := got[i], want[i]; g.QueueID != w.QueueID || g.Attempt != w.Attempt || g.Priority != w.Priority ||
			string(g.Ciphertext) != string(w.Ciphertext) || !g.ExpiresAt.Equal(w.ExpiresAt) || g.SentAt != w.SentAt {
			t.Errorf("Pending[%d] after migration: got id %d attempt %d priority %d, want id %d attempt %d priority %d",
				i, g.QueueID, g.Attempt, g.Priority, w.QueueID, w.Attempt, w.Priority)
		}
	}
	if err := s.Ack(ctx, bob, []uint64{4, 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttempt(ctx, bob, 1, 7); err != nil {
		t.Fatal(err)
	}
	n, err := s.Expire(ctx, base.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Expire: got %d, %v; want 1 entry (id 3)", n, err)
	}
	st, err := s.Stats(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if wantBytes := len(es[0].Ciphertext) + len(es[1].Ciphertext); st.Entries != 2 || st.Bytes != wantBytes {
		t.Errorf("Stats: got %+v, want 2 entries of %d bytes", st, wantBytes)
	}
	if total, err := s.TotalEntries(ctx); err != nil || total != 2 {
		t.Errorf("TotalEntries: got %d, %v; want 2", total, err)
	}
	next := entry(0, 1, 0, time.Hour)
	next.MessageID = []byte("new")
	if _, _, err := s.Enqueue(ctx, []store.Entry{next}, store.Quota{}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = s.Pending(ctx, bob, base, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	var attempts []uint32
	for _, e := range got {
		ids, attempts = append(ids, e.QueueID), append(attempts, e.Attempt)
	}
	if len(ids) != 3 || ids[0] != 2 || ids[1] != 1 || ids[2] != 6 || attempts[0] != 3 || attempts[1] != 7 || attempts[2] != 0 {
		t.Errorf("Pending at the end: got ids %v attempts %v, want [2 1 6] [3 7 0]", ids, attempts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The migrated file opens as the current version, without the old
	// queue buckets.
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s2.Close()
	err = s2.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{v1Queues, v1Entries, v1Order} {
			if tx.Bucket(name) != nil {
				t.Errorf("bucket %s of version 1 is still there", name)
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyVersion); binary.BigEndian.Uint32(v) != schemaVersion {
			t.Errorf("schema version: got %x, want %d", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeV2Pairs turns the store file at path, whose queues are empty, into
// one of schema version 2 whose accepted-pair index holds the pairs (sender
// alice/1, message id, accepted at base, forgotten at forget[id]), as
// version 2 laid them out: without the buckets of version 3, and with the
// queue records of the live devices (toV3Queue).
func writeV2Pairs(t *testing.T, path string, base time.Time, forget map[string]time.Time) {
	t.Helper()
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 2)); err != nil {
			return err
		}
		if err := toV3Queue(tx, nil); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketPairs, bucketPairsExp} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		accepted, err := tx.CreateBucket(v2Accepted)
		if err != nil {
			return err
		}
		forgets, err := tx.CreateBucket(v2Forget)
		if err != nil {
			return err
		}
		for id, fg := range forget {
			k := append(appendAddr(nil, store.Address{Account: "alice", Device: 1}), id...)
			if err := rememberPair(accepted, forgets, k, base, fg); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestMigrateV2 opens a file of schema version 2, whose accepted pairs are
// keyed without their sent-at, and checks that they are still remembered
// (a resend of any sent-at is a duplicate until the pair's forget time),
// that Expire forgets them and deletes their buckets with the last of
// them, and that new pairs are remembered by sent-at.
func TestMigrateV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	base := time.Unix(1_800_000_000, 0).UTC()
	alice, bob := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: base}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	writeV2Pairs(t, path, base, map[string]time.Time{"old": base.Add(time.Hour), "late": base.Add(2 * time.Hour)})

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open of a version 2 file: %v", err)
	}
	defer func() { s.Close() }()
	send := func(id string, sentAt uint64, acceptedAt time.Time) (time.Time, bool) {
		t.Helper()
		e := store.Entry{Recipient: bob, Sender: alice, MessageID: []byte(id), Type: 1, Kind: 1, Ciphertext: []byte(id),
			SentAt: sentAt, AcceptedAt: acceptedAt, ExpiresAt: acceptedAt.Add(24 * time.Hour)}
		first, dup, err := s.Enqueue(ctx, []store.Entry{e}, store.Quota{}, acceptedAt.Add(30*24*time.Hour))
		if err != nil {
			t.Fatalf("Enqueue %s: %v", id, err)
		}
		return first, dup
	}
	buckets := func() (v2, v3 bool) {
		t.Helper()
		err := s.db.View(func(tx *bbolt.Tx) error {
			v2 = tx.Bucket(v2Accepted) != nil || tx.Bucket(v2Forget) != nil
			v3 = tx.Bucket(bucketPairs) != nil && tx.Bucket(bucketPairsExp) != nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v2, v3
	}
	if v2, v3 := buckets(); !v2 || !v3 {
		t.Fatalf("after migration: got buckets of version 2 %t, of version 3 %t, want both", v2, v3)
	}
	wantSchema(t, s)
	// A pair of version 2 holds for any sent-at until its forget time.
	for _, sentAt := range []uint64{0, 1, uint64(base.UnixMilli())} {
		if first, dup := send("old", sentAt, base.Add(10*time.Minute)); !dup || !first.Equal(base) {
			t.Errorf("resend of a version 2 pair with sent-at %d: got %v, %t, want %v, true", sentAt, first, dup, base)
		}
	}
	// A new pair holds for its sent-at only.
	if _, dup := send("new", 7, base.Add(time.Minute)); dup {
		t.Error("first send of a new message: got dup true")
	}
	if first, dup := send("new", 7, base.Add(2*time.Minute)); !dup || !first.Equal(base.Add(time.Minute)) {
		t.Errorf("resend of a new message: got %v, %t, want %v, true", first, dup, base.Add(time.Minute))
	}
	if _, dup := send("new", 8, base.Add(2*time.Minute)); dup {
		t.Error("a new message with another sent-at: got dup true, want another envelope")
	}
	// Expire forgets "old" at its time, and the buckets stay for "late".
	if _, err := s.Expire(ctx, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, dup := send("old", 1, base.Add(time.Hour+time.Second)); dup {
		t.Error("resend of a forgotten version 2 pair: got dup true")
	}
	if _, dup := send("late", 1, base.Add(time.Hour+time.Second)); !dup {
		t.Error("resend of a version 2 pair not yet forgotten: got dup false")
	}
	if v2, _ := buckets(); !v2 {
		t.Error("the buckets of version 2 went before their last pair")
	}
	// With the last of them, the buckets go.
	if _, err := s.Expire(ctx, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v2, v3 := buckets(); v2 || !v3 {
		t.Errorf("after the last version 2 pair: got buckets of version 2 %t, of version 3 %t, want false, true", v2, v3)
	}
	if _, dup := send("late", 1, base.Add(2*time.Hour+time.Second)); dup {
		t.Error("resend of the last version 2 pair after it was forgotten: got dup true")
	}
	// The pairs stored since stay, and the file reopens as version 3.
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if first, dup := send("old", 1, base.Add(3*time.Hour)); !dup || !first.Equal(base.Add(time.Hour+time.Second)) {
		t.Errorf("resend after reopening: got %v, %t, want %v, true", first, dup, base.Add(time.Hour+time.Second))
	}
	if total, err := s.TotalEntries(ctx); err != nil || total != 4 {
		t.Errorf("TotalEntries: got %d, %v, want 4 (new twice, old and late once more)", total, err)
	}
}

// toV3Queue replaces the queue of version 4 in tx with that of versions 2
// and 3: a queue record for every live device (next is its next queue id,
// 1 when absent) holding its entries, and the entries under the keys of
// v3Queue; the expiry index stays. It deletes the next queue id of
// version 4, and puts the total of version 3.
func toV3Queue(tx *bbolt.Tx, next map[string]uint64) error {
	queue, err := tx.CreateBucket(v3Queue)
	if err != nil {
		return err
	}
	recs := make(map[string]*queueRec)
	err = tx.Bucket(bucketDevices).ForEach(func(k, _ []byte) error {
		recs[string(k)] = &queueRec{next: max(next[string(k)], 1)}
		return nil
	})
	if err != nil {
		return err
	}
	total := 0
	err = tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
		h, err := decodeEntryHeader(v)
		if err != nil {
			return err
		}
		rec := recs[string(k[8:])]
		rec.entries++
		rec.bytes += uint64(h.ciphertextLen)
		total++
		return queue.Put(v3EntryKey(k[8:], h.prio, binary.BigEndian.Uint64(k)), v)
	})
	if err != nil {
		return err
	}
	for ak, rec := range recs {
		if err := queue.Put([]byte(ak), rec.encode()); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Delete(keyNext); err != nil {
		return err
	}
	if err := meta.Put(v3Total, binary.BigEndian.AppendUint64(nil, uint64(total))); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketMessages)
}

// TestMigrateV3 opens a file of schema version 3 whose devices have queue
// ids of their own, and checks that the entries keep their ids, order and
// attempt counts, and that every device's next ids are above all it had.
func TestMigrateV3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v3.db")
	base := time.Unix(1_800_000_000, 0).UTC()
	alice, bob, carol := store.Address{Account: "alice", Device: 1}, store.Address{Account: "bob", Device: 1}, store.Address{Account: "carol", Device: 1}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: base}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(to store.Address, id string, prio uint8) store.Entry {
		t.Helper()
		e := []store.Entry{{Recipient: to, Sender: alice, MessageID: []byte(id), Type: 1, Kind: 1, Priority: prio, Ciphertext: []byte(id),
			SentAt: 1, AcceptedAt: base, ExpiresAt: base.Add(time.Hour)}}
		if _, _, err := s.Enqueue(ctx, e, store.Quota{}, base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		return e[0]
	}
	b1, c1, b2, b3 := send(bob, "b1", 0), send(carol, "c1", 0), send(bob, "b2", 2), send(bob, "b3", 0)
	if err := s.SetAttempt(ctx, bob, b3.QueueID, 4); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// As version 3 had them: carol's next id 90 (her earlier entries
	// acknowledged), bob's 7.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 3)); err != nil {
			return err
		}
		return toV3Queue(tx, map[string]uint64{string(appendAddr(nil, bob)): 7, string(appendAddr(nil, carol)): 90})
	})
	if s, err = Open(path); err != nil {
		t.Fatalf("Open of a version 3 file: %v", err)
	}
	defer s.Close()
	pending := func(a store.Address) []string {
		t.Helper()
		es, err := s.Pending(ctx, a, base, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%d/%s/a%d", e.QueueID, e.Ciphertext, e.Attempt))
		}
		return out
	}
	if got, want := pending(bob), []string{fmt.Sprintf("%d/b2/a0", b2.QueueID), fmt.Sprintf("%d/b1/a0", b1.QueueID), fmt.Sprintf("%d/b3/a4", b3.QueueID)}; !slices.Equal(got, want) {
		t.Errorf("bob's queue after migration: got %v, want %v", got, want)
	}
	if got, want := pending(carol), []string{fmt.Sprintf("%d/c1/a0", c1.QueueID)}; !slices.Equal(got, want) {
		t.Errorf("carol's queue after migration: got %v, want %v", got, want)
	}
	if n, err := s.TotalEntries(ctx); err != nil || n != 4 {
		t.Errorf("TotalEntries after migration: got %d, %v, want 4", n, err)
	}
	if st, err := s.Stats(ctx, bob); err != nil || st.Entries != 3 || st.Bytes != 6 {
		t.Errorf("bob's Stats after migration: got %+v, %v, want 3 entries of 6 bytes", st, err)
	}
	if e := send(bob, "b4", 0); e.QueueID < 90 {
		t.Errorf("bob's queue id after migration: got %d, want at least 90 (carol's next)", e.QueueID)
	}
	if e := send(carol, "c2", 0); e.QueueID <= 90 {
		t.Errorf("carol's queue id after migration: got %d, want more than 90", e.QueueID)
	}
	if err := s.Ack(ctx, bob, []uint64{b1.QueueID, b2.QueueID}); err != nil {
		t.Fatal(err)
	}
	if got, want := pending(bob), []string{fmt.Sprintf("%d/b3/a4", b3.QueueID)}; len(got) != 2 || got[0] != want[0] {
		t.Errorf("bob's queue after acknowledging two: got %v, want %v then b4", got, want)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(v3Queue) != nil {
			t.Error("the queue bucket of version 3 is still there")
		}
		if tx.Bucket(bucketMeta).Get(v3Total) != nil {
			t.Error("the total of version 3 is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV4 checks that opening a file of version 4, whose blob usage
// is the sum of the sizes of an account's blobs, counts it again as
// version 5 does: the sum of their charges, each at least MEDIA_CHUNK
// (MED-009), so that the quota counts the blobs held before the upgrade
// as it counts new ones, and deleting them gives back what they count.
func TestMigrateV4(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v4.db")
	base := time.Unix(1_800_000_000, 0).UTC()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const m = store.MinBlobCharge
	blobs := []store.Blob{
		{ID: "a1", Account: "alice", Size: 16},
		{ID: "a2", Account: "alice", Size: 2 * m},
		{ID: "a3", Account: "alice", Size: m - 1},
		{ID: "b1", Account: "bob", Size: 100},
	}
	for i, b := range blobs {
		b.Digest, b.Created, b.ExpiresAt = []byte{byte(i)}, base, base.Add(time.Hour)
		if _, _, err := s.CreateBlob(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// As version 4 counted them: by size.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 4)); err != nil {
			return err
		}
		if err := setUsage(tx, "alice", 16+2*m+m-1); err != nil {
			return err
		}
		return setUsage(tx, "bob", 100)
	})
	if s, err = Open(path); err != nil {
		t.Fatalf("Open of a version 4 file: %v", err)
	}
	defer s.Close()
	used := func(account string) uint64 {
		t.Helper()
		var n uint64
		err := s.db.View(func(tx *bbolt.Tx) error {
			var err error
			n, err = usage(tx, account)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := used("alice"), uint64(4*m); got != want {
		t.Errorf("alice's blob usage after migration: got %d, want %d (16 bytes, 2 MEDIA_CHUNK and MEDIA_CHUNK - 1 counted as 1, 2 and 1 MEDIA_CHUNK)", got, want)
	}
	if got, want := used("bob"), uint64(m); got != want {
		t.Errorf("bob's blob usage after migration: got %d, want %d", got, want)
	}
	for _, id := range []string{"a2", "a1", "a3", "b1"} {
		if err := s.DeleteBlob(ctx, id); err != nil {
			t.Fatalf("DeleteBlob(%q) after migration: %v", id, err)
		}
	}
	if a, b := used("alice"), used("bob"); a != 0 || b != 0 {
		t.Errorf("blob usage once every blob is deleted: got %d and %d, want 0 and 0", a, b)
	}
	wantSchema(t, s)
}

// TestOpenRefusesUnknownVersion checks that a file of a later schema is
// refused, not read.
func TestOpenRefusesUnknownVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v9.db")
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, binary.BigEndian.AppendUint32(nil, 9))
	})
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open of a version 9 file: got nil error, want a refusal")
	}
}

// TestSchema5ChargedAtBlobChunk checks a file of schema 5 as 57f1a50 wrote
// it: that commit introduced schema 5 with each blob counted as at least
// BLOB_CHUNK (524288); 9dbd022 changed the charge to MEDIA_CHUNK without a
// new schema version, so Open does not recount such a file. Every blob
// deleted, the account's usage must be 0: here each small blob leaves
// BLOB_CHUNK - MEDIA_CHUNK counted for good, taken off its quota.
func TestSchema5ChargedAtBlobChunk(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v5-57f1a50.db")
	base := time.Unix(1_800_000_000, 0).UTC()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const blobChunk = 524288
	for i := range 4 {
		b := store.Blob{ID: fmt.Sprintf("a%d", i), Account: "alice", Size: 16, Digest: []byte{byte(i)}, Created: base, ExpiresAt: base.Add(time.Hour)}
		if _, _, err := s.CreateBlob(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// As 57f1a50 counted them: each at least BLOB_CHUNK, schema 5.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 5)); err != nil {
			return err
		}
		return setUsage(tx, "alice", 4*blobChunk)
	})
	if s, err = Open(path); err != nil {
		t.Fatalf("Open of a schema 5 file of 57f1a50: %v", err)
	}
	defer s.Close()
	for i := range 4 {
		if err := s.DeleteBlob(ctx, fmt.Sprintf("a%d", i)); err != nil {
			t.Fatalf("DeleteBlob: %v", err)
		}
	}
	var n uint64
	s.db.View(func(tx *bbolt.Tx) error { n, err = usage(tx, "alice"); return err })
	if n != 0 {
		t.Errorf("alice's blob usage once her 4 blobs of 16 bytes are deleted: got %d, want 0 (each left BLOB_CHUNK - MEDIA_CHUNK counted)", n)
	}
}

// signedState returns a signed group state of version v of group gid
// naming members, as stateMembers reads it (its signature is not checked).
func signedState(t *testing.T, gid []byte, v uint64, members ...string) []byte {
	t.Helper()
	st := wire.GroupState{Version: wire.ProtocolVersion, GroupID: gid, Serial: v,
		Author: wire.Address{Account: members[0], Device: 1}, IssuedAt: 1000 * v}
	for i, m := range members {
		role := uint64(wire.RoleMember)
		if i == 0 {
			role = wire.RoleAdmin
		}
		st.Members = append(st.Members, wire.GroupMember{Account: m, Role: role})
	}
	slices.SortFunc(st.Members, func(a, b wire.GroupMember) int { return strings.Compare(a.Account, b.Account) })
	raw, err := wire.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := wire.Marshal(&wire.SignedGroupState{State: raw, Signature: make([]byte, 64), DeviceList: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestMigrateV6 checks that Open builds the bucket groupnames of schema 7
// from the states a file of schema 6 holds (migrateV6), and that a state
// that does not decode makes it fail.
func TestMigrateV6(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v6.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g1, g2 := slices.Repeat([]byte{1}, 16), slices.Repeat([]byte{2}, 16)
	for _, c := range []struct {
		gid     []byte
		v       uint64
		members []string
	}{
		{g1, 1, []string{"alice", "bob"}},
		{g1, 2, []string{"alice"}},
		{g2, 1, []string{"carol", "bob"}},
		{g1, 3, []string{"alice", "dan"}},
		{g1, 4, []string{"alice", "bob"}},
	} {
		if err := s.PutGroupState(ctx, c.gid, c.v, signedState(t, c.gid, c.v, c.members...), c.members, store.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// As schema 6 laid it out: no groupnames.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketGroupNames); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 6))
	})
	if s, err = Open(path); err != nil {
		t.Fatalf("Open of a schema 6 file: %v", err)
	}
	wantSchema(t, s)
	for _, c := range []struct {
		gid                  []byte
		account              string
		first, last, current uint64
	}{
		{g1, "alice", 1, 4, 4},
		{g1, "bob", 1, 4, 4},
		{g1, "dan", 3, 3, 4},
		{g1, "carol", 0, 0, 4},
		{g2, "bob", 1, 1, 1},
		{g2, "alice", 0, 0, 1},
	} {
		f, l, cur, err := s.GroupSpan(ctx, c.gid, c.account)
		if err != nil || f != c.first || l != c.last || cur != c.current {
			t.Errorf("GroupSpan(%x, %s) after migration: got %d, %d, %d, %v; want %d, %d, %d", c.gid[:1], c.account, f, l, cur, err, c.first, c.last, c.current)
		}
	}
	s.Close()

	// A state that does not decode.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		k := binary.BigEndian.AppendUint64(appendBytes(nil, g2), 1)
		if err := tx.Bucket(bucketStates).Put(k, []byte("not a state")); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, 6))
	})
	if s, err := Open(path); err == nil {
		s.Close()
		t.Errorf("Open of a schema 6 file holding a state that does not decode: got nil, want an error")
	} else if !errors.Is(err, errCorrupt) {
		t.Errorf("Open of a schema 6 file holding a state that does not decode: got %v, want errCorrupt", err)
	}
}

// wantSchema checks that s is of the current schema version.
func wantSchema(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); len(v) != 4 || binary.BigEndian.Uint32(v) != schemaVersion {
			t.Errorf("schema version after migration: got %x, want %d", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
