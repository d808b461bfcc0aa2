package wire

import (
	"testing"

	"github.com/missive-protocol/missive/spec"
)

// TestCDDLRulesHaveTypes checks that every structure in the
// specification's CDDL has a Go type in Rules, and the other way round.
func TestCDDLRulesHaveTypes(t *testing.T) {
	rules, err := spec.CDDL()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	structures := 0
	for _, r := range rules {
		if prev, ok := seen[r.Name]; ok {
			t.Errorf("rule %s is defined in %s and %s", r.Name, prev, r.Chapter)
		}
		seen[r.Name] = r.Chapter
		if !r.Structure {
			continue
		}
		structures++
		if _, ok := Rules[r.Name]; !ok {
			t.Errorf("CDDL rule %s (%s) has no Go type in wire.Rules", r.Name, r.Chapter)
		}
	}
	if structures == 0 {
		t.Fatal("no CDDL structures found in the specification")
	}
	for name := range Rules {
		if _, ok := seen[name]; !ok {
			t.Errorf("wire.Rules has %s, which no CDDL rule defines", name)
		}
	}
}
