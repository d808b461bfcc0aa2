package session

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
)

// mustEncryptKind encrypts pt on s and checks the kind of the message.
func mustEncryptKind(t testing.TB, s *Session, pt string, want Kind) []byte {
	t.Helper()
	kind, m, err := s.Encrypt([]byte(pt))
	if err != nil {
		t.Fatalf("Encrypt(%q): got %v, want nil", pt, err)
	}
	if kind != want {
		t.Fatalf("Encrypt(%q): got kind %v, want %v", pt, kind, want)
	}
	return m
}

// mustDecryptSession decrypts a ratchet message on s and checks its
// plaintext.
func mustDecryptSession(t testing.TB, s *Session, m []byte, want string) {
	t.Helper()
	pt, err := s.Decrypt(testRand(40), m)
	if err != nil || string(pt) != want {
		t.Fatalf("Decrypt: got %q, %v; want %q, nil", pt, err, want)
	}
}

// load restores a session stored by store.
func load(t testing.TB, stored []byte) *Session {
	t.Helper()
	var s Session
	if err := s.UnmarshalBinary(stored); err != nil {
		t.Fatalf("UnmarshalBinary: got %v, want nil", err)
	}
	return &s
}

// checkCode fails unless err carries a registered error code.
func checkCode(t *testing.T, what string, err error) {
	t.Helper()
	if c := errcode.Of(err); !c.Registered() {
		t.Fatalf("%s: got unregistered error %v (code %v), want a registered code", what, err, c)
	}
}

// prekeyIDs describes the ids of the prekeys b holds, by kind.
func prekeyIDs(b *bobKeys) string {
	return fmt.Sprint(slices.Sorted(maps.Keys(b.spk)), slices.Sorted(maps.Keys(b.kem)), slices.Sorted(maps.Keys(b.opk)))
}

// FuzzDecryptPreKey feeds arbitrary prekey messages to a responder device,
// as spec section 4.6 orders: first to the session that the message may
// belong to (DecryptPreKey, PQX-011), then, if it belongs to none, to
// Respond. No panic, every failure a registered code, a failure leaves the
// existing session byte for byte unchanged and creates no session, and no
// prekey is ever consumed by the lookups.
func FuzzDecryptPreKey(f *testing.F) {
	r := testRand(30)
	bob, bundle := newBob(f, r, true)
	alice := newAlice(f, r, bundle)
	m1 := mustEncryptKind(f, alice, "one", KindPreKey)
	m2 := mustEncryptKind(f, alice, "two", KindPreKey)
	bs, _, _, err := Respond(testRand(31), bob.ik, bob, m1)
	if err != nil {
		f.Fatalf("Respond: got %v, want nil", err)
	}
	responder := store(f, bs)
	// A second initiator against the same bundle without its one-time
	// prekey: a prekey message of another session.
	b, err := pqxdh.ParseBundle(bundle)
	if err != nil {
		f.Fatal(err)
	}
	b.OneTimePreKey = nil
	ika, _ := keys.GeneratePrivateKey(r)
	other, err := InitiateVerified(r, ika, b)
	if err != nil {
		f.Fatal(err)
	}
	m3 := mustEncryptKind(f, other, "three", KindPreKey)
	reply := mustEncryptKind(f, bs, "reply", KindRatchet)
	f.Add(m1)    // creates the session
	f.Add(m2)    // a later message of the session
	f.Add(m3)    // another session, no one-time prekey
	f.Add(reply) // a ratchet message, not a prekey message
	wantIDs := prekeyIDs(bob)

	f.Fuzz(func(t *testing.T, data []byte) {
		s := load(t, responder)
		before := store(t, s)
		_, err := s.DecryptPreKey(testRand(32), data)
		if err != nil {
			checkCode(t, "DecryptPreKey", err)
			if after := store(t, s); !bytes.Equal(after, before) {
				t.Fatalf("DecryptPreKey failed with %v and changed the session: got %x, want %x", err, after, before)
			}
		}
		if !errors.Is(err, errcode.StateNoSession) {
			return
		}
		ns, pt, used, err := Respond(testRand(33), bob.ik, bob, data)
		if got := prekeyIDs(bob); got != wantIDs {
			t.Fatalf("prekeys after Respond: got %s, want %s", got, wantIDs)
		}
		if err != nil {
			checkCode(t, "Respond", err)
			if ns != nil || pt != nil || used != nil {
				t.Fatalf("Respond failed with %v: got session %v, plaintext %x, used %v; want nil, nil, nil", err, ns != nil, pt, used)
			}
			return
		}
		if ns == nil || used == nil {
			t.Fatalf("Respond succeeded: got session %v, used %v; want both", ns != nil, used)
		}
		if _, ok := bob.SignedPreKey(used.SignedPreKeyID); !ok {
			t.Fatalf("used signed prekey: got %d, want one Bob holds", used.SignedPreKeyID)
		}
		if _, ok := bob.KEMPreKey(used.KEMPreKeyID); !ok {
			t.Fatalf("used KEM prekey: got %d, want one Bob holds", used.KEMPreKeyID)
		}
		if id := used.OneTimePreKeyID; id != nil {
			if _, ok := bob.OneTimePreKey(*id); !ok {
				t.Fatalf("used one-time prekey: got %d, want one Bob holds", *id)
			}
		}
		again := load(t, store(t, ns))
		if !bytes.Equal(store(t, again), store(t, ns)) {
			t.Fatal("new session does not round-trip through storage")
		}
	})
}

