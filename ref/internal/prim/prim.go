// Package prim wraps the cryptographic primitives of spec/01-primitives.md
// behind byte-slice functions with the exact sizes and rejection rules the
// specification states. It holds no protocol logic.
//
// Every primitive comes from the standard library or golang.org/x/crypto:
// X25519 (crypto/ecdh), HMAC-SHA-256 (crypto/hmac), HKDF-SHA-256
// (crypto/hkdf), ChaCha20-Poly1305 (golang.org/x/crypto/chacha20poly1305)
// and ML-KEM-1024 (crypto/mlkem).
package prim

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"errors"
	"hash"

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
func X25519(priv, pub []byte) ([]byte, error) {
	if len(priv) != X25519KeySize || len(pub) != X25519KeySize {
		return nil, ErrKeySize
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, ErrKeySize
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, ErrKeySize
	}
	out, err := k.ECDH(p)
	if err != nil {
		return nil, ErrLowOrder
	}
	return out, nil
}

// X25519Public returns X25519(priv, 9), the public key of priv.
func X25519Public(priv []byte) ([]byte, error) {
	if len(priv) != X25519KeySize {
		return nil, ErrKeySize
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, ErrKeySize
	}
	return k.PublicKey().Bytes(), nil
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
