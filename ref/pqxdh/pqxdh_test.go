package pqxdh

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

type device struct {
	ik, spk, opk *keys.PrivateKey
	kem          *keys.KEMPrivateKey
}

func (d *device) SignedPreKey(id uint32) (*keys.PrivateKey, bool) { return d.spk, id == 1 }
func (d *device) KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool) { return d.kem, id == 2 }
func (d *device) OneTimePreKey(id uint32) (*keys.PrivateKey, bool) {
	return d.opk, id == 3 && d.opk != nil
}

func newDevice(t testing.TB, r io.Reader, withOPK bool) (*device, *Bundle) {
	t.Helper()
	var err error
	d := &device{}
	gen := func() *keys.PrivateKey {
		k, e := keys.GeneratePrivateKey(r)
		if e != nil {
			err = e
		}
		return k
	}
	d.ik, d.spk = gen(), gen()
	if withOPK {
		d.opk = gen()
	}
	if d.kem, err = keys.GenerateKEMPrivateKey(r); err != nil {
		t.Fatal(err)
	}
	b := &Bundle{IdentityKey: d.ik.Public(),
		SignedPreKey: SignedPreKey{ID: 1, Key: d.spk.Public()},
		KEMPreKey:    KEMPreKey{ID: 2, Key: d.kem.Public()},
	}
	if b.SignedPreKey.Signature, err = SignSignedPreKey(d.ik, d.spk.Public(), r); err != nil {
		t.Fatal(err)
	}
	if b.KEMPreKey.Signature, err = SignKEMPreKey(d.ik, d.kem.Public(), r); err != nil {
		t.Fatal(err)
	}
	if withOPK {
		b.OneTimePreKey = &OneTimePreKey{ID: 3, Key: d.opk.Public()}
	}
	return d, b
}

func testRand() io.Reader { return rand.NewChaCha8([32]byte{9}) }

func TestAgreement(t *testing.T) {
	for _, withOPK := range []bool{false, true} {
		r := testRand()
		bob, b := newDevice(t, r, withOPK)
		enc, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseBundle(enc)
		if err != nil {
			t.Fatalf("ParseBundle: %v", err)
		}
		ika, _ := keys.GeneratePrivateKey(r)
		in, err := Initiate(r, ika, parsed)
		if err != nil {
			t.Fatal(err)
		}
		m := &wire.PreKeyMessage{Version: 1, IdentityKey: in.IdentityKey.Encode(), EphemeralKey: in.EphemeralKey.Encode(),
			SignedPreKeyID: uint64(in.SignedPreKeyID), KEMPreKeyID: uint64(in.KEMPreKeyID), KEMCiphertext: in.KEMCiphertext}
		if in.OneTimePreKeyID != nil {
			id := uint64(*in.OneTimePreKeyID)
			m.OneTimePreKeyID = &id
		}
		res, err := Respond(bob.ik, bob, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(in.SK, res.SK) || !bytes.Equal(in.AD, res.AD) {
			t.Errorf("with OPK %v: initiator and responder disagree", withOPK)
		}
	}
}

func TestParseBundleRejects(t *testing.T) {
	r := testRand()
	_, b := newDevice(t, r, true)
	other, _ := keys.GeneratePrivateKey(r)
	tests := []struct {
		name   string
		change func(b *Bundle)
		want   errcode.Code
	}{
		{"signed prekey signature", func(b *Bundle) { b.SignedPreKey.Signature[0] ^= 1 }, errcode.AuthBadSignature},
		{"KEM prekey signature", func(b *Bundle) { b.KEMPreKey.Signature[63] ^= 0x10 }, errcode.AuthBadSignature},
		{"identity key", func(b *Bundle) { b.IdentityKey = other.Public() }, errcode.AuthBadSignature},
		{"signatures swapped", func(b *Bundle) {
			b.SignedPreKey.Signature, b.KEMPreKey.Signature = b.KEMPreKey.Signature, b.SignedPreKey.Signature
		}, errcode.AuthBadSignature},
	}
	for _, tt := range tests {
		c := *b
		c.SignedPreKey.Signature = bytes.Clone(b.SignedPreKey.Signature)
		c.KEMPreKey.Signature = bytes.Clone(b.KEMPreKey.Signature)
		tt.change(&c)
		enc, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseBundle(enc); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	_, b := newDevice(f, testRand(), true)
	enc, _ := b.Marshal()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if !errcode.Of(err).Registered() {
				t.Fatalf("unregistered error %v", err)
			}
			return
		}
		again, err := b.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted bundle does not re-encode to its input")
		}
	})
}

