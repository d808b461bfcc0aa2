package bolt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// committer is the store's group commit. Every write goes through it: the
// first caller finds no commit running and starts one with what is queued;
// callers that come while a commit runs (and syncs) queue up and go
// together in the next one. Under no load a write waits for nothing but
// its own commit; under load the batch grows with the load, so that one
// fsync serves many callers. bbolt's own DB.Batch instead holds every
// batch for a fixed delay (10 ms by default) before it commits.
//
// A function that fails is taken out and run alone, so that its failure
// does not undo the others' writes, as DB.Batch does: every function must
// therefore be safe to run more than once.
type committer struct {
	db       *bbolt.DB
	maxBatch int
	delay    time.Duration

	mu      sync.Mutex
	queue   []*commitCall
	running bool

	// begin runs at the start of every write transaction, and publish
	// after one has committed (not after one that failed): the store's
	// queue index follows the file through them (queueTx). resync runs
	// when a commit itself failed (its writes or its sync, not a call):
	// the file may then hold some of what the transaction wrote (a meta
	// page written and not synced is read back from the page cache), so
	// the index is built again from the file. finish runs inside a
	// transaction after its calls, when they all succeeded, before it
	// commits: what they left to write once per transaction (the next
	// queue id).
	begin, publish, resync func()
	finish                 func(*bbolt.Tx) error
}

type commitCall struct {
	fn     func(*bbolt.Tx) error
	weight int // keys the call writes, at least 1
	done   chan error
}

// errPanicked reports a function of a transaction that panicked.
var errPanicked = errors.New("bolt: transaction panicked")

// run runs fn in a write transaction, with the other writes queued with it,
// and returns once the transaction is committed and synced, or failed.
func (c *committer) run(fn func(*bbolt.Tx) error) error { return c.runWeighted(fn, 1) }

// runWeighted is run for a call that writes weight keys: a batch holds at
// most maxBatch calls and maxBatchKeys keys (and at least one call).
func (c *committer) runWeighted(fn func(*bbolt.Tx) error, weight int) error {
	call := &commitCall{fn: fn, weight: max(weight, 1), done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, call)
	lead := !c.running
	c.running = true
	c.mu.Unlock()
	if lead {
		c.commitNext()
	}
	return <-call.done
}

// commitNext commits one batch, which holds the leader's own call, and
// leaves the rest of the queue to a goroutine, so that the leader returns
// as soon as its own write is durable.
func (c *committer) commitNext() {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.mu.Lock()
	n, keys := 0, 0
	for n < len(c.queue) && n < c.maxBatch && (n == 0 || keys+c.queue[n].weight <= maxBatchKeys) {
		keys += c.queue[n].weight
		n++
	}
	batch := c.queue[:n:n]
	c.queue = append([]*commitCall(nil), c.queue[n:]...)
	c.mu.Unlock()
	c.commit(batch)
	c.mu.Lock()
	more := len(c.queue) > 0
	c.running = more
	c.mu.Unlock()
	if more {
		go c.commitNext()
	}
}

// commit runs the calls of batch in one transaction. When one fails, the
// transaction is rolled back, the failed call is run alone to get its own
// answer, and the others are tried again together.
func (c *committer) commit(batch []*commitCall) {
	for len(batch) > 0 {
		failed := -1
		err := c.update(func(tx *bbolt.Tx) error {
			for i, call := range batch {
				if err := safeCall(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, call := range batch {
				call.done <- err
			}
			return
		}
		call := batch[failed]
		call.done <- c.update(func(tx *bbolt.Tx) error { return safeCall(call.fn, tx) })
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// update runs fn in a write transaction between the begin and publish
// hooks (finish after fn), or resync when the commit failed after fn
// succeeded.
func (c *committer) update(fn func(*bbolt.Tx) error) error {
	var fnErr error
	err := c.db.Update(func(tx *bbolt.Tx) error {
		if c.begin != nil {
			c.begin()
		}
		if fnErr = fn(tx); fnErr != nil || c.finish == nil {
			return fnErr
		}
		return c.finish(tx)
	})
	switch {
	case err == nil:
		if c.publish != nil {
			c.publish()
		}
	case fnErr == nil && c.resync != nil:
		c.resync()
	}
	return err
}

// safeCall runs fn, turning a panic into an error.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	return fn(tx)
}
