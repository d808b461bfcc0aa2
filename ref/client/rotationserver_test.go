package client_test

import (
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestPrekeyRotationOnConnect checks PQX-012 through a server: a device
// connecting a second before its signed prekey is PREKEY_ROTATION old
// keeps it; one connecting at that age uploads a new one, which the
// server then serves. An upload whose answer the device did not get (here:
// sent by the test) is sent again at the next connection, and the server's
// state.duplicate_prekey taken as its acceptance.
func TestPrekeyRotationOnConnect(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	bob := w.device("bob")
	a := store.Address{Account: "bob", Device: 1}
	served := func() uint32 {
		t.Helper()
		bk, _, err := st.TakeBundle(ctx, a, store.Budget{})
		if err != nil {
			t.Fatal(err)
		}
		return bk.SignedPrekey.ID
	}
	first := served()

	w.clock.add(wire.PrekeyRotation*time.Second - time.Second)
	bob.reconnect(t)
	if bob.RotationDue() {
		t.Fatalf("due a second before PREKEY_ROTATION: got true, want false")
	}
	if got := served(); got != first {
		t.Fatalf("signed prekey served a second before PREKEY_ROTATION: got %d, want %d", got, first)
	}

	w.clock.add(time.Second)
	bob.reconnect(t)
	waitUntil(t, "bob's new signed prekey", func() bool { return !bob.RotationDue() })
	second := served()
	if second == first {
		t.Fatalf("signed prekey served after PREKEY_ROTATION: got %d, the first, want a new one", second)
	}

	w.clock.add(wire.PrekeyRotation * time.Second)
	up, err := bob.RotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.UploadPrekeys(ctx, up); err != nil {
		t.Fatal(err)
	}
	if !bob.RotationDue() {
		t.Fatalf("due with its upload's answer not taken: got false, want true")
	}
	bob.reconnect(t)
	waitUntil(t, "bob's upload sent again and taken", func() bool { return !bob.RotationDue() })
	if got := served(); got != uint32(up.SignedPreKey.ID) {
		t.Fatalf("signed prekey served: got %d, want %d, the upload's", got, up.SignedPreKey.ID)
	}
	for len(bob.c.Events) > 0 {
		if e := <-bob.c.Events; e.Kind == client.EventError {
			t.Errorf("bob's event after the upload sent again: got error %v, want none", e.Err)
		}
	}
}
