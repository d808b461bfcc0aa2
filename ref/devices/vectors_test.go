package devices

import (
	"bytes"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
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

// accept runs DEV-001 on signed after the case's recorded key and accepted
// lists.
func (c *listCase) accept(t *testing.T, signed []byte) (*List, error) {
	t.Helper()
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
	return Accept(signed, c.Account, rec, last)
}

// TestVectors runs vectors/v1/device_lists.json (DEV-001).
func TestVectors(t *testing.T) {
	f := vectest.Load[listCase](t, "device_lists")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			_, err := c.accept(t, c.List)
			if got := errcode.Of(err); got != want {
				t.Fatalf("Accept: got %v (%v), want %v", got, err, want)
			}
			c.checkSigner(t)
		})
	}
}

// checkSigner checks what primary_private and z signed (section 9.2), in
// every case. The list's signature is xeddsa_sign(primary_private,
// LABEL_DEVICE_LIST || field 1, z), by the key the list gives device 1,
// unless the case has flag signature: then it is that signature with the
// low bit of s flipped, a signature of field 1 alone or of
// LABEL_DEVICE_LIST || field 1's byte string with its CBOR head, or one by
// a key that is not device 1's. A list that does not decode at all is a
// valid list cut short (decode.truncated): the byte that completes it is
// found, and the list it gives is checked as a valid one.
func (c *listCase) checkSigner(t *testing.T) {
	t.Helper()
	signed, flagged := []byte(c.List), slices.Contains(c.Flags, "signature")
	var s wire.SignedDeviceList
	if err := wire.Unmarshal(signed, &s); err != nil {
		if c.Error != errcode.DecodeTruncated.String() {
			t.Fatalf("list does not decode (%v), in a case with error %q", err, c.Error)
		}
		signed = vectest.Completed(t, c.List, func(b []byte) bool { _, err := c.accept(t, b); return err == nil })
		if err := wire.Unmarshal(signed, &s); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(msg []byte) []byte {
		t.Helper()
		sig, err := xeddsa.Sign(c.PrimaryPrivate, msg, c.Z)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	proper := sign(append([]byte(LabelDeviceList), s.List...))
	if bytes.Equal(s.Signature, proper) {
		// Device 1's key, where the list decodes and has one.
		var l wire.DeviceList
		if err := wire.Unmarshal(s.List, &l); err == nil && len(l.Devices) > 0 && l.Devices[0].Device == 1 {
			priv, err := keys.NewPrivateKey(c.PrimaryPrivate)
			if err != nil {
				t.Fatal(err)
			}
			if byDevice1 := bytes.Equal(l.Devices[0].IdentityKey, priv.Public().Encode()); byDevice1 == flagged {
				t.Errorf("primary_private is device 1's key: got %v, want %v (flag signature: %v)", byDevice1, !flagged, flagged)
			}
		}
		return
	}
	if !flagged {
		t.Fatalf("signature: got %x, want %x from primary_private and z", s.Signature, proper)
	}
	head, err := cbor.Marshal(s.List) // the byte string of field 1, with its head
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range [][]byte{vectest.FlipLowS(proper), sign(s.List), sign(append([]byte(LabelDeviceList), head...))} {
		if bytes.Equal(s.Signature, other) {
			return
		}
	}
	t.Errorf("signature %x: not one that primary_private and z make in a case with flag signature", s.Signature)
}
