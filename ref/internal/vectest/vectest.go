// Package vectest loads the test vectors of package vectors for the
// reference implementation's tests (spec/09-vectors.md): strictly, so that
// an unknown field, schema, outcome or error name fails the test, and so
// that a file with no case fails too.
package vectest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

// Schema is the vector schema this package reads.
const Schema = "missive-vectors/1"

// Hex is a byte string carried as lowercase hexadecimal.
type Hex []byte

// UnmarshalJSON decodes a hexadecimal string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// Common holds the fields every case has.
type Common struct {
	ID           string   `json:"id"`
	Comment      string   `json:"comment"`
	Flags        []string `json:"flags"`
	Requirements []string `json:"requirements"`
	Expect       string   `json:"expect"`
	Error        string   `json:"error,omitempty"`
}

// Wire is a case of vectors/v1/wire.json: an encoding of a rule of the
// specification's CDDL, valid or not.
type Wire struct {
	Common
	Rule       string `json:"rule"`
	Encoding   Hex    `json:"encoding"`
	Diagnostic string `json:"diagnostic"`
}

// Want returns the expected code: 0 for a valid case. It fails the test
// when the outcome or the error name cannot be mapped.
func (c *Common) Want(t testing.TB) errcode.Code {
	t.Helper()
	switch c.Expect {
	case "valid":
		if c.Error != "" {
			t.Fatalf("%s: valid case with error %q", c.ID, c.Error)
		}
		return 0
	case "invalid":
		code, ok := errcode.Parse(c.Error)
		if !ok {
			t.Fatalf("%s: unknown error %q", c.ID, c.Error)
		}
		return code
	}
	t.Fatalf("%s: unknown expect %q", c.ID, c.Expect)
	return 0
}

// File is a vector file with cases of type C.
type File[C any] struct {
	Schema          string            `json:"schema"`
	Family          string            `json:"family"`
	SpecVersion     string            `json:"spec_version"`
	ProtocolVersion int               `json:"protocol_version"`
	Description     string            `json:"description"`
	Notes           map[string]string `json:"notes"`
	Cases           []C               `json:"cases"`
}

// Load reads vectors/v1/<family>.json into a File, failing the test on an
// unknown field, a wrong header, or no cases.
func Load[C any](t testing.TB, family string) *File[C] {
	t.Helper()
	data, err := vectors.FS.ReadFile("v1/" + family + ".json")
	if err != nil {
		t.Fatalf("vector file %s: %v", family, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File[C]
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("vector file %s: %v", family, err)
	}
	if err := f.check(family); err != nil {
		t.Fatal(err)
	}
	return &f
}

func (f *File[C]) check(family string) error {
	switch {
	case f.Schema != Schema:
		return fmt.Errorf("%s: schema %q, want %q", family, f.Schema, Schema)
	case f.Family != family:
		return fmt.Errorf("%s: family %q", family, f.Family)
	case f.SpecVersion != spec.Version:
		return fmt.Errorf("%s: spec version %q, want %q", family, f.SpecVersion, spec.Version)
	case f.ProtocolVersion != spec.ProtocolVersion:
		return fmt.Errorf("%s: protocol version %d", family, f.ProtocolVersion)
	case len(f.Cases) == 0:
		return fmt.Errorf("%s: no cases", family)
	}
	return nil
}

// Reader serves fixed random bytes in order and fails the test when an
// operation draws more than it was given, or when Done finds bytes left.
type Reader struct {
	t    testing.TB
	id   string
	data []byte
}

// NewReader returns a Reader over the concatenation of parts.
func NewReader(t testing.TB, id string, parts ...[]byte) *Reader {
	return &Reader{t: t, id: id, data: bytes.Join(parts, nil)}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) > len(r.data) {
		r.t.Errorf("%s: drew %d random bytes, %d supplied", r.id, len(p), len(r.data))
		return 0, fmt.Errorf("vectest: randomness exhausted")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// Done fails the test when supplied bytes were not drawn.
func (r *Reader) Done() {
	if len(r.data) != 0 {
		r.t.Errorf("%s: %d random bytes not drawn", r.id, len(r.data))
	}
}

// FlipLowS returns an XEdDSA signature with the low bit of s flipped.
func FlipLowS(sig []byte) []byte {
	out := bytes.Clone(sig)
	out[32] ^= 1
	return out
}

// Completed returns cut with the one byte appended that makes it pass ok,
// and fails the test when no byte, or more than one, does: the check of a
// vector's truncated encoding.
func Completed(t *testing.T, cut []byte, ok func([]byte) bool) []byte {
	t.Helper()
	var found [][]byte
	for b := range 256 {
		if whole := append(bytes.Clone(cut), byte(b)); ok(whole) {
			found = append(found, whole)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d bytes that complete the cut encoding into a valid one, want 1", len(found))
	}
	return found[0]
}
