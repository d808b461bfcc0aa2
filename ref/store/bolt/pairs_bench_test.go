package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// BenchmarkEnqueueRandomIDs enqueues envelopes as devices send them: random
// 16-byte message ids (section 11.5), sent-at on the sender's clock, many
// senders and recipients, from many goroutines, into a store whose
// accepted-pair index already remembers prior pairs (the sub-benchmark's
// name) of earlier traffic. Besides the time per envelope it reports the
// pages bbolt wrote per envelope: the cost of the store's layout apart from
// the speed of this machine.
func BenchmarkEnqueueRandomIDs(b *testing.B) {
	for _, prior := range []int{0, 200_000, 1_000_000} {
		b.Run(fmt.Sprintf("prior=%d", prior), func(b *testing.B) { benchRandomIDs(b, prior) })
	}
}

// benchStore opens a store in a temporary directory, closed when b ends,
// with one account of one device per address it returns.
func benchStore(b *testing.B, devices int) (*Store, []store.Address) {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "missive.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	addrs := make([]store.Address, devices)
	for i := range addrs {
		addrs[i] = store.Address{Account: fmt.Sprintf("user%04d", i), Device: 1}
		if err := s.CreateAccount(context.Background(), addrs[i].Account, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	return s, addrs
}

func benchRandomIDs(b *testing.B, prior int) {
	const devices = 1000
	s, addrs := benchStore(b, devices)
	now := time.Now()
	forget := now.Add(30 * 24 * time.Hour)
	// The pairs of earlier traffic: sent over the hour before, at an even
	// rate, remembered until forget.
	rng := rand.New(rand.NewPCG(1, 2))
	const chunk = 50_000
	for done := 0; done < prior; done += chunk {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			accepted, forgets := tx.Bucket(bucketPairs), tx.Bucket(bucketPairsExp)
			for i := done; i < min(done+chunk, prior); i++ {
				at := now.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(prior))
				e := store.Entry{Sender: addrs[rng.IntN(devices)], MessageID: randomID(rng), SentAt: uint64(at.UnixMilli())}
				if err := rememberPair(accepted, forgets, pairKey(&e), at, forget); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	benchSends(b, s, addrs, forget, false)
}

func randomID(rng *rand.Rand) []byte {
	id := make([]byte, 16)
	binary.LittleEndian.PutUint64(id, rng.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
	return id
}

// rememberPair puts a pair accepted at accepted under key k into the pair
// index and its forget index, as an enqueue does (newEnqueueOp, apply).
func rememberPair(pairs, forgets *bbolt.Bucket, k []byte, accepted, forget time.Time) error {
	if err := pairs.Put(k, encodePair(accepted, forget)); err != nil {
		return err
	}
	return forgets.Put(key(appendTime(nil, forget), k), marker)
}

// pagesWritten is the pages the committed write transactions of db wrote.
func pagesWritten(db *bbolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetWrite()
}

// BenchmarkRoute stores and deletes messages as the server routes them to
// devices that are online: each call enqueues an envelope of one 256-byte
// entry for a random device of 2,500 (the load tool's route scenario) and
// acknowledges it, from many goroutines, so that enqueues and
// acknowledgements share commits. It reports the pages bbolt wrote per
// message beside the time per message.
func BenchmarkRoute(b *testing.B) {
	s, addrs := benchStore(b, 2500)
	benchSends(b, s, addrs, time.Now().Add(30*24*time.Hour), true)
}

// benchSends enqueues envelopes of one 256-byte entry, with random message
// ids and senders, for random devices of addrs, remembered until forget,
// from many goroutines; with ack, each is acknowledged after it is stored.
// It reports the pages bbolt wrote per envelope.
func benchSends(b *testing.B, s *Store, addrs []store.Address, forget time.Time, ack bool) {
	ctx := context.Background()
	ciphertext := make([]byte, 256)
	var seed atomic.Uint64
	writes0 := pagesWritten(s.db)
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 3))
		for pb.Next() {
			t := time.Now()
			e := []store.Entry{{
				Recipient: addrs[rng.IntN(len(addrs))], Sender: addrs[rng.IntN(len(addrs))], MessageID: randomID(rng),
				Type: 1, Kind: 1, Ciphertext: ciphertext, SentAt: uint64(t.UnixMilli()), AcceptedAt: t, ExpiresAt: t.Add(time.Hour),
			}}
			if _, _, err := s.Enqueue(ctx, e, store.Quota{}, forget); err != nil {
				b.Error(err)
				return
			}
			if !ack {
				continue
			}
			if err := s.Ack(ctx, e[0].Recipient, []uint64{e[0].QueueID}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(pagesWritten(s.db)-writes0)/float64(b.N), "pages/op")
}

// BenchmarkOpenIndex opens a file whose queues hold 1,000,000 entries of
// 1,000 devices: the time Open takes to build the queue index from them,
// and the heap the index holds per entry.
func BenchmarkOpenIndex(b *testing.B) {
	const devices, entries = 1000, 1_000_000
	s, addrs := benchStore(b, devices)
	path := s.Path()
	now := time.Now()
	const chunk = 50_000
	for done := 0; done < entries; done += chunk {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			messages, expiry := tx.Bucket(bucketMessages), tx.Bucket(bucketExpiry)
			for i := done; i < done+chunk; i++ {
				e := store.Entry{Recipient: addrs[i%devices], Sender: addrs[0], MessageID: binary.BigEndian.AppendUint64(nil, uint64(i)),
					Type: 1, Kind: 1, Ciphertext: make([]byte, 256), SentAt: 1, AcceptedAt: now, ExpiresAt: now.Add(time.Hour)}
				ak := appendAddr(nil, e.Recipient)
				id := uint64(i + 1)
				if err := messages.Put(messageKey(id, ak), encodeEntry(&e, 0)); err != nil {
					return err
				}
				if err := expiry.Put(expiryKey(appendTime(nil, e.ExpiresAt), ak, id), []byte{0}); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyNext, binary.BigEndian.AppendUint64(nil, entries+1))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var heap uint64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if n, err := s.TotalEntries(context.Background()); err != nil || n != entries {
			b.Fatalf("TotalEntries: got %d, %v, want %d", n, err, entries)
		}
		s.Close()
	}
	b.ReportMetric(float64(heap)/entries, "heap-B/entry")
}
