package session

import (
	"bytes"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/wire"
)

type pqxdhCase struct {
	vectest.Common
	Operation               string      `json:"operation"`
	AliceIdentityPrivate    vectest.Hex `json:"alice_identity_private"`
	BobIdentityPrivate      vectest.Hex `json:"bob_identity_private"`
	BobSignedPrekeyPrivate  vectest.Hex `json:"bob_signed_prekey_private"`
	BobSignedPrekeyID       uint32      `json:"bob_signed_prekey_id"`
	BobKEMPrekeySeed        vectest.Hex `json:"bob_kem_prekey_seed"`
	BobKEMPrekeyID          uint32      `json:"bob_kem_prekey_id"`
	BobKEMPrekeyLastResort  bool        `json:"bob_kem_prekey_last_resort"`
	BobOneTimePrekeyPrivate vectest.Hex `json:"bob_one_time_prekey_private"`
	BobOneTimePrekeyID      *uint32     `json:"bob_one_time_prekey_id"`
	SignedPrekeyZ           vectest.Hex `json:"signed_prekey_z"`
	KEMPrekeyZ              vectest.Hex `json:"kem_prekey_z"`
	Bundle                  vectest.Hex `json:"bundle"`
	AliceEphemeralPrivate   vectest.Hex `json:"alice_ephemeral_private"`
	KEMEncapsRandom         vectest.Hex `json:"kem_encaps_random"`
	AliceRatchetPrivate     vectest.Hex `json:"alice_ratchet_private"`
	BobRatchetPrivate       vectest.Hex `json:"bob_ratchet_private"`
	Plaintext               vectest.Hex `json:"plaintext"`
	SK                      vectest.Hex `json:"sk"`
	AD                      vectest.Hex `json:"ad"`
	PrekeyMessage           vectest.Hex `json:"prekey_message"`
}

// bobKeys is Bob's device for one case: exactly the keys the case lists.
type bobKeys struct {
	ik  *keys.PrivateKey
	spk map[uint32]*keys.PrivateKey
	kem map[uint32]*keys.KEMPrivateKey
	opk map[uint32]*keys.PrivateKey
}

func (b *bobKeys) SignedPreKey(id uint32) (*keys.PrivateKey, bool)  { k, ok := b.spk[id]; return k, ok }
func (b *bobKeys) KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool)  { k, ok := b.kem[id]; return k, ok }
func (b *bobKeys) OneTimePreKey(id uint32) (*keys.PrivateKey, bool) { k, ok := b.opk[id]; return k, ok }

// must turns a (value, error) pair into a function that returns the value
// or fails the test: must(f())(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (c *pqxdhCase) bob(t *testing.T) *bobKeys {
	t.Helper()
	b := &bobKeys{
		ik:  must(keys.NewPrivateKey(c.BobIdentityPrivate))(t),
		spk: map[uint32]*keys.PrivateKey{c.BobSignedPrekeyID: must(keys.NewPrivateKey(c.BobSignedPrekeyPrivate))(t)},
		kem: map[uint32]*keys.KEMPrivateKey{c.BobKEMPrekeyID: must(keys.NewKEMPrivateKey(c.BobKEMPrekeySeed))(t)},
		opk: map[uint32]*keys.PrivateKey{},
	}
	if c.BobOneTimePrekeyPrivate != nil {
		if c.BobOneTimePrekeyID == nil {
			t.Fatal("one-time prekey without id")
		}
		b.opk[*c.BobOneTimePrekeyID] = must(keys.NewPrivateKey(c.BobOneTimePrekeyPrivate))(t)
	}
	return b
}

