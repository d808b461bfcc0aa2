package wire

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/missive-protocol/missive/spec"
)

// TestEnvelopeOf checks EnvelopeOf against the last column of the table of
// section 11.9 (MSG-021) and the enumerations of chapter 11's CDDL.
func TestEnvelopeOf(t *testing.T) {
	data, err := spec.FS.ReadFile("11-messages.md")
	if err != nil {
		t.Fatal(err)
	}
	enum := func(rule string) map[string]uint64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + rule + ` = &\((.*)\)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("no enumeration %s in section 11", rule)
		}
		out := map[string]uint64{}
		for _, p := range regexp.MustCompile(`([a-z-]+): ([0-9]+)`).FindAllSubmatch(m[1], -1) {
			v, err := strconv.ParseUint(string(p[2]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[string(p[1])] = v
		}
		return out
	}
	contentTypes, envTypes := enum("content-type"), enum("envelope-type")
	rows := regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| [0-9, ]+ \\|[0-9, ]*\\| `([a-z]+)` \\|$").FindAllSubmatch(data, -1)
	if len(rows) != len(contentTypes) || len(rows) == 0 {
		t.Fatalf("got %d rows in the table of section 11.9, want one per content type (%d)", len(rows), len(contentTypes))
	}
	for _, r := range rows {
		ct, ok := contentTypes[string(r[1])]
		if !ok {
			t.Fatalf("row %s: not a content type", r[1])
		}
		want, ok := envTypes[string(r[2])]
		if !ok {
			t.Fatalf("row %s: %s is not an envelope type", r[1], r[2])
		}
		if got := EnvelopeOf(ct); got != want {
			t.Errorf("EnvelopeOf(%s) = %d, want %d (%s)", r[1], got, want, r[2])
		}
	}
	for _, ct := range []uint64{0, maxContentType + 1, 1 << 63} {
		if got := EnvelopeOf(ct); got != 0 {
			t.Errorf("EnvelopeOf(%d) = %d, want 0", ct, got)
		}
	}
}
