package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

// TestVectorFileHeader: every family's runner refuses its vector file, as
// a vector-file error (VEC-001) and before it calls the adapter, when the
// header is not this runner's: a schema, family, spec_version or
// protocol_version that is wrong or absent, or a header field it does not
// know. The committed files' headers are accepted.
func TestVectorFileHeader(t *testing.T) {
	if len(families) < 2 {
		t.Fatalf("got %d vector families, want several", len(families))
	}
	for i, f := range families {
		t.Run(f.name, func(t *testing.T) {
			data, err := vectors.FS.ReadFile("v1/" + f.name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			cases, err := decodeFile[json.RawMessage](f.name, data)
			if err != nil || len(cases) == 0 {
				t.Fatalf("committed file: got %d cases, error %v; want cases and no error", len(cases), err)
			}
			other := families[(i+1)%len(families)].name
			for _, c := range []struct {
				what, field string
				value       any // nil: the field is removed
				want        string
			}{
				{"another schema", "schema", "missive-vectors/2", "schema"},
				{"no schema", "schema", nil, "schema"},
				{"another family's name", "family", other, "family"},
				{"no family", "family", nil, "family"},
				{"another spec version", "spec_version", spec.Version + ".1", "spec_version"},
				{"no spec version", "spec_version", nil, "spec_version"},
				{"another protocol version", "protocol_version", spec.ProtocolVersion + 1, "protocol_version"},
				{"no protocol version", "protocol_version", nil, "protocol_version"},
				{"an unknown header field", "version", 1, "unknown field"},
			} {
				altered := alterHeader(t, data, c.field, c.value)
				// An adapter that fails every call: a runner that reads the
				// cases records results instead of refusing the file.
				noAdapter := &Adapter{dead: fmt.Errorf("%w: the test has none", ErrAdapter)}
				v := &vectorRun{a: noAdapter, family: f.name, emit: func(Result) {}}
				err := f.run(context.Background(), v, altered)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: got error %v, want a vector-file error naming %s", c.what, err, c.want)
				}
				if len(v.results) != 0 {
					t.Errorf("%s: got %d results (the first %s: %s), want none", c.what, len(v.results), v.results[0].ID, v.results[0].Detail)
				}
			}
		})
	}
}

// alterHeader returns the vector file data with its header field set to
// value, or removed when value is nil.
func alterHeader(t *testing.T, data []byte, field string, value any) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["cases"]; !ok {
		t.Fatal("the vector file has no cases field")
	}
	if value == nil {
		if _, ok := m[field]; !ok {
			t.Fatalf("the vector file has no %s to remove", field)
		}
		delete(m, field)
	} else {
		b, err := json.Marshal(value)
		if err != nil {
			t.Fatal(err)
		}
		m[field] = b
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
