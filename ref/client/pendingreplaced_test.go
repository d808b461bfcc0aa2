package client_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/wire"
)

// gate holds a device's deliveries while closed.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}
func (g *gate) hold() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }
func (g *gate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}
func (g *gate) wait(*wire.Delivery) bool {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	<-ch
	return true
}

// TestReplacedSessionDecryptsAnswers checks PQX-014's keeping of the
// replaced session: bob reads alice's first message ten days after she
// fetched his bundle and answers at once (a delivered receipt and a
// text), in the session it made. alice, offline meanwhile, comes back on
// day 31 and sends before her device has read its queue (held by a gate):
// PQX-014 makes her replace the session, and bob's answers, queued for her
// and not expired, must still decrypt in the replaced one (a review found
// them lost).
func TestReplacedSessionDecryptsAnswers(t *testing.T) {
	w := newWorld(t)
	g := newGate()
	alice := w.deviceWith("alice", client.Config{OnDelivery: g.wait})
	bob := w.device("bob")
	bob.c.Close()
	first, err := alice.c.Send(ctx, "bob", "first")
	if err != nil {
		t.Fatal(err)
	}
	alice.c.Close()
	w.clock.add(10 * 24 * time.Hour)
	bob.reconnect(t)
	if m := bob.next(t, client.EventMessage).Message; m.Text != "first" {
		t.Fatalf("bob's message: got %q", m.Text)
	}
	if _, err := bob.c.Send(ctx, "alice", "reply from bob"); err != nil {
		t.Fatal(err)
	}
	w.clock.add(21 * 24 * time.Hour) // day 31: bob's answers expire on day 40
	g.hold()
	alice.reconnect(t)
	if _, err := alice.c.Send(ctx, "bob", "second"); err != nil {
		t.Fatal(err)
	}
	g.release()
	if m := bob.next(t, client.EventMessage).Message; m.Text != "second" {
		t.Fatalf("bob's message: got %q", m.Text)
	}
	if m := alice.next(t, client.EventMessage).Message; m.Text != "reply from bob" {
		t.Fatalf("alice: got %q, want bob's reply", m.Text)
	}
	m, err := alice.Sent(first.ID)
	if err != nil || m.Statuses[1] < client.StatusDelivered {
		t.Fatalf("alice's first message: status %v, %v; want delivered", m.Statuses, err)
	}
}

// TestPendingSessionClockBack checks PQX-014 with a clock that went back:
// alice's clock ran a year ahead when she fetched bob's bundle (her send
// then was refused: sent-at ahead); set right, she sends a message that
// expires in bob's queue while he is offline. He replaces his signed
// prekey on day 31 and deletes the old one PREKEY_GRACE later. On day 93
// her session, fetched "a year from now" by the time she recorded, must
// count as old, not as new: bob is shown her message.
func TestPendingSessionClockBack(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	ahead := 365 * 24 * time.Hour
	aliceNow := func() time.Time { mu.Lock(); defer mu.Unlock(); return w.clock.now().Add(ahead) }
	alice := w.deviceWith("alice", client.Config{Clock: aliceNow})
	bob := w.device("bob")
	bob.c.Close()
	if _, err := alice.c.Send(ctx, "bob", "a year ahead"); err == nil {
		t.Log("the send a year ahead was accepted")
	} else {
		t.Logf("the send a year ahead: %v", err)
	}
	mu.Lock()
	ahead = 0
	mu.Unlock()
	alice.reconnect(t)
	sendAfterGrace(t, w, alice, bob)
}

// TestPendingSessionBoundary checks a send whose session turns
// PREKEY_SESSION_AGE old between deliverContent's look at the sessions
// and their use by encryptFor: alice's clock crosses the age between the
// two reads of initiatedLongAgo (found by the name of the caller). The
// message must still go, from a new bundle (a review found it sent to no
// device, and Send reporting no error).
func TestPendingSessionBoundary(t *testing.T) {
	w := newWorld(t)
	base := w.clock.now()
	var (
		mu    sync.Mutex
		armed bool
		reads int
	)
	aliceNow := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if !armed {
			return w.clock.now()
		}
		pc := make([]uintptr, 4)
		n := runtime.Callers(2, pc)
		fs := runtime.CallersFrames(pc[:n])
		f, _ := fs.Next()
		if strings.HasSuffix(f.Function, "initiatedLongAgo") {
			reads++
		}
		if reads <= 1 {
			return base.Add(wire.PrekeySessionAge*time.Second - time.Millisecond)
		}
		return base.Add(wire.PrekeySessionAge * time.Second)
	}
	alice := w.deviceWith("alice", client.Config{Clock: aliceNow})
	bob := w.device("bob")
	bob.c.Close()
	if _, err := alice.c.Send(ctx, "bob", "first"); err != nil {
		t.Fatal(err)
	}
	w.clock.add(wire.PrekeySessionAge*time.Second - time.Millisecond)
	mu.Lock()
	armed = true
	mu.Unlock()
	m, err := alice.c.Send(ctx, "bob", "at the boundary")
	if err != nil {
		t.Fatal(err)
	}
	if m.Accepted == 0 {
		t.Errorf("Send returned no error, but the server never accepted %q (accepted 0, statuses %v)", m.Text, m.Statuses)
	}
	bob.reconnect(t)
	for {
		got := bob.next(t, client.EventMessage).Message
		t.Logf("bob shown %q", got.Text)
		if got.Text == "at the boundary" {
			return
		}
	}
}