var sinkSK []byte

// BenchmarkInitiate is PQXDH on the initiator's side with a one-time
// prekey: EK_A generation, four X25519, ML-KEM-1024 encapsulation and the
// derivation.
func BenchmarkInitiate(b *testing.B) {
	r := testRand()
	_, bundle := newDevice(b, r, true)
	ika, _ := keys.GeneratePrivateKey(r)
	b.ReportAllocs()
	for b.Loop() {
		in, err := Initiate(r, ika, bundle)
		if err != nil {
			b.Fatal(err)
		}
		sinkSK = in.SK
	}
}

// BenchmarkInitiateFloor is the primitive floor of BenchmarkInitiate: the
// same X25519, ML-KEM, SHA-256 and HKDF calls on the same inputs.
func BenchmarkInitiateFloor(b *testing.B) {
	r := testRand()
	_, bundle := newDevice(b, r, true)
	ik, _ := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	peers := []*ecdh.PublicKey{bundle.SignedPreKey.Key.ECDHKey(), bundle.IdentityKey.ECDHKey(), bundle.OneTimePreKey.Key.ECDHKey()}
	ek, _ := mlkem.NewEncapsulationKey1024(bundle.KEMPreKey.Key.Bytes())
	th := make([]byte, 5*33+1569+1568)
	seed, m := make([]byte, 32), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		r.Read(seed)
		eph, _ := ecdh.X25519().NewPrivateKey(seed)
		eph.PublicKey()
		km, _ := ik.ECDH(peers[0])
		for _, p := range peers {
			out, _ := eph.ECDH(p)
			km = append(km, out...)
		}
		r.Read(m)
		ss, _, _ := mlkemtest.Encapsulate1024(ek, m)
		km = append(km, ss...)
		h := sha256.Sum256(th)
		sinkSK, _ = hkdf.Key(sha256.New, km, make([]byte, 32), LabelPQXDH+string(h[:]), 32)
	}
}

// BenchmarkRespond is PQXDH on the responder's side with a one-time prekey.
func BenchmarkRespond(b *testing.B) {
	r := testRand()
	bob, bundle := newDevice(b, r, true)
	ika, _ := keys.GeneratePrivateKey(r)
	in, _ := Initiate(r, ika, bundle)
	opk := uint64(3)
	m := &wire.PreKeyMessage{Version: 1, IdentityKey: in.IdentityKey.Encode(), EphemeralKey: in.EphemeralKey.Encode(),
		SignedPreKeyID: 1, KEMPreKeyID: 2, KEMCiphertext: in.KEMCiphertext, OneTimePreKeyID: &opk}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Respond(bob.ik, bob, m)
		if err != nil {
			b.Fatal(err)
		}
		sinkSK = res.SK
	}
}

// BenchmarkRespondFloor is the primitive floor of BenchmarkRespond.
func BenchmarkRespondFloor(b *testing.B) {
	r := testRand()
	bob, bundle := newDevice(b, r, true)
	ika, _ := keys.GeneratePrivateKey(r)
	in, _ := Initiate(r, ika, bundle)
	privs := []*ecdh.PrivateKey{bob.spk.ECDHKey(), bob.ik.ECDHKey(), bob.spk.ECDHKey(), bob.opk.ECDHKey()}
	ikaPub, ekPub := in.IdentityKey.Bytes(), in.EphemeralKey.Bytes()
	dk, _ := mlkem.NewDecapsulationKey1024(bob.kem.Seed())
	th := make([]byte, 5*33+1569+1568)
	b.ReportAllocs()
	for b.Loop() {
		pa, _ := ecdh.X25519().NewPublicKey(ikaPub)
		pe, _ := ecdh.X25519().NewPublicKey(ekPub)
		km, _ := privs[0].ECDH(pa)
		for _, p := range privs[1:] {
			out, _ := p.ECDH(pe)
			km = append(km, out...)
		}
		ss, _ := dk.Decapsulate(in.KEMCiphertext)
		km = append(km, ss...)
		h := sha256.Sum256(th)
		sinkSK, _ = hkdf.Key(sha256.New, km, make([]byte, 32), LabelPQXDH+string(h[:]), 32)
	}
}
