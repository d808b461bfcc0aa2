package group

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// FuzzDecryptSigned reaches past the signature check that stops
// FuzzDecrypt's mutated inputs: the fuzzer picks how far ahead of the
// receiver the sender's chain is (up to a little over MaxSkip), the
// plaintext, and a byte of the ciphertext to flip, and the test signs
// what it makes with the sender's key. A receiver key that has already
// seen a few messages out of order decrypts it: an untouched message
// within MaxSkip decrypts to its plaintext, a second time fails as a
// duplicate, one beyond fails as too many skipped (whatever its
// ciphertext), a flipped one within fails to decrypt; and whatever happens, the key given to Decrypt is unchanged
// (GRP-008) and every error has a registered code.
func FuzzDecryptSigned(f *testing.F) {
	f.Add(uint16(0), []byte("hello"), uint16(0), false)
	f.Add(uint16(3), []byte(""), uint16(0), false)
	f.Add(uint16(MaxSkip), []byte("far"), uint16(0), false)
	f.Add(uint16(MaxSkip+1), []byte("too far"), uint16(0), false)
	f.Add(uint16(1), []byte("flipped"), uint16(20), true)
	f.Fuzz(func(t *testing.T, ahead uint16, content []byte, flipAt uint16, flip bool) {
		if len(content) > 1024 {
			content = content[:1024]
		}
		ahead %= MaxSkip + 8
		r := newDRBG("fuzz signed")
		own, recv := senderKeys(t, bytes.Repeat([]byte{3}, 16), 1, r)
		// The receiver has seen messages 2 and 0 of three: it holds the key
		// of 1 as skipped and expects 3.
		var msgs [][]byte
		for range 3 {
			m, err := own.Encrypt(1, []byte("before"), r)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		for _, i := range []int{2, 0} {
			m, err := ParseMessage(msgs[i])
			if err != nil {
				t.Fatal(err)
			}
			if _, recv, err = Decrypt(recv, m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		sender := own.Clone()
		if err := sender.Advance(own.Iteration + uint32(ahead)); err != nil {
			t.Fatal(err)
		}
		data, err := sender.Encrypt(1, content, r)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(data)
		if err != nil {
			t.Fatal(err)
		}
		if flip {
			m.Ciphertext[int(flipAt)%len(m.Ciphertext)] ^= 0x40
			resign(t, sender, m, r)
		}
		before := recv.Clone()
		pt, next, err := Decrypt(recv, m)
		if !reflect.DeepEqual(recv, before) {
			t.Fatal("Decrypt changed the key it was given")
		}
		if err != nil && !errcode.Of(err).Registered() {
			t.Fatalf("error %v has no registered code", err)
		}
		switch {
		case int(ahead) > MaxSkip:
			if !errors.Is(err, errcode.StateTooManySkipped) {
				t.Fatalf("%d ahead: got %v, want %v", ahead, err, errcode.StateTooManySkipped)
			}
		case flip:
			if !errors.Is(err, errcode.AuthDecryptFailed) {
				t.Fatalf("flipped ciphertext: got %v, want %v", err, errcode.AuthDecryptFailed)
			}
		default:
			if err != nil || !bytes.Equal(pt, content) {
				t.Fatalf("%d ahead: got %q, %v, want %q", ahead, pt, err, content)
			}
			if next.Iteration != recv.Iteration+uint32(ahead)+1 || len(next.Skipped) > MaxSkipped {
				t.Fatalf("%d ahead: next iteration %d with %d skipped, want %d with at most %d",
					ahead, next.Iteration, len(next.Skipped), recv.Iteration+uint32(ahead)+1, MaxSkipped)
			}
			if _, _, err := Decrypt(next, m); !errors.Is(err, errcode.StateDuplicateMessage) {
				t.Fatalf("the same message again: got %v, want %v", err, errcode.StateDuplicateMessage)
			}
		}
	})
}

// resign encodes m's body again and signs it with k's private key, as the
// sender of a message with that body would.
func resign(t *testing.T, k *SenderKey, m *Message, r io.Reader) {
	t.Helper()
	body, err := wire.Marshal(&m.GroupMessageBody)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.DecodePrivateKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := priv.Sign(append([]byte(LabelGroupMessage), body...), r)
	if err != nil {
		t.Fatal(err)
	}
	m.Body, m.Signature = body, sig
}
