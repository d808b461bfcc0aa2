// Package gen generates the Missive test vectors (chapter 9 of the
// specification). It is a second implementation of the specification,
// written from the specification only and independent of the reference
// implementation: every value is computed here, every valid case is checked
// by running both sides of a protocol, and every invalid case by checking that
// this implementation fails with the expected error.
package gen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/missive-protocol/missive/spec"
)

// Schema is the vector schema of every file (chapter 8).
const Schema = "missive-vectors/1"

// hexBytes marshals as a lowercase hexadecimal string.
type hexBytes []byte

// MarshalJSON implements json.Marshaler.
func (h hexBytes) MarshalJSON() ([]byte, error) {
	return json.Marshal(hex.EncodeToString(h))
}

// note is one entry of a file's notes: a flag and its meaning.
type note struct {
	flag, meaning string
}

// notes marshals as a JSON object whose keys keep their order.
type notes []note

// MarshalJSON implements json.Marshaler.
func (ns notes) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(n.flag)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(n.meaning)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// file is the top level of a vector file (section 9.1).
type file[C any] struct {
	Schema          string `json:"schema"`
	Family          string `json:"family"`
	SpecVersion     string `json:"spec_version"`
	ProtocolVersion int    `json:"protocol_version"`
	Description     string `json:"description"`
	Notes           notes  `json:"notes"`
	Cases           []C    `json:"cases"`
}

// caseHead holds the fields that every case starts with.
type caseHead struct {
	ID           string   `json:"id"`
	Comment      string   `json:"comment"`
	Flags        []string `json:"flags"`
	Requirements []string `json:"requirements"`
}

func newFile[C any](family, description string, ns notes, cases []C) *file[C] {
	return &file[C]{
		Schema:          Schema,
		Family:          family,
		SpecVersion:     spec.Version,
		ProtocolVersion: spec.ProtocolVersion,
		Description:     description,
		Notes:           ns,
		Cases:           cases,
	}
}

// marshalFile returns the bytes of a vector file: JSON indented with two
// spaces, HTML characters not escaped, and a final newline.
func marshalFile(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// withErr001 adds ERR-001 (report the assigned code of the first failed
// check) to the requirements of an invalid case.
func withErr001(reqs []string) []string {
	for _, r := range reqs {
		if r == "ERR-001" {
			return reqs
		}
	}
	return append(append([]string{}, reqs...), "ERR-001")
}

// checkHeads checks what every family shares: unique ids, flags explained,
// requirement ids present in the specification.
func checkHeads(family string, ns notes, heads []caseHead) error {
	flags := make(map[string]bool)
	for _, n := range ns {
		flags[n.flag] = true
	}
	used := make(map[string]bool)
	ids := make(map[string]bool)
	for _, h := range heads {
		if h.ID == "" || ids[h.ID] {
			return fmt.Errorf("%s: empty or duplicate case id %q", family, h.ID)
		}
		ids[h.ID] = true
		if h.Comment == "" {
			return fmt.Errorf("%s: case %s has no comment", family, h.ID)
		}
		for _, f := range h.Flags {
			if !flags[f] {
				return fmt.Errorf("%s: case %s: flag %q is not in notes", family, h.ID, f)
			}
			used[f] = true
		}
		if len(h.Requirements) == 0 {
			return fmt.Errorf("%s: case %s lists no requirement", family, h.ID)
		}
		for _, r := range h.Requirements {
			ok, err := requirementExists(r)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: case %s: requirement %s is not in the specification", family, h.ID, r)
			}
		}
	}
	for _, n := range ns {
		if !used[n.flag] {
			return fmt.Errorf("%s: flag %q is explained but never used", family, n.flag)
		}
	}
	return nil
}

var specText string

func requirementExists(id string) (bool, error) {
	if specText == "" {
		entries, err := spec.FS.ReadDir(".")
		if err != nil {
			return false, err
		}
		var b strings.Builder
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".md") {
				t, err := spec.FS.ReadFile(e.Name())
				if err != nil {
					return false, err
				}
				b.Write(t)
			}
		}
		specText = b.String()
	}
	return strings.Contains(specText, "["+id+"]"), nil
}

// Generate computes every vector file. It returns the file names, relative to
// the vectors directory (for example "v1/xeddsa.json"), and their bytes.
func Generate() (map[string][]byte, error) {
	if err := checkRegistry(); err != nil {
		return nil, err
	}
	if err := selfTest(); err != nil {
		return nil, fmt.Errorf("self-test: %v", err)
	}
	out := make(map[string][]byte)
	for _, f := range []struct {
		name string
		gen  func() (any, error)
	}{
		{"v1/xeddsa.json", genXEdDSA},
		{"v1/pqxdh.json", genPQXDH},
		{"v1/ratchet.json", genRatchet},
		{"v1/ratchet_accumulated.json", genAccumulated},
		{"v1/wire.json", genWire},
		{"v1/transport.json", genTransport},
		{"v1/device_lists.json", genDeviceLists},
		{"v1/receipts.json", genReceipts},
		{"v1/group_states.json", genGroupStates},
		{"v1/sender_keys.json", genSenderKeys},
		{"v1/media.json", genMedia},
		{"v1/lifecycle.json", genLifecycle},
		{"v1/group_receipts.json", genGroupReceipts},
	} {
		v, err := f.gen()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.name, err)
		}
		b, err := marshalFile(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.name, err)
		}
		out[f.name] = b
	}
	return out, nil
}
