package client_test

import (
	"testing"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
)

// TestReplenishRefused checks how a device takes the server's refusal of a
// batch of one-time prekeys that would leave more than
// MAX_ONE_TIME_PREKEYS of a kind held (SRV-025). The server holds
// MAX_ONE_TIME_PREKEYS one-time EC prekeys of bob's, put in its store, and
// PREKEY_LOW KEM prekeys; alice's fetch leaves fewer than PREKEY_LOW KEM
// prekeys, and bob, told so, uploads a batch of each kind, which is
// refused whole. The notice names no kind: bob uploads each kind alone,
// the KEM prekeys are taken, and the EC prekeys, refused again, are held
// enough of: he deletes their private keys and reports no error. (Before,
// he took the first refusal as enough of both, and his KEM prekeys ran
// out while the EC prekeys were full.)
func TestReplenishRefused(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.device("bob")
	heldBefore, nextBefore := bob.OneTimePrekeys()
	if heldBefore != client.PrekeyBatch {
		t.Fatalf("bob's private one-time EC prekeys after registering: got %d, want %d", heldBefore, client.PrekeyBatch)
	}
	a := store.Address{Account: "bob", Device: 1}
	// Bob's batch of registration, and padding put in the store after it
	// (not bob's keys: the fetches take the oldest first, and none gets
	// that far), less what the bundles taken until PREKEY_LOW KEM prekeys
	// are left take: MAX_ONE_TIME_PREKEYS EC prekeys.
	var pad []store.Prekey
	for id := range uint32(server.MaxOneTimePrekeys - server.PrekeyLow) {
		pad = append(pad, store.Prekey{ID: 1_000_000 + id, Key: []byte{byte(id)}})
	}
	if _, err := st.PutPrekeys(ctx, a, store.PrekeyUpdate{OneTimeEC: pad}); err != nil {
		t.Fatal(err)
	}
	for range client.PrekeyBatch - server.PrekeyLow {
		if _, _, err := st.TakeBundle(ctx, a, store.Budget{}); err != nil {
			t.Fatal(err)
		}
	}
	if c, _, _ := st.PrekeyCounts(ctx, a); c != (store.Counts{EC: server.MaxOneTimePrekeys, KEM: server.PrekeyLow}) {
		t.Fatalf("bob's one-time prekeys on the server: got %+v, want %d EC and %d KEM", c, server.MaxOneTimePrekeys, server.PrekeyLow)
	}

	alice := w.device("alice")
	if err := alice.c.FetchPrekeys(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if n := bob.next(t, client.EventNotice).Notice; n.Count == nil || *n.Count != server.PrekeyLow-1 {
		t.Fatalf("bob's notice: got %+v, want prekeys-low with %d", n, server.PrekeyLow-1)
	}
	// The batch is made (its ids taken), refused, and its EC keys deleted.
	waitUntil(t, "bob's batch made and deleted", func() bool {
		held, next := bob.OneTimePrekeys()
		return next == nextBefore+client.PrekeyBatch && held == heldBefore && !bob.Replenishing()
	})
	// The batch's KEM prekeys, which fit, are taken alone.
	if c, _, _ := st.PrekeyCounts(ctx, a); c != (store.Counts{EC: server.MaxOneTimePrekeys - 1, KEM: server.PrekeyLow - 1 + client.PrekeyBatch}) {
		t.Errorf("bob's one-time prekeys on the server after the refusal: got %+v, want %d EC and %d KEM", c, server.MaxOneTimePrekeys-1, server.PrekeyLow-1+client.PrekeyBatch)
	}
	for {
		select {
		case e := <-bob.c.Events:
			if e.Kind == client.EventError {
				t.Errorf("bob's event after the refused batch: got error %v, want none", e.Err)
			}
			continue
		default:
		}
		break
	}
}
