package mem

import (
	"container/heap"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// The store's expiry indexes: queue entries by expiry time and accepted
// pairs by forget time, so that Expire costs what it removes rather than a
// pass over every entry and every pair under the store's lock (with
// 300,000 of each that pass took 30 to 65 ms, every second of a server's
// sweep). An item is added when its entry or pair is stored and is not
// removed when the entry is acknowledged or the pair replaced: Expire
// checks that what an item names is still there and due, and an index
// with more than twice the live items (and at least compactSlack) is
// rebuilt from them.

// compactSlack is the number of stale items an index may hold whatever
// the live ones.
const compactSlack = 1024

// timed is an item of an index: a time and what falls due at it.
type timed[T any] struct {
	at time.Time
	v  T
}

// timeHeap is a min-heap of items by time.
type timeHeap[T any] []timed[T]

func (h timeHeap[T]) Len() int           { return len(h) }
func (h timeHeap[T]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timeHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap[T]) Push(x any)        { *h = append(*h, x.(timed[T])) }
func (h *timeHeap[T]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// add adds v, due at at.
func (h *timeHeap[T]) add(at time.Time, v T) { heap.Push(h, timed[T]{at, v}) }

// popDue removes the items due at or before now and calls f with each,
// earliest first.
func (h *timeHeap[T]) popDue(now time.Time, f func(T)) {
	for h.Len() > 0 && !(*h)[0].at.After(now) {
		f(heap.Pop(h).(timed[T]).v)
	}
}

// rebuild replaces the items with those of live when the heap holds more
// than twice as many (and compactSlack more).
func (h *timeHeap[T]) rebuild(live int, items func(add func(time.Time, T))) {
	if h.Len() <= 2*live+compactSlack {
		return
	}
	*h = (*h)[:0]
	items(func(at time.Time, v T) { *h = append(*h, timed[T]{at, v}) })
	heap.Init(h)
}

// queued names a queue entry.
type queued struct {
	addr store.Address
	id   uint64
}

// expireLocked removes the queue entries that expire at or before now and
// the accepted pairs whose memory has passed; it reports the entries
// removed. The caller holds the lock.
func (s *Store) expireLocked(now time.Time) int {
	n := 0
	s.expiry.popDue(now, func(q queued) {
		dev := s.devices[q.addr]
		if dev == nil {
			return // removed with its device
		}
		if e := dev.queue[q.id]; e != nil && !e.ExpiresAt.After(now) {
			dev.bytes -= len(e.Ciphertext)
			delete(dev.queue, q.id)
			n++
		}
	})
	s.total -= n
	s.forgets.popDue(now, func(k pairKey) {
		if r, ok := s.accepted[k]; ok && !r.forget.After(now) {
			delete(s.accepted, k)
		}
	})
	s.compact()
	return n
}

// compact rebuilds an index that holds too many stale items.
func (s *Store) compact() {
	s.expiry.rebuild(s.total, func(add func(time.Time, queued)) {
		for addr, dev := range s.devices {
			for id, e := range dev.queue {
				add(e.ExpiresAt, queued{addr, id})
			}
		}
	})
	s.forgets.rebuild(len(s.accepted), func(add func(time.Time, pairKey)) {
		for k, r := range s.accepted {
			add(r.forget, k)
		}
	})
}
