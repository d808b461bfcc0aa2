package prim

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"testing"
)

// TestX25519AgainstECDH checks the ladder and the fixed-base public key
// against crypto/ecdh for scalars and u-coordinates drawn from a hash chain:
// any 32 bytes, so twist points, u of p or more and a set top bit come up
// as they do in a handshake with a hostile peer, and every scalar is
// clamped by both.
func TestX25519AgainstECDH(t *testing.T) {
	seed := sha256.Sum256([]byte("x25519 against crypto/ecdh"))
	next := func() []byte {
		seed = sha256.Sum256(seed[:])
		return bytes.Clone(seed[:])
	}
	for i := range 2000 {
		priv, u := next(), next()
		if i%4 == 0 {
			u[31] |= 0x80 // the top bit, which both ignore
		}
		k, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		gotPub, err := X25519Public(priv)
		if err != nil {
			t.Fatalf("case %d: X25519Public: %v", i, err)
		}
		if want := k.PublicKey().Bytes(); !bytes.Equal(gotPub, want) {
			t.Fatalf("case %d: X25519Public(%x) = %x, want %x", i, priv, gotPub, want)
		}
		p, err := ecdh.X25519().NewPublicKey(u)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := k.ECDH(p)
		got, err := X25519(priv, u)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("case %d: X25519(%x, %x) = %x, %v; want %x, %v", i, priv, u, got, err, want, wantErr)
		}
	}
}

// TestX25519Sizes checks that wrong sizes are refused, not read past.
func TestX25519Sizes(t *testing.T) {
	for _, c := range []struct{ priv, pub int }{{31, 32}, {32, 31}, {33, 32}, {32, 33}, {0, 0}} {
		if _, err := X25519(make([]byte, c.priv), make([]byte, c.pub)); err != ErrKeySize {
			t.Errorf("X25519 with %d and %d bytes: got %v, want ErrKeySize", c.priv, c.pub, err)
		}
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := X25519Public(make([]byte, n)); err != ErrKeySize {
			t.Errorf("X25519Public of %d bytes: got %v, want ErrKeySize", n, err)
		}
	}
}