// FuzzDecrypt feeds arbitrary ratchet messages to established sessions:
// an initiator that has not heard back, one that has, and the responder.
// No panic, every failure a registered code, and a failure leaves the
// session byte for byte unchanged. A success on the initiator ends its
// prekey messages (PQX-007).
func FuzzDecrypt(f *testing.F) {
	r := testRand(34)
	bob, bundle := newBob(f, r, true)
	alice := newAlice(f, r, bundle)
	m1 := mustEncryptKind(f, alice, "one", KindPreKey)
	bs, _, _, err := Respond(testRand(35), bob.ik, bob, m1)
	if err != nil {
		f.Fatalf("Respond: got %v, want nil", err)
	}
	r1 := mustEncryptKind(f, bs, "r1", KindRatchet)
	r2 := mustEncryptKind(f, bs, "r2", KindRatchet)
	aliceFresh := store(f, alice) // has not heard back

	mustDecryptSession(f, alice, r2, "r2") // r1 stays skipped
	a1 := mustEncryptKind(f, alice, "a1", KindRatchet)
	mustDecryptSession(f, bs, a1, "a1")
	r3 := mustEncryptKind(f, bs, "r3", KindRatchet) // a new chain, PN 2
	a2 := mustEncryptKind(f, alice, "a2", KindRatchet)
	aliceHeard := store(f, alice)
	responder := store(f, bs)

	for _, m := range [][]byte{r1, r2, r3, a1, a2, m1} {
		f.Add(m)
	}
	sessions := []struct {
		name    string
		stored  []byte
		pending bool
	}{
		{"initiator before an answer", aliceFresh, true},
		{"initiator after an answer", aliceHeard, false},
		{"responder", responder, false},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tt := range sessions {
			s := load(t, tt.stored)
			before := store(t, s)
			_, err := s.Decrypt(testRand(36), data)
			if err != nil {
				checkCode(t, tt.name, err)
				if after := store(t, s); !bytes.Equal(after, before) {
					t.Fatalf("%s: Decrypt failed with %v and changed the session: got %x, want %x", tt.name, err, after, before)
				}
				continue
			}
			if tt.pending {
				if kind, _, err := s.Encrypt([]byte("x")); err != nil || kind != KindRatchet {
					t.Fatalf("%s: Encrypt after a success: got %v, %v; want %v, nil", tt.name, kind, err, KindRatchet)
				}
			}
		}
	})
}
