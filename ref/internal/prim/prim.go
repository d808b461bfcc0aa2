// Package prim wraps the cryptographic primitives of spec/01-primitives.md
// behind byte-slice functions with the exact sizes and rejection rules the
// specification states. It holds no protocol logic.
//
// Every primitive comes from the standard library or golang.org/x/crypto,
// except X25519, which is the ladder of RFC 7748 over the field arithmetic of
// filippo.io/edwards25519 (crypto/ecdh computes a private key's public key
// whenever it is given one, a second multiplication for each operation) and
// public keys from that package's fixed-base multiplication; HMAC-SHA-256 (crypto/hmac), HKDF-SHA-256
// (crypto/hkdf), ChaCha20-Poly1305 (golang.org/x/crypto/chacha20poly1305)
// and ML-KEM-1024 (crypto/mlkem).
package prim

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"hash"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of the primitives' inputs and outputs, in bytes (spec/01-primitives.md).
const (
	X25519KeySize       = 32
	HashSize            = sha256.Size
	AEADKeySize         = chacha20poly1305.KeySize
	AEADNonceSize       = chacha20poly1305.NonceSize
	AEADTagSize         = chacha20poly1305.Overhead
	KEMSeedSize         = mlkem.SeedSize
	KEMEncapsKeySize    = mlkem.EncapsulationKeySize1024
	KEMCiphertextSize   = mlkem.CiphertextSize1024
	KEMSharedSize       = mlkem.SharedKeySize
	KEMEncapsRandomSize = 32
)

// Errors returned by the primitives. Callers map them to registered error
// codes; they carry no detail on purpose.
var (
	ErrKeySize  = errors.New("prim: wrong key or input size")
	ErrLowOrder = errors.New("prim: X25519 output is all zero")
	ErrOpen     = errors.New("prim: message authentication failed")
)

// X25519 returns the X25519 function of RFC 7748 applied to priv and pub. It
// fails with ErrLowOrder when the result is the all-zero value, which happens
// exactly when pub is a point of small order.
//
// It is one Montgomery ladder (x25519Ladder), the one crypto/ecdh runs:
// crypto/ecdh would take two, since its NewPrivateKey computes the private
// key's public key first.
func X25519(priv, pub []byte) ([]byte, error) {
	if len(priv) != X25519KeySize || len(pub) != X25519KeySize {
		return nil, ErrKeySize
	}
	out := make([]byte, X25519KeySize)
	x25519Ladder(out, priv, pub)
	if subtle.ConstantTimeCompare(out, make([]byte, X25519KeySize)) == 1 {
		return nil, ErrLowOrder
	}
	return out, nil
}

// X25519Public returns X25519(priv, 9), the public key of priv, from the
// fixed-base multiplication of edwards25519 (precomputed multiples of the
// base point) and the birational map to the Montgomery u-coordinate: the
// same bytes as the ladder, in about 40 % of its time. The clamped scalar is
// a multiple of the cofactor times a scalar below 2^255, and the base point
// has prime order l, so reducing the scalar mod l (SetBytesWithClamping)
// gives the same point.
func X25519Public(priv []byte) ([]byte, error) {
	if len(priv) != X25519KeySize {
		return nil, ErrKeySize
	}
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv)
	if err != nil {
		return nil, ErrKeySize
	}
	return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery(), nil
}

// x25519Ladder sets dst to X25519(scalar, point): the Montgomery ladder of
// RFC 7748 section 5, in constant time, over the field arithmetic of
// filippo.io/edwards25519/field (the package crypto/ecdh's own copy comes
// from), with crypto/ecdh's order of operations, which is about a tenth
// faster here than the RFC's listing: it computes z_2 = E * (BB + 121666 *
// E), the RFC's E * (AA + a24 * E) since AA = BB + E. The point's top bit is
// ignored and a u of p or more is reduced, as the RFC says
// (field.Element.SetBytes does both).
func x25519Ladder(dst, scalar, point []byte) {
	var e [32]byte
	copy(e[:], scalar)
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	if _, err := x1.SetBytes(point); err != nil {
		panic("prim: point of the wrong size") // callers check the size
	}
	x2.One()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for t := 254; t >= 0; t-- {
		bit := int(e[t/8]>>(t&7)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit

		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)
		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)
	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst, x2.Bytes())
}

// HMAC returns HMAC-SHA-256(key, data[0] || data[1] || ...).
func HMAC(key []byte, data ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// HKDF returns n bytes of HKDF-SHA-256 (RFC 5869) output keyed by ikm with
// the given salt and info. n must be at most 255*32.
func HKDF(salt, ikm, info []byte, n int) ([]byte, error) {
	return hkdf.Key(newSHA256, ikm, salt, string(info), n)
}

func newSHA256() hash.Hash { return sha256.New() }

// Seal encrypts and authenticates plaintext and authenticates ad with
// ChaCha20-Poly1305 (RFC 8439), appending the result to dst.
func Seal(dst, key, nonce, plaintext, ad []byte) ([]byte, error) {
	if len(key) != AEADKeySize || len(nonce) != AEADNonceSize {
		return nil, ErrKeySize
	}
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, ErrKeySize
	}
	return a.Seal(dst, nonce, plaintext, ad), nil
}

// Open authenticates and decrypts ciphertext (which ends with the 16-byte
// tag) and authenticates ad, appending the plaintext to dst. It returns
// ErrOpen, and nothing else, on any authentication failure.
func Open(dst, key, nonce, ciphertext, ad []byte) ([]byte, error) {
	if len(key) != AEADKeySize || len(nonce) != AEADNonceSize {
		return nil, ErrKeySize
	}
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, ErrKeySize
	}
	out, err := a.Open(dst, nonce, ciphertext, ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// KEMPublic returns the ML-KEM-1024 encapsulation key of the decapsulation
// key expanded from the 64-byte seed d || z (FIPS 203, ML-KEM.KeyGen_internal).
func KEMPublic(seed []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, ErrKeySize
	}
	return dk.EncapsulationKey().Bytes(), nil
}

// KEMEncapsulate runs ML-KEM-1024 encapsulation against ek. With m nil it
// draws its randomness from the operating system; otherwise m must hold the
// 32 bytes of FIPS 203 ML-KEM.Encaps_internal, which makes it deterministic.
// It fails with ErrKeySize when ek is not a valid encapsulation key,
// including the modulus check of FIPS 203 section 7.2.
func KEMEncapsulate(ek, m []byte) (shared, ciphertext []byte, err error) {
	k, err := mlkem.NewEncapsulationKey1024(ek)
	if err != nil {
		return nil, nil, ErrKeySize
	}
	if m == nil {
		shared, ciphertext = k.Encapsulate()
		return shared, ciphertext, nil
	}
	if len(m) != KEMEncapsRandomSize {
		return nil, nil, ErrKeySize
	}
	shared, ciphertext, err = mlkemtest.Encapsulate1024(k, m)
	if err != nil {
		return nil, nil, ErrKeySize
	}
	return shared, ciphertext, nil
}

// KEMDecapsulate runs ML-KEM-1024 decapsulation of ciphertext with the key
// expanded from seed. A ciphertext of the right length never fails: ML-KEM
// rejects implicitly, returning a pseudorandom shared secret.
func KEMDecapsulate(seed, ciphertext []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, ErrKeySize
	}
	ss, err := dk.Decapsulate(ciphertext)
	if err != nil {
		return nil, ErrKeySize
	}
	return ss, nil
}
