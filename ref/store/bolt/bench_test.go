package bolt_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
)

// benchParallelism is the goroutines per GOMAXPROCS of the write
// benchmarks: enough concurrent callers for group commits to fill.
const benchParallelism = 64

// BenchmarkEnqueue enqueues one entry of 256 bytes per call, from many
// goroutines, so that calls share commits. Compare with
// BenchmarkBatchBaseline: the ratio is the store's cost over bbolt's own
// batched write path (the fsync per commit dominates both).
func BenchmarkEnqueue(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "missive.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: t0}); err != nil {
			b.Fatal(err)
		}
	}
	alice := store.Address{Account: "alice", Device: 1}
	bob := store.Address{Account: "bob", Device: 1}
	ciphertext := make([]byte, 256)
	var n atomic.Uint64
	b.SetBytes(int64(len(ciphertext)))
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := make([]byte, 16)
		for pb.Next() {
			binary.BigEndian.PutUint64(id, n.Add(1))
			e := []store.Entry{{
				Recipient: bob, Sender: alice, MessageID: id, Type: 1, Kind: 1,
				Ciphertext: ciphertext, SentAt: 1, AcceptedAt: t0, ExpiresAt: t0.Add(time.Hour),
			}}
			if _, _, err := s.Enqueue(ctx, e, store.Quota{}, t0.Add(time.Hour)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBatchBaseline puts one 256-byte value per call through bbolt's
// DB.Batch, from as many goroutines as BenchmarkEnqueue.
func BenchmarkBatchBaseline(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "baseline.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 256)
	var n atomic.Uint64
	b.SetBytes(int64(len(value)))
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := binary.BigEndian.AppendUint64(nil, n.Add(1))
			if err := db.Batch(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucket).Put(k, value)
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEnqueueDevices enqueues envelopes of one entry for each of n
// devices of the recipient account, as a sender to an account with n
// devices does, from many goroutines; it reports entries per second
// besides the time per envelope. Compare the sub-benchmarks: how the cost
// of an envelope grows with the devices of an account.
func BenchmarkEnqueueDevices(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "missive.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, name := range []string{"alice", "bob"} {
				if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 33), Created: t0}); err != nil {
					b.Fatal(err)
				}
			}
			for range n - 1 {
				if _, err := s.AddDevice(ctx, "bob", make([]byte, 33), t0); err != nil {
					b.Fatal(err)
				}
			}
			alice := store.Address{Account: "alice", Device: 1}
			ciphertext := make([]byte, 256)
			var next atomic.Uint64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := binary.BigEndian.AppendUint64(make([]byte, 8, 16), next.Add(1))
					e := make([]store.Entry, n)
					for i := range e {
						e[i] = store.Entry{
							Recipient: store.Address{Account: "bob", Device: uint32(i + 1)}, Sender: alice, MessageID: id,
							Type: 1, Kind: 1, Ciphertext: ciphertext, SentAt: 1, AcceptedAt: t0, ExpiresAt: t0.Add(time.Hour),
						}
					}
					if _, _, err := s.Enqueue(ctx, e, store.Quota{}, t0.Add(time.Hour)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
