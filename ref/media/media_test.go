package media

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, KeySize)
	for _, n := range []int{0, 1, Chunk - 1, Chunk, Chunk + 1, 3*Chunk + 17} {
		p := pattern(n)
		s, err := EncryptWithKey(key, p)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got, want := len(s.Blob), BlobSize(n); got != want {
			t.Errorf("%d bytes: blob of %d bytes, want %d", n, got, want)
		}
		got, err := Decrypt(key, s.Digest, uint64(len(s.Blob)), s.Blob)
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("%d bytes: Decrypt: got %d bytes, %v; want the plaintext", n, len(got), err)
		}
	}
}

func TestDecryptRejects(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, KeySize)
	s, err := EncryptWithKey(key, pattern(2*Chunk+5))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := EncryptWithKey(key, pattern(2*Chunk))
	swapped := append(append(append([]byte{}, s.Blob[sealedChunk:2*sealedChunk]...), s.Blob[:sealedChunk]...), s.Blob[2*sealedChunk:]...)
	flipped := bytes.Clone(s.Blob)
	flipped[10] ^= 1
	withEmpty, _ := EncryptWithKey(key, nil)
	for _, tc := range []struct {
		name   string
		blob   []byte
		digest []byte // nil: the blob's own
		size   int    // -1: the blob's own
		want   errcode.Code
	}{
		{"size", s.Blob, s.Digest, len(s.Blob) + 1, errcode.AuthDigestMismatch},
		{"digest", flipped, s.Digest, -1, errcode.AuthDigestMismatch},
		{"truncated at a chunk boundary", s.Blob[:2*sealedChunk], nil, -1, errcode.AuthDecryptFailed},
		{"swapped chunks", swapped, nil, -1, errcode.AuthDecryptFailed},
		{"tampered, digest recomputed", flipped, nil, -1, errcode.AuthDecryptFailed},
		{"shorter than a tag", s.Blob[:15], nil, -1, errcode.AuthDecryptFailed},
		{"an empty chunk after full ones", append(bytes.Clone(full.Blob), withEmpty.Blob...), nil, -1, errcode.AuthDecryptFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.digest
			if d == nil {
				h := sha256.Sum256(tc.blob)
				d = h[:]
			}
			size := tc.size
			if size < 0 {
				size = len(tc.blob)
			}
			_, err := Decrypt(key, d, uint64(size), tc.blob)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecrypt checks that no blob makes Decrypt panic and that every
// failure is auth.digest_mismatch or auth.decrypt_failed.
func FuzzDecrypt(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	for _, n := range []int{0, 5, Chunk + 3} {
		s, _ := EncryptWithKey(key, pattern(n))
		f.Add(s.Blob)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		d := sha256.Sum256(blob)
		_, err := Decrypt(key, d[:], uint64(len(blob)), blob)
		if err != nil && !errors.Is(err, errcode.AuthDecryptFailed) && !errors.Is(err, errcode.AuthDigestMismatch) {
			t.Fatalf("got %v", err)
		}
	})
}
