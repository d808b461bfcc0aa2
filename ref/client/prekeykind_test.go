package client_test

import (
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
)

// TestReplenishOneKindFull checks that a device whose server holds
// MAX_ONE_TIME_PREKEYS one-time EC prekeys but runs low of one-time KEM
// prekeys gets KEM prekeys up: SRV-025 refuses the whole upload when one
// kind would go over, and the reference client uploads both kinds in one
// batch and takes a refusal as "enough held", so its KEM prekeys run out
// (fetches then get the last-resort KEM prekey) until some 100 fetches
// have made room for a batch of EC prekeys. The notice says no kind, so
// the device cannot tell which kind is low; it must find out.
func TestReplenishOneKindFull(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	st := mem.New()
	addr, _ := serve(t, st, clk)
	w := &world{t: t, addr: addr, clock: clk, dir: t.TempDir()}
	bob := w.device("bob")
	_, nextBefore := bob.OneTimePrekeys()
	a := store.Address{Account: "bob", Device: 1}
	var pad []store.Prekey
	for id := range uint32(server.MaxOneTimePrekeys - server.PrekeyLow) {
		pad = append(pad, store.Prekey{ID: 1_000_000 + id, Key: []byte{byte(id)}})
	}
	if _, err := st.PutPrekeys(ctx, a, store.PrekeyUpdate{OneTimeEC: pad}); err != nil {
		t.Fatal(err)
	}
	for range client.PrekeyBatch - server.PrekeyLow {
		if _, _, err := st.TakeBundle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	alice := w.device("alice")
	if err := alice.c.FetchPrekeys(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	bob.next(t, client.EventNotice)
	waitUntil(t, "bob's batch made and answered", func() bool {
		_, next := bob.OneTimePrekeys()
		return next == nextBefore+client.PrekeyBatch && !bob.Replenishing()
	})
	if c, _, _ := st.PrekeyCounts(ctx, a); c.KEM < server.PrekeyLow {
		t.Errorf("bob's one-time KEM prekeys on the server once his replenishment is answered: got %d (EC %d), want at least PREKEY_LOW (%d): the EC prekeys being full kept the KEM prekeys out", c.KEM, c.EC, server.PrekeyLow)
	}
}
