package bolt

import (
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// v3Queue is the queue of schema versions 2 and 3, which version 4
// replaces with bucketMessages and the queue index (migrateV3): A -> the
// device's queue record (queueRec), and A || (255 - priority) || be64 queue
// id -> an entry, as bucketMessages holds it.
var v3Queue = []byte("queue")

// v3Total is the meta key of versions 1 to 3 that counted the entries of
// all queues (be64), which the index counts since.
var v3Total = []byte("total")

// v3EntryKey is the key of an entry in v3Queue.
func v3EntryKey(ak []byte, priority uint8, id uint64) []byte {
	k := make([]byte, 0, len(ak)+9)
	k = append(k, ak...)
	k = append(k, 255-priority)
	return binary.BigEndian.AppendUint64(k, id)
}

// migrateV3 moves the entries of v3Queue to bucketMessages under the keys
// of version 4, keeping their queue ids, and deletes it with the queue
// records and the total the index now counts; the next queue id is one
// more than the highest any device had, so that every device's ids keep
// increasing. The expiry index does not change. It runs in the
// transaction that opens the file, like migrateV1.
func migrateV3(tx *bbolt.Tx) error {
	queue := tx.Bucket(v3Queue)
	if queue == nil {
		return fmt.Errorf("bucket %s missing: %w", v3Queue, errCorrupt)
	}
	messages := tx.Bucket(bucketMessages)
	next := uint64(1)
	err := queue.ForEach(func(k, v []byte) error {
		r := reader{b: k}
		r.addr()
		if r.err != nil {
			return errCorrupt
		}
		ak := k[:len(k)-len(r.b)]
		switch len(r.b) {
		case 0: // the device's queue record
			rec, err := decodeQueue(v)
			if err != nil {
				return err
			}
			next = max(next, rec.next)
			return nil
		case 9:
			id := binary.BigEndian.Uint64(r.b[1:])
			next = max(next, id+1)
			return messages.Put(messageKey(id, ak), v)
		}
		return errCorrupt
	})
	if err != nil {
		return err
	}
	if err := tx.DeleteBucket(v3Queue); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Delete(v3Total); err != nil {
		return err
	}
	return meta.Put(keyNext, binary.BigEndian.AppendUint64(nil, next))
}

// Buckets of schema version 1 that version 2 replaces with v3Queue.
var (
	v1Queues  = []byte("queues")  // A -> queue record
	v1Entries = []byte("entries") // A || be64 queue id -> entry without its attempt count
	v1Order   = []byte("order")   // A || (255 - priority) || be64 queue id -> T expires || be32 attempt
)

// Buckets of schema versions 1 and 2 that version 3 replaces with
// bucketPairs and bucketPairsExp: the accepted pairs, keyed without their
// sent-at. Migrating would need the sent-at of every pair, which these
// buckets do not hold, so a migrated file keeps them as they are: an
// enqueue that finds no pair in bucketPairs looks for it here, and Expire
// forgets their pairs when their time comes and deletes the two buckets
// with the last of them.
var (
	v2Accepted = []byte("accepted") // sender A || message id -> T accepted || T forget
	v2Forget   = []byte("forget")   // T forget || sender A || message id -> 0x01
)

// migrateV1 turns the queues of a version 1 file into the version 2
// layout, in the transaction that opens the file: the queue records and
// the entries, with the attempt counts of the order index, go into
// v3Queue under the keys of version 2, and the expiry index's values
// become the entries' priorities. The three old buckets are deleted. One
// transaction makes the migration atomic (a crash leaves a version 1
// file), at the price of holding every page it rewrites in memory until it
// commits (not measured for large files).
func migrateV1(tx *bbolt.Tx) error {
	queues, entries, order := tx.Bucket(v1Queues), tx.Bucket(v1Entries), tx.Bucket(v1Order)
	if queues == nil || entries == nil || order == nil {
		return fmt.Errorf("a bucket of version 1 is missing: %w", errCorrupt)
	}
	queue, expiry := tx.Bucket(v3Queue), tx.Bucket(bucketExpiry)
	err := queues.ForEach(func(k, v []byte) error {
		if _, err := decodeQueue(v); err != nil {
			return err
		}
		return queue.Put(k, v)
	})
	if err != nil {
		return err
	}
	err = order.ForEach(func(k, v []byte) error {
		if len(k) < 9+5 || len(v) != timeSize+4 {
			return errCorrupt
		}
		ak, class, qk := k[:len(k)-9], k[len(k)-9], k[len(k)-8:]
		ev := entries.Get(key(ak, qk))
		if ev == nil {
			return fmt.Errorf("order index names a missing entry: %w", errCorrupt)
		}
		id := binary.BigEndian.Uint64(qk)
		nv := binary.BigEndian.AppendUint32(make([]byte, 0, entryAttemptSize+len(ev)), binary.BigEndian.Uint32(v[timeSize:]))
		if err := queue.Put(v3EntryKey(ak, 255-class, id), append(nv, ev...)); err != nil {
			return err
		}
		return expiry.Put(expiryKey(v[:timeSize], ak, id), []byte{255 - class})
	})
	if err != nil {
		return err
	}
	for _, name := range [][]byte{v1Queues, v1Entries, v1Order} {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
	}
	return nil
}

// migrateV4 counts the blobs of a file of version 5 or before as version
// 6 does: blobusage held the sum of an account's blob sizes (version 4 or
// before) or of their charges at least BLOB_CHUNK (version 5, 57f1a50),
// and holds the sum of their charges (store.Blob.Charge: the size, at least MEDIA_CHUNK,
// MED-009), which deleteBlob gives back. It recomputes every account's
// usage from the blob records, in the transaction that opens the file. A
// record it cannot read counts nothing: nothing reads it either, so
// nothing gives its charge back.
func migrateV4(tx *bbolt.Tx) error {
	use := map[string]uint64{}
	err := tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		if b, err := decodeBlob(string(k), v); err == nil {
			use[b.Account] += b.Charge()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketBlobUse); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketBlobUse); err != nil {
		return err
	}
	for account, n := range use {
		if err := setUsage(tx, account, n); err != nil {
			return err
		}
	}
	return nil
}

// migrateV6 builds the bucket groupnames of schema 7 from the group states
// a file of an earlier schema holds, in the transaction that opens it: for
// each state, the accounts its member list names. A state that does not
// decode makes Open fail: get-group would otherwise serve a group's states
// to accounts without the ones it names.
func migrateV6(tx *bbolt.Tx) error {
	names := tx.Bucket(bucketGroupNames)
	return tx.Bucket(bucketStates).ForEach(func(k, v []byte) error {
		n, size := binary.Uvarint(k)
		if size <= 0 || uint64(len(k)-size) != n+8 {
			return fmt.Errorf("group state key %x: %w", k, errCorrupt)
		}
		gk, version := k[:size+int(n)], binary.BigEndian.Uint64(k[size+int(n):])
		members, err := stateMembers(v)
		if err != nil {
			return fmt.Errorf("group %x version %d: %w: %w", gk[size:], version, errCorrupt, err)
		}
		return nameMembers(names, gk, version, members)
	})
}

// stateMembers returns the accounts the member list of a signed group state
// names.
func stateMembers(signed []byte) ([]string, error) {
	var s wire.SignedGroupState
	if err := wire.Unmarshal(signed, &s); err != nil {
		return nil, err
	}
	var st wire.GroupState
	if err := wire.Unmarshal(s.State, &st); err != nil {
		return nil, err
	}
	out := make([]string, len(st.Members))
	for i, m := range st.Members {
		out[i] = m.Account
	}
	return out, nil
}
