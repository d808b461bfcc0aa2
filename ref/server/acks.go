package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/store"
)

// ackFlushSize is the number of held entries that starts a batch before
// ACK_DELAY has passed.
const ackFlushSize = 4096

// ackFlushMax bounds the entries of one batch; a batch takes whole devices
// until it holds this many or more.
const ackFlushMax = 8192

// acker deletes acknowledged entries from the store in batches. From the
// moment a device acknowledges an entry until its deletion is durable, the
// entry is held here, and no delivery pass of any connection of the device
// reads it back (Pending skips it): an acknowledged entry is never
// delivered again while the server runs. After a crash, the entries held
// at that moment may be delivered again, as duplicates that devices drop
// (CLI-001); a server that stops gracefully deletes them first (SRV-018).
type acker struct {
	st    store.Store
	delay time.Duration // ACK_DELAY: the deletes of that time go to the store together
	log   func(msg string, args ...any)

	mu       sync.Mutex
	pending  map[store.Address][]uint64 // acknowledged, waiting for the next batch
	flushing map[store.Address][]uint64 // in the batch being deleted
	n        int                        // entries pending
	left     bool                       // the last batch left pending entries behind
	kept     map[store.Address][]uint64 // the mutant ack-in-memory: never deleted, only hidden
	kick     chan struct{}
	stop     chan bool // true: delete what is held first
	done     chan struct{}
}

func newAcker(st store.Store, delay time.Duration, log func(string, ...any)) *acker {
	a := &acker{st: st, delay: delay, log: log, pending: map[store.Address][]uint64{}, kept: map[store.Address][]uint64{},
		kick: make(chan struct{}, 1), stop: make(chan bool, 1), done: make(chan struct{})}
	go a.run()
	return a
}

// add holds acknowledged queue ids of a device for the next batch.
func (a *acker) add(addr store.Address, ids []uint64) { a.hold(addr, ids, false) }

// addNew holds those of ids, which are in increasing order, that it does
// not hold already; it may reorder ids. It is for the ids of entries that
// were not in flight on the acknowledging connection, which an ack repeated
// names again and again (SRV-021).
func (a *acker) addNew(addr store.Address, ids []uint64) { a.hold(addr, ids, true) }

