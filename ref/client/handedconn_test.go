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
