package client_test

import (
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestPendingSessionAge checks PQX-014: alice, who has heard nothing from
// bob (offline), sends in the session of her first bundle until it is a
// second short of PREKEY_SESSION_AGE old, then fetches a new bundle; bob,
// back, is shown every message.
func TestPendingSessionAge(t *testing.T) {
	w, fetches := countingWorld(t, wire.FrameFetchPrekeys)
	clk := w.clock
	alice, bob := w.device("alice"), w.device("bob")
	bob.c.Close()
	for _, c := range []struct {
		advance time.Duration
		text    string
		want    int64
	}{
		{0, "one", 1},
		{wire.PrekeySessionAge*time.Second - time.Second, "two", 1},
		{time.Second, "three", 2},
	} {
		clk.add(c.advance)
		if _, err := alice.c.Send(ctx, "bob", c.text); err != nil {
			t.Fatal(err)
		}
		if got := fetches.Load(); got != c.want {
			t.Errorf("alice's bundle fetches after %q: got %d, want %d", c.text, got, c.want)
		}
	}
	bob.reconnect(t)
	for _, want := range []string{"two", "three"} { // "one" expired, MAX_TTL old
		if m := bob.next(t, client.EventMessage).Message; m.Text != want {
			t.Fatalf("bob's message: got %q, want %q", m.Text, want)
		}
	}
}

// TestPendingSessionAfterGrace checks PQX-013 and PQX-014 together: none of
// alice's messages reached bob (the first expired while he was offline);
// he replaced his signed prekey and, PREKEY_GRACE later, deleted the old
// one. alice's next message must not name it: bob is shown it.
func TestPendingSessionAfterGrace(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.device("alice"), w.device("bob")
	bob.c.Close()
	sendAfterGrace(t, w, alice, bob)
}

// sendAfterGrace has alice send bob, offline, a message that expires
// unread; bob, back a day after MAX_TTL, replaces his signed prekey, and
// deletes the old one PREKEY_GRACE and a day later; then alice sends
// again, from a new bundle (PQX-014), and bob must be shown it.
func sendAfterGrace(t *testing.T, w *world, alice, bob *dev) {
	t.Helper()
	if _, err := alice.c.Send(ctx, "bob", "expires unread"); err != nil {
		t.Fatal(err)
	}
	w.clock.add((wire.MaxTTL + 86400) * time.Second)
	bob.reconnect(t)
	waitUntil(t, "bob's new signed prekey", func() bool { return !bob.RotationDue() })
	w.clock.add((wire.PrekeyGrace + 86400) * time.Second)
	bob.reconnect(t)
	alice.reconnect(t)
	if _, err := alice.c.Send(ctx, "bob", "after the grace"); err != nil {
		t.Fatal(err)
	}
	if m := bob.next(t, client.EventMessage).Message; m.Text != "after the grace" {
		t.Fatalf("bob's message: got %q, want %q", m.Text, "after the grace")
	}
}
