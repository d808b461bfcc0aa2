// Package keys holds the key kinds of Missive and their encodings
// (spec/01-conventions.md section 1.3): X25519 key pairs, used both for
// Diffie-Hellman and for XEdDSA signatures, and ML-KEM-1024 key pairs.
//
// Every encoding is one type byte followed by a fixed-size body; decoders
// check the type byte, the length and the canonical form, in that order,
// and return the registered code of the first check that fails.
package keys

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/xeddsa"
)

// Type bytes of the key encodings.
const (
	TypeX25519Public  byte = 0x05
	TypeMLKEMPublic   byte = 0x0A
	TypeX25519Private byte = 0x85
	TypeMLKEMPrivate  byte = 0x8A
)

// Sizes in bytes of key bodies and encodings.
const (
	X25519Size          = 32
	X25519EncodedSize   = 1 + X25519Size
	MLKEMPublicSize     = mlkem.EncapsulationKeySize1024
	MLKEMPublicEncSize  = 1 + MLKEMPublicSize
	MLKEMSeedSize       = mlkem.SeedSize
	MLKEMSeedEncSize    = 1 + MLKEMSeedSize
	MLKEMCiphertextSize = mlkem.CiphertextSize1024
	MLKEMRandomSize     = 32
)

// checkEncoding applies checks 1 and 2 of CONV-003.
func checkEncoding(enc []byte, typ byte, size int) error {
	if len(enc) == 0 || enc[0] != typ {
		return errcode.DecodeKeyType
	}
	if len(enc) != size {
		return errcode.DecodeKeyLength
	}
	return nil
}

// readRandom fills b from r, or from the system generator when r is nil.
func readRandom(r io.Reader, b []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("keys: reading randomness: %w", err)
	}
	return nil
}

// PublicKey is an X25519 public key.
type PublicKey struct {
	k *ecdh.PublicKey
}

// CheckPublicKey applies the checks of DecodePublicKey without building
// the key.
func CheckPublicKey(enc []byte) error {
	if err := checkEncoding(enc, TypeX25519Public, X25519EncodedSize); err != nil {
		return err
	}
	if !belowP(enc[1:]) {
		return errcode.DecodeKeyNoncanonical
	}
	return nil
}

// DecodePublicKey decodes the 33-byte encoding of an X25519 public key,
// rejecting a non-canonical u-coordinate.
func DecodePublicKey(enc []byte) (PublicKey, error) {
	if err := CheckPublicKey(enc); err != nil {
		return PublicKey{}, err
	}
	k, err := ecdh.X25519().NewPublicKey(enc[1:])
	if err != nil {
		return PublicKey{}, errcode.DecodeKeyLength
	}
	return PublicKey{k}, nil
}

// belowP reports whether the little-endian value v is less than 2^255 - 19.
func belowP(v []byte) bool {
	if v[31] != 0x7F {
		return v[31] < 0x7F
	}
	for i := 30; i >= 1; i-- {
		if v[i] != 0xFF {
			return true
		}
	}
	return v[0] < 0xED
}

// Bytes returns the 32-byte u-coordinate.
func (k PublicKey) Bytes() []byte { return k.k.Bytes() }

// Encode returns the 33-byte encoding.
func (k PublicKey) Encode() []byte { return append([]byte{TypeX25519Public}, k.k.Bytes()...) }

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool { return k.k != nil && o.k != nil && k.k.Equal(o.k) }

// IsZero reports whether k holds no key.
func (k PublicKey) IsZero() bool { return k.k == nil }

// ECDHKey returns the crypto/ecdh form of k.
func (k PublicKey) ECDHKey() *ecdh.PublicKey { return k.k }

// Verify checks an XEdDSA signature of msg under k; it returns nil or
// errcode.AuthBadSignature.
func (k PublicKey) Verify(msg, sig []byte) error {
	return xeddsa.Verify(k.k.Bytes(), msg, sig)
}

// PrivateKey is an X25519 private key, which also signs with XEdDSA.
type PrivateKey struct {
	k *ecdh.PrivateKey
}

// NewPrivateKey returns the private key whose 32 bytes, before clamping,
// are b.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, errcode.DecodeKeyLength
	}
	return &PrivateKey{k}, nil
}

// GeneratePrivateKey draws 32 bytes from rand (the system generator when
// rand is nil) and returns the private key they make.
func GeneratePrivateKey(rand io.Reader) (*PrivateKey, error) {
	var b [X25519Size]byte
	if err := readRandom(rand, b[:]); err != nil {
		return nil, err
	}
	return NewPrivateKey(b[:])
}

// DecodePrivateKey decodes the 33-byte encoding of an X25519 private key.
func DecodePrivateKey(enc []byte) (*PrivateKey, error) {
	if err := checkEncoding(enc, TypeX25519Private, X25519EncodedSize); err != nil {
		return nil, err
	}
	return NewPrivateKey(enc[1:])
}

// ECDHKey returns the crypto/ecdh form of k.
func (k *PrivateKey) ECDHKey() *ecdh.PrivateKey { return k.k }

// Bytes returns the 32 bytes of the key, before clamping.
func (k *PrivateKey) Bytes() []byte { return k.k.Bytes() }

