package wire

import (
	"bytes"
	"slices"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
)

// checkDecode is fuzzDecoder's check for one input and one structure: a
// failure carries a registered decode code, and what decodes encodes back
// to exactly the input.
func checkDecode(t *testing.T, name string, m Message, data []byte) {
	t.Helper()
	err := Unmarshal(data, m)
	if err != nil {
		if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
			t.Fatalf("%s: error %v is not a registered decode code", name, err)
		}
		return
	}
	again, err := Marshal(m)
	if err != nil {
		t.Fatalf("%s: accepted input does not encode: %v", name, err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("%s: parse then marshal changed the bytes:\n%x\n%x", name, data, again)
	}
}

// allTypesInput returns the input of FuzzAllTypes that gives enc to the
// structure of rule: a first byte that selects it, then enc.
func allTypesInput(names []string, rule string, enc []byte) ([]byte, bool) {
	i := slices.Index(names, rule)
	if i < 0 {
		return nil, false
	}
	return append([]byte{byte(i)}, enc...), true
}

// FuzzAllTypes runs fuzzDecoder's checks on every structure of Rules: the
// first byte of the input selects the structure (its index in RuleNames,
// modulo their number), the rest is the encoding. The seeds are every
// vector of vectors/v1/wire.json, valid and invalid, given to its own rule,
// and the seeds of the other targets.
func FuzzAllTypes(f *testing.F) {
	names := RuleNames()
	if len(names) == 0 || len(names) > 256 {
		f.Fatalf("got %d rules, want 1 to 256", len(names))
	}
	vf := vectest.Load[vectest.Wire](f, "wire")
	valid := map[string]bool{}
	for _, c := range vf.Cases {
		in, ok := allTypesInput(names, c.Rule, c.Encoding)
		if !ok {
			f.Fatalf("%s: rule %q is not in Rules", c.ID, c.Rule)
		}
		f.Add(in)
		if c.Expect == "valid" {
			valid[c.Rule] = true
		}
	}
	for _, name := range names {
		if !valid[name] {
			f.Errorf("rule %s: no valid seed", name)
		}
	}
	own := map[string][][]byte{
		"ratchet-header":     {seedHeader()},
		"ratchet-message":    {seedMessage()},
		"prekey-message":     {seedPreKey()},
		"prekey-bundle":      {seedBundle()},
		"content":            {seedContent()},
		"group-envelope":     {seedGroupEnvelope()},
		"group-state":        {seedGroupState()},
		"group-message-body": {seedGroupBody()},
		"frame":              seedFrames()[:8],
	}
	for rule, encs := range own {
		for _, enc := range encs {
			in, ok := allTypesInput(names, rule, enc)
			if !ok {
				f.Fatalf("rule %q is not in Rules", rule)
			}
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		name := names[int(data[0])%len(names)]
		checkDecode(t, name, Rules[name](), data[1:])
	})
}
