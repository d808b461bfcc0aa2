package devices

import (
	"bytes"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/xeddsa"
)

type listCase struct {
	vectest.Common
	Account         string        `json:"account"`
	PrimaryPrivate  vectest.Hex   `json:"primary_private"`
	Z               vectest.Hex   `json:"z"`
	RecordedPrimary vectest.Hex   `json:"recorded_primary"`
	Accepted        []vectest.Hex `json:"accepted"`
	List            vectest.Hex   `json:"list"`
}

// TestVectors runs vectors/v1/device_lists.json (DEV-001).
func TestVectors(t *testing.T) {
	f := vectest.Load[listCase](t, "device_lists")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			var rec *keys.PublicKey
			if c.RecordedPrimary != nil {
				k, err := keys.DecodePublicKey(c.RecordedPrimary)
				if err != nil {
					t.Fatal(err)
				}
				rec = &k
			}
			var last *List
			for i, a := range c.Accepted {
				l, err := Accept(a, c.Account, rec, last)
				if err != nil {
					t.Fatalf("accepted list %d: %v", i, err)
				}
				if rec == nil {
					p := l.Primary()
					rec = &p
				}
				last = l
			}
			l, err := Accept(c.List, c.Account, rec, last)
			if got := errcode.Of(err); got != want {
				t.Fatalf("Accept: got %v (%v), want %v", got, err, want)
			}
			if want != 0 {
				return
			}
			// The signature is reproducible from the private key and z.
			sig, err := xeddsa.Sign(c.PrimaryPrivate, append([]byte(LabelDeviceList), l.Raw...), c.Z)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(c.List, sig) {
				t.Errorf("signature not reproduced from primary_private and z")
			}
		})
	}
}
