package ratchet

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha3"
	"fmt"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
)

type step struct {
	Op             string      `json:"op"`
	Party          string      `json:"party"`
	Plaintext      vectest.Hex `json:"plaintext"`
	Message        vectest.Hex `json:"message"`
	RatchetPrivate vectest.Hex `json:"ratchet_private"`
	Expect         string      `json:"expect"`
	Error          string      `json:"error"`
}

type vectorCase struct {
	vectest.Common
	SK                  vectest.Hex `json:"sk"`
	AD                  vectest.Hex `json:"ad"`
	AliceRatchetPrivate vectest.Hex `json:"alice_ratchet_private"`
	BobRatchetPrivate   vectest.Hex `json:"bob_ratchet_private"`
	Steps               []step      `json:"steps"`
}

// start initializes both sides as spec section 5.4 says.
func start(t *testing.T, id string, sk, ad, aliceRatchet, bobRatchet []byte) (alice, bob *State) {
	t.Helper()
	spk, err := keys.NewPrivateKey(bobRatchet)
	if err != nil {
		t.Fatal(err)
	}
	r := vectest.NewReader(t, id, aliceRatchet)
	if alice, err = NewInitiator(sk, ad, spk.Public(), r); err != nil {
		t.Fatal(err)
	}
	r.Done()
	if bob, err = NewResponder(sk, ad, spk); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// TestVectors runs vectors/v1/ratchet.json (spec/09-vectors.md).
func TestVectors(t *testing.T) {
	f := vectest.Load[vectorCase](t, "ratchet")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			c.Want(t)
			if len(c.Steps) == 0 {
				t.Fatal("case has no steps")
			}
			alice, bob := start(t, c.ID, c.SK, c.AD, c.AliceRatchetPrivate, c.BobRatchetPrivate)
			sawInvalid := false
			for i, s := range c.Steps {
				party := map[string]*State{"alice": alice, "bob": bob}[s.Party]
				if party == nil {
					t.Fatalf("step %d: unknown party %q", i, s.Party)
				}
				sc := vectest.Common{ID: fmt.Sprintf("%s step %d", c.ID, i), Expect: s.Expect, Error: s.Error}
				want := sc.Want(t)
				sawInvalid = sawInvalid || want != 0
				before, err := party.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				switch s.Op {
				case "encrypt":
					m, err := party.Encrypt(s.Plaintext)
					if got := errcode.Of(err); got != want {
						t.Fatalf("step %d encrypt: got %v (%v), want %v", i, got, err, want)
					}
					if want == 0 && !bytes.Equal(m, s.Message) {
						t.Fatalf("step %d encrypt: got message\n%x\nwant\n%x", i, m, s.Message)
					}
				case "decrypt":
					r := vectest.NewReader(t, sc.ID, s.RatchetPrivate)
					pt, err := party.Decrypt(r, s.Message)
					if got := errcode.Of(err); got != want {
						t.Fatalf("step %d decrypt: got %v (%v), want %v", i, got, err, want)
					}
					if want == 0 {
						r.Done()
						if !bytes.Equal(pt, s.Plaintext) {
							t.Fatalf("step %d decrypt: got %x, want %x", i, pt, s.Plaintext)
						}
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, s.Op)
				}
				if want != 0 {
					after, _ := party.MarshalBinary()
					if !bytes.Equal(before, after) {
						t.Fatalf("step %d: state changed after a failure (RAT-010)", i)
					}
				}
			}
			if got := c.Expect == "invalid"; got != sawInvalid {
				t.Errorf("case expect %q, but invalid steps: %v", c.Expect, sawInvalid)
			}
		})
	}
}

type accumulatedCase struct {
	vectest.Common
	Sessions int         `json:"sessions"`
	Rounds   int         `json:"rounds"`
	Seed     string      `json:"seed"`
	Digest   vectest.Hex `json:"digest"`
}

// TestAccumulated runs the procedure of vectors/v1/ratchet_accumulated.json
// (spec/09-vectors.md) and compares the digest.
func TestAccumulated(t *testing.T) {
	if testing.Short() {
		t.Skip("accumulated vector in -short mode")
	}
	f := vectest.Load[accumulatedCase](t, "ratchet_accumulated")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			if c.Sessions <= 0 || c.Rounds <= 0 {
				t.Fatalf("sessions %d, rounds %d", c.Sessions, c.Rounds)
			}
			if want := c.Want(t); want != 0 {
				t.Fatalf("an accumulated case expects %v; every message of its sessions decrypts", want)
			}
			R := sha3.NewSHAKE128()
			R.Write([]byte(c.Seed))
			read := func(n int) []byte {
				b := make([]byte, n)
				R.Read(b)
				return b
			}
			u8 := func() int { return int(read(1)[0]) }
			T := sha256.New()
			for s := range c.Sessions {
				sk, ad := read(32), read(66)
				alice, bob := start(t, c.ID, sk, ad, read(32), read(32))
				for r := range c.Rounds {
					sender, receiver := alice, bob
					if r%2 == 1 {
						sender, receiver = bob, alice
					}
					k := 1 + u8()%4
					type sent struct{ msg, pt []byte }
					var msgs []sent
					for range k {
						n := u8()
						n += 256 * (u8() % 4)
						pt := read(n)
						msg, err := sender.Encrypt(pt)
						if err != nil {
							t.Fatalf("session %d round %d: %v", s, r, err)
						}
						T.Write(msg)
						msgs = append(msgs, sent{msg, pt})
					}
					if u8()%2 == 1 {
						for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
							msgs[i], msgs[j] = msgs[j], msgs[i]
						}
					}
					for _, m := range msgs {
						out, err := receiver.Decrypt(shakeReader{R}, m.msg)
						if err != nil || !bytes.Equal(out, m.pt) {
							t.Fatalf("session %d round %d: decrypt: %v", s, r, err)
						}
						T.Write(out)
					}
				}
			}
			if got := T.Sum(nil); !bytes.Equal(got, c.Digest) {
				t.Errorf("digest: got %x, want %x", got, []byte(c.Digest))
			}
		})
	}
}

// shakeReader adapts a SHAKE stream to io.Reader.
type shakeReader struct{ s *sha3.SHAKE }

func (r shakeReader) Read(p []byte) (int, error) { return r.s.Read(p) }
