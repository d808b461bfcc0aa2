package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// errMixedEnvelope reports entries of one Enqueue call that do not share a
// sender, message id and sent-at.
var errMixedEnvelope = errors.New("bolt: enqueue: entries of one envelope differ in sender, message id or sent-at")

// recipient is one device an envelope goes to.
type recipient struct {
	addr    store.Address
	ak      []byte
	entries uint64 // entries of this envelope for the device
	bytes   uint64
	rec     queueRec // read in the transaction
}

// Enqueue implements store.Store. Everything that does not need the
// database is encoded before the group commit; inside it, the call reads
// the remembered pair and the recipients' queue records, and writes only
// when it accepts, so that a refusal does not roll back the others' commit.
func (s *Store) Enqueue(ctx context.Context, entries []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	if err := s.begin(ctx, "enqueue"); err != nil {
		return time.Time{}, false, err
	}
	op, err := newEnqueueOp(entries, q, forget)
	if err != nil || op == nil {
		return time.Time{}, false, err
	}
	if err := s.batch(ctx, "enqueue", len(entries), op.apply); err != nil {
		return time.Time{}, false, err
	}
	return op.result()
}

// EnqueueMany implements store.ManyEnqueuer: the calls' writes are one
// function of the group commit, applied in order in one transaction.
func (s *Store) EnqueueMany(ctx context.Context, calls []store.EnqueueCall) []store.EnqueueResult {
	out := make([]store.EnqueueResult, len(calls))
	if err := s.begin(ctx, "enqueue"); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	ops := make([]*enqueueOp, len(calls))
	keys := 0
	for i, c := range calls {
		ops[i], out[i].Err = newEnqueueOp(c.Entries, c.Quota, c.Forget)
		keys += len(c.Entries)
	}
	err := s.batch(ctx, "enqueue", keys, func(tx *bbolt.Tx) error {
		for _, op := range ops {
			if op != nil {
				if err := op.apply(tx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for i, op := range ops {
		switch {
		case op == nil:
		case err != nil:
			out[i].Err = err
		default:
			out[i].Accepted, out[i].Dup, out[i].Err = op.result()
		}
	}
	return out
}

// enqueueOp is one Enqueue call: what it encodes before the commit, its
// write, and its result.
type enqueueOp struct {
	entries                                  []store.Entry
	q                                        store.Quota
	pairKey, acceptedEnc, pairVal, forgetKey []byte
	rs                                       []recipient
	which                                    []int    // entry -> index in rs
	vals, exps                               [][]byte // per entry: encoded entry, expiry time

	// Set by apply, which may run more than once (the group commit runs a
	// write again when another one of its batch fails).
	ids        []uint64
	dup        bool
	firstTime  time.Time
	refusal    error
	totalAdded bool
}

// smallFanout is the most entries of one envelope whose recipients
// newEnqueueOp finds by a search rather than a map.
const smallFanout = 16

// newEnqueueOp encodes an Enqueue call; nil when there are no entries.
func newEnqueueOp(entries []store.Entry, q store.Quota, forget time.Time) (*enqueueOp, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	first := &entries[0]
	for i := range entries[1:] {
		if e := &entries[i+1]; e.Sender != first.Sender || !bytes.Equal(e.MessageID, first.MessageID) || e.SentAt != first.SentAt {
			return nil, errMixedEnvelope
		}
	}
	op := &enqueueOp{entries: entries, q: q}
	op.pairKey = pairKey(first)
	op.acceptedEnc = appendTime(nil, first.AcceptedAt)
	op.pairVal = encodePair(first.AcceptedAt, forget)
	op.forgetKey = key(appendTime(nil, forget), op.pairKey)
	// Recipient address -> index in rs: a search of rs for the few devices
	// of an account, a map for the thousands of a group.
	var index map[store.Address]int
	if len(entries) > smallFanout {
		index = make(map[store.Address]int)
	}
	op.which = make([]int, len(entries))
	op.vals = make([][]byte, len(entries))
	op.exps = make([][]byte, len(entries))
	for i := range entries {
		e := &entries[i]
		j, ok := -1, false
		if index != nil {
			j, ok = index[e.Recipient]
		} else {
			for k := range op.rs {
				if op.rs[k].addr == e.Recipient {
					j, ok = k, true
					break
				}
			}
		}
		if !ok {
			j = len(op.rs)
			if index != nil {
				index[e.Recipient] = j
			}
			op.rs = append(op.rs, recipient{addr: e.Recipient, ak: appendAddr(nil, e.Recipient)})
		}
		op.rs[j].entries++
		op.rs[j].bytes += uint64(len(e.Ciphertext))
		op.which[i] = j
		op.vals[i] = encodeEntry(e, 0)
		op.exps[i] = appendTime(nil, e.ExpiresAt)
	}
	return op, nil
}

// pairKey is the bucketPairs key of an envelope's entry: be64 sent-at ||
// sender A || message id. Without its first 8 bytes it is the key of the
// pair in v2Accepted.
func pairKey(e *store.Entry) []byte {
	return append(appendAddr(binary.BigEndian.AppendUint64(nil, e.SentAt), e.Sender), e.MessageID...)
}

// pairPrefix is the length of the sent-at that starts a pairKey.
const pairPrefix = 8

// apply is the call's part of a write transaction.
func (op *enqueueOp) apply(tx *bbolt.Tx) error {
	op.ids, op.dup, op.firstTime, op.refusal, op.totalAdded = nil, false, time.Time{}, nil, false
	pairs := tx.Bucket(bucketPairs)
	var oldForgetKey []byte
	old, legacy := pairs.Get(op.pairKey), false
	if old == nil {
		if v2 := tx.Bucket(v2Accepted); v2 != nil {
			old, legacy = v2.Get(op.pairKey[pairPrefix:]), true
		}
	}
	if old != nil {
		if len(old) != 2*timeSize {
			return errCorrupt
		}
		if bytes.Compare(old[timeSize:], op.acceptedEnc) > 0 {
			r := reader{b: old}
			op.dup, op.firstTime = true, r.time()
			return nil
		}
		// Remembered, but its forget time has passed: replace it (a pair
		// of version 2 is left to Expire).
		if !legacy {
			oldForgetKey = key(old[timeSize:], op.pairKey)
		}
	}
	queue := tx.Bucket(bucketQueue)
	for i := range op.rs {
		r := &op.rs[i]
		v := queue.Get(r.ak)
		if v == nil {
			op.refusal = fmt.Errorf("bolt: enqueue: device %s/%d: %w", r.addr.Account, r.addr.Device, store.ErrNotFound)
			return nil
		}
		rec, err := decodeQueue(v)
		if err != nil {
			return err
		}
		r.rec = rec
	}
	for i := range op.rs {
		r := &op.rs[i]
		if overQuota(r.rec, r.entries, r.bytes, op.q) {
			op.refusal = fmt.Errorf("bolt: enqueue: device %s/%d: %w", r.addr.Account, r.addr.Device, store.ErrQuota)
			return nil
		}
	}
	expiry := tx.Bucket(bucketExpiry)
	op.ids = make([]uint64, len(op.entries))
	for i := range op.entries {
		r := &op.rs[op.which[i]]
		id := r.rec.next
		r.rec.next++
		op.ids[i] = id
		prio := op.entries[i].Priority
		if err := queue.Put(entryKey(r.ak, prio, id), op.vals[i]); err != nil {
			return err
		}
		if err := expiry.Put(expiryKey(op.exps[i], r.ak, id), []byte{prio}); err != nil {
			return err
		}
	}
	for i := range op.rs {
		r := &op.rs[i]
		r.rec.entries += r.entries
		r.rec.bytes += r.bytes
		if err := queue.Put(r.ak, r.rec.encode()); err != nil {
			return err
		}
	}
	if err := addTotal(tx, int64(len(op.entries))); err != nil {
		return err
	}
	op.totalAdded = true
	forgets := tx.Bucket(bucketPairsExp)
	if oldForgetKey != nil {
		if err := forgets.Delete(oldForgetKey); err != nil {
			return err
		}
	}
	if err := pairs.Put(op.pairKey, op.pairVal); err != nil {
		return err
	}
	return forgets.Put(op.forgetKey, marker)
}

// result is the call's result once its transaction is committed, and
// gives the entries their queue ids when it accepted them.
func (op *enqueueOp) result() (time.Time, bool, error) {
	switch {
	case op.dup:
		return op.firstTime, true, nil
	case op.refusal != nil:
		return time.Time{}, false, op.refusal
	case !op.totalAdded || len(op.ids) != len(op.entries):
		return time.Time{}, false, errors.New("bolt: enqueue: commit without a result")
	}
	for i := range op.entries {
		op.entries[i].QueueID = op.ids[i]
	}
	return op.entries[0].AcceptedAt, false, nil
}

// overQuota reports whether adding n entries of b bytes to the queue rec
// would exceed q; a limit of zero or less is no limit.
func overQuota(rec queueRec, n, b uint64, q store.Quota) bool {
	return (q.Entries > 0 && rec.entries+n > uint64(q.Entries)) || (q.Bytes > 0 && rec.bytes+b > uint64(q.Bytes))
}

// entryKey is the key of a queue entry: the device's address, 255 minus
// the priority, the queue id. A device's entries follow its queue record
// (key A alone) in delivery order.
func entryKey(ak []byte, priority uint8, id uint64) []byte {
	k := make([]byte, 0, len(ak)+9)
	k = append(k, ak...)
	k = append(k, 255-priority)
	return binary.BigEndian.AppendUint64(k, id)
}

// expiryKey is the key of an entry in the expiry index; its value is the
// entry's priority, which completes the entry's key.
func expiryKey(expires, ak []byte, id uint64) []byte {
	k := make([]byte, 0, len(expires)+len(ak)+8)
	k = append(k, expires...)
	k = append(k, ak...)
	return binary.BigEndian.AppendUint64(k, id)
}

// firstEntry moves c to the first entry of the device at ak, past its
// queue record, and returns its key and value; a key without the prefix
// ak (or nil) means the queue is empty.
func firstEntry(c *bbolt.Cursor, ak []byte) ([]byte, []byte) {
	k, v := c.Seek(ak)
	if k != nil && len(k) == len(ak) {
		k, v = c.Next()
	}
	return k, v
}

// entryID returns the queue id of the entry key k of the device at ak.
func entryID(k, ak []byte) (uint64, error) {
	if len(k) != len(ak)+9 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(k[len(ak)+1:]), nil
}

// findEntry returns the key and value of entry id of the device at ak, or
// nils. An acknowledgement names only the queue id, so it looks for the id
// under each priority the queue holds, one seek per priority.
func findEntry(queue *bbolt.Bucket, ak []byte, id uint64) ([]byte, []byte, error) {
	c := queue.Cursor()
	k, _ := firstEntry(c, ak)
	for k != nil && bytes.HasPrefix(k, ak) {
		if _, err := entryID(k, ak); err != nil {
			return nil, nil, err
		}
		class := k[len(ak)]
		want := entryKey(ak, 255-class, id)
		if k, v := c.Seek(want); bytes.Equal(k, want) {
			return want, v, nil
		}
		if class == 255 {
			break
		}
		k, _ = c.Seek(append(bytes.Clone(ak), class+1))
	}
	return nil, nil, nil
}

// Pending implements store.Store. It walks the device's entries in key
// order, which is delivery order.
func (s *Store) Pending(ctx context.Context, a store.Address, now time.Time, skip map[uint64]bool, limit int) ([]store.Entry, error) {
	var out []store.Entry
	err := s.view(ctx, "pending", func(tx *bbolt.Tx) error {
		out = nil
		if limit <= 0 {
			return nil
		}
		ak := appendAddr(nil, a)
		c := tx.Bucket(bucketQueue).Cursor()
		k, v := firstEntry(c, ak)
		for ; k != nil && bytes.HasPrefix(k, ak) && len(out) < limit; k, v = c.Next() {
			id, err := entryID(k, ak)
			if err != nil {
				return err
			}
			if skip[id] {
				continue
			}
			e := store.Entry{QueueID: id, Recipient: a}
			if err := decodeEntry(v, &e); err != nil {
				return err
			}
			if !e.ExpiresAt.After(now) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetAttempt implements store.Store.
func (s *Store) SetAttempt(ctx context.Context, a store.Address, queueID uint64, attempt uint32) error {
	ak := appendAddr(nil, a)
	return s.batch(ctx, "set attempt", 1, func(tx *bbolt.Tx) error {
		queue := tx.Bucket(bucketQueue)
		k, v, err := findEntry(queue, ak, queueID)
		if err != nil || k == nil {
			return err
		}
		if len(v) < entryAttemptSize {
			return errCorrupt
		}
		return queue.Put(k, withAttempt(v, attempt))
	})
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, a store.Address, queueIDs []uint64) error {
	if len(queueIDs) == 0 {
		return s.begin(ctx, "ack")
	}
	ak := appendAddr(nil, a)
	return s.batch(ctx, "ack", len(queueIDs), func(tx *bbolt.Tx) error { return ackDevice(tx, ak, queueIDs) })
}

// AckMany implements store.ManyAcker: the deletes of every device are one
// function of the group commit.
func (s *Store) AckMany(ctx context.Context, acks map[store.Address][]uint64) error {
	if err := s.begin(ctx, "ack"); err != nil || len(acks) == 0 {
		return err
	}
	type one struct {
		ak  []byte
		ids []uint64
	}
	all := make([]one, 0, len(acks))
	keys := 0
	for a, ids := range acks {
		if len(ids) > 0 {
			all = append(all, one{appendAddr(nil, a), ids})
			keys += len(ids)
		}
	}
	// In key order, so that the transaction walks the B+tree forwards.
	slices.SortFunc(all, func(x, y one) int { return bytes.Compare(x.ak, y.ak) })
	return s.batch(ctx, "ack", keys, func(tx *bbolt.Tx) error {
		for _, o := range all {
			if err := ackDevice(tx, o.ak, o.ids); err != nil {
				return err
			}
		}
		return nil
	})
}

// ackDevice deletes the entries ids of the device at ak, with the queue
// record and the total.
func ackDevice(tx *bbolt.Tx, ak []byte, queueIDs []uint64) error {
	queue := tx.Bucket(bucketQueue)
	v := queue.Get(ak)
	if v == nil {
		return nil
	}
	rec, err := decodeQueue(v)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range queueIDs {
		k, ev, err := findEntry(queue, ak, id)
		if err != nil {
			return err
		}
		if k == nil {
			continue
		}
		size, err := deleteEntry(tx, ak, id, k, ev)
		if err != nil {
			return err
		}
		n++
		rec.entries--
		rec.bytes -= uint64(size)
	}
	if n == 0 {
		return nil
	}
	if err := queue.Put(ak, rec.encode()); err != nil {
		return err
	}
	return addTotal(tx, -int64(n))
}

// deleteEntry deletes entry id of the device at ak, whose key and value
// are k and v, with its expiry index key, and returns its ciphertext size.
// The caller updates the queue record and the total.
func deleteEntry(tx *bbolt.Tx, ak []byte, id uint64, k, v []byte) (int, error) {
	h, err := decodeEntryHeader(v)
	if err != nil {
		return 0, err
	}
	xk := expiryKey(h.expires, ak, id)
	if err := tx.Bucket(bucketQueue).Delete(k); err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketExpiry).Delete(xk); err != nil {
		return 0, err
	}
	return h.ciphertextLen, nil
}

// Expire implements store.Store. It reads the expiry and forget indexes
// only up to now, and writes nothing (no commit, no sync) when nothing in
// them is due: a server sweeps every second.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	nowEnc := appendTime(nil, now)
	var pending bool
	if err := s.view(ctx, "expire", func(tx *bbolt.Tx) error {
		pending = expiryDue(tx, nowEnc)
		return nil
	}); err != nil {
		return 0, err
	}
	if !pending {
		return 0, nil
	}
	var n int
	err := s.update(ctx, "expire", func(tx *bbolt.Tx) error {
		n = 0
		type expired struct {
			ak  []byte
			id  uint64
			key []byte // the entry's
		}
		var todo []expired
		c := tx.Bucket(bucketExpiry).Cursor()
		for k, v := c.First(); k != nil && keyDue(k, nowEnc); k, v = c.Next() {
			if len(k) < timeSize+8+5 || len(v) != 1 {
				return errCorrupt
			}
			ak := bytes.Clone(k[timeSize : len(k)-8])
			id := binary.BigEndian.Uint64(k[len(k)-8:])
			todo = append(todo, expired{ak: ak, id: id, key: entryKey(ak, v[0], id)})
		}
		queue := tx.Bucket(bucketQueue)
		recs := make(map[string]*queueRec)
		for _, x := range todo {
			ev := queue.Get(x.key)
			if ev == nil {
				return fmt.Errorf("expiry index names a missing entry: %w", errCorrupt)
			}
			size, err := deleteEntry(tx, x.ak, x.id, x.key, ev)
			if err != nil {
				return err
			}
			rec := recs[string(x.ak)]
			if rec == nil {
				v := queue.Get(x.ak)
				if v == nil {
					return fmt.Errorf("entry of a device without a queue: %w", errCorrupt)
				}
				r, err := decodeQueue(v)
				if err != nil {
					return err
				}
				rec = &r
				recs[string(x.ak)] = rec
			}
			rec.entries--
			rec.bytes -= uint64(size)
			n++
		}
		for ak, rec := range recs {
			if err := queue.Put([]byte(ak), rec.encode()); err != nil {
				return err
			}
		}
		if n > 0 {
			if err := addTotal(tx, -int64(n)); err != nil {
				return err
			}
		}
		// Forget the pairs whose time has come, and the buckets of version
		// 2 with the last of their pairs.
		if err := forgetPairs(tx, bucketPairsExp, bucketPairs, nowEnc); err != nil {
			return err
		}
		if tx.Bucket(v2Forget) != nil {
			if err := forgetPairs(tx, v2Forget, v2Accepted, nowEnc); err != nil {
				return err
			}
			if k, _ := tx.Bucket(v2Forget).Cursor().First(); k == nil {
				for _, name := range [][]byte{v2Forget, v2Accepted} {
					if err := tx.DeleteBucket(name); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// expiryDue reports whether Expire has anything to do at nowEnc: an entry
// of the expiry index or a pair of a forget index due, or the emptied
// buckets of version 2 to delete. A missing index counts as due, so that
// the write transaction reports the corruption.
func expiryDue(tx *bbolt.Tx, nowEnc []byte) bool {
	first := func(name []byte) (k []byte, ok bool) {
		b := tx.Bucket(name)
		if b == nil {
			return nil, false
		}
		k, _ = b.Cursor().First()
		return k, true
	}
	for _, name := range [][]byte{bucketExpiry, bucketPairsExp} {
		if k, ok := first(name); !ok || (k != nil && keyDue(k, nowEnc)) {
			return true
		}
	}
	k, ok := first(v2Forget) // absent: schema 3 from the start, or migrated
	return ok && (k == nil || keyDue(k, nowEnc))
}

// keyDue reports whether the key of a time index (a time first) is due
// at nowEnc.
func keyDue(k, nowEnc []byte) bool { return bytes.Compare(k[:min(len(k), timeSize)], nowEnc) <= 0 }

// forgetPairs deletes the pairs whose forget time is at or before nowEnc:
// each key of the forget index (T forget || pair key) and the pair.
func forgetPairs(tx *bbolt.Tx, forgetName, pairsName, nowEnc []byte) error {
	forgets, pairs := tx.Bucket(forgetName), tx.Bucket(pairsName)
	if forgets == nil || pairs == nil {
		return fmt.Errorf("bucket %s or %s missing: %w", forgetName, pairsName, errCorrupt)
	}
	var gone [][]byte
	c := forgets.Cursor()
	for k, _ := c.First(); k != nil && keyDue(k, nowEnc); k, _ = c.Next() {
		if len(k) < timeSize {
			return errCorrupt
		}
		gone = append(gone, bytes.Clone(k))
	}
	for _, k := range gone {
		if err := pairs.Delete(k[timeSize:]); err != nil {
			return err
		}
		if err := forgets.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Stats implements store.Store: one read of the device's queue record.
func (s *Store) Stats(ctx context.Context, a store.Address) (store.QueueStats, error) {
	var st store.QueueStats
	err := s.view(ctx, "stats", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketQueue).Get(appendAddr(nil, a))
		if v == nil {
			return nil
		}
		rec, err := decodeQueue(v)
		if err != nil {
			return err
		}
		st = store.QueueStats{Entries: int(rec.entries), Bytes: int(rec.bytes)}
		return nil
	})
	if err != nil {
		return store.QueueStats{}, err
	}
	return st, nil
}
