package conformance

import (
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/store"
)

// TestRepeatBundles checks the runner's server's repeat modes (PQX-010):
// what each hands out after the first bundle, and that a mode whose
// one-time prekey the first bundle lacked is refused as unsupported.
func TestRepeatBundles(t *testing.T) {
	a := store.Address{Account: "bob", Device: 1}
	opk := &store.Prekey{ID: 7}
	first := &store.BundleKeys{KEMPrekey: store.Prekey{ID: 3}, OneTimeEC: opk}
	fresh := &store.BundleKeys{KEMPrekey: store.Prekey{ID: 4}, OneTimeEC: &store.Prekey{ID: 8}}
	e := &embedded{}
	if err := e.repeatBundles(a, repeatWhole); err == nil {
		t.Error("a mode before any bundle was handed out: got no error")
	}
	if got := e.handOut(a, first); got != first {
		t.Errorf("the first bundle: got %+v, want it as taken", got)
	}
	for _, tc := range []struct {
		mode    int
		kem, ec uint32 // 0: none
	}{
		{repeatOff, 4, 8},
		{repeatWhole, 3, 7},
		{repeatKEM, 3, 0},
		{repeatEC, 4, 7},
	} {
		if err := e.repeatBundles(a, tc.mode); err != nil {
			t.Fatalf("mode %d: %v", tc.mode, err)
		}
		got := e.handOut(a, fresh)
		ec := uint32(0)
		if got.OneTimeEC != nil {
			ec = got.OneTimeEC.ID
		}
		if got.KEMPrekey.ID != tc.kem || ec != tc.ec {
			t.Errorf("mode %d: got KEM prekey %d and one-time EC prekey %d, want %d and %d", tc.mode, got.KEMPrekey.ID, ec, tc.kem, tc.ec)
		}
	}
	// A device that uploaded no one-time prekeys of a kind.
	for _, tc := range []struct {
		name        string
		first       *store.BundleKeys
		unsupported []int
	}{
		{"no one-time EC prekey", &store.BundleKeys{KEMPrekey: store.Prekey{ID: 3}}, []int{repeatEC}},
		{"no one-time KEM prekey", &store.BundleKeys{KEMPrekey: store.Prekey{ID: 1}, LastResort: true, OneTimeEC: opk}, []int{repeatKEM}},
		{"neither", &store.BundleKeys{KEMPrekey: store.Prekey{ID: 1}, LastResort: true}, []int{repeatWhole, repeatKEM, repeatEC}},
	} {
		e := &embedded{}
		e.handOut(a, tc.first)
		for _, m := range []int{repeatWhole, repeatKEM, repeatEC} {
			err := e.repeatBundles(a, m)
			want := false
			for _, u := range tc.unsupported {
				want = want || u == m
			}
			if got := errors.Is(err, errUnsupported); got != want {
				t.Errorf("%s, mode %d: got %v, want unsupported %v", tc.name, m, err, want)
			}
		}
	}
}