// bundle builds Bob's bundle from his keys and the signing randomness.
func (c *pqxdhCase) bundle(t *testing.T, b *bobKeys) []byte {
	t.Helper()
	spk := b.spk[c.BobSignedPrekeyID].Public()
	kem := b.kem[c.BobKEMPrekeyID].Public()
	bundle := &pqxdh.Bundle{
		IdentityKey: b.ik.Public(),
		SignedPreKey: pqxdh.SignedPreKey{ID: c.BobSignedPrekeyID, Key: spk,
			Signature: must(pqxdh.SignSignedPreKey(b.ik, spk, bytes.NewReader(c.SignedPrekeyZ)))(t)},
		KEMPreKey: pqxdh.KEMPreKey{ID: c.BobKEMPrekeyID, Key: kem, LastResort: c.BobKEMPrekeyLastResort,
			Signature: must(pqxdh.SignKEMPreKey(b.ik, kem, bytes.NewReader(c.KEMPrekeyZ)))(t)},
	}
	if c.BobOneTimePrekeyID != nil {
		bundle.OneTimePreKey = &pqxdh.OneTimePreKey{ID: *c.BobOneTimePrekeyID, Key: b.opk[*c.BobOneTimePrekeyID].Public()}
	}
	return must(bundle.Marshal())(t)
}

// TestPQXDHVectors runs vectors/v1/pqxdh.json (spec/09-vectors.md).
func TestPQXDHVectors(t *testing.T) {
	f := vectest.Load[pqxdhCase](t, "pqxdh")
	valid := map[string]*pqxdhCase{} // by bundle
	for i, c := range f.Cases {
		if c.Expect == "valid" {
			valid[string(c.Bundle)] = &f.Cases[i]
		}
	}
	if len(valid) == 0 {
		t.Fatal("no valid case")
	}
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			bob := c.bob(t)
			ika := must(keys.NewPrivateKey(c.AliceIdentityPrivate))(t)
			initiate, respond := c.Operation == "initiate", c.Operation == "respond"
			switch {
			case c.Operation == "both" && want == 0:
				initiate, respond = true, true
			case (initiate || respond) && want != 0:
			default:
				t.Fatalf("operation %q with expect %q", c.Operation, c.Expect)
			}
			if want == 0 {
				if got := c.bundle(t, bob); !bytes.Equal(got, c.Bundle) {
					t.Errorf("bundle: got\n%x\nwant\n%x", got, []byte(c.Bundle))
				}
			} else {
				c.checkDerived(t, bob, ika, valid)
			}
			if initiate {
				r := vectest.NewReader(t, c.ID, c.AliceEphemeralPrivate, c.KEMEncapsRandom, c.AliceRatchetPrivate)
				s, err := Initiate(r, ika, c.Bundle)
				if got := errcode.Of(err); got != want {
					t.Fatalf("Initiate: got %v (%v), want %v", got, err, want)
				}
				if want == 0 {
					r.Done()
					kind, msg, err := s.Encrypt(c.Plaintext)
					if err != nil || kind != KindPreKey {
						t.Fatalf("Encrypt: %v %v", kind, err)
					}
					if !bytes.Equal(msg, c.PrekeyMessage) {
						t.Errorf("prekey message: got\n%x\nwant\n%x", msg, []byte(c.PrekeyMessage))
					}
					b := must(pqxdh.ParseBundle(c.Bundle))(t)
					in := must(pqxdh.Initiate(vectest.NewReader(t, c.ID, c.AliceEphemeralPrivate, c.KEMEncapsRandom), ika, b))(t)
					if !bytes.Equal(in.SK, c.SK) || !bytes.Equal(in.AD, c.AD) {
						t.Errorf("initiator SK, AD: got %x, %x; want %x, %x", in.SK, in.AD, []byte(c.SK), []byte(c.AD))
					}
				}
			}
			if respond {
				r := vectest.NewReader(t, c.ID, c.BobRatchetPrivate)
				s, pt, used, err := Respond(r, bob.ik, bob, c.PrekeyMessage)
				if got := errcode.Of(err); got != want {
					t.Fatalf("Respond: got %v (%v), want %v", got, err, want)
				}
				if want == 0 {
					r.Done()
					if !bytes.Equal(pt, c.Plaintext) {
						t.Errorf("plaintext: got %x, want %x", pt, []byte(c.Plaintext))
					}
					if (used.OneTimePreKeyID == nil) != (c.BobOneTimePrekeyID == nil) {
						t.Errorf("one-time prekey used: got %v, want %v", used.OneTimePreKeyID, c.BobOneTimePrekeyID)
					}
					// The ratchet key Bob drew in his first decryption
					// (spec 5.8) is the one his reply carries.
					kind, reply, err := s.Encrypt(c.Plaintext)
					if err != nil || kind != KindRatchet {
						t.Fatalf("Encrypt: %v %v", kind, err)
					}
					var rm wire.RatchetMessage
					var h wire.RatchetHeader
					if err := wire.Unmarshal(reply, &rm); err != nil {
						t.Fatal(err)
					}
					if err := wire.Unmarshal(rm.Header, &h); err != nil {
						t.Fatal(err)
					}
					if key := must(keys.NewPrivateKey(c.BobRatchetPrivate))(t).Public().Encode(); !bytes.Equal(h.RatchetKey, key) {
						t.Errorf("reply's ratchet key: got %x, want %x (from bob_ratchet_private)", h.RatchetKey, key)
					}
					var m wire.PreKeyMessage
					if err := wire.Unmarshal(c.PrekeyMessage, &m); err != nil {
						t.Fatal(err)
					}
					res := must(pqxdh.Respond(bob.ik, bob, &m))(t)
					if !bytes.Equal(res.SK, c.SK) || !bytes.Equal(res.AD, c.AD) {
						t.Errorf("responder SK, AD: got %x, %x; want %x, %x", res.SK, res.AD, []byte(c.SK), []byte(c.AD))
					}
				}
			}
		})
	}
}

