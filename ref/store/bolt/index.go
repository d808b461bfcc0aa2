package bolt

import (
	"encoding/binary"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// queueIndex is every device's delivery order and queue size, in memory.
// The file holds the entries keyed by queue id first (bucketMessages), so
// that the entries a commit adds and deletes fall into the few leaves at
// the end of the bucket whichever devices they are for; the order of one
// device's entries, which that layout scatters, is kept here. Open builds
// it from the entries (one pass over bucketMessages); the group commit
// changes it only after a transaction has committed (queueTx), so that a
// reader never sees an entry that is not durable.
//
// The committer is the only writer, and its transactions run one at a
// time: it reads the index without the lock, and takes the lock to publish
// a transaction's changes. Readers take the read lock.
type queueIndex struct {
	mu      sync.RWMutex
	devices map[string]*devQueue // by address key A; only devices with entries
	total   int
	// last is the highest queue id the index has held. Queue ids are
	// taken in commit order and published in it, so every entry whose id
	// is at most last was in the index when last was: a reader that reads
	// in several steps ignores, after its first, the entries above the
	// last it saw then, and so reads the queue as it was at one moment
	// (Pending).
	last uint64
}

// devQueue is one device's queue: its entries' ids by priority, and its
// size.
type devQueue struct {
	classes []idClass // by priority, highest first
	entries int
	bytes   int
}

// idClass is the ids of a device's entries of one priority, increasing.
type idClass struct {
	prio uint8
	ids  []uint64
}

// class finds the class of priority prio in d.classes, or where it would
// go.
func (d *devQueue) class(prio uint8) (int, bool) {
	return slices.BinarySearchFunc(d.classes, prio, func(c idClass, p uint8) int { return int(p) - int(c.prio) })
}

// holds reports whether the device has the entry id, of any priority.
func (d *devQueue) holds(id uint64) bool {
	for _, c := range d.classes {
		if _, ok := slices.BinarySearch(c.ids, id); ok {
			return true
		}
	}
	return false
}

func newQueueIndex() *queueIndex { return &queueIndex{devices: make(map[string]*devQueue)} }

// add records entry id of priority prio and size bytes of the device at
// ak. Ids come in increasing order (queue ids are assigned from one
// counter, and Open reads the entries in key order), so it appends.
func (x *queueIndex) add(ak string, prio uint8, id uint64, size int) {
	d := x.devices[ak]
	if d == nil {
		d = &devQueue{}
		x.devices[ak] = d
	}
	i, found := d.class(prio)
	if !found {
		d.classes = slices.Insert(d.classes, i, idClass{prio: prio})
	}
	c := &d.classes[i]
	if n := len(c.ids); n > 0 && c.ids[n-1] >= id {
		// Not in order: only a corrupt file could do this; keep the
		// order anyway.
		j, dup := slices.BinarySearch(c.ids, id)
		if dup {
			return
		}
		c.ids = slices.Insert(c.ids, j, id)
	} else {
		c.ids = append(c.ids, id)
	}
	d.entries++
	d.bytes += size
	x.total++
	x.last = max(x.last, id)
}

// remove forgets entry id of priority prio and size bytes of the device
// at ak; an id it does not hold is ignored.
func (x *queueIndex) remove(ak string, prio uint8, id uint64, size int) {
	d := x.devices[ak]
	if d == nil {
		return
	}
	i, found := d.class(prio)
	if !found {
		return
	}
	c := &d.classes[i]
	j, ok := slices.BinarySearch(c.ids, id)
	if !ok {
		return
	}
	if j == 0 {
		c.ids = c.ids[1:] // acknowledgements come mostly in order
	} else {
		c.ids = slices.Delete(c.ids, j, j+1)
	}
	if len(c.ids) == 0 {
		d.classes = slices.Delete(d.classes, i, i+1)
	}
	d.entries--
	d.bytes -= size
	x.total--
	if d.entries == 0 {
		delete(x.devices, ak)
	}
}

// drop forgets every entry of the device at ak.
func (x *queueIndex) drop(ak string) {
	if d := x.devices[ak]; d != nil {
		x.total -= d.entries
		delete(x.devices, ak)
	}
}

// ids appends the ids of the device at ak to out, in delivery order.
func (x *queueIndex) ids(ak string, out []uint64) []uint64 {
	if d := x.devices[ak]; d != nil {
		for _, c := range d.classes {
			out = append(out, c.ids...)
		}
	}
	return out
}

// idRef is an entry of the index: its priority and queue id.
type idRef struct {
	prio uint8
	id   uint64
}

// next appends to out up to n entries of the device at ak that come after
// from in delivery order (from its first entry when from is nil), leaving
// out those whose id is above upTo.
func (x *queueIndex) next(ak string, from *idRef, n int, upTo uint64, out []idRef) []idRef {
	d := x.devices[ak]
	if d == nil {
		return out
	}
	for _, c := range d.classes {
		ids := c.ids
		if from != nil {
			if c.prio > from.prio {
				continue
			}
			if c.prio == from.prio {
				i, found := slices.BinarySearch(ids, from.id)
				if found {
					i++
				}
				ids = ids[i:]
			}
		}
		for _, id := range ids {
			if n <= 0 {
				return out
			}
			if id > upTo {
				break // the class's ids increase
			}
			out = append(out, idRef{prio: c.prio, id: id})
			n--
		}
	}
	return out
}

// indexOp is one change of a transaction to the index.
type indexOp struct {
	ak   string
	kind uint8 // opAdd, opRemove, opDrop
	prio uint8
	id   uint64
	size int
}

const (
	opAdd = iota
	opRemove
	opDrop
)

// queueTx is what the running write transaction changes in the index: the
// changes, published once it has committed, and the sizes they give the
// devices' queues meanwhile (quotas count the entries of the transaction's
// earlier calls). The committer resets it when a transaction begins; a
// transaction that fails publishes nothing.
type queueTx struct {
	ops   []indexOp
	delta map[string]*[2]int // address key -> entries, bytes added (negative: removed)
	// next is the queue id of the transaction's next entry, read from the
	// file by the transaction's first enqueue (0 before) and written back
	// once, before it commits (finish), not by every enqueue.
	next uint64
	// drops is the address keys of the devices the transaction removed.
	drops []string
	// noV2 is set once the transaction has found the pair bucket of
	// version 2 missing, as it is in every file made since: bbolt caches
	// the buckets it finds, not those it does not, and would otherwise
	// search the root for it at every enqueue. A bucket missing stays
	// missing in the transaction (nothing creates it).
	noV2 bool
}

func (t *queueTx) reset() {
	if cap(t.ops) > maxKeptOps {
		t.ops = nil // one large transaction (an Expire, a device removed) does not keep its list
	}
	t.ops = t.ops[:0]
	clear(t.delta)
	t.next = 0
	t.drops = t.drops[:0]
	t.noV2 = false
}

// v2Pairs returns the pair bucket of version 2 in tx, or nil.
func (t *queueTx) v2Pairs(tx *bbolt.Tx) *bbolt.Bucket {
	if t.noV2 {
		return nil
	}
	b := tx.Bucket(v2Accepted)
	t.noV2 = b == nil
	return b
}

// hasEntries reports whether the device at address key ak has entries in
// the index and has not been removed by the transaction: then it exists,
// since removing a device deletes its entries (deleteDevice), and an
// enqueue need not look for its record. It reports false while the index
// may not match the file (unsynced). A corrupt file whose entries outlive
// their device's record would take enqueues for that device.
func (s *Store) hasEntries(ak string) bool {
	return !s.unsynced && s.idx.devices[ak] != nil && !slices.Contains(s.qtx.drops, ak)
}

// takeIDs returns the first of n consecutive queue ids for the entries of
// an enqueue in tx.
func (t *queueTx) takeIDs(tx *bbolt.Tx, n int) (uint64, error) {
	if t.next == 0 {
		next, err := getUint64(tx.Bucket(bucketMeta), keyNext, 1)
		if err != nil {
			return 0, err
		}
		t.next = next
	}
	first := t.next
	t.next += uint64(n)
	return first, nil
}

// finish writes the next queue id when the transaction took any.
func (t *queueTx) finish(tx *bbolt.Tx) error {
	if t.next == 0 {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keyNext, binary.BigEndian.AppendUint64(nil, t.next))
}

// maxKeptOps is the most index changes whose list a transaction leaves for
// the next to reuse.
const maxKeptOps = 1 << 16

func (t *queueTx) record(op indexOp) {
	t.ops = append(t.ops, op)
	if t.delta == nil {
		t.delta = make(map[string]*[2]int)
	}
	d := t.delta[op.ak]
	if d == nil {
		d = new([2]int)
		t.delta[op.ak] = d
	}
	switch op.kind {
	case opAdd:
		d[0]++
		d[1] += op.size
	case opRemove:
		d[0]--
		d[1] -= op.size
	case opDrop:
		t.drops = append(t.drops, op.ak)
	}
}

// publish applies the changes of a committed transaction to x.
func (x *queueIndex) publish(t *queueTx) {
	if len(t.ops) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, op := range t.ops {
		switch op.kind {
		case opAdd:
			x.add(op.ak, op.prio, op.id, op.size)
		case opRemove:
			x.remove(op.ak, op.prio, op.id, op.size)
		case opDrop:
			x.drop(op.ak)
		}
	}
}
