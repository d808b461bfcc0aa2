package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	key     string // ak, as the index keys devices
	entries int    // entries of this envelope for the device
	bytes   int
}

// Enqueue implements store.Store. Everything that does not need the
// database is encoded before the group commit; inside it, the call reads
// the remembered pair and whether the recipients exist, takes the queues'
// sizes from the index, and writes only when it accepts, so that a refusal
// does not roll back the others' commit.
func (s *Store) Enqueue(ctx context.Context, entries []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	if err := s.begin(ctx, "enqueue"); err != nil {
		return time.Time{}, false, err
	}
	op, err := newEnqueueOp(entries, q, forget)
	if err != nil || op == nil {
		return time.Time{}, false, err
	}
	if err := s.batch(ctx, "enqueue", len(entries), func(tx *bbolt.Tx) error { return op.apply(s, tx) }); err != nil {
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
				if err := op.apply(s, tx); err != nil {
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
	encs                                     []entryEnc // per entry

	// Set by apply, which may run more than once (the group commit runs a
	// write again when another one of its batch fails).
	ids       []uint64
	dup       bool
	firstTime time.Time
	refusal   error
	stored    bool
}

// entryEnc is an entry of an enqueueOp as the commit writes it.
type entryEnc struct {
	which int    // index in the op's rs
	val   []byte // encoded entry
	exp   [timeSize]byte
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
	// The call's keys and values in one array, each slice of it capped at
	// its length.
	pk := pairKeySize(first)
	b := make([]byte, 0, pk+timeSize+2*timeSize+timeSize+pk)
	b = appendPairKey(b, first)
	op.pairKey = b[:pk:pk]
	b = appendTime(b, first.AcceptedAt)
	op.acceptedEnc = b[pk : pk+timeSize : pk+timeSize]
	b = appendTime(appendTime(b, first.AcceptedAt), forget)
	op.pairVal = b[pk+timeSize : pk+3*timeSize : pk+3*timeSize]
	b = append(appendTime(b, forget), op.pairKey...)
	op.forgetKey = b[pk+3*timeSize:]

	// Recipient address -> index in rs: a search of rs for the few devices
	// of an account, a map for the thousands of a group.
	var index map[store.Address]int
	if len(entries) > smallFanout {
		index = make(map[store.Address]int)
	}
	op.encs = make([]entryEnc, len(entries))
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
			ak := appendAddr(nil, e.Recipient)
			op.rs = append(op.rs, recipient{addr: e.Recipient, ak: ak, key: string(ak)})
		}
		op.rs[j].entries++
		op.rs[j].bytes += len(e.Ciphertext)
		enc := &op.encs[i]
		enc.which, enc.val = j, encodeEntry(e, 0)
		appendTime(enc.exp[:0], e.ExpiresAt)
	}
	return op, nil
}

// Accepted implements store.Store: the pair as Enqueue looks it up, in
// bucketPairs or, for a file upgraded from schema 2, in v2Accepted.
func (s *Store) Accepted(ctx context.Context, sender store.Address, messageID []byte, sentAt uint64, now time.Time) (time.Time, bool, error) {
	k := pairKey(&store.Entry{Sender: sender, MessageID: messageID, SentAt: sentAt})
	nowEnc := appendTime(nil, now)
	var (
		accepted time.Time
		found    bool
	)
	err := s.view(ctx, "accepted", func(tx *bbolt.Tx) error {
		accepted, found = time.Time{}, false
		old := tx.Bucket(bucketPairs).Get(k)
		if v2 := tx.Bucket(v2Accepted); old == nil && v2 != nil {
			old = v2.Get(k[pairPrefix:])
		}
		if old == nil {
			return nil
		}
		if len(old) != 2*timeSize {
			return errCorrupt
		}
		if bytes.Compare(old[timeSize:], nowEnc) > 0 {
			r := reader{b: old}
			accepted, found = r.time(), true
		}
		return nil
	})
	return accepted, found, err
}

// pairKey is the bucketPairs key of an envelope's entry: be64 sent-at ||
// sender A || message id. Without its first 8 bytes it is the key of the
// pair in v2Accepted.
func pairKey(e *store.Entry) []byte {
	return appendPairKey(make([]byte, 0, pairKeySize(e)), e)
}

func appendPairKey(b []byte, e *store.Entry) []byte {
	return append(appendAddr(binary.BigEndian.AppendUint64(b, e.SentAt), e.Sender), e.MessageID...)
}

// pairKeySize is the length of e's pairKey.
func pairKeySize(e *store.Entry) int {
	return pairPrefix + addrSize(e.Sender) + len(e.MessageID)
}

