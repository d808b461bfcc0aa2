package xeddsa

import (
	"bytes"
	"crypto/ecdh"
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
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			if c.Private != nil {
				k, err := ecdh.X25519().NewPrivateKey(c.Private)
				if err != nil {
					t.Fatal(err)
				}
				sig, err := Sign(c.Private, c.Message, c.Z)
				if err != nil {
					t.Fatal(err)
				}
				if want == 0 {
					if !bytes.Equal(k.PublicKey().Bytes(), c.Public) {
						t.Errorf("public key: got %x, want %x", k.PublicKey().Bytes(), c.Public)
					}
					if !bytes.Equal(sig, c.Signature) {
						t.Errorf("signature: got %x, want %x", sig, c.Signature)
					}
				} else if !alteredFrom(c.Signature, sig) {
					// Section 9.2: the signature of private and z is the one
					// the case altered.
					t.Errorf("the signature of the case's private key and z, %x, is not the one altered into %x", sig, c.Signature)
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
