package session

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
)

func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

// newBob returns a responder device with one key of each kind and its
// bundle, with or without a one-time EC prekey.
func newBob(t testing.TB, r io.Reader, withOPK bool) (*bobKeys, []byte) {
	t.Helper()
	b, bundle, err := makeBob(r, withOPK)
	if err != nil {
		t.Fatal(err)
	}
	return b, bundle
}

func makeBob(r io.Reader, withOPK bool) (*bobKeys, []byte, error) {
	ik, err := keys.GeneratePrivateKey(r)
	if err != nil {
		return nil, nil, err
	}
	spk, _ := keys.GeneratePrivateKey(r)
	kem, _ := keys.GenerateKEMPrivateKey(r)
	b := &bobKeys{ik: ik, spk: map[uint32]*keys.PrivateKey{7: spk}, kem: map[uint32]*keys.KEMPrivateKey{9: kem}, opk: map[uint32]*keys.PrivateKey{}}
	spkSig, err := pqxdh.SignSignedPreKey(ik, spk.Public(), r)
	if err != nil {
		return nil, nil, err
	}
	kemSig, err := pqxdh.SignKEMPreKey(ik, kem.Public(), r)
	if err != nil {
		return nil, nil, err
	}
	bundle := &pqxdh.Bundle{
		IdentityKey:  ik.Public(),
		SignedPreKey: pqxdh.SignedPreKey{ID: 7, Key: spk.Public(), Signature: spkSig},
		KEMPreKey:    pqxdh.KEMPreKey{ID: 9, Key: kem.Public(), Signature: kemSig},
	}
	if withOPK {
		opk, _ := keys.GeneratePrivateKey(r)
		b.opk[11] = opk
		bundle.OneTimePreKey = &pqxdh.OneTimePreKey{ID: 11, Key: opk.Public()}
	}
	enc, err := bundle.Marshal()
	return b, enc, err
}

func newAlice(t testing.TB, r io.Reader, bundle []byte) *Session {
	t.Helper()
	ik, err := keys.GeneratePrivateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Initiate(r, ik, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func store(t testing.TB, s *Session) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSession(t *testing.T) {
	for _, withOPK := range []bool{true, false} {
		r := testRand(3)
		bob, bundle := newBob(t, r, withOPK)
		alice := newAlice(t, r, bundle)
		kind1, m1, _ := alice.Encrypt([]byte("one"))
		kind2, m2, _ := alice.Encrypt([]byte("two"))
		if kind1 != KindPreKey || kind2 != KindPreKey {
			t.Fatalf("kinds before an answer: got %v, %v, want prekey", kind1, kind2)
		}
		// The second prekey message arrives first: it creates Bob's
		// session; the first then arrives on the same session.
		bs, pt, used, err := Respond(r, bob.ik, bob, m2)
		if err != nil || string(pt) != "two" {
			t.Fatalf("Respond: %q, %v", pt, err)
		}
		if (used.OneTimePreKeyID != nil) != withOPK {
			t.Errorf("one-time prekey used: got %v, want %v", used.OneTimePreKeyID != nil, withOPK)
		}
		// The first prekey message, arriving late, is the same session:
		// its ratchet message decrypts with a skipped key.
		if pt, err := bs.DecryptPreKey(r, m1); err != nil || string(pt) != "one" {
			t.Fatalf("late prekey message: %q, %v", pt, err)
		}
		_, reply, err := bs.Encrypt([]byte("ack"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := alice.Decrypt(r, reply); err != nil || string(pt) != "ack" {
			t.Fatalf("alice Decrypt: %q, %v", pt, err)
		}
		if kind, _, _ := alice.Encrypt([]byte("three")); kind != KindRatchet {
			t.Errorf("kind after an answer: got %v, want ratchet", kind)
		}
		// Round trip through storage.
		stored := store(t, alice)
		var again Session
		if err := again.UnmarshalBinary(stored); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(store(t, &again), stored) {
			t.Error("session did not round-trip")
		}
	}
}

func TestRespondFailuresCreateNothing(t *testing.T) {
	r := testRand(4)
	bob, bundle := newBob(t, r, true)
	alice := newAlice(t, r, bundle)
	_, m, _ := alice.Encrypt([]byte("hi"))
	tampered := bytes.Clone(m)
	tampered[len(tampered)-1] ^= 1
	if _, _, _, err := Respond(r, bob.ik, bob, tampered); !errors.Is(err, errcode.AuthDecryptFailed) {
		t.Errorf("tampered: got %v, want %v", err, errcode.AuthDecryptFailed)
	}
	delete(bob.opk, 11)
	if _, _, _, err := Respond(r, bob.ik, bob, m); !errors.Is(err, errcode.StateUnknownPrekey) {
		t.Errorf("used one-time prekey: got %v, want %v", err, errcode.StateUnknownPrekey)
	}
}
