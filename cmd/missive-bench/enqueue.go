package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/server"
)

// runEnqueue is the offline scenario: senders send to recipients that are
// not connected, each message acknowledged by send-result only after the
// store has synced it (SRV-006); then the recipients connect and drain
// their queues. The baseline is bbolt's own batched write path (DB.Batch,
// synced) with as many concurrent writers as there are senders.
func (b *bench) runEnqueue(s *scenarioReport) error {
	cfg := b.cfg
	ctLen, envSize, err := ciphertextFor(cfg.size)
	if err != nil {
		return err
	}
	nr := min(cfg.recipients, cfg.messages)
	if per := (cfg.messages + nr - 1) / nr; per > server.QueueQuota {
		return fmt.Errorf("%d messages to %d recipients is over the queue quota of %d per device: raise -recipients", cfg.messages, nr, server.QueueQuota)
	}
	f, err := makeFleet(b.run+"q", cfg.senders+nr, b.srcs)
	if err != nil {
		return err
	}
	senders, recipients := f[:cfg.senders], f[cfg.senders:]
	b.prog.phase(nil, "enqueue: registering %d senders and %d recipients", len(senders), len(recipients))
	if err := f.setup(context.Background(), b.t, true, b.prog); err != nil {
		f.close()
		return err
	}
	recipients.close() // offline from now on
	m := b.startMessaging(senders, ctLen, cfg.window)
	defer m.close()
	var enqRuns, baseRuns, drainRuns []float64
	var costRuns []cost
	acceptLat, storeLat := new(histogram), new(histogram)
	s.Counts = map[string]counts{}
	for run := 1; run <= cfg.runs; run++ {
		// Enqueue: each sender sends its share, at full speed.
		tr := m.tr
		before := tr.counts()
		tr.measureFrom(since())
		if b.t.timed != nil {
			b.t.timed.restart()
		}
		var wg sync.WaitGroup
		t0 := time.Now()
		u0, measured := b.t.usage()
		b.prog.phase(func() string {
			c := tr.counts()
			return fmt.Sprintf("%d of %d accepted, %s msg/s", c.Accepted-before.Accepted, cfg.messages,
				number(float64(c.Accepted-before.Accepted)/max(time.Since(t0).Seconds(), 1e-3)))
		}, "enqueue run %d/%d: sending to offline devices", run, cfg.runs)
		for i := range senders {
			share := cfg.messages / len(senders)
			if i < cfg.messages%len(senders) {
				share++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				to := recipients[i%nr]
				send := func(ctx context.Context, at int64) error { return m.peers[i].send(ctx, to, at) }
				pace(context.Background(), send, sendPeriod, time.Duration(rand.Int64N(int64(sendPeriod))), share, false)
			}()
		}
		wg.Wait()
		tr.settleAnswers(60 * time.Second)
		el := time.Since(t0).Seconds()
		u1, _ := b.t.usage()
		c := diffCounts(tr.counts(), before)
		enqRuns = append(enqRuns, float64(c.Accepted)/el)
		if measured {
			costRuns = append(costRuns, perItem(u0, u1, c.Accepted))
		}
		acceptLat.Merge(tr.acceptLat.Load())
		if b.t.timed != nil {
			storeLat.Merge(b.t.timed.restart())
		}

		// The baseline, in the same run.
		b.prog.phase(nil, "enqueue run %d/%d: bbolt DB.Batch baseline", run, cfg.runs)
		rate, err := batchBaseline(len(senders), cfg.messages, ctLen+64, b.prog)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		baseRuns = append(baseRuns, rate)

		// Drain: the recipients connect and take everything.
		dt := newTraffic(ctLen)
		b.prog.phase(func() string {
			c := dt.counts()
			return fmt.Sprintf("%d of %d delivered, %d duplicates", c.Delivered, c.Accepted, c.Duplicates)
		}, "enqueue run %d/%d: draining %d queues", run, cfg.runs, nr)
		want := c.Accepted
		t1 := time.Now()
		var (
			peers []*peer
			pmu   sync.Mutex
		)
		err = parallel(nr, func(i int) error {
			d := recipients[i]
			if err := d.connect(context.Background(), b.t, false); err != nil {
				return err
			}
			d.tc.SetIdleTimeout(5 * time.Minute)
			p := dt.start(d, 1)
			pmu.Lock()
			peers = append(peers, p)
			pmu.Unlock()
			return nil
		})
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for dt.delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		drainEl := time.Since(t1).Seconds()
		drainRuns = append(drainRuns, float64(dt.delivered.Load())/drainEl)
		// The queues are empty once every ack has been stored.
		for time.Now().Before(deadline) && dt.acked.Load() < dt.delivered.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		left := -1
		for range 500 {
			if left = b.t.totalEntries(); left <= 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// One count for the run: what the senders saw, what the drain got.
		dc := dt.counts()
		c.Delivered, c.Duplicates, c.Acked = dc.Delivered, dc.Duplicates, dc.Acked
		for _, p := range peers {
			p.finish()
			p.d.close()
			<-p.done
		}
		s.Counts["enqueue and drain"] = addCounts(s.Counts["enqueue and drain"], c)
		if dc.Delivered != want {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: %d of %d accepted messages were delivered", run, dc.Delivered, want))
		}
		if left > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: %d entries left in the store after the drain", run, left))
		}
	}
	enq := newFigure("durable enqueue (send-result after fsync)", "msg/s", enqRuns, "bbolt DB.Batch", baseRuns).atLeast(targetEnqueue, ">= 40,000 msg/s")
	if cfg.store == "mem" {
		enq = newFigure("enqueue, in-memory store (nothing synced: not durable)", "msg/s", enqRuns, "bbolt DB.Batch", baseRuns)
	}
	s.Figures = append(s.Figures,
		enq,
		newFigure("drain (deliver and ack)", "msg/s", drainRuns, "", nil),
	)
	s.Figures = append(s.Figures, costFigures("enqueued message", "enqueued messages", costRuns)...)
	s.Latencies = append(s.Latencies, acceptLat.summary("enqueue, send to send-result", median(enqRuns)))
	if storeLat.Count() > 0 {
		s.Latencies = append(s.Latencies, storeLat.summary("the store's wait per envelope, enqueue", median(enqRuns)))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("%d senders at up to %s msg/s each with %d unanswered at most, %d messages of %d bytes per run to %d offline devices; the baseline puts %d values of %d bytes from %d goroutines through DB.Batch",
		len(senders), number(float64(time.Second)/float64(sendPeriod)), cfg.window, cfg.messages, envSize, nr, cfg.messages, ctLen+64, len(senders)))
	return nil
}

// settleAnswers waits until every send has an answer, or timeout.
func (tr *traffic) settleAnswers(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && tr.counts().Unanswered > 0 {
		time.Sleep(5 * time.Millisecond)
	}
}

// batchBaseline puts n values of size bytes into a new bbolt file through
// DB.Batch (with bbolt's defaults: fsync on commit, up to 1000 calls per
// commit, 10 ms delay) from workers goroutines, and returns puts per second.
func batchBaseline(workers, n, size int, prog *progress) (float64, error) {
	dir, err := os.MkdirTemp("", "missive-bench-baseline-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := bbolt.Open(filepath.Join(dir, "baseline.db"), 0o600, nil)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		return 0, err
	}
	value := make([]byte, size)
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first error
		emu   sync.Mutex
	)
	t0 := time.Now()
	prog.phase(func() string {
		return fmt.Sprintf("%d of %d, %s puts/s", next.Load(), n, number(float64(next.Load())/max(time.Since(t0).Seconds(), 1e-3)))
	}, "bbolt DB.Batch baseline")
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				k := binary.BigEndian.AppendUint64(nil, uint64(i))
				if err := db.Batch(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(k, value) }); err != nil {
					emu.Lock()
					first = err
					emu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds(), first
}
