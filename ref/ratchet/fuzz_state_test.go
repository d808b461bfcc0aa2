package ratchet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// stateConversation runs a conversation and returns the stored states
// of both sides at several points, and every message sent.
func stateConversation(t testing.TB) (states, messages [][]byte) {
	t.Helper()
	alice, bob, r := pair(t)
	states = append(states, snapshot(t, alice), snapshot(t, bob)) // fresh initiator, fresh responder
	a0 := mustEncrypt(t, alice, "a0")
	a1 := mustEncrypt(t, alice, "a1")
	a2 := mustEncrypt(t, alice, "a2")
	mustDecrypt(t, bob, r, a2, "a2")          // a0 and a1 skipped
	states = append(states, snapshot(t, bob)) // responder after one message
	b0 := mustEncrypt(t, bob, "b0")
	b1 := mustEncrypt(t, bob, "b1")
	mustDecrypt(t, alice, r, b1, "b1") // b0 skipped
	a3 := mustEncrypt(t, alice, "a3")  // a new chain, PN 3
	mustDecrypt(t, bob, r, a3, "a3")
	mustDecrypt(t, bob, r, a0, "a0") // a skipped key used, a1 still stored
	b2 := mustEncrypt(t, bob, "b2")  // a new chain, PN 2
	states = append(states, snapshot(t, alice), snapshot(t, bob))
	return states, [][]byte{a0, a1, a2, a3, b0, b1, b2, spkMessage(t, alice)}
}

// checkStateCode fails unless err carries a registered error code.
func checkStateCode(t *testing.T, what string, err error) {
	t.Helper()
	if c := errcode.Of(err); !c.Registered() {
		t.Fatalf("%s: got unregistered error %v (code %v), want a registered code", what, err, c)
	}
}

// FuzzUnmarshalState feeds arbitrary bytes to UnmarshalBinary, the stored
// session state of spec/06-session-state.md. No panic and every failure a
// registered code; a state it accepts marshals back to exactly the input
// (the encoding is canonical CBOR and MKSKIPPED keeps its order, SES-004),
// and Encrypt and Decrypt on it do not panic, fail only with registered
// codes, and a failed Decrypt leaves it byte for byte unchanged (RAT-010).
func FuzzUnmarshalState(f *testing.F) {
	states, messages := stateConversation(f)
	for _, s := range states {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s State
		if err := s.UnmarshalBinary(data); err != nil {
			checkStateCode(t, "UnmarshalBinary", err)
			return
		}
		if got := snapshot(t, &s); !bytes.Equal(got, data) {
			t.Fatalf("UnmarshalBinary then MarshalBinary: got %x, want %x", got, data)
		}
		var enc State
		if err := enc.UnmarshalBinary(data); err != nil {
			t.Fatalf("second UnmarshalBinary: got %v, want nil", err)
		}
		if _, err := enc.Encrypt([]byte("fuzz")); err != nil {
			checkStateCode(t, "Encrypt", err)
		}
		r := testRand(50)
		for i, m := range messages {
			before := snapshot(t, &s)
			if _, err := s.Decrypt(r, m); err != nil {
				checkStateCode(t, "Decrypt", err)
				if after := snapshot(t, &s); !bytes.Equal(after, before) {
					t.Fatalf("message %d: Decrypt failed with %v and changed the state: got %x, want %x", i, err, after, before)
				}
			}
		}
	})
}

// TestUnmarshalStateInconsistent checks two stored states that decode as
// CBOR but are no state a session reaches, made by editing the last state
// of Bob in stateConversation (remote key, receiving chain, a skipped key):
// a receiving chain key without the remote ratchet key (Decrypt sliced the
// absent key and panicked), and a skipped key stored twice (the second
// overwrote the first, and the state no longer marshalled back to its
// bytes).
func TestUnmarshalStateInconsistent(t *testing.T) {
	states, _ := stateConversation(t)
	for _, c := range []struct {
		name string
		edit func(w *wire.SessionState)
		want errcode.Code
	}{
		{"CKr without DHr", func(w *wire.SessionState) { w.DHr = nil }, errcode.DecodeMissingField},
		{"a skipped key twice", func(w *wire.SessionState) {
			k := w.Skipped[0]
			k.MK = bytes.Repeat([]byte{7}, 32)
			w.Skipped = append(w.Skipped, k)
		}, errcode.DecodeDuplicateKey},
	} {
		var w wire.SessionState
		if err := wire.Unmarshal(states[len(states)-1], &w); err != nil {
			t.Fatal(err)
		}
		if w.DHr == nil || w.CKr == nil || len(w.Skipped) == 0 {
			t.Fatalf("%s: the state to edit lacks DHr, CKr or skipped keys", c.name)
		}
		c.edit(&w)
		// wire.Marshal checks what it encodes and would refuse these: encode
		// with the same deterministic CBOR rules, unchecked.
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			t.Fatal(err)
		}
		data, err := em.Marshal(&w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var s State
		if err := s.UnmarshalBinary(data); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
