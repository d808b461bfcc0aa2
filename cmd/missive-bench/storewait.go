package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// timedStore is the store of a server in this process, with the time each
// envelope's enqueue waited for it: the group commit it joined and its
// sync. Set beside the end-to-end latency, it tells the store's share of a
// phase's latency from the rest (the network, the server's other work,
// the tool).
type timedStore struct {
	queueStore
	many  store.ManyEnqueuer
	acker store.ManyAcker
	wait  atomic.Pointer[histogram]
}

// newTimedStore wraps st, which must have EnqueueMany and AckMany as the
// bolt and in-memory stores do, so that the server uses the same paths
// through the wrapper as without it.
func newTimedStore(st queueStore) (*timedStore, error) {
	many, ok1 := st.(store.ManyEnqueuer)
	acker, ok2 := st.(store.ManyAcker)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("store %T has no EnqueueMany or AckMany", st)
	}
	s := &timedStore{queueStore: st, many: many, acker: acker}
	s.wait.Store(new(histogram))
	return s, nil
}

// Enqueue implements store.Store.
func (s *timedStore) Enqueue(ctx context.Context, entries []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	t0 := time.Now()
	accepted, dup, err := s.queueStore.Enqueue(ctx, entries, q, forget)
	s.wait.Load().Record(time.Since(t0))
	return accepted, dup, err
}

// EnqueueMany implements store.ManyEnqueuer: each envelope of the calls
// waited as long as the whole.
func (s *timedStore) EnqueueMany(ctx context.Context, calls []store.EnqueueCall) []store.EnqueueResult {
	t0 := time.Now()
	res := s.many.EnqueueMany(ctx, calls)
	d, h := time.Since(t0), s.wait.Load()
	for range calls {
		h.Record(d)
	}
	return res
}

// AckMany implements store.ManyAcker.
func (s *timedStore) AckMany(ctx context.Context, acks map[store.Address][]uint64) error {
	return s.acker.AckMany(ctx, acks)
}

// restart starts the waits afresh and returns those recorded since the
// last restart.
func (s *timedStore) restart() *histogram { return s.wait.Swap(new(histogram)) }
