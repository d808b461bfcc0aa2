package ratchet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/padding"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestLastMessageNumber checks RAT-016 at the end of a receiving chain,
// with messages made on the chain's keys as only a peer holding them could:
// N = 2^32 - 2 is the last number a sender uses and is taken (Nr is then
// 2^32 - 1, and a replay of it is a duplicate, RAT-013); N = 2^32 - 1 is
// refused with state.chain_exhausted and the state unchanged. Taking it
// wrapped Nr round to 0, after which that replay failed as
// state.too_many_skipped.
func TestLastMessageNumber(t *testing.T) {
	alice, bob, r := pair(t)
	mustDecrypt(t, bob, r, mustEncrypt(t, alice, "one"), "one")
	// The peer's message number n on bob's receiving chain, made with the
	// chain's next key; bob's Nr is moved to n first.
	forge := func(n uint32, text string) []byte {
		t.Helper()
		bob.nr = n
		_, mk := kdfCK(bob.ckr)
		h, err := wire.Marshal(&wire.RatchetHeader{RatchetKey: alice.dhsEnc, N: uint64(n)})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := wire.Marshal(&wire.RatchetMessage{Version: Version, Header: h, Ciphertext: seal(&mk, padding.Pad(nil, []byte(text)), bob.associated(h))})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	last := forge(maxMessageNumber-1, "last")
	mustDecrypt(t, bob, r, last, "last")
	if bob.nr != maxMessageNumber {
		t.Errorf("after N = 2^32 - 2: got Nr %d, want %d", bob.nr, uint32(maxMessageNumber))
	}
	if _, err := bob.Decrypt(r, last); !errors.Is(err, errcode.StateDuplicateMessage) {
		t.Errorf("a replay of N = 2^32 - 2: got %v, want state.duplicate_message", err)
	}

	beyond := forge(maxMessageNumber, "beyond")
	before, err := bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(r, beyond); !errors.Is(err, errcode.StateChainExhausted) {
		t.Errorf("N = 2^32 - 1: got %v, want state.chain_exhausted", err)
	}
	after, _ := bob.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Error("N = 2^32 - 1 refused: the state changed")
	}
}