// checkDerived checks the inputs of an invalid case, which changes one
// thing of a valid case (sections 9.1 and 9.2). The bundle that Bob's keys
// and signed_prekey_z, kem_prekey_z give is the bundle of a valid case: in
// a "respond" case it is bundle (without its one-time prekey when Bob no
// longer holds one), in an "initiate" case the bundle the case altered.
// From that bundle, Alice's identity key, randomness and plaintext make the
// valid case's prekey message (which a "respond" case then altered), and
// bob_ratchet_private is the valid case's. z changes no outcome (a verifier
// does not use it): without this check nothing would read it.
func (c *pqxdhCase) checkDerived(t *testing.T, bob *bobKeys, ika *keys.PrivateKey, valid map[string]*pqxdhCase) {
	t.Helper()
	// The bundle the case's invalid input was made from: in a "respond"
	// case, bundle; in an "initiate" case, the one Bob's keys and z give.
	rebuilt, unaltered := c.bundle(t, bob), []byte(c.Bundle)
	if c.Operation == "initiate" {
		unaltered = rebuilt
	}
	base := valid[string(unaltered)]
	switch {
	case base == nil:
		t.Fatalf("the bundle of Bob's keys and z is no valid case's:\n%x", rebuilt)
	case c.Operation == "initiate" && bytes.Equal(c.Bundle, rebuilt):
		t.Fatalf("bundle is the one Bob's keys and z give, unaltered")
	case c.Operation == "respond" && !bytes.Equal(rebuiltFrom(t, c.Bundle, c.BobOneTimePrekeyID != nil), rebuilt):
		t.Fatalf("bundle: Bob's keys and z give\n%x\nwant\n%x", rebuilt, []byte(c.Bundle))
	}
	r := vectest.NewReader(t, c.ID, c.AliceEphemeralPrivate, c.KEMEncapsRandom, c.AliceRatchetPrivate)
	s, err := Initiate(r, ika, unaltered)
	if err != nil {
		t.Fatalf("Initiate on %s's bundle: %v", base.ID, err)
	}
	r.Done()
	if _, msg, err := s.Encrypt(c.Plaintext); err != nil || !bytes.Equal(msg, base.PrekeyMessage) {
		t.Errorf("Alice's inputs give another prekey message than %s's (%v)", base.ID, err)
	}
	if !bytes.Equal(c.BobRatchetPrivate, base.BobRatchetPrivate) {
		t.Errorf("bob_ratchet_private: got %x, want %x (%s's)", []byte(c.BobRatchetPrivate), []byte(base.BobRatchetPrivate), base.ID)
	}
}

// rebuiltFrom returns bundle as Bob's keys give it: without its one-time
// prekey when Bob holds none.
func rebuiltFrom(t *testing.T, bundle []byte, holdsOneTime bool) []byte {
	t.Helper()
	if holdsOneTime {
		return bundle
	}
	b := must(pqxdh.ParseBundle(bundle))(t)
	b.OneTimePreKey = nil
	return must(b.Marshal())(t)
}
