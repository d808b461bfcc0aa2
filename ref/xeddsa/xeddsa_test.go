package xeddsa

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha512"
	"errors"
	"math/big"
	"testing"

	"filippo.io/edwards25519"

	"github.com/missive-protocol/missive/ref/errcode"
)

func testKey(seed byte) []byte { return bytes.Repeat([]byte{seed}, 32) }

func publicOf(t testing.TB, priv []byte) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func TestSignVerify(t *testing.T) {
	z := make([]byte, RandomSize)
	for seed := range byte(16) { // keys of both sign bits of E = a*B
		priv := testKey(seed)
		pub := publicOf(t, priv)
		msg := []byte("message")
		sig, err := Sign(priv, msg, z)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(pub, msg, sig); err != nil {
			t.Fatalf("seed %d: Verify: %v", seed, err)
		}
		if err := Verify(pub, []byte("other"), sig); !errors.Is(err, errcode.AuthBadSignature) {
			t.Errorf("seed %d: wrong message: got %v, want %v", seed, err, errcode.AuthBadSignature)
		}
	}
}

// TestMalleability checks the rules Missive adds to Signal's: s + q and
// u + 2^255 are rejected although the equations still hold for them.
func TestMalleability(t *testing.T) {
	priv := testKey(1)
	pub := publicOf(t, priv)
	msg := []byte("m")
	var sig []byte
	q, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	limit := new(big.Int).Lsh(big.NewInt(1), 253)
	// Find a signature whose s + q is still below 2^253, which Signal's
	// rule would accept.
	for i := range 64 {
		z := bytes.Repeat([]byte{byte(i)}, RandomSize)
		s, _ := Sign(priv, msg, z)
		if new(big.Int).Add(leInt(s[32:]), q).Cmp(limit) < 0 {
			sig = s
			break
		}
	}
	if sig == nil {
		t.Fatal("no suitable signature found")
	}
	high := append([]byte(nil), sig[:32]...)
	high = append(high, leBytes(new(big.Int).Add(leInt(sig[32:]), q))...)
	if err := Verify(pub, msg, high); !errors.Is(err, errcode.AuthBadSignature) {
		t.Errorf("s + q: got %v, want %v", err, errcode.AuthBadSignature)
	}
	u := append([]byte(nil), pub...)
	u[31] |= 0x80
	if err := Verify(u, msg, sig); !errors.Is(err, errcode.AuthBadSignature) {
		t.Errorf("u + 2^255: got %v, want %v", err, errcode.AuthBadSignature)
	}
}

func leInt(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

func leBytes(x *big.Int) []byte {
	b := x.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

func TestBadSizes(t *testing.T) {
	if _, err := Sign(make([]byte, 31), nil, make([]byte, RandomSize)); err == nil {
		t.Error("Sign accepted a 31-byte key")
	}
	if _, err := Sign(make([]byte, 32), nil, make([]byte, 63)); err == nil {
		t.Error("Sign accepted 63 bytes of randomness")
	}
	for _, n := range []int{0, 63, 65} {
		if err := Verify(make([]byte, 32), nil, make([]byte, n)); !errors.Is(err, errcode.AuthBadSignature) {
			t.Errorf("signature of %d bytes: got %v, want %v", n, err, errcode.AuthBadSignature)
		}
	}
}

func FuzzVerify(f *testing.F) {
	priv := testKey(2)
	pub := publicOf(f, priv)
	sig, _ := Sign(priv, []byte("seed"), make([]byte, RandomSize))
	f.Add(pub, []byte("seed"), sig)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		err := Verify(pub, msg, sig)
		if err != nil && !errors.Is(err, errcode.AuthBadSignature) {
			t.Fatalf("unregistered error %v", err)
		}
	})
}

var sinkSig []byte

func BenchmarkSign(b *testing.B) {
	priv, z, msg := testKey(3), make([]byte, RandomSize), make([]byte, 1569)
	b.ReportAllocs()
	for b.Loop() {
		sinkSig, _ = Sign(priv, msg, z)
	}
}

// BenchmarkSignFloor is the primitive floor of Sign: two fixed-base scalar
// multiplications, two SHA-512 hashes and the scalar arithmetic.
func BenchmarkSignFloor(b *testing.B) {
	priv, z, msg := testKey(3), make([]byte, RandomSize), make([]byte, 1569)
	b.ReportAllocs()
	for b.Loop() {
		a, _ := edwards25519.NewScalar().SetBytesWithClamping(priv)
		A := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
		h := sha512.New()
		h.Write(hash1Prefix[:])
		h.Write(a.Bytes())
		h.Write(msg)
		h.Write(z)
		r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
		R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
		h = sha512.New()
		h.Write(R)
		h.Write(A)
		h.Write(msg)
		k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
		sinkSig = edwards25519.NewScalar().MultiplyAdd(k, a, r).Bytes()
	}
}

func BenchmarkVerify(b *testing.B) {
	priv, msg := testKey(3), make([]byte, 1569)
	pub := publicOf(b, priv)
	sig, _ := Sign(priv, msg, make([]byte, RandomSize))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(pub, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFloor is the primitive floor of Verify: the Montgomery to
// Edwards conversion (one field inversion and a point decompression), the
// cofactor multiplication, one SHA-512 and one double scalar
// multiplication.
func BenchmarkVerifyFloor(b *testing.B) {
	priv, msg := testKey(3), make([]byte, 1569)
	pub := publicOf(b, priv)
	sig, _ := Sign(priv, msg, make([]byte, RandomSize))
	b.ReportAllocs()
	for b.Loop() {
		A, _ := montgomeryToEdwards(pub)
		s, _ := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
		h := sha512.New()
		h.Write(sig[:32])
		h.Write(A.Bytes())
		h.Write(msg)
		k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
		new(edwards25519.Point).MultByCofactor(A)
		sinkSig = new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, new(edwards25519.Point).Negate(A), s).Bytes()
	}
}
