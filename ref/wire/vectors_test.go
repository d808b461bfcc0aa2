package wire

import (
	"bytes"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/spec"
)

// TestVectors runs vectors/v1/wire.json: every valid encoding decodes as
// its rule and encodes back to itself; every invalid one fails with its
// code. It also checks that every structure of the specification's CDDL
// has a valid vector, and that no vector names a rule the CDDL lacks.
func TestVectors(t *testing.T) {
	f := vectest.Load[vectest.Wire](t, "wire")
	valid := map[string]int{}
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			ctor, ok := Rules[c.Rule]
			if !ok {
				t.Fatalf("rule %q has no Go type", c.Rule)
			}
			m := ctor()
			err := Unmarshal(c.Encoding, m)
			if got := errcode.Of(err); got != want {
				t.Fatalf("Unmarshal as %s: got %v (%v), want %v", c.Rule, got, err, want)
			}
			if want != 0 {
				return
			}
			valid[c.Rule]++
			again, err := Marshal(m)
			if err != nil || !bytes.Equal(again, c.Encoding) {
				t.Errorf("Marshal: got %x (%v), want %x", again, err, []byte(c.Encoding))
			}
		})
	}
	rules, err := spec.CDDL()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Structure && valid[r.Name] == 0 {
			t.Errorf("CDDL rule %s (%s) has no valid vector", r.Name, r.Chapter)
		}
	}
}
