package transport

import (
	"bytes"
	"testing"

	"github.com/flynn/noise"
)

// TestChaChaPolyMatchesNoise checks the transport's ChaChaPoly against
// flynn/noise's: the same name, the same ciphertexts for every nonce
// tried, the same plaintexts back, and a failure on a changed byte.
func TestChaChaPolyMatchesNoise(t *testing.T) {
	var k [32]byte
	for i := range k {
		k[i] = byte(i)
	}
	if got, want := (chachaPoly{}).CipherName(), noise.CipherChaChaPoly.CipherName(); got != want {
		t.Fatalf("name: got %q, want %q", got, want)
	}
	ours, theirs := chachaPoly{}.Cipher(k), noise.CipherChaChaPoly.Cipher(k)
	ad, plain := []byte("associated"), bytes.Repeat([]byte("plaintext "), 30)
	for _, n := range []uint64{0, 1, 255, 1 << 32, 1<<64 - 2} {
		got, want := ours.Encrypt(nil, n, ad, plain), theirs.Encrypt(nil, n, ad, plain)
		if !bytes.Equal(got, want) {
			t.Fatalf("nonce %d: got %x, want %x", n, got, want)
		}
		back, err := ours.Decrypt(nil, n, ad, want)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("nonce %d: decrypt: got %q, %v", n, back, err)
		}
		want[len(want)-1] ^= 1
		if _, err := ours.Decrypt(nil, n, ad, want); err == nil {
			t.Fatalf("nonce %d: a changed tag decrypts", n)
		}
	}
}
