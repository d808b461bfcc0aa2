package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// testRand returns a deterministic stream for tests.
func testRand(seed byte) io.Reader {
	return rand.NewChaCha8([32]byte{seed})
}

// pair returns an initiator and a responder that share a session.
func pair(t testing.TB) (alice, bob *State, r io.Reader) {
	t.Helper()
	r = testRand(1)
	spk, err := keys.GeneratePrivateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	sk := make([]byte, 32)
	ad := bytes.Repeat([]byte{0xAD}, 66)
	if alice, err = NewInitiator(sk, ad, spk.Public(), r); err != nil {
		t.Fatal(err)
	}
	if bob, err = NewResponder(sk, ad, spk); err != nil {
		t.Fatal(err)
	}
	return alice, bob, r
}

func mustEncrypt(t testing.TB, s *State, pt string) []byte {
	t.Helper()
	m, err := s.Encrypt([]byte(pt))
	if err != nil {
		t.Fatalf("Encrypt(%q): %v", pt, err)
	}
	return m
}

func mustDecrypt(t testing.TB, s *State, r io.Reader, m []byte, want string) {
	t.Helper()
	got, err := s.Decrypt(r, m)
	if err != nil {
		t.Fatalf("Decrypt (want %q): %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("Decrypt: got %q, want %q", got, want)
	}
}

func snapshot(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConversation(t *testing.T) {
	alice, bob, r := pair(t)
	for round := range 6 {
		from, to := alice, bob
		if round%2 == 1 {
			from, to = bob, alice
		}
		var msgs [][]byte
		for i := range 5 {
			msgs = append(msgs, mustEncrypt(t, from, fmt.Sprintf("r%d m%d", round, i)))
		}
		// Deliver out of order: last first, then the rest.
		mustDecrypt(t, to, r, msgs[4], fmt.Sprintf("r%d m4", round))
		for i := range 4 {
			mustDecrypt(t, to, r, msgs[i], fmt.Sprintf("r%d m%d", round, i))
		}
	}
}

func TestReplayAndState(t *testing.T) {
	alice, bob, r := pair(t)
	m0 := mustEncrypt(t, alice, "zero")
	m1 := mustEncrypt(t, alice, "one")
	mustDecrypt(t, bob, r, m1, "one")
	mustDecrypt(t, bob, r, m0, "zero")
	before := snapshot(t, bob)
	for name, m := range map[string][]byte{"replay current": m1, "replay skipped": m0} {
		if _, err := bob.Decrypt(r, m); !errors.Is(err, errcode.StateDuplicateMessage) {
			t.Errorf("%s: got %v, want %v", name, err, errcode.StateDuplicateMessage)
		}
	}
	if !bytes.Equal(before, snapshot(t, bob)) {
		t.Error("state changed after failed decryption")
	}
}

// TestFailureLeavesStateUnchanged flips every bit of a message that would
// perform a DH ratchet step and skip keys, and checks the state is the
// same byte for byte after each failure.
func TestFailureLeavesStateUnchanged(t *testing.T) {
	alice, bob, r := pair(t)
	mustDecrypt(t, bob, r, mustEncrypt(t, alice, "hi"), "hi")
	mustEncrypt(t, bob, "skipped") // Alice will have to skip this one
	m := mustEncrypt(t, bob, "reply")
	before := snapshot(t, alice)
	for i := range len(m) * 8 {
		bad := bytes.Clone(m)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := alice.Decrypt(r, bad); err == nil {
			continue // a flip in an encoding that still means the same is impossible, but be exact below
		}
		if after := snapshot(t, alice); !bytes.Equal(before, after) {
			t.Fatalf("bit %d: state changed after failed decryption", i)
		}
	}
	mustDecrypt(t, alice, r, m, "reply")
}

func TestMaxSkip(t *testing.T) {
	alice, bob, r := pair(t)
	var last []byte
	for range MaxSkip + 1 {
		last = mustEncrypt(t, alice, "x")
	}
	mustDecrypt(t, bob, r, last, "x") // skips exactly MaxSkip keys
	alice, bob, r = pair(t)
	for range MaxSkip + 2 {
		last = mustEncrypt(t, alice, "x")
	}
	if _, err := bob.Decrypt(r, last); !errors.Is(err, errcode.StateTooManySkipped) {
		t.Errorf("got %v, want %v", err, errcode.StateTooManySkipped)
	}
}

func TestEviction(t *testing.T) {
	alice, bob, r := pair(t)
	var msgs [][]byte
	for range 3*MaxSkip + 1 {
		msgs = append(msgs, mustEncrypt(t, alice, "x"))
	}
	// Three jumps of MaxSkip store 3000 keys; the first 1000 are evicted.
	for _, i := range []int{MaxSkip, 2 * MaxSkip, 3 * MaxSkip} {
		mustDecrypt(t, bob, r, msgs[i], "x")
	}
	if n := bob.skipped.len(); n != MaxStoredSkipped {
		t.Errorf("stored %d keys, want %d", n, MaxStoredSkipped)
	}
	if _, err := bob.Decrypt(r, msgs[0]); !errors.Is(err, errcode.StateDuplicateMessage) {
		t.Errorf("evicted key: got %v, want %v", err, errcode.StateDuplicateMessage)
	}
	mustDecrypt(t, bob, r, msgs[MaxSkip+1], "x")
}

func TestSerializationRoundTrip(t *testing.T) {
	alice, bob, r := pair(t)
	mustEncrypt(t, alice, "lost")
	mustDecrypt(t, bob, r, mustEncrypt(t, alice, "a"), "a")
	b := snapshot(t, bob)
	var again State
	if err := again.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, &again); !bytes.Equal(got, b) {
		t.Error("state did not round-trip")
	}
	mustDecrypt(t, alice, r, mustEncrypt(t, &again, "back"), "back")
}

func TestLimits(t *testing.T) {
	alice, bob, _ := pair(t)
	if _, err := bob.Encrypt([]byte("x")); !errors.Is(err, errcode.StateNoSendingChain) {
		t.Errorf("responder send: got %v, want %v", err, errcode.StateNoSendingChain)
	}
	if _, err := alice.Encrypt(make([]byte, MaxPlaintext+1)); !errors.Is(err, errcode.PolicyTooLarge) {
		t.Errorf("oversize: got %v, want %v", err, errcode.PolicyTooLarge)
	}
	if _, err := alice.Encrypt(make([]byte, MaxPlaintext)); err != nil {
		t.Errorf("MaxPlaintext: %v", err)
	}
}

// FuzzDecrypt feeds arbitrary messages to a session in the middle of a
// conversation: no panic, every failure a registered code, and a failure
// leaves the state byte for byte unchanged.
func FuzzDecrypt(f *testing.F) {
	alice, _, _ := pair(f)
	m, _ := alice.Encrypt([]byte("seed"))
	f.Add(m)
	f.Add(spkMessage(f, alice))
	f.Fuzz(func(t *testing.T, data []byte) {
		alice, bob, r := pair(t)
		fresh, _, _ := pair(t) // an initiator that has not heard back
		mustDecrypt(t, bob, r, mustEncrypt(t, alice, "one"), "one")
		for _, s := range []*State{bob, fresh} {
			before := snapshot(t, s)
			if _, err := s.Decrypt(r, data); err != nil {
				if !errcode.Of(err).Registered() {
					t.Fatalf("unregistered error %v", err)
				}
				if !bytes.Equal(before, snapshot(t, s)) {
					t.Fatal("state changed after a failed decryption")
				}
			}
		}
	})
}

// spkMessage returns a ratchet message whose header names the initiator's
// DHr, the responder's signed prekey, which no receiving chain follows.
func spkMessage(t testing.TB, initiator *State) []byte {
	t.Helper()
	h, err := wire.Marshal(&wire.RatchetHeader{RatchetKey: initiator.dhrEnc})
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Marshal(&wire.RatchetMessage{Version: Version, Header: h, Ciphertext: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestInitiatorSignedPreKeyHeader: a message under the responder's signed
// prekey reaches an initiator without a receiving chain; it must fail
// with a registered code and leave the state unchanged, not panic.
func TestInitiatorSignedPreKeyHeader(t *testing.T) {
	alice, _, r := pair(t)
	before := snapshot(t, alice)
	if _, err := alice.Decrypt(r, spkMessage(t, alice)); !errors.Is(err, errcode.AuthDecryptFailed) {
		t.Errorf("got %v, want %v", err, errcode.AuthDecryptFailed)
	}
	if !bytes.Equal(before, snapshot(t, alice)) {
		t.Error("state changed after a failed decryption")
	}
}

// TestReusedRatchetKey has Alice come back to a ratchet key she used
// before (X, then Z, then X: a broken random source, or a peer doing it on
// purpose), after Bob stored skipped keys under X. Her new chain under X
// stores the same ids (X, 0) and (X, 1) again: each replaces the stored
// key and counts as the newest (section 5.8), the state stores each id
// once, and it loads back. Before, the ids stood twice in the stored form,
// which loading refuses (decode.duplicate_key): the session could no
// longer be read.
func TestReusedRatchetKey(t *testing.T) {
	alice, bob, r := pair(t)
	x := alice.dhs.Bytes()
	var xs [][]byte
	for _, pt := range []string{"x0", "x1", "x2"} {
		xs = append(xs, mustEncrypt(t, alice, pt))
	}
	mustDecrypt(t, bob, r, xs[2], "x2") // stores (X, 0) and (X, 1)
	mustDecrypt(t, alice, r, mustEncrypt(t, bob, "b0"), "b0")
	mustDecrypt(t, bob, r, mustEncrypt(t, alice, "z0"), "z0")
	// Alice's next ratchet step draws X again.
	mustDecrypt(t, alice, bytes.NewReader(x), mustEncrypt(t, bob, "b1"), "b1")
	var as [][]byte
	for _, pt := range []string{"a0", "a1", "a2"} {
		as = append(as, mustEncrypt(t, alice, pt))
	}
	mustDecrypt(t, bob, r, as[2], "a2") // stores (X, 0) and (X, 1) again
	if got, want := bob.skipped.len(), 2; got != want {
		t.Errorf("skipped keys: got %d, want %d", got, want)
	}
	enc := snapshot(t, bob)
	var loaded State
	if err := loaded.UnmarshalBinary(enc); err != nil {
		t.Fatalf("UnmarshalBinary of Bob's state: %v", err)
	}
	if got := snapshot(t, &loaded); !bytes.Equal(got, enc) {
		t.Errorf("state after a round trip: got %x, want %x", got, enc)
	}
	// The replaced keys are the new chain's; the first chain's x0 is gone.
	mustDecrypt(t, &loaded, r, as[0], "a0")
	mustDecrypt(t, &loaded, r, as[1], "a1")
	if _, err := loaded.Decrypt(r, xs[0]); err == nil {
		t.Error("x0 after its key was replaced: got nil error, want a failure")
	}
}
