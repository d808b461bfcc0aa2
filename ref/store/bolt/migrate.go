package bolt

import (
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// Buckets of schema version 1 that version 2 replaces with bucketQueue.
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
// bucketQueue under the keys of version 2, and the expiry index's values
// become the entries' priorities. The three old buckets are deleted. One
// transaction makes the migration atomic (a crash leaves a version 1
// file), at the price of holding every page it rewrites in memory until it
// commits (not measured for large files).
func migrateV1(tx *bbolt.Tx) error {
	queues, entries, order := tx.Bucket(v1Queues), tx.Bucket(v1Entries), tx.Bucket(v1Order)
	if queues == nil || entries == nil || order == nil {
		return fmt.Errorf("a bucket of version 1 is missing: %w", errCorrupt)
	}
	queue, expiry := tx.Bucket(bucketQueue), tx.Bucket(bucketExpiry)
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
		if err := queue.Put(entryKey(ak, 255-class, id), append(nv, ev...)); err != nil {
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
