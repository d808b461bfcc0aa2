package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
)

// gatedStore holds its first AckMany until gate closes: a batch whose
// commit is slow (a sync under load) while more acks come.
type gatedStore struct {
	*mem.Store
	once sync.Once
	in   chan struct{}
	gate chan struct{}
}

func (s *gatedStore) AckMany(ctx context.Context, acks map[store.Address][]uint64) error {
	s.once.Do(func() { close(s.in); <-s.gate })
	return s.Store.AckMany(ctx, acks)
}

// TestStopDeletesEveryAck checks that a graceful stop deletes every entry
// the acker holds (SRV-018), when that takes more than one batch: four
// devices acknowledge ackFlushMax entries each while the first batch's
// commit is slow, and the acker is stopped. A stop that deleted one more
// batch and forgot the rest left them queued, to be delivered again after
// the restart.
func TestStopDeletesEveryAck(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	for run := range 5 {
		st := &gatedStore{Store: mem.New(), in: make(chan struct{}), gate: make(chan struct{})}
		a := newAcker(st, time.Hour, func(string, ...any) {})
		for d := range 4 {
			name := fmt.Sprint("dev", d)
			if err := st.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: make([]byte, 32), Created: now}); err != nil {
				t.Fatal(err)
			}
			addr := store.Address{Account: name, Device: 1}
			ids := make([]uint64, ackFlushMax)
			for i := range ids {
				e := []store.Entry{{Recipient: addr, MessageID: fmt.Appendf(nil, "%04d%012d", d, i), Sender: addr,
					Ciphertext: []byte{1}, SentAt: 1, AcceptedAt: now, ExpiresAt: now.Add(time.Hour)}}
				if _, _, err := st.Enqueue(ctx, e, store.Quota{}, now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				ids[i] = e[0].QueueID
			}
			a.add(addr, ids)
			if d == 0 {
				<-st.in // the first batch is being deleted, slowly
			}
		}
		stopped := make(chan struct{})
		go func() { a.close(true); close(stopped) }()
		time.Sleep(10 * time.Millisecond)
		close(st.gate)
		<-stopped
		if n, err := st.TotalEntries(ctx); err != nil || n > 0 {
			t.Fatalf("run %d: got %d entries queued (%v) after the graceful stop, want the %d acknowledged ones deleted", run+1, n, err, 4*ackFlushMax)
		}
	}
}
