package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// metric returns the value of a counter of the server's metrics.
func metric(t *testing.T, srv *server.Server, name string) uint64 {
	t.Helper()
	var b bytes.Buffer
	srv.WriteMetrics(context.Background(), &b)
	for line := range bytes.Lines(b.Bytes()) {
		var v uint64
		if n, _ := fmt.Sscanf(string(line), name+" %d", &v); n == 1 {
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestAckHeld checks SRV-011 with deletes held far longer than ACK_DELAY:
// acknowledged entries stay in the store until the batch is deleted, no
// connection of the device is delivered them again meanwhile (a new one
// included), and a graceful stop deletes them all.
func TestAckHeld(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.AckDelay = time.Hour })
	ctx := context.Background()
	_, alice := e.device("alice")
	bobDev, bob := e.device("bob")
	quiet := func(deliveries uint64) {
		t.Helper()
		waitFor(t, "the acks", func() bool { return metric(t, e.srv, "missive_acks_total") == deliveries })
		if got := metric(t, e.srv, "missive_deliveries_total"); got != deliveries {
			t.Fatalf("deliveries: got %d, want %d", got, deliveries)
		}
	}

	if _, err := alice.Send(ctx, "bob", "one"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, bob, client.EventMessage); ev.Message.Text != "one" {
		t.Fatalf("got %q, want one", ev.Message.Text)
	}
	next(t, alice, client.EventStatus) // delivered
	quiet(2)                           // the message and its receipt
	if n, _ := e.st.TotalEntries(ctx); n != 2 {
		t.Fatalf("entries held: got %d, want 2", n)
	}

	bob.Close()
	bob = e.connect(bobDev)
	if _, err := alice.Send(ctx, "bob", "two"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, bob, client.EventMessage); ev.Message.Text != "two" {
		t.Fatalf("got %q, want two", ev.Message.Text)
	}
	next(t, alice, client.EventStatus)
	quiet(4) // not 5: "one" was not delivered to bob's new connection

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.st.TotalEntries(ctx); n != 0 {
		t.Fatalf("entries after a graceful stop: got %d, want 0", n)
	}
}

// ackCounter counts the queue ids the server asks the store to delete.
type ackCounter struct {
	store.Store
	ids atomic.Int64
}

func (s *ackCounter) Ack(ctx context.Context, a store.Address, ids []uint64) error {
	s.ids.Add(int64(len(ids)))
	return s.Store.Ack(ctx, a, ids)
}

func (s *ackCounter) AckMany(ctx context.Context, acks map[store.Address][]uint64) error {
	for _, ids := range acks {
		s.ids.Add(int64(len(ids)))
	}
	return s.Store.(store.ManyAcker).AckMany(ctx, acks)
}

// TestStrayAcks checks SRV-011's "ids that name no entry of the device are
// ignored" and SRV-021: acks of ids that name nothing, and acks repeated,
// cost no store write and are not held, so a device that sends acks
// without end holds no more of the server's memory than its queue; an ack,
// on a new connection, of an entry delivered on the one before still
// deletes it.
func TestStrayAcks(t *testing.T) {
	st := &ackCounter{Store: mem.New()}
	e := startWith(t, st, newClock(), nil)
	ctx := context.Background()
	alice, bob := e.member("alice"), e.member("bob")
	queued := func() int {
		t.Helper()
		s, err := st.Stats(ctx, store.Address{Account: "bob", Device: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s.Entries
	}

	alice.do(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	dl := bob.delivery()
	for i := range 200 {
		stray := make([]uint64, wire.MaxReceiptIDs)
		for j := range stray {
			stray[j] = 1<<40 + uint64(i*wire.MaxReceiptIDs+j) // no entry has these ids
		}
		bob.ack(stray...)
	}
	bob.ack(dl.QueueID)
	for range 200 {
		bob.ack(dl.QueueID) // repeated, while it is held and once it is deleted
	}
	waitFor(t, "the ack's delete", func() bool { return queued() == 0 })
	e.srv.Shutdown(ctx) // flushes what is held
	if got := st.ids.Load(); got != 1 {
		t.Errorf("queue ids the server asked the store to delete: got %d, want 1", got)
	}
}

// TestAckOnNewConnection checks SRV-011 across connections: an entry
// delivered on one connection and acknowledged on the next is deleted,
// whether the new connection has delivered it again or not.
func TestAckOnNewConnection(t *testing.T) {
	st := mem.New()
	e := startWith(t, st, newClock(), nil)
	ctx := context.Background()
	alice, bob := e.member("alice"), e.member("bob")
	alice.do(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	dl := bob.delivery()
	bob.close()
	bob.connect(false)
	bob.ack(dl.QueueID)
	waitFor(t, "the ack's delete", func() bool {
		s, err := st.Stats(ctx, store.Address{Account: "bob", Device: 1})
		return err == nil && s.Entries == 0
	})
}
