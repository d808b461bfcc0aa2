package prim

import (
	"bytes"
	"testing"
)

// Benchmarks of each primitive with the sizes the protocol uses: 32-byte
// keys and chain values, HKDF with a 32-byte salt, a 32-byte secret and a
// label such as "Missive v1 root chain" expanding to 64 bytes, and a 256-byte
// message with 32 bytes of associated data.

// benchBytes returns n deterministic bytes that depend on tag.
func benchBytes(tag byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = tag + byte(i)*7
	}
	return b
}

func BenchmarkX25519(b *testing.B) {
	priv := benchBytes(1, X25519KeySize)
	pub, err := X25519Public(benchBytes(2, X25519KeySize))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := X25519(priv, pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkX25519Public(b *testing.B) {
	priv := benchBytes(1, X25519KeySize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := X25519Public(priv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMAC(b *testing.B) {
	key := benchBytes(3, HashSize)
	in := []byte{0x01}
	b.ReportAllocs()
	for b.Loop() {
		HMAC(key, in)
	}
}

func BenchmarkHKDF(b *testing.B) {
	salt := benchBytes(4, 32)
	ikm := benchBytes(5, 32)
	info := []byte("Missive v1 root chain")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HKDF(salt, ikm, info, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal256(b *testing.B) {
	key := benchBytes(6, AEADKeySize)
	nonce := benchBytes(7, AEADNonceSize)
	pt := benchBytes(8, 256)
	ad := benchBytes(9, 32)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(nil, key, nonce, pt, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen256(b *testing.B) {
	key := benchBytes(6, AEADKeySize)
	nonce := benchBytes(7, AEADNonceSize)
	pt := benchBytes(8, 256)
	ad := benchBytes(9, 32)
	ct, err := Seal(nil, key, nonce, pt, ad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := Open(nil, key, nonce, ct, ad)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) != len(pt) {
			b.Fatalf("Open: got %d bytes, want %d", len(out), len(pt))
		}
	}
}

func BenchmarkKEMEncapsulate(b *testing.B) {
	ek, err := KEMPublic(benchBytes(10, KEMSeedSize))
	if err != nil {
		b.Fatal(err)
	}
	m := benchBytes(11, KEMEncapsRandomSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := KEMEncapsulate(ek, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKEMDecapsulate(b *testing.B) {
	seed := benchBytes(10, KEMSeedSize)
	ek, err := KEMPublic(seed)
	if err != nil {
		b.Fatal(err)
	}
	want, ct, err := KEMEncapsulate(ek, benchBytes(11, KEMEncapsRandomSize))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ss, err := KEMDecapsulate(seed, ct)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(ss, want) {
			b.Fatalf("KEMDecapsulate: got %x, want %x", ss, want)
		}
	}
}

func BenchmarkKEMPublic(b *testing.B) {
	seed := benchBytes(10, KEMSeedSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := KEMPublic(seed); err != nil {
			b.Fatal(err)
		}
	}
}
