package client

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestReplacedPrekeys checks PQX-012 and PQX-013 on a device without a
// server: its signed and last-resort prekeys are due PREKEY_ROTATION
// after their acceptance, not before; an upload not yet answered is made
// once and sent again as it is; a prekey message naming the replaced pair
// is taken until PREKEY_GRACE after the replacement, and refused from
// then on with state.unknown_prekey, leaving the state as it was (PQX-009:
// but the delivery's processed pair),
// even before a sweep has deleted the keys; the sweep then deletes them
// and the ephemeral keys kept for their pair, and the current pair works.
func TestReplacedPrekeys(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob := offline(t, "bob", func() time.Time { return now })
	peers := map[string]*keys.PrivateKey{}
	for _, name := range []string{"alice", "carol", "dave"} {
		peers[name] = newKey(t)
		acceptReviewList(t, bob, name, 1, peers[name], map[uint64]*keys.PrivateKey{1: peers[name]})
	}
	up1, err := bob.newPrekeys(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	bob.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "registered", []byte{1}) })
	if err := bob.accepted(up1); err != nil {
		t.Fatal(err)
	}
	bundle := func(up *wire.PrekeyUpload) []byte {
		t.Helper()
		b, err := wire.Marshal(&wire.Bundle{Version: wire.ProtocolVersion, IdentityKey: bob.identity.Public().Encode(),
			SignedPreKey: *up.SignedPreKey, KEMPreKey: *up.LastResort})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(name string, up *wire.PrekeyUpload) (*Message, error) {
		t.Helper()
		p := newReviewPeerWith(t, wire.Address{Account: name, Device: 1}, peers[name], bundle(up))
		text := "from " + name
		m, _, err := bob.receive(p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text}))
		return m, err
	}

	now = now.Add(wire.PrekeyRotation*time.Second - time.Millisecond)
	if bob.rotationDue() {
		t.Fatalf("due a millisecond before PREKEY_ROTATION: got true, want false")
	}
	now = now.Add(time.Millisecond)
	if !bob.rotationDue() {
		t.Fatalf("due at PREKEY_ROTATION: got false, want true")
	}
	up2, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	again, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := cborEnc.Marshal(up2)
	if b, _ := cborEnc.Marshal(again); !bytes.Equal(b, b2) || up2.SignedPreKey.ID == up1.SignedPreKey.ID || up2.LastResort.ID == up1.LastResort.ID {
		t.Fatalf("uploads of the new pair: got ids %d and %d, then %d and %d (the same bytes: %v); want a new pair, sent again as it is",
			up2.SignedPreKey.ID, up2.LastResort.ID, again.SignedPreKey.ID, again.LastResort.ID, bytes.Equal(b, b2))
	}
	if !bob.rotationDue() {
		t.Fatalf("due with its upload unanswered: got false, want true")
	}
	if err := bob.accepted(up2); err != nil {
		t.Fatal(err)
	}
	if bob.rotationDue() {
		t.Fatalf("due after the new pair's acceptance: got true, want false")
	}

	now = now.Add(wire.PrekeyGrace*time.Second - time.Millisecond)
	if m, err := send("alice", up1); err != nil || m == nil {
		t.Fatalf("a prekey message naming the replaced pair a millisecond before PREKEY_GRACE: got %v, %v; want it taken", m, err)
	}
	now = now.Add(time.Millisecond)
	before := dump(t, bob)
	if m, err := send("carol", up1); errcode.Of(err) != errcode.StateUnknownPrekey {
		t.Fatalf("a prekey message naming the replaced pair at PREKEY_GRACE: got %v, %v; want state.unknown_prekey", m, err)
	}
	if after := dump(t, bob); !bytes.Equal(before, after) {
		t.Errorf("the device's state after the refused prekey message: changed, want as it was (PQX-009)")
	}
	if n, err := bob.forgetReplaced(); n != 2 || err != nil {
		t.Fatalf("keys the sweep deleted: got %d, %v; want 2", n, err)
	}
	bob.db.View(func(tx *bolt.Tx) error {
		p := prekeyStore{tx, now}
		for _, c := range []struct {
			what       string
			held, want bool
		}{
			{"the replaced signed prekey", tx.Bucket(bucketSPK).Get(u32(uint32(up1.SignedPreKey.ID))) != nil, false},
			{"the replaced last-resort KEM prekey", tx.Bucket(bucketKEM).Get(u32(uint32(up1.LastResort.ID))) != nil, false},
			{"the signed prekey", has(p.SignedPreKey(uint32(up2.SignedPreKey.ID))), true},
			{"the last-resort KEM prekey", hasKEM(p.KEMPreKey(uint32(up2.LastResort.ID))), true},
			{"the ephemeral key of alice's prekey message", tx.Bucket(bucketLastResort).Stats().KeyN > 0, false},
			{"a replaced key's entry", tx.Bucket(bucketReplaced).Stats().KeyN > 0, false},
		} {
			if c.held != c.want {
				t.Errorf("after the sweep: %s held: got %v, want %v", c.what, c.held, c.want)
			}
		}
		return nil
	})
	if m, err := send("dave", up2); err != nil || m == nil {
		t.Fatalf("a prekey message naming the current pair: got %v, %v; want it taken", m, err)
	}
}

