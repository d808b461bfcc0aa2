// Package media implements attachment encryption (spec/17-media.md
// section 17.2): a fresh media key per attachment, the plaintext sealed in
// chunks with ChaCha20-Poly1305 under the STREAM construction, and the
// SHA-256 digest of the blob that the message names.
package media

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 17.1.
const (
	Chunk          = wire.MediaChunk
	LabelMediaKeys = "Missive v1 media keys"
	KeySize        = 32
	overhead       = chacha20poly1305.Overhead
	sealedChunk    = Chunk + overhead
)

// Sealed is an encrypted attachment: what the sender uploads and names.
type Sealed struct {
	Key    []byte // the media key
	Blob   []byte
	Digest []byte // SHA-256 of Blob
}

// BlobSize returns the size of the blob of a plaintext of n bytes.
func BlobSize(n int) int {
	chunks := (n + Chunk - 1) / Chunk
	if chunks == 0 {
		chunks = 1
	}
	return n + chunks*overhead
}

func aead(key []byte) interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
} {
	k, err := hkdf.Key(sha256.New, key, make([]byte, 32), LabelMediaKeys, chacha20poly1305.KeySize)
	if err != nil {
		panic(err) // unreachable: fixed, valid sizes
	}
	a, err := chacha20poly1305.New(k)
	if err != nil {
		panic(err)
	}
	return a
}

// nonce returns the nonce of chunk i: its 11-byte big-endian index and
// the last-chunk flag.
func nonce(i uint64, last bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[3:11], i)
	if last {
		n[11] = 1
	}
	return n
}

// Encrypt draws a media key (32 bytes) from rand and encrypts plaintext.
func Encrypt(plaintext []byte, rand io.Reader) (*Sealed, error) {
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("media: key: %w", err)
	}
	return EncryptWithKey(key, plaintext)
}

// EncryptWithKey encrypts plaintext under a given media key (for tests and
// vectors; a sender draws a new key for every attachment, MED-001).
func EncryptWithKey(key, plaintext []byte) (*Sealed, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("media: key of %d bytes", len(key))
	}
	if BlobSize(len(plaintext)) > wire.MaxBlobSize {
		return nil, fmt.Errorf("media: %d bytes: %w", len(plaintext), errcode.PolicyTooLarge)
	}
	a := aead(key)
	blob := make([]byte, 0, BlobSize(len(plaintext)))
	for i := uint64(0); ; i++ {
		n := min(Chunk, len(plaintext))
		last := n == len(plaintext)
		blob = a.Seal(blob, nonce(i, last), plaintext[:n], nil)
		plaintext = plaintext[n:]
		if last {
			break
		}
	}
	d := sha256.Sum256(blob)
	return &Sealed{Key: key, Blob: blob, Digest: d[:]}, nil
}

// Decrypt checks a downloaded blob against the size and digest its media
// content names, then opens it (MED-002).
func Decrypt(key, digest []byte, size uint64, blob []byte) ([]byte, error) {
	if faults.Has(faults.SkipDigestCheck) {
		size, digest = uint64(len(blob)), nil
	}
	if uint64(len(blob)) != size {
		return nil, fmt.Errorf("media: blob of %d bytes, %d named: %w", len(blob), size, errcode.AuthDigestMismatch)
	}
	d := sha256.Sum256(blob)
	if digest != nil && subtle.ConstantTimeCompare(d[:], digest) != 1 || digest == nil && !faults.Has(faults.SkipDigestCheck) {
		return nil, fmt.Errorf("media: %w", errcode.AuthDigestMismatch)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("media: key of %d bytes: %w", len(key), errcode.AuthDecryptFailed)
	}
	// The cut: full chunks, then a last one of more than the tag alone,
	// unless the blob is one empty chunk.
	if len(blob) < overhead {
		return nil, fmt.Errorf("media: blob of %d bytes: %w", len(blob), errcode.AuthDecryptFailed)
	}
	n := (len(blob) + sealedChunk - 1) / sealedChunk
	lastLen := len(blob) - (n-1)*sealedChunk
	if lastLen <= overhead && len(blob) != overhead {
		return nil, fmt.Errorf("media: last chunk of %d bytes: %w", lastLen, errcode.AuthDecryptFailed)
	}
	a := aead(key)
	out := make([]byte, 0, len(blob)-n*overhead)
	for i := 0; i < n; i++ {
		c := blob[i*sealedChunk : min((i+1)*sealedChunk, len(blob))]
		var err error
		out, err = a.Open(out, nonce(uint64(i), i == n-1), c, nil)
		if err != nil {
			return nil, fmt.Errorf("media: chunk %d: %w", i, errcode.AuthDecryptFailed)
		}
	}
	return out, nil
}
