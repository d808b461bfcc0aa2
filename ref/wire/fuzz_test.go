package wire

import (
	"bytes"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

// fuzzDecoder checks the properties every decoder must have: it never
// panics, every failure carries a registered code, and whatever it accepts
// encodes back to exactly the input (age's FuzzMalleability).
func fuzzDecoder[T any, P interface {
	*T
	Message
}](f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		err := Unmarshal(data, P(&v))
		if err != nil {
			if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
				t.Fatalf("error %v is not a registered decode code", err)
			}
			return
		}
		again, err := Marshal(P(&v))
		if err != nil {
			t.Fatalf("accepted input does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parse then marshal changed the bytes:\n%x\n%x", data, again)
		}
	})
}

func seedHeader() []byte {
	b, _ := Marshal(&RatchetHeader{RatchetKey: key33(), PN: 1, N: 2})
	return b
}

func seedMessage() []byte {
	b, _ := Marshal(&RatchetMessage{Version: 1, Header: seedHeader(), Ciphertext: make([]byte, 48)})
	return b
}

func seedPreKey() []byte {
	id := uint64(5)
	b, _ := Marshal(&PreKeyMessage{Version: 1, IdentityKey: key33(), EphemeralKey: key33(), SignedPreKeyID: 1,
		KEMPreKeyID: 70000, KEMCiphertext: make([]byte, KEMCiphertextSize), OneTimePreKeyID: &id,
		Message: seedMessage()})
	return b
}

func seedBundle() []byte {
	b, _ := Marshal(&Bundle{Version: 1, IdentityKey: key33(),
		SignedPreKey:  SignedPreKey{ID: 1, Key: key33(), Signature: make([]byte, 64)},
		KEMPreKey:     KEMPreKey{ID: 2, Key: make([]byte, MLKEMPublicSize), Signature: make([]byte, 64), LastResort: true},
		OneTimePreKey: &OneTimePreKey{ID: 3, Key: key33()}})
	return b
}

func FuzzRatchetHeader(f *testing.F)  { fuzzDecoder[RatchetHeader](f, seedHeader()) }
func FuzzRatchetMessage(f *testing.F) { fuzzDecoder[RatchetMessage](f, seedMessage()) }
func FuzzPreKeyMessage(f *testing.F)  { fuzzDecoder[PreKeyMessage](f, seedPreKey()) }
func FuzzBundle(f *testing.F)         { fuzzDecoder[Bundle](f, seedBundle()) }
func FuzzSessionState(f *testing.F)   { fuzzDecoder[SessionState](f) }
func FuzzStoredSession(f *testing.F)  { fuzzDecoder[StoredSession](f) }

// TestSeedPrefixes checks that every strict prefix of every seed fails
// with decode.truncated.
func TestSeedPrefixes(t *testing.T) {
	type dec func([]byte) error
	tests := map[string]struct {
		enc []byte
		dec dec
	}{
		"header":  {seedHeader(), func(b []byte) error { return Unmarshal(b, new(RatchetHeader)) }},
		"message": {seedMessage(), func(b []byte) error { return Unmarshal(b, new(RatchetMessage)) }},
		"prekey":  {seedPreKey(), func(b []byte) error { return Unmarshal(b, new(PreKeyMessage)) }},
		"bundle":  {seedBundle(), func(b []byte) error { return Unmarshal(b, new(Bundle)) }},
	}
	for name, tt := range tests {
		if len(tt.enc) == 0 {
			t.Fatalf("%s: no seed", name)
		}
		if err := tt.dec(tt.enc); err != nil {
			t.Fatalf("%s: seed does not decode: %v", name, err)
		}
		for i := range len(tt.enc) {
			if err := tt.dec(tt.enc[:i]); errcode.Of(err) != errcode.DecodeTruncated {
				t.Fatalf("%s: prefix of %d bytes: got %v, want %v", name, i, err, errcode.DecodeTruncated)
			}
		}
	}
}
