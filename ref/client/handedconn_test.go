package client_test

import (
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestConnectedForgetsHandedOut checks PQX-015 on a device that stays
// connected: 95 of bob's one-time prekeys are handed out, the last by a
// fetch through the server, whose notice makes bob upload a batch, and
// its answer's counts mark the 95. PREKEY_GRACE later, without a new
// connection, bob must have deleted their private keys (a review found
// them deleted only at the next connection).
func TestConnectedForgetsHandedOut(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.deviceWith("bob", client.Config{Keepalive: 50 * time.Millisecond})
	a := store.Address{Account: "bob", Device: 1}
	for range 94 {
		if _, _, err := st.TakeBundle(ctx, a, store.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	alice := w.device("alice")
	if err := alice.c.FetchPrekeys(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob's batch after the notice", func() bool {
		held, _ := bob.OneTimePrekeys()
		c, _, _ := st.PrekeyCounts(ctx, a)
		return held == 2*client.PrekeyBatch && c.EC == 2*client.PrekeyBatch-95 && !bob.Replenishing()
	})
	w.clock.add(wire.PrekeyGrace*time.Second + time.Hour)
	waitUntil(t, "the handed-out keys deleted, still connected", func() bool {
		held, _ := bob.OneTimePrekeys()
		return held == 2*client.PrekeyBatch-95
	})
}

// TestReplenishAnswerLost checks that a batch of one-time prekeys whose
// upload's answer was lost (here: sent by the test) is sent again as it
// is at the next connection, and the server's state.duplicate_prekey taken
// as its acceptance: its keys are then counted (PQX-015), not kept
// uncounted for good.
func TestReplenishAnswerLost(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.device("bob")
	up, err := bob.ReplenishUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.UploadPrekeys(ctx, up); err != nil {
		t.Fatal(err)
	}
	if !bob.ReplenishPending() || bob.KnownOneTimeEC() != client.PrekeyBatch {
		t.Fatalf("before the next connection: pending %v, %d keys known; want pending, %d known", bob.ReplenishPending(), bob.KnownOneTimeEC(), client.PrekeyBatch)
	}
	bob.reconnect(t)
	waitUntil(t, "bob's batch sent again and counted", func() bool {
		return !bob.ReplenishPending() && bob.KnownOneTimeEC() == 2*client.PrekeyBatch && !bob.Replenishing()
	})
	if c, _, _ := st.PrekeyCounts(ctx, store.Address{Account: "bob", Device: 1}); c.EC != 2*client.PrekeyBatch {
		t.Errorf("bob's one-time EC prekeys on the server: got %d, want %d", c.EC, 2*client.PrekeyBatch)
	}
	for len(bob.c.Events) > 0 {
		if e := <-bob.c.Events; e.Kind == client.EventError {
			t.Errorf("bob's event: got error %v, want none", e.Err)
		}
	}
}

// TestResendKeepsHandedOutMarks checks PQX-015 for a batch counted and
// sent again: its acceptance is recorded but "replenish" is left (as a
// crash between the two would leave it). At the next connection the
// welcome's counts mark 130 keys handed out (1 to 100, and 101 to 130 of
// the batch), then the resend's state.duplicate_prekey is taken as the
// acceptance again, which must leave those marks (a review found them
// reset to 0): PREKEY_GRACE later the device must have deleted all 130.
func TestResendKeepsHandedOutMarks(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.device("bob")
	a := store.Address{Account: "bob", Device: 1}
	up, err := bob.ReplenishUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.UploadAndCount(ctx, up); err != nil {
		t.Fatal(err)
	}
	for range 130 {
		if _, _, err := st.TakeBundle(ctx, a, store.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	bob.reconnect(t)
	waitUntil(t, "the pending batch sent again", func() bool { return !bob.ReplenishPending() && !bob.Replenishing() })
	if at, _ := bob.HandedAtEC(120); at == 0 {
		t.Errorf("key 120, handed out and learned so at the welcome: mark reset to 0 by the resend")
	}
	w.clock.add(wire.PrekeyGrace*time.Second + time.Hour)
	bob.reconnect(t)
	if held, _ := bob.OneTimePrekeys(); held != 2*client.PrekeyBatch-130 {
		t.Errorf("one-time EC private keys PREKEY_GRACE after learning 130 handed out: got %d, want %d", held, 2*client.PrekeyBatch-130)
	}
}

// TestFirstDuplicateNotAccepted checks that a batch whose first sending
// is refused with state.duplicate_prekey (its ids collide: a restored
// database, or the fault restart-prekey-ids) is not sent again and taken
// as accepted at the next connection (a review found it was: keys the
// server never stored counted, the marks of handed-out keys with those
// ids reset, and no batch uploaded): the next batch goes up instead.
func TestFirstDuplicateNotAccepted(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.device("bob")
	a := store.Address{Account: "bob", Device: 1}
	for range 51 {
		if _, _, err := st.TakeBundle(ctx, a, store.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	bob.RestartOneTimeIDs()
	bob.reconnect(t) // 49 held: replenish makes ids 1..100 again, refused
	waitUntil(t, "the first sending answered", func() bool { return !bob.Replenishing() && len(bob.c.Events) > 0 })
	t.Logf("first sending: pending %v, event %v", bob.ReplenishPending(), (<-bob.c.Events).Err)
	if at, _ := bob.HandedAtEC(10); at == 0 {
		t.Fatalf("key 10 not marked handed out at the welcome")
	}
	bob.reconnect(t)
	waitUntil(t, "a new batch uploaded", func() bool {
		c, _, _ := st.PrekeyCounts(ctx, a)
		return c.EC >= client.PrekeyBatch/2 && !bob.Replenishing()
	})
	if at, _ := bob.HandedAtEC(10); at == 0 {
		t.Errorf("key 10, learned handed out: mark reset to 0 by the refused batch's 'acceptance'")
	}
}
