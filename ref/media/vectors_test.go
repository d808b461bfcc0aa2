package media

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
)

type chunk struct {
	Offset int  `json:"offset"`
	Length int  `json:"length"`
	Index  int  `json:"index"`
	Last   bool `json:"last"`
}

type mediaCase struct {
	vectest.Common
	MediaKey      vectest.Hex `json:"media_key"`
	Key           vectest.Hex `json:"key"`
	PlaintextSize int         `json:"plaintext_size"`
	Chunks        []chunk     `json:"chunks"`
	Truncate      *int        `json:"truncate"`
	Flip          *int        `json:"flip"`
	Blob          vectest.Hex `json:"blob"`
	BlobSize      int         `json:"blob_size"`
	BlobSHA256    vectest.Hex `json:"blob_sha256"`
	Size          uint64      `json:"size"`
	Digest        vectest.Hex `json:"digest"`
}

// plaintext returns the plaintext of a case: byte j is j mod 251.
func (c *mediaCase) plaintext() []byte {
	p := make([]byte, c.PlaintextSize)
	for j := range p {
		p[j] = byte(j % 251)
	}
	return p
}

// seal makes the blob of a case as its chunks, truncate and flip say,
// independently of Encrypt.
func (c *mediaCase) seal(t *testing.T, key []byte) []byte {
	t.Helper()
	a, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	p := c.plaintext()
	var blob []byte
	for _, ch := range c.Chunks {
		n := make([]byte, chacha20poly1305.NonceSize)
		for i, v := 0, ch.Index; i < 11; i, v = i+1, v>>8 {
			n[10-i] = byte(v)
		}
		if ch.Last {
			n[11] = 1
		}
		blob = a.Seal(blob, n, p[ch.Offset:ch.Offset+ch.Length], nil)
	}
	if c.Truncate != nil {
		blob = blob[:*c.Truncate]
	}
	if c.Flip != nil {
		blob[*c.Flip] ^= 1
	}
	return blob
}

// TestVectors runs vectors/v1/media.json: the sender's encryption
// (MED-001) and the receiver's checks (MED-002).
func TestVectors(t *testing.T) {
	f := vectest.Load[mediaCase](t, "media")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			key, err := hkdf.Key(sha256.New, c.MediaKey, make([]byte, 32), LabelMediaKeys, 32)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, c.Key) {
				t.Fatalf("key: got %x, want %x", key, c.Key)
			}
			// The blob the case describes, and its fields.
			blob := c.seal(t, key)
			sum := sha256.Sum256(blob)
			switch {
			case len(blob) != c.BlobSize:
				t.Fatalf("blob_size: got %d, want %d", len(blob), c.BlobSize)
			case !bytes.Equal(sum[:], c.BlobSHA256):
				t.Fatalf("blob_sha256: got %x, want %x", sum, c.BlobSHA256)
			case (len(blob) <= 1024) != (c.Blob != nil):
				t.Fatalf("a blob of %d bytes, and blob present: %v", len(blob), c.Blob != nil)
			case c.Blob != nil && !bytes.Equal(blob, c.Blob):
				t.Fatalf("blob: got %x, want %x", blob, c.Blob)
			}
			if want == 0 {
				if c.Truncate != nil || c.Flip != nil || c.Size != uint64(c.BlobSize) || !bytes.Equal(c.Digest, c.BlobSHA256) {
					t.Fatalf("a valid case with truncate, flip, or another size or digest than the blob's")
				}
				s, err := EncryptWithKey(c.MediaKey, c.plaintext())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(s.Blob, blob) {
					t.Fatalf("EncryptWithKey: the blob differs (%d bytes, want %d)", len(s.Blob), len(blob))
				}
				if !bytes.Equal(s.Digest, c.Digest) || uint64(BlobSize(c.PlaintextSize)) != c.Size {
					t.Fatalf("EncryptWithKey: digest %x, size %d; want %x, %d", s.Digest, BlobSize(c.PlaintextSize), c.Digest, c.Size)
				}
				// Encrypt draws the key, then encrypts with it.
				r := vectest.NewReader(t, c.ID, c.MediaKey)
				s2, err := Encrypt(c.plaintext(), r)
				if err != nil {
					t.Fatal(err)
				}
				r.Done()
				if !bytes.Equal(s2.Blob, blob) || !bytes.Equal(s2.Key, c.MediaKey) {
					t.Fatalf("Encrypt: the blob or the key differs")
				}
			}
			got, err := Decrypt(c.MediaKey, c.Digest, c.Size, blob)
			if code := errcode.Of(err); code != want {
				t.Fatalf("Decrypt: got %v (%v), want %v", code, err, want)
			}
			if want == 0 && !bytes.Equal(got, c.plaintext()) {
				t.Fatalf("Decrypt: got %d bytes, not the plaintext", len(got))
			}
		})
	}
}
