package xeddsa

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
)

type vectorCase struct {
	vectest.Common
	Private   vectest.Hex `json:"private"`
	Public    vectest.Hex `json:"public"`
	Message   vectest.Hex `json:"message"`
	Z         vectest.Hex `json:"z"`
	Signature vectest.Hex `json:"signature"`
}

// TestVectors runs vectors/v1/xeddsa.json (spec/09-vectors.md).
func TestVectors(t *testing.T) {
	f := vectest.Load[vectorCase](t, "xeddsa")
	var valid, invalid int
	seenAltered := map[string]bool{}
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			if c.Private != nil {
				pub := publicKey(t, c.Private)
				sig, err := Sign(c.Private, c.Message, c.Z)
				if err != nil {
					t.Fatal(err)
				}
				alter, altersPublic := alteredPublic[c.ID]
				switch {
				case want == 0:
					if !bytes.Equal(pub, c.Public) {
						t.Errorf("public key: got %x, want %x", pub, c.Public)
					}
					if !bytes.Equal(sig, c.Signature) {
						t.Errorf("signature: got %x, want %x", sig, c.Signature)
					}
				case altersPublic:
					// Section 9.2: the case alters the public key of its
					// private key, and only that.
					seenAltered[c.ID] = true
					if err := alter(pub, c.Public, f.Cases); err != nil {
						t.Errorf("public key: got %x (the private key's is %x); %v", c.Public, pub, err)
					}
					if !bytes.Equal(sig, c.Signature) {
						t.Errorf("signature: got %x, want %x, the signature of the case's private key and z, unaltered", c.Signature, sig)
					}
				default:
					// Section 9.2: the case alters the signature of private
					// and z, and only that.
					if !bytes.Equal(pub, c.Public) {
						t.Errorf("public key: got %x, want %x, that of the case's private key (the case alters its signature)", c.Public, pub)
					}
					if bytes.Equal(sig, c.Signature) || !alteredFrom(c.Signature, sig) {
						t.Errorf("the signature of the case's private key and z, %x, is not the one altered into %x", sig, c.Signature)
					}
				}
			}
			got := errcode.Of(Verify(c.Public, c.Message, c.Signature))
			if got != want {
				t.Errorf("Verify: got %v, want %v", got, want)
			}
		})
		if c.Expect == "valid" {
			valid++
		} else {
			invalid++
		}
	}
	if valid == 0 || invalid == 0 {
		t.Errorf("got %d valid and %d invalid cases, want some of each", valid, invalid)
	}
	for id := range alteredPublic {
		if !seenAltered[id] {
			t.Errorf("%s: no invalid case with a private key has this id; want one that alters its public key", id)
		}
	}
}

// publicKey returns X25519(priv, 9).
func publicKey(t *testing.T, priv []byte) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

// alteredPublic lists the invalid cases with a private key whose public
// key is not that of the private key (section 9.2): each checks how the
// case altered pub, the private key's, into public. Every other invalid
// case with a private key alters its signature instead.
var alteredPublic = map[string]func(pub, public []byte, cases []vectorCase) error{
	// u + 2^255: the key's encoding with its high bit set.
	"xeddsa_public_high_bit_set": func(pub, public []byte, _ []vectorCase) error {
		high := bytes.Clone(pub)
		high[31] |= 0x80
		if pub[31]&0x80 != 0 || !bytes.Equal(public, high) {
			return fmt.Errorf("want %x, the key with its high bit set", high)
		}
		return nil
	},
	// A canonical u that is on no point of edwards25519 (on the twist).
	"xeddsa_public_not_on_curve": func(_, public []byte, _ []vectorCase) error {
		if len(public) != PublicKeySize || !belowP(public) {
			return fmt.Errorf("want a canonical u (below p)")
		}
		if _, err := montgomeryToEdwards(public); err == nil {
			return fmt.Errorf("want a u on no point of the curve; it is on one")
		}
		return nil
	},
	// The public key of another private key of the file.
	"xeddsa_wrong_public_key": func(pub, public []byte, cases []vectorCase) error {
		for _, o := range cases {
			if o.Private == nil || o.Expect != "valid" {
				continue
			}
			if k, err := ecdh.X25519().NewPrivateKey(o.Private); err == nil && bytes.Equal(k.PublicKey().Bytes(), public) {
				if bytes.Equal(public, pub) {
					return fmt.Errorf("want another key than the case's own")
				}
				return nil
			}
		}
		return fmt.Errorf("want the public key of another valid case's private key")
	},
}

// alteredFrom reports whether got can be orig altered the ways the invalid
// cases alter a signature: unchanged (the key or the message was altered),
// cut or lengthened, or one of its halves, R or S, changed. A signature of
// another key or z shares neither half.
func alteredFrom(got, orig []byte) bool {
	if len(got) != len(orig) {
		n := min(len(got), len(orig))
		return bytes.Equal(got[:n], orig[:n])
	}
	return len(orig) != 64 || bytes.Equal(got[:32], orig[:32]) || bytes.Equal(got[32:], orig[32:])
}