// TestRotationClockBack checks that a pair accepted while the device's
// clock ran a year ahead is due once the clock is set right, instead of a
// year later, and that a pair replaced then is deleted PREKEY_GRACE after
// the clock was set right, not a year later.
func TestRotationClockBack(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob := offline(t, "bob", func() time.Time { return now })
	bob.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "registered", []byte{1}) })
	now = now.AddDate(1, 0, 0)
	up, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.accepted(up); err != nil {
		t.Fatal(err)
	}
	if bob.rotationDue() {
		t.Fatalf("due right after the acceptance: got true, want false")
	}
	up2, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.accepted(up2); err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(-1, 0, 0)
	if !bob.rotationDue() {
		t.Fatalf("due with the clock set back a year: got false, want true")
	}
	// The pair replaced while the clock ran ahead goes PREKEY_GRACE from
	// now, not a year and PREKEY_GRACE from now.
	if n, err := bob.forgetReplaced(); n != 0 || err != nil {
		t.Fatalf("keys the sweep deleted with the clock set back: got %d, %v; want 0", n, err)
	}
	now = now.Add(wire.PrekeyGrace * time.Second)
	if n, err := bob.forgetReplaced(); n != 2 || err != nil {
		t.Fatalf("keys the sweep deleted PREKEY_GRACE after the clock was set back: got %d, %v; want 2", n, err)
	}
}

// dump returns every key and value of the device's database, in order,
// but the processed pairs: a delivery that fails is marked processed, so
// that it is acknowledged and never tried again (CLI-001).
func dump(t *testing.T, d *Device) []byte {
	t.Helper()
	var out []byte
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.Equal(name, bucketProcessed) {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				for _, p := range [][]byte{name, k, v} {
					out = binary.AppendUvarint(out, uint64(len(p)))
					out = append(out, p...)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAcceptedKeepsNewerPair checks that the acceptance of a pair replaces
// only older ones: a newer pair, made meanwhile (a rotation between the
// registration's upload and its acceptance) and about to be served, is
// kept, and its keys still read prekey messages after PREKEY_GRACE.
func TestAcceptedKeepsNewerPair(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob := offline(t, "bob", func() time.Time { return now })
	aliceIK := newKey(t)
	acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	up1, err := bob.newPrekeys(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	bob.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "registered", []byte{1}) })
	up2, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.accepted(up1); err != nil {
		t.Fatal(err)
	}
	if err := bob.accepted(up2); err != nil {
		t.Fatal(err)
	}
	now = now.Add(wire.PrekeyGrace*time.Second + time.Minute)
	if _, err := bob.forgetReplaced(); err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(&wire.Bundle{Version: wire.ProtocolVersion, IdentityKey: bob.identity.Public().Encode(),
		SignedPreKey: *up2.SignedPreKey, KEMPreKey: *up2.LastResort})
	if err != nil {
		t.Fatal(err)
	}
	p := newReviewPeerWith(t, wire.Address{Account: "alice", Device: 1}, aliceIK, b)
	text := "to the newer pair"
	if m, _, err := bob.receive(p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text})); err != nil || m == nil {
		t.Fatalf("a prekey message naming the newer pair after PREKEY_GRACE: got %v, %v; want it taken", m, err)
	}
}

// TestLostAnswerAge checks that a pair whose upload's answer was lost is
// as old as its upload (PQX-012): made on day 7, its acceptance learned on
// day 27, it is due at once, not on day 34.
func TestLostAnswerAge(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob := offline(t, "bob", func() time.Time { return now })
	bob.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "registered", []byte{1}) })
	up1, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.accepted(up1); err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(0, 0, 7)
	up2, err := bob.rotationUpload()
	if err != nil {
		t.Fatal(err)
	}
	now = now.AddDate(0, 0, 20)
	if err := bob.accepted(up2); err != nil {
		t.Fatal(err)
	}
	if !bob.rotationDue() {
		t.Fatalf("due on day 27 for a pair uploaded on day 7: got false, want true")
	}
}