func (a *acker) hold(addr store.Address, ids []uint64, dedupe bool) {
	a.mu.Lock()
	if dedupe {
		ids = a.notHeld(addr, ids)
	}
	if len(ids) == 0 {
		a.mu.Unlock()
		return
	}
	a.pending[addr] = append(a.pending[addr], ids...)
	a.n += len(ids)
	first := a.n == len(ids)
	full := a.n >= ackFlushSize
	a.mu.Unlock()
	if first || full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// notHeld returns those of ids, which are in increasing order, that are
// not held for the device, in ids' own array. Its cost is one look per id
// held for the device, not one per id of ids. The caller holds mu.
func (a *acker) notHeld(addr store.Address, ids []uint64) []uint64 {
	dup := make([]bool, len(ids))
	for _, held := range [][]uint64{a.pending[addr], a.flushing[addr]} {
		for _, id := range held {
			if i, ok := slices.BinarySearch(ids, id); ok {
				dup[i] = true
			}
		}
	}
	out := ids[:0]
	for i, id := range ids {
		if !dup[i] {
			out = append(out, id)
		}
	}
	return out
}

// held adds to skip the ids of the device that are acknowledged and not
// yet deleted.
func (a *acker) held(addr store.Address, skip map[uint64]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range a.pending[addr] {
		skip[id] = true
	}
	for _, id := range a.flushing[addr] {
		skip[id] = true
	}
	for _, id := range a.kept[addr] {
		skip[id] = true
	}
}

// run deletes what is held: ACK_DELAY after the first ack of a batch, or at
// once when ackFlushSize are held.
func (a *acker) run() {
	defer close(a.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	now := make(chan struct{}) // always ready: a batch left entries behind
	close(now)
	// next waits for start, then at most ACK_DELAY more; with early, less
	// (until a kick, or none when ackFlushSize are held); none without
	// delay;
	// it reports false when the acker is stopped, after the last flush if
	// one is asked.
	next := func(start chan struct{}, delay, early bool) bool {
		select {
		case flush := <-a.stop:
			if flush {
				a.drain()
			}
			return false
		case <-start:
		}
		a.mu.Lock()
		full := early && a.n >= ackFlushSize
		a.mu.Unlock()
		if !delay || full {
			return true
		}
		var kick chan struct{}
		if early {
			kick = a.kick
		}
		timer.Reset(a.delay)
		defer timer.Stop()
		select {
		case flush := <-a.stop:
			if flush {
				a.drain()
			}
			return false
		case <-timer.C:
		case <-kick:
		}
		return true
	}
	left := false
	for {
		start, delay := a.kick, true
		if left {
			start, delay = now, false
		}
		if !next(start, delay, true) {
			return
		}
		for !a.flush() {
			if !next(now, true, false) { // the store failed: try again after a while
				return
			}
		}
		a.mu.Lock()
		more := a.n > 0
		left = a.left
		a.mu.Unlock()
		if more && !left {
			select {
			case a.kick <- struct{}{}:
			default:
			}
		}
	}
}

// flush deletes the entries held: in one AckMany when the store has it,
// else one Ack per device, all of them sharing the store's group commit. Ids whose deletion fails are held again for
// the next batch; flush reports whether none failed.
func (a *acker) flush() bool {
	a.mu.Lock()
	batch := a.pending
	a.pending, a.n, a.left = map[store.Address][]uint64{}, 0, false
	if n := 0; len(batch) > 0 {
		// At most ackFlushMax ids (whole devices) in one batch, so that a
		// backlog of acks does not become one long commit that every
		// send waits behind; the rest stays held for the next batch.
		for addr, ids := range batch {
			if n >= ackFlushMax {
				a.pending[addr] = ids
				a.n += len(ids)
				a.left = true
				delete(batch, addr)
				continue
			}
			n += len(ids)
		}
	}
	if faults.Has(faults.AckInMemory) {
		for addr, ids := range batch {
			a.kept[addr] = append(a.kept[addr], ids...)
		}
		batch = nil
	}
	a.flushing = batch
	a.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	var (
		wg     sync.WaitGroup
		fmu    sync.Mutex
		failed = map[store.Address][]uint64{}
	)
	if ma, ok := a.st.(store.ManyAcker); ok {
		// One write for every device's deletes.
		if err := ma.AckMany(context.Background(), batch); err != nil {
			a.log("ack", "devices", len(batch), "err", err)
			failed = batch
		}
		batch = nil
	}
	for addr, ids := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.st.Ack(context.Background(), addr, ids); err != nil {
				a.log("ack", "account", addr.Account, "device", addr.Device, "err", err)
				fmu.Lock()
				failed[addr] = ids
				fmu.Unlock()
			}
		}()
	}
	wg.Wait()
	a.mu.Lock()
	a.flushing = nil
	for addr, ids := range failed {
		a.pending[addr] = append(a.pending[addr], ids...)
		a.n += len(ids)
	}
	a.mu.Unlock()
	return len(failed) == 0
}

// ackStopTries bounds the batches that fail in a graceful stop's last
// deletes before the acker gives up on a failing store; what it held is
// then delivered again after the restart, as after a crash.
const ackStopTries = 3

// drain deletes everything held, in as many batches as it takes (one
// takes at most ackFlushMax ids), as a graceful stop does (SRV-018).
func (a *acker) drain() {
	for failures := 0; ; {
		if !a.flush() {
			failures++
		}
		a.mu.Lock()
		n := a.n
		a.mu.Unlock()
		if n == 0 {
			return
		}
		if failures == ackStopTries {
			a.log("ack at stop: giving up", "entries", n)
			return
		}
	}
}

// close stops the acker; with flush it first deletes what is held, as a
// graceful stop does, and without it forgets what is held, as a crash
// does.
func (a *acker) close(flush bool) {
	select {
	case a.stop <- flush:
	default:
	}
	<-a.done
}