// pairPrefix is the length of the sent-at that starts a pairKey.
const pairPrefix = 8

// apply is the call's part of a write transaction of s.
func (op *enqueueOp) apply(s *Store, tx *bbolt.Tx) error {
	op.ids, op.dup, op.firstTime, op.refusal, op.stored = nil, false, time.Time{}, nil, false
	pairs := tx.Bucket(bucketPairs)
	var oldForgetKey []byte
	old, legacy := pairs.Get(op.pairKey), false
	if old == nil {
		if v2 := s.qtx.v2Pairs(tx); v2 != nil {
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
	devices := tx.Bucket(bucketDevices)
	for i := range op.rs {
		r := &op.rs[i]
		if !s.hasEntries(r.key) && devices.Get(r.ak) == nil {
			op.refusal = fmt.Errorf("bolt: enqueue: device %s/%d: %w", r.addr.Account, r.addr.Device, store.ErrNotFound)
			return nil
		}
	}
	for i := range op.rs {
		r := &op.rs[i]
		if n, b := s.queueSize(r.key); overQuota(n+r.entries, b+r.bytes, op.q) {
			op.refusal = fmt.Errorf("bolt: enqueue: device %s/%d: %w", r.addr.Account, r.addr.Device, store.ErrQuota)
			return nil
		}
	}
	next, err := s.qtx.takeIDs(tx, len(op.entries))
	if err != nil {
		return err
	}
	messages, expiry := tx.Bucket(bucketMessages), tx.Bucket(bucketExpiry)
	op.ids = make([]uint64, len(op.entries))
	var k []byte // bbolt copies the key a Put is given
	for i := range op.entries {
		enc := &op.encs[i]
		r := &op.rs[enc.which]
		id := next
		next++
		op.ids[i] = id
		prio := op.entries[i].Priority
		k = appendMessageKey(k[:0], id, r.ak)
		if err := messages.Put(k, enc.val); err != nil {
			return err
		}
		k = appendExpiryKey(k[:0], enc.exp[:], r.ak, id)
		if err := expiry.Put(k, oneByte[int(prio):int(prio)+1]); err != nil {
			return err
		}
		s.qtx.record(indexOp{ak: r.key, kind: opAdd, prio: prio, id: id, size: len(op.entries[i].Ciphertext)})
	}
	op.stored = true
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
	case !op.stored || len(op.ids) != len(op.entries):
		return time.Time{}, false, errors.New("bolt: enqueue: commit without a result")
	}
	for i := range op.entries {
		op.entries[i].QueueID = op.ids[i]
	}
	return op.entries[0].AcceptedAt, false, nil
}

// overQuota reports whether a queue of n entries and b bytes exceeds q; a
// limit of zero or less is no limit.
func overQuota(n, b int, q store.Quota) bool {
	return (q.Entries > 0 && n > q.Entries) || (q.Bytes > 0 && b > q.Bytes)
}

// messageKey is the key of a queue entry in bucketMessages: its queue id,
// then its device's address. Queue ids come from one counter, so the
// entries a commit adds go to the end of the bucket together.
func messageKey(id uint64, ak []byte) []byte {
	return appendMessageKey(make([]byte, 0, 8+len(ak)), id, ak)
}

func appendMessageKey(b []byte, id uint64, ak []byte) []byte {
	return append(binary.BigEndian.AppendUint64(b, id), ak...)
}

// queueSize returns the entries and bytes of the queue of the device at ak
// in the running write transaction: the index's, with the transaction's
// changes so far. Only the committer calls it.
func (s *Store) queueSize(ak string) (n, b int) {
	if d := s.idx.devices[ak]; d != nil {
		n, b = d.entries, d.bytes
	}
	if d := s.qtx.delta[ak]; d != nil {
		n, b = n+d[0], b+d[1]
	}
	return n, b
}

// expiryKey is the key of an entry in the expiry index; its value is the
// entry's priority, which completes the entry's key.
func expiryKey(expires, ak []byte, id uint64) []byte {
	return appendExpiryKey(make([]byte, 0, len(expires)+len(ak)+8), expires, ak, id)
}

func appendExpiryKey(b, expires, ak []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(append(b, expires...), ak...), id)
}

