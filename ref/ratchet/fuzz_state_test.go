package ratchet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
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
// CBOR but are no state a session reaches: a receiving chain key without
// the remote ratchet key (Decrypt sliced the absent key and panicked), and
// a skipped key stored twice (the second overwrote the first, and the state
// no longer marshalled back to its bytes). Both come from the state of a
// conversation's responder, edited.
func TestUnmarshalStateInconsistent(t *testing.T) {
	for _, c := range []struct {
		name, hex string
		want      errcode.Code
	}{
		{"CKr without DHr", "aa010102582185289d04f4291941fe374303f2209ea4533c7518dbb4996558145171bb9af2b298045820feeb9e3d92017cd30ab4614a5101d73bc5afba332795fb54f18dc46885d307710558202f5900cfbeef8852a7de74c4fd6931598a4d0b19cf67693927c0bd20bc9d086c065820216e9867457927f60beb269833e7c01507b08680d4bd782ad295df3714a668ea0701080109020a8183582105b01f3c3dc7584842cfaebe4cc5f2a732651c4ae6043ebac31a7aa0ae2fd16d0201582045274ec6deb72620bae5a626132afffc8a646ab35c13cca4177aa2e7ae349cbd0b5842adadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadad",
			errcode.DecodeMissingField},
		{"a skipped key twice", "ab010102582185289d04f4291941fe374303f2209ea4533c7518dbb4996558145171bb9af2b2980358210587643c16ea4d145bf0448bcad37c34e59ed3a9e4efe3b2757e9d4bf09eb70630045820feeb9e3d92017cd30ab4614a5101d73bc5afba332795fb54f18dc46885d307710558202f5900cfbeef8852a7de74c4fd6931598a4d0b19cf67693927c0bd20bc9d086c065820216e9867457927f60beb269833e7c01507b08680d4bd782ad295df3714a668ea0701080109020a8283582105b01f3c3dc7584842cfaebe4cc5f2a732651c4ae6043ebac31a7aa0ae2fd16d0201582045274ec6deb72620bae5a626132afffc8a646ab35c13cca4177aa2e7ae349cbd83582105b01f3c3dc7584842cfaebe4cc5f2a732651c4ae6043ebac31a7aa0ae2fd16d0201582007070707070707070707070707070707070707070707070707070707070707070b5842adadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadad",
			errcode.DecodeDuplicateKey},
	} {
		data, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		var s State
		if err := s.UnmarshalBinary(data); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