// Encode returns the 33-byte encoding. It must never be sent (CONV-002).
func (k *PrivateKey) Encode() []byte { return append([]byte{TypeX25519Private}, k.k.Bytes()...) }

// Public returns the public key.
func (k *PrivateKey) Public() PublicKey { return PublicKey{k.k.PublicKey()} }

// ECDH returns X25519(k, peer), or errcode.AuthLowOrderKey when the output
// is all zero.
func (k *PrivateKey) ECDH(peer PublicKey) ([]byte, error) {
	out, err := k.k.ECDH(peer.k)
	if err != nil {
		return nil, errcode.AuthLowOrderKey
	}
	return out, nil
}

// Sign returns the XEdDSA signature of msg, drawing 64 bytes of randomness
// from rand (the system generator when rand is nil).
func (k *PrivateKey) Sign(msg []byte, rand io.Reader) ([]byte, error) {
	var z [xeddsa.RandomSize]byte
	if err := readRandom(rand, z[:]); err != nil {
		return nil, err
	}
	return xeddsa.Sign(k.k.Bytes(), msg, z[:])
}

// KEMPublicKey is an ML-KEM-1024 encapsulation key.
type KEMPublicKey struct {
	k *mlkem.EncapsulationKey1024
}

// DecodeKEMPublicKey decodes the 1569-byte encoding of an ML-KEM-1024
// encapsulation key, applying the modulus check of FIPS 203.
func DecodeKEMPublicKey(enc []byte) (KEMPublicKey, error) {
	if err := checkEncoding(enc, TypeMLKEMPublic, MLKEMPublicEncSize); err != nil {
		return KEMPublicKey{}, err
	}
	k, err := mlkem.NewEncapsulationKey1024(enc[1:])
	if err != nil {
		return KEMPublicKey{}, errcode.DecodeKeyNoncanonical
	}
	return KEMPublicKey{k}, nil
}

// Bytes returns the 1568-byte encapsulation key.
func (k KEMPublicKey) Bytes() []byte { return k.k.Bytes() }

// Encode returns the 1569-byte encoding.
func (k KEMPublicKey) Encode() []byte { return append([]byte{TypeMLKEMPublic}, k.k.Bytes()...) }

// Encapsulate returns a shared secret and its ciphertext for k. It draws
// the 32 bytes m from rand; with rand nil it lets crypto/mlkem draw them
// from the system generator.
func (k KEMPublicKey) Encapsulate(rand io.Reader) (shared, ciphertext []byte, err error) {
	if rand == nil {
		shared, ciphertext = k.k.Encapsulate()
		return shared, ciphertext, nil
	}
	var m [MLKEMRandomSize]byte
	if err := readRandom(rand, m[:]); err != nil {
		return nil, nil, err
	}
	return mlkemtest.Encapsulate1024(k.k, m[:])
}

// KEMPrivateKey is an ML-KEM-1024 decapsulation key, kept as its seed.
type KEMPrivateKey struct {
	seed [MLKEMSeedSize]byte
	k    *mlkem.DecapsulationKey1024
}

// NewKEMPrivateKey expands the 64-byte seed d || z.
func NewKEMPrivateKey(seed []byte) (*KEMPrivateKey, error) {
	k, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, errcode.DecodeKeyLength
	}
	return &KEMPrivateKey{seed: [MLKEMSeedSize]byte(seed), k: k}, nil
}

// GenerateKEMPrivateKey draws a 64-byte seed from rand (the system
// generator when rand is nil) and expands it.
func GenerateKEMPrivateKey(rand io.Reader) (*KEMPrivateKey, error) {
	var seed [MLKEMSeedSize]byte
	if err := readRandom(rand, seed[:]); err != nil {
		return nil, err
	}
	return NewKEMPrivateKey(seed[:])
}

// DecodeKEMPrivateKey decodes the 65-byte encoding of an ML-KEM-1024 seed.
func DecodeKEMPrivateKey(enc []byte) (*KEMPrivateKey, error) {
	if err := checkEncoding(enc, TypeMLKEMPrivate, MLKEMSeedEncSize); err != nil {
		return nil, err
	}
	return NewKEMPrivateKey(enc[1:])
}

// Seed returns the 64-byte seed.
func (k *KEMPrivateKey) Seed() []byte { return append([]byte(nil), k.seed[:]...) }

// Encode returns the 65-byte encoding. It must never be sent (CONV-002).
func (k *KEMPrivateKey) Encode() []byte { return append([]byte{TypeMLKEMPrivate}, k.seed[:]...) }

// Public returns the encapsulation key.
func (k *KEMPrivateKey) Public() KEMPublicKey { return KEMPublicKey{k.k.EncapsulationKey()} }

// Decapsulate returns the shared secret of ciphertext. ML-KEM rejects
// implicitly: a wrong ciphertext of the right length gives a wrong secret.
func (k *KEMPrivateKey) Decapsulate(ciphertext []byte) ([]byte, error) {
	ss, err := k.k.Decapsulate(ciphertext)
	if err != nil {
		return nil, errcode.DecodeTooShort
	}
	return ss, nil
}
