package pqxdh

import (
	"bytes"
	"io"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/ratchet"
	"github.com/missive-protocol/missive/ref/wire"
)

// Prekey ids of fuzzResponder.
const (
	fuzzSPKID        = 1 // signed EC prekey
	fuzzLastResortID = 2 // last-resort KEM prekey
	fuzzOPKID        = 3 // one-time EC prekey
	fuzzOneTimeKEMID = 4 // one-time KEM prekey
)

// fuzzResponder is Bob with an identity key, a signed prekey, a
// last-resort KEM prekey, a one-time EC prekey and a one-time KEM prekey.
// Its lookups never consume anything.
type fuzzResponder struct {
	ik, spk, opk      *keys.PrivateKey
	lastResort, kemOT *keys.KEMPrivateKey
}

func (b *fuzzResponder) SignedPreKey(id uint32) (*keys.PrivateKey, bool) {
	return b.spk, id == fuzzSPKID
}

func (b *fuzzResponder) KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool) {
	switch id {
	case fuzzLastResortID:
		return b.lastResort, true
	case fuzzOneTimeKEMID:
		return b.kemOT, true
	}
	return nil, false
}

func (b *fuzzResponder) OneTimePreKey(id uint32) (*keys.PrivateKey, bool) {
	return b.opk, id == fuzzOPKID
}

// newFuzzResponder builds Bob's keys from r, as newDevice does.
func newFuzzResponder(t testing.TB, r io.Reader) *fuzzResponder {
	t.Helper()
	b := &fuzzResponder{}
	var err error
	for _, k := range []**keys.PrivateKey{&b.ik, &b.spk, &b.opk} {
		if *k, err = keys.GeneratePrivateKey(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []**keys.KEMPrivateKey{&b.lastResort, &b.kemOT} {
		if *k, err = keys.GenerateKEMPrivateKey(r); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// bundle returns Bob's verified bundle with the KEM prekey kemID and, when
// withOPK, the one-time EC prekey.
func (b *fuzzResponder) bundle(t testing.TB, r io.Reader, kemID uint32, withOPK bool) *Bundle {
	t.Helper()
	kem, ok := b.KEMPreKey(kemID)
	if !ok {
		t.Fatalf("no KEM prekey %d", kemID)
	}
	bundle := &Bundle{IdentityKey: b.ik.Public(),
		SignedPreKey: SignedPreKey{ID: fuzzSPKID, Key: b.spk.Public()},
		KEMPreKey:    KEMPreKey{ID: kemID, Key: kem.Public(), LastResort: kemID == fuzzLastResortID},
	}
	var err error
	if bundle.SignedPreKey.Signature, err = SignSignedPreKey(b.ik, b.spk.Public(), r); err != nil {
		t.Fatal(err)
	}
	if bundle.KEMPreKey.Signature, err = SignKEMPreKey(b.ik, kem.Public(), r); err != nil {
		t.Fatal(err)
	}
	if withOPK {
		bundle.OneTimePreKey = &OneTimePreKey{ID: fuzzOPKID, Key: b.opk.Public()}
	}
	enc, err := bundle.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseBundle(enc)
	if err != nil {
		t.Fatalf("ParseBundle: got %v, want nil", err)
	}
	return parsed
}

// fuzzPreKeyMessage runs Alice's side against bundle and returns the
// encoded prekey message she sends, with a real first ratchet message.
func fuzzPreKeyMessage(t testing.TB, r io.Reader, bundle *Bundle) []byte {
	t.Helper()
	ika, err := keys.GeneratePrivateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Initiate(r, ika, bundle)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ratchet.NewInitiator(in.SK, in.AD, in.RemoteSignedPreKey, r)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := rs.Encrypt([]byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.PreKeyMessage{Version: wire.ProtocolVersion, IdentityKey: in.IdentityKey.Encode(),
		EphemeralKey: in.EphemeralKey.Encode(), SignedPreKeyID: uint64(in.SignedPreKeyID),
		KEMPreKeyID: uint64(in.KEMPreKeyID), KEMCiphertext: in.KEMCiphertext, Message: msg}
	if in.OneTimePreKeyID != nil {
		m.OneTimePreKeyID = wire.Ptr(uint64(*in.OneTimePreKeyID))
	}
	enc, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// respondBytes is Bob's steps 1 to 5 of spec section 4.6 on a prekey
// message as received: decode, then Respond.
func respondBytes(b *fuzzResponder, data []byte) (*Response, error) {
	var m wire.PreKeyMessage
	if err := wire.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return Respond(b.ik, b, &m)
}

// checkRegistered fails unless err carries a registered error code.
func checkRegistered(t *testing.T, what string, err error) {
	t.Helper()
	if c := errcode.Of(err); !c.Registered() {
		t.Fatalf("%s: got unregistered error %v (code %v), want a registered code", what, err, c)
	}
}

// FuzzRespond feeds arbitrary prekey messages to Bob: no panic, every
// failure a registered code, and a success gives a 32-byte SK, the AD of
// spec section 4.4 and the same result when run again on the same bytes.
func FuzzRespond(f *testing.F) {
	r := testRand()
	bob := newFuzzResponder(f, r)
	for _, kemID := range []uint32{fuzzLastResortID, fuzzOneTimeKEMID} {
		for _, withOPK := range []bool{false, true} {
			seed := fuzzPreKeyMessage(f, r, bob.bundle(f, r, kemID, withOPK))
			if _, err := respondBytes(bob, seed); err != nil {
				f.Fatalf("seed (KEM %d, OPK %v): got %v, want nil", kemID, withOPK, err)
			}
			f.Add(seed)
		}
	}
	ikb := bob.ik.Public().Encode()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		res, err := respondBytes(bob, data)
		again, errAgain := respondBytes(bob, data)
		if !bytes.Equal(in, data) {
			t.Fatalf("Respond changed its input: got %x, want %x", data, in)
		}
		if err != nil {
			checkRegistered(t, "Respond", err)
			if errcode.Of(errAgain) != errcode.Of(err) {
				t.Fatalf("second Respond: got %v, want %v", errAgain, err)
			}
			return
		}
		if errAgain != nil {
			t.Fatalf("second Respond: got %v, want nil", errAgain)
		}
		if len(res.SK) != SKSize {
			t.Fatalf("SK: got %d bytes, want %d", len(res.SK), SKSize)
		}
		if !bytes.Equal(again.SK, res.SK) || !bytes.Equal(again.AD, res.AD) {
			t.Fatalf("second Respond: got SK %x AD %x, want SK %x AD %x", again.SK, again.AD, res.SK, res.AD)
		}
		var m wire.PreKeyMessage
		if err := wire.Unmarshal(data, &m); err != nil {
			t.Fatalf("decode after success: got %v, want nil", err)
		}
		if want := append(bytes.Clone(m.IdentityKey), ikb...); !bytes.Equal(res.AD, want) {
			t.Fatalf("AD: got %x, want %x", res.AD, want)
		}
		if got := res.IdentityKey.Encode(); !bytes.Equal(got, m.IdentityKey) {
			t.Fatalf("IK_A: got %x, want %x", got, m.IdentityKey)
		}
		if got := res.EphemeralKey.Encode(); !bytes.Equal(got, m.EphemeralKey) {
			t.Fatalf("EK_A: got %x, want %x", got, m.EphemeralKey)
		}
		if res.SignedPreKey != bob.spk {
			t.Fatalf("signed prekey: got %x, want %x", res.SignedPreKey.Public().Encode(), bob.spk.Public().Encode())
		}
	})
}
