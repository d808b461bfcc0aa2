package bolt

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestCommitBatchKeys checks that a group commit holds at most
// maxBatchKeys keys: calls queued behind a running commit go together
// while their keys fit, and a call over the bound goes alone.
func TestCommitBatchKeys(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &committer{db: db, maxBatch: defaultMaxBatch}
	release, started := make(chan struct{}), make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release) // a failed check: let the leader's transaction end
		}
	}()
	var (
		mu  sync.Mutex
		txs = map[string]int{} // call name -> transaction id
		wg  sync.WaitGroup
	)
	call := func(name string, weight int) {
		defer wg.Done()
		err := c.runWeighted(func(tx *bbolt.Tx) error {
			if name == "leader" {
				close(started)
				<-release
			}
			mu.Lock()
			txs[name] = tx.ID()
			mu.Unlock()
			return nil
		}, weight)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wg.Add(1)
	go call("leader", 1)
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.mu.Lock()
			got := len(c.queue)
			c.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls queued, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	<-started // the leader's batch is running, its own call taken from the queue
	// Queued in this order: a, b, c fit together (16,000 keys); d would
	// pass the bound and starts the next batch; e (over the bound alone)
	// goes alone; f and g go together after it.
	for i, w := range []struct {
		name   string
		weight int
	}{{"a", 8000}, {"b", 7999}, {"c", 1}, {"d", 500}, {"e", maxBatchKeys + 1}, {"f", 1}, {"g", 1}} {
		wg.Add(1)
		go call(w.name, w.weight)
		queued(i + 1)
	}
	close(release)
	wg.Wait()
	same := func(x, y string, want bool) {
		t.Helper()
		if got := txs[x] == txs[y]; got != want {
			t.Errorf("%s and %s in one commit: got %t, want %t (transactions %v)", x, y, got, want, txs)
		}
	}
	same("a", "b", true)
	same("a", "c", true)
	same("c", "d", false)
	same("d", "e", false)
	same("e", "f", false)
	same("f", "g", true)
	same("leader", "a", false)
}
