package client

import (
	"crypto/rand"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestOneTimePrekeysConsumed checks PQX-010: once bob has taken a prekey
// message that used a one-time EC prekey and a one-time KEM prekey, he
// holds neither any more, and still holds his signed prekey and his
// last-resort KEM prekey (PQX-010 forbids deleting those).
func TestOneTimePrekeysConsumed(t *testing.T) {
	bob, aliceIK, up := bobWithPrekeys(t)
	opk, kem := (*up.OneTime)[0], (*up.OneTimeKEM)[0]
	bundle, err := wire.Marshal(&wire.Bundle{Version: wire.ProtocolVersion, IdentityKey: bob.identity.Public().Encode(),
		SignedPreKey: *up.SignedPreKey, KEMPreKey: kem, OneTimePreKey: &opk})
	if err != nil {
		t.Fatal(err)
	}
	alice := newReviewPeerWith(t, wire.Address{Account: "alice", Device: 1}, aliceIK, bundle)
	text := "hello"
	if m, _, err := bob.receive(alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text})); err != nil || m == nil {
		t.Fatalf("prekey message: got %v, %v; want the message", m, err)
	}
	bob.db.View(func(tx *bolt.Tx) error {
		p := prekeyStore{tx, bob.now()}
		for _, c := range []struct {
			what       string
			held, want bool
		}{
			{"the one-time EC prekey", has(p.OneTimePreKey(uint32(opk.ID))), false},
			{"the one-time KEM prekey", hasKEM(p.KEMPreKey(uint32(kem.ID))), false},
			{"the signed prekey", has(p.SignedPreKey(uint32(up.SignedPreKey.ID))), true},
			{"the last-resort KEM prekey", hasKEM(p.KEMPreKey(uint32(up.LastResort.ID))), true},
		} {
			if c.held != c.want {
				t.Errorf("after the prekey message: %s held: got %v, want %v", c.what, c.held, c.want)
			}
		}
		return nil
	})
}

// bobWithPrekeys makes bob, an offline device that has accepted the list
// of alice (one device, whose identity key it returns), and his first
// upload: a signed prekey, a last-resort KEM prekey and one one-time
// prekey of each kind.
func bobWithPrekeys(t *testing.T) (*Device, *keys.PrivateKey, *wire.PrekeyUpload) {
	t.Helper()
	bob := offline(t, "bob", nil)
	aliceIK := newKey(t)
	acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	up, err := bob.newPrekeys(true, 1)
	if err != nil {
		t.Fatal(err)
	}
	return bob, aliceIK, up
}

// newKey returns a new identity key.
func newKey(t testing.TB) *keys.PrivateKey {
	t.Helper()
	k, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func has(_ *keys.PrivateKey, ok bool) bool       { return ok }
func hasKEM(_ *keys.KEMPrivateKey, ok bool) bool { return ok }

// TestPrekeyIDsUnique checks PQX-002: the ids of each kind of prekey a
// device makes, over several uploads, are unique among its keys of that
// kind (signed prekeys; KEM prekeys, last-resort and one-time alike;
// one-time EC prekeys).
func TestPrekeyIDsUnique(t *testing.T) {
	bob := offline(t, "bob", nil)
	seen := map[string]map[uint64]bool{"signed": {}, "kem": {}, "one-time": {}}
	add := func(kind string, id uint64) {
		t.Helper()
		if seen[kind][id] {
			t.Errorf("%s prekey id %d made twice", kind, id)
		}
		seen[kind][id] = true
	}
	for _, first := range []bool{true, false, true, false} {
		up, err := bob.newPrekeys(first, 3)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			add("signed", up.SignedPreKey.ID)
			add("kem", up.LastResort.ID)
		}
		for _, k := range *up.OneTime {
			add("one-time", k.ID)
		}
		for _, k := range *up.OneTimeKEM {
			add("kem", k.ID)
		}
	}
	if n := len(seen["kem"]); n != 2+12 {
		t.Errorf("KEM prekey ids: got %d distinct, want %d", n, 2+12)
	}
}