// oneByte holds every byte value, so that a one-byte value (an expiry
// entry's priority) is a slice of it rather than an allocation: bbolt keeps
// a value until the commit and never writes into it.
var oneByte = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// Pending implements store.Store. It walks the device's entries in the
// index's order, which is delivery order, and reads each from the file, a
// few at a time: the ids under the index's read lock, then the entries in
// a read transaction, so that a reader does not hold up the commits'
// publishing while it reads. The entries stored after its first look at
// the index are left out, whatever their priority: a higher priority
// would put them before the entries already read, where a later step
// would not see them while it saw newer ones after.
func (s *Store) Pending(ctx context.Context, a store.Address, now time.Time, skip map[uint64]bool, limit int) ([]store.Entry, error) {
	if err := s.begin(ctx, "pending"); err != nil || limit <= 0 {
		return nil, err
	}
	ak := appendAddr(nil, a)
	var (
		out   []store.Entry
		refs  []idRef
		after *idRef // the last entry read; nil: none yet
		upTo  uint64 // the index's last id at the first look
	)
	for len(out) < limit {
		// The index first, then the transaction: every entry the index
		// shows is committed, so the transaction holds it unless it has
		// been deleted since, and is then passed over.
		s.idx.mu.RLock()
		if after == nil {
			upTo = s.idx.last
		}
		refs = s.idx.next(string(ak), after, limit-len(out)+len(skip), upTo, refs[:0])
		s.idx.mu.RUnlock()
		if len(refs) == 0 {
			break
		}
		last := refs[len(refs)-1]
		after = &last
		err := s.db.View(func(tx *bbolt.Tx) error {
			messages := tx.Bucket(bucketMessages)
			k := messageKey(0, ak)
			for _, r := range refs {
				if len(out) >= limit {
					return nil
				}
				if skip[r.id] {
					continue
				}
				binary.BigEndian.PutUint64(k, r.id)
				v := messages.Get(k)
				if v == nil {
					continue
				}
				e := store.Entry{QueueID: r.id, Recipient: a}
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
			return nil, wrap("pending", err)
		}
		if s.pendingStep != nil {
			s.pendingStep()
		}
	}
	return out, nil
}

// SetAttempt implements store.Store.
func (s *Store) SetAttempt(ctx context.Context, a store.Address, queueID uint64, attempt uint32) error {
	k := messageKey(queueID, appendAddr(nil, a))
	return s.batch(ctx, "set attempt", 1, func(tx *bbolt.Tx) error {
		messages := tx.Bucket(bucketMessages)
		v := messages.Get(k)
		if v == nil {
			return nil
		}
		if len(v) < entryAttemptSize {
			return errCorrupt
		}
		return messages.Put(k, withAttempt(v, attempt))
	})
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, a store.Address, queueIDs []uint64) error {
	if len(queueIDs) == 0 {
		return s.begin(ctx, "ack")
	}
	ak := appendAddr(nil, a)
	return s.batch(ctx, "ack", len(queueIDs), func(tx *bbolt.Tx) error { return s.ackDevice(tx, ak, queueIDs) })
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
	return s.batch(ctx, "ack", keys, func(tx *bbolt.Tx) error {
		for _, o := range all {
			if err := s.ackDevice(tx, o.ak, o.ids); err != nil {
				return err
			}
		}
		return nil
	})
}

// ackDevice deletes the entries ids of the device at ak.
func (s *Store) ackDevice(tx *bbolt.Tx, ak []byte, queueIDs []uint64) error {
	messages, key := tx.Bucket(bucketMessages), string(ak)
	for _, id := range queueIDs {
		k := messageKey(id, ak)
		v := messages.Get(k)
		if v == nil {
			continue
		}
		if err := s.deleteEntry(tx, ak, key, id, k, v); err != nil {
			return err
		}
	}
	return nil
}

// deleteEntry deletes entry id of the device at ak (key, as a string),
// whose key and value are k and v, with its expiry index key, and records
// it in the transaction's index changes.
func (s *Store) deleteEntry(tx *bbolt.Tx, ak []byte, key string, id uint64, k, v []byte) error {
	h, err := decodeEntryHeader(v)
	if err != nil {
		return err
	}
	return s.deleteDecoded(tx, ak, key, id, k, h)
}

// deleteDecoded is deleteEntry with the entry's header decoded.
func (s *Store) deleteDecoded(tx *bbolt.Tx, ak []byte, key string, id uint64, k []byte, h entryHeader) error {
	if err := tx.Bucket(bucketMessages).Delete(k); err != nil {
		return err
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(h.expires, ak, id)); err != nil {
		return err
	}
	s.qtx.record(indexOp{ak: key, kind: opRemove, prio: h.prio, id: id, size: h.ciphertextLen})
	return nil
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
	var n, aside int
	err := s.update(ctx, "expire", func(tx *bbolt.Tx) error {
		n, aside = 0, 0
		var due [][2][]byte // the due records of the expiry index: key, value
		c := tx.Bucket(bucketExpiry).Cursor()
		for k, v := c.First(); k != nil && keyDue(k, nowEnc); k, v = c.Next() {
			due = append(due, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
		messages := tx.Bucket(bucketMessages)
		for _, r := range due {
			k := r[0]
			var ev []byte
			var h entryHeader
			if len(k) >= timeSize+8+5 {
				ev = messages.Get(messageKey(binary.BigEndian.Uint64(k[len(k)-8:]), k[timeSize:len(k)-8]))
			}
			if ev != nil {
				// An entry that does not decode still fails the sweep, as
				// it fails Open: the file needs repair, not a sweep.
				var err error
				if h, err = decodeEntryHeader(ev); err != nil {
					return err
				}
			}
			if ev == nil || !bytes.Equal(h.expires, k[:timeSize]) {
				// A key that does not read, one that names a missing entry,
				// or a stale one, whose time is not its entry's own (that
				// entry's own key expires it): set aside.
				if err := setAside(tx, bucketExpiry, k, r[1]); err != nil {
					return err
				}
				aside++
				continue
			}
			ak := k[timeSize : len(k)-8]
			id := binary.BigEndian.Uint64(k[len(k)-8:])
			if err := s.deleteDecoded(tx, ak, string(ak), id, messageKey(id, ak), h); err != nil {
				return err
			}
			n++
		}
		// Forget the pairs whose time has come, and the buckets of version
		// 2 with the last of their pairs.
		m, err := forgetPairs(tx, bucketPairsExp, bucketPairs, nowEnc)
		if err != nil {
			return err
		}
		aside += m
		if tx.Bucket(v2Forget) != nil {
			m, err := forgetPairs(tx, v2Forget, v2Accepted, nowEnc)
			if err != nil {
				return err
			}
			aside += m
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
	if aside > 0 {
		return n, fmt.Errorf("bolt: expire: %d records set aside in bucket %s: %w", aside, bucketSetAside, store.ErrSetAside)
	}
	return n, nil
}

// setAside moves the record k of bucket name, whose value is v, to
// bucketSetAside.
func setAside(tx *bbolt.Tx, name, k, v []byte) error {
	key := append(append(append(make([]byte, 0, len(name)+1+len(k)), name...), 0), k...)
	if err := tx.Bucket(bucketSetAside).Put(key, bytes.Clone(v)); err != nil {
		return err
	}
	return tx.Bucket(name).Delete(k)
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
// each key of the forget index (T forget || pair key) and the pair. It sets
// aside the keys that cannot be read, and returns their number.
func forgetPairs(tx *bbolt.Tx, forgetName, pairsName, nowEnc []byte) (int, error) {
	forgets, pairs := tx.Bucket(forgetName), tx.Bucket(pairsName)
	if forgets == nil || pairs == nil {
		return 0, fmt.Errorf("bucket %s or %s missing: %w", forgetName, pairsName, errCorrupt)
	}
	var gone [][]byte
	var bad [][2][]byte
	c := forgets.Cursor()
	for k, v := c.First(); k != nil && keyDue(k, nowEnc); k, v = c.Next() {
		if len(k) <= timeSize {
			bad = append(bad, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			continue
		}
		gone = append(gone, bytes.Clone(k))
	}
	for _, r := range bad {
		if err := setAside(tx, forgetName, r[0], r[1]); err != nil {
			return 0, err
		}
	}
	for _, k := range gone {
		if err := pairs.Delete(k[timeSize:]); err != nil {
			return 0, err
		}
		if err := forgets.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(bad), nil
}

// Stats implements store.Store: the index's figures.
func (s *Store) Stats(ctx context.Context, a store.Address) (store.QueueStats, error) {
	if err := s.begin(ctx, "stats"); err != nil {
		return store.QueueStats{}, err
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	var st store.QueueStats
	if d := s.idx.devices[string(appendAddr(nil, a))]; d != nil {
		st = store.QueueStats{Entries: d.entries, Bytes: d.bytes}
	}
	return st, nil
}

// Queued implements store.Store: a look at the index, which holds every
// entry's id.
func (s *Store) Queued(ctx context.Context, a store.Address, queueIDs []uint64) ([]uint64, error) {
	if err := s.begin(ctx, "queued"); err != nil {
		return nil, err
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	var out []uint64
	if d := s.idx.devices[string(appendAddr(nil, a))]; d != nil {
		for _, id := range queueIDs {
			if d.holds(id) {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// TotalEntries implements store.Store: the index's count.
func (s *Store) TotalEntries(ctx context.Context) (int, error) {
	if err := s.begin(ctx, "total entries"); err != nil {
		return 0, err
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	return s.idx.total, nil
}
