package wire

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/fxamacker/cbor/v2"

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
				if c.Diagnostic != "" {
					t.Errorf("an invalid case with diagnostic %q", c.Diagnostic)
				}
				return
			}
			valid[c.Rule]++
			// Section 9.2: the diagnostic notation of a valid case is that
			// of its encoding (RFC 8949 section 8).
			diag, err := cbor.Diagnose(c.Encoding)
			if err != nil {
				t.Fatalf("Diagnose: %v", err)
			}
			if got := unescapeDiag(diag); got != c.Diagnostic {
				t.Errorf("diagnostic notation of encoding: got\n%s\nwant\n%s", got, c.Diagnostic)
			}
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

// unescapeDiag writes the characters of diagnostic notation's text strings
// that cbor.Diagnose escapes as \uXXXX (every one beyond ASCII, a pair for
// one beyond the BMP) as themselves, as the vectors write them; other
// escapes stay.
func unescapeDiag(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] != 'u' || i+6 > len(s) {
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		r, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
		if err != nil {
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		i += 5
		if utf16.IsSurrogate(rune(r)) && i+7 <= len(s) && s[i+1:i+3] == "\\u" {
			if r2, err := strconv.ParseUint(s[i+3:i+7], 16, 16); err == nil {
				b.WriteRune(utf16.DecodeRune(rune(r), rune(r2)))
				i += 6
				continue
			}
		}
		b.WriteRune(rune(r))
	}
	return b.String()
}
