package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

func TestDecodeChecks(t *testing.T) {
	p := bytes.Repeat([]byte{0xFF}, 32)
	p[0], p[31] = 0xED, 0x7F // p = 2^255 - 19 itself
	belowPKey := bytes.Clone(p)
	belowPKey[0] = 0xEC
	tests := []struct {
		name string
		in   []byte
		want errcode.Code
	}{
		{"empty", nil, errcode.DecodeKeyType},
		{"kem type in x25519 slot", append([]byte{TypeMLKEMPublic}, make([]byte, 32)...), errcode.DecodeKeyType},
		{"private type", append([]byte{TypeX25519Private}, make([]byte, 32)...), errcode.DecodeKeyType},
		{"short", append([]byte{TypeX25519Public}, make([]byte, 31)...), errcode.DecodeKeyLength},
		{"long", append([]byte{TypeX25519Public}, make([]byte, 33)...), errcode.DecodeKeyLength},
		{"u = p", append([]byte{TypeX25519Public}, p...), errcode.DecodeKeyNoncanonical},
		{"high bit", append([]byte{TypeX25519Public}, append(make([]byte, 31), 0x80)...), errcode.DecodeKeyNoncanonical},
		{"u = p - 1", append([]byte{TypeX25519Public}, belowPKey...), 0},
	}
	for _, tt := range tests {
		_, err := DecodePublicKey(tt.in)
		if got := errcode.Of(err); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	// An ML-KEM key whose first coefficient is not reduced (FIPS 203 7.2).
	bad := append([]byte{TypeMLKEMPublic}, bytes.Repeat([]byte{0xFF}, MLKEMPublicSize)...)
	if _, err := DecodeKEMPublicKey(bad); !errors.Is(err, errcode.DecodeKeyNoncanonical) {
		t.Errorf("unreduced ML-KEM key: got %v, want %v", err, errcode.DecodeKeyNoncanonical)
	}
	if _, err := DecodeKEMPublicKey(append([]byte{TypeX25519Public}, make([]byte, 32)...)); !errors.Is(err, errcode.DecodeKeyType) {
		t.Errorf("X25519 key in KEM slot: got %v, want %v", err, errcode.DecodeKeyType)
	}
}

func TestRoundTrip(t *testing.T) {
	k, err := NewPrivateKey(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodePrivateKey(k.Encode()); err != nil || !bytes.Equal(got.Bytes(), k.Bytes()) {
		t.Errorf("private key round trip: %v", err)
	}
	if got, err := DecodePublicKey(k.Public().Encode()); err != nil || !got.Equal(k.Public()) {
		t.Errorf("public key round trip: %v", err)
	}
	kem, err := NewKEMPrivateKey(bytes.Repeat([]byte{4}, MLKEMSeedSize))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeKEMPrivateKey(kem.Encode()); err != nil || !bytes.Equal(got.Seed(), kem.Seed()) {
		t.Errorf("KEM private key round trip: %v", err)
	}
	if got, err := DecodeKEMPublicKey(kem.Public().Encode()); err != nil || !bytes.Equal(got.Bytes(), kem.Public().Bytes()) {
		t.Errorf("KEM public key round trip: %v", err)
	}
}

// FuzzDecode checks every key decoder: no panic, registered decode codes
// only, and an accepted encoding encodes back to itself.
func FuzzDecode(f *testing.F) {
	k, _ := NewPrivateKey(bytes.Repeat([]byte{5}, 32))
	kem, _ := NewKEMPrivateKey(bytes.Repeat([]byte{6}, MLKEMSeedSize))
	for _, s := range [][]byte{k.Encode(), k.Public().Encode(), kem.Encode(), kem.Public().Encode()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(enc []byte, err error) {
			if err != nil {
				if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
					t.Fatalf("error %v is not a registered decode code", err)
				}
				return
			}
			if !bytes.Equal(enc, data) {
				t.Fatalf("accepted %x, encodes as %x", data, enc)
			}
		}
		if p, err := DecodePublicKey(data); err == nil {
			check(p.Encode(), nil)
		} else {
			check(nil, err)
		}
		if p, err := DecodePrivateKey(data); err == nil {
			check(p.Encode(), nil)
		} else {
			check(nil, err)
		}
		if p, err := DecodeKEMPublicKey(data); err == nil {
			check(p.Encode(), nil)
		} else {
			check(nil, err)
		}
		if p, err := DecodeKEMPrivateKey(data); err == nil {
			check(p.Encode(), nil)
		} else {
			check(nil, err)
		}
	})
}
