package transport

import (
	"crypto/cipher"
	"encoding/binary"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// chachaPoly is Noise's ChaChaPoly cipher function, as noise.CipherChaChaPoly
// (the same name, so the same protocol name and handshake hash): the
// AEAD_CHACHA20_POLY1305 of x/crypto with the 96-bit nonce of the Noise
// specification (32 zero bits, then the 64-bit counter little-endian). Its
// ciphers build the nonce in an array of their own: noise.CipherChaChaPoly
// allocates one for every segment sealed or opened, four allocations per
// message routed, on the hottest path of both sides. A cipher belongs to
// one CipherState, which is not safe for concurrent use either.
type chachaPoly struct{}

func (chachaPoly) Cipher(k [32]byte) noise.Cipher {
	c, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	return &chachaPolyCipher{aead: c}
}

func (chachaPoly) CipherName() string { return "ChaChaPoly" }

type chachaPolyCipher struct {
	aead  cipher.AEAD
	nonce [chacha20poly1305.NonceSize]byte
}

func (c *chachaPolyCipher) setNonce(n uint64) []byte {
	binary.LittleEndian.PutUint64(c.nonce[4:], n)
	return c.nonce[:]
}

func (c *chachaPolyCipher) Encrypt(out []byte, n uint64, ad, plaintext []byte) []byte {
	return c.aead.Seal(out, c.setNonce(n), plaintext, ad)
}

func (c *chachaPolyCipher) Decrypt(out []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	return c.aead.Open(out, c.setNonce(n), ciphertext, ad)
}
