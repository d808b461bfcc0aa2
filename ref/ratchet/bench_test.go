package ratchet

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The benchmarks come in pairs: an operation of this package and its
// primitive floor, the same HMAC, HKDF, AEAD and X25519 calls made directly
// on fixed inputs. The ratio of the two is the cost of the protocol logic
// (encoding, padding, state handling).

var sink []byte

// BenchmarkSteadyState is one 256-byte message encrypted by Alice and
// decrypted by Bob in the same chain.
func BenchmarkSteadyState(b *testing.B) {
	alice, bob, r := pair(b)
	pt := make([]byte, 256)
	mustDecrypt(b, bob, r, mustEncrypt(b, alice, "start"), "start")
	b.ReportAllocs()
	for b.Loop() {
		m, err := alice.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if sink, err = bob.Decrypt(nil, m); err != nil {
			b.Fatal(err)
		}
	}
}

// floorMessage is the primitive work of one message on one side: KDF_CK
// (two HMACs), MSG_KEYS (HKDF) and the AEAD over the padded plaintext.
func floorMessage(ck, padded, ad []byte, seal bool) []byte {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{ckNext})
	next := m.Sum(nil)
	m.Reset()
	m.Write([]byte{ckMessage})
	mk := m.Sum(nil)
	copy(ck, next)
	okm, _ := hkdf.Key(sha256.New, mk, zeroSalt[:], LabelMessageKeys, 44)
	a, _ := chacha20poly1305.New(okm[:32])
	if seal {
		return a.Seal(nil, okm[32:], padded, ad)
	}
	out, _ := a.Open(nil, okm[32:], padded, ad)
	return out
}

// BenchmarkSteadyStateFloor is the floor of BenchmarkSteadyState.
func BenchmarkSteadyStateFloor(b *testing.B) {
	ckA, ckB := make([]byte, 32), make([]byte, 32)
	padded := make([]byte, 272) // pad_len(257)
	ad := make([]byte, 66+40)   // AD || header
	ct := floorMessage(make([]byte, 32), padded, ad, true)
	b.ReportAllocs()
	for b.Loop() {
		floorMessage(ckA, padded, ad, true)
		sink = floorMessage(ckB, ct, ad, false)
	}
}

// BenchmarkDHStep is a 256-byte message that makes the receiver perform a
// DH ratchet step: Alice and Bob alternate, so every message starts a chain.
func BenchmarkDHStep(b *testing.B) {
	alice, bob, r := pair(b)
	pt := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		m, err := alice.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if sink, err = bob.Decrypt(r, m); err != nil {
			b.Fatal(err)
		}
		alice, bob = bob, alice
	}
}

// BenchmarkDHStepFloor adds to the steady-state floor what a DH step costs
// in primitives: two X25519 operations and two KDF_RK (HKDF), plus the key
// generation of the new ratchet key.
func BenchmarkDHStepFloor(b *testing.B) {
	ckA, ckB := make([]byte, 32), make([]byte, 32)
	padded := make([]byte, 272)
	ad := make([]byte, 66+40)
	ct := floorMessage(make([]byte, 32), padded, ad, true)
	priv, _ := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	peer := priv.PublicKey()
	seed := make([]byte, 32)
	seed[0] = 1
	b.ReportAllocs()
	for b.Loop() {
		floorMessage(ckA, padded, ad, true)
		out1, _ := priv.ECDH(peer)
		rk1, _ := hkdf.Key(sha256.New, out1, seed, LabelRoot, 64)
		fresh, _ := ecdh.X25519().NewPrivateKey(seed)
		out2, _ := fresh.ECDH(peer)
		rk2, _ := hkdf.Key(sha256.New, out2, rk1[:32], LabelRoot, 64)
		_ = rk2
		sink = floorMessage(ckB, ct, ad, false)
	}
}
