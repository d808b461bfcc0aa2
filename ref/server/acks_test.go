package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/mem"
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
