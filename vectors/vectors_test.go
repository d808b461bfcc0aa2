package vectors

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors/internal/gen"
)

// TestRegenerate checks that the generator reproduces every committed file
// byte for byte and produces no file that is not committed (VEC-002).
func TestRegenerate(t *testing.T) {
	files, err := gen.Generate()
	if err != nil {
		t.Fatalf("gen.Generate: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("gen.Generate returned no file")
	}
	committed, err := fs.Glob(FS, "v1/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range committed {
		if _, ok := files[name]; !ok {
			t.Errorf("%s is committed but not generated", name)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want, err := FS.ReadFile(name)
		if err != nil {
			t.Errorf("%s is generated but not committed (run go generate): %v", name, err)
			continue
		}
		if got := files[name]; !bytes.Equal(got, want) {
			t.Errorf("%s: generated %d bytes that differ from the %d committed bytes (run go generate)",
				name, len(got), len(want))
		}
	}
}

// TestNoRefImport checks that the generator is independent of the reference
// implementation: no package of this directory depends on ref/.
func TestNoRefImport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list returned no package")
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/missive-protocol/missive/ref") {
			t.Errorf("got dependency %s, want no package under github.com/missive-protocol/missive/ref", p)
		}
	}
}

// Fields that each family allows (section 9.2: the lists are exhaustive).
var (
	topFields    = []string{"schema", "family", "spec_version", "protocol_version", "description", "notes", "cases"}
	commonFields = []string{"id", "comment", "flags", "requirements", "expect", "error"}
	familyFields = map[string][]string{
		"xeddsa": {"private", "public", "message", "z", "signature"},
		"pqxdh": {"operation", "alice_identity_private", "bob_identity_private", "bob_signed_prekey_private",
			"bob_signed_prekey_id", "bob_kem_prekey_seed", "bob_kem_prekey_id", "bob_kem_prekey_last_resort",
			"bob_one_time_prekey_private", "bob_one_time_prekey_id", "signed_prekey_z", "kem_prekey_z", "bundle",
			"alice_ephemeral_private", "kem_encaps_random", "alice_ratchet_private", "bob_ratchet_private", "plaintext",
			"sk", "ad", "prekey_message"},
		"ratchet":             {"sk", "ad", "alice_ratchet_private", "bob_ratchet_private", "steps"},
		"ratchet_accumulated": {"sessions", "rounds", "seed", "digest"},
	}
	stepFields = []string{"op", "party", "plaintext", "message", "ratchet_private", "expect", "error"}
	// Fields that section 9.2 marks optional ("?"); every other field of a
	// family is required in every case.
	optionalFields = map[string][]string{
		"xeddsa": {"private", "z"},
		"pqxdh":  {"bob_one_time_prekey_private", "bob_one_time_prekey_id", "sk", "ad", "prekey_message"},
	}
)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFiles checks the form of every vector file (chapter 9).
func TestFiles(t *testing.T) {
	names := registeredErrors(t)
	specText := specMarkdown(t)
	idRE := regexp.MustCompile(`^[A-Z]+-[0-9]{3}$`)
	files, err := fs.Glob(FS, "v1/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vector file in FS")
	}
	for _, name := range files {
		b, err := FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for k := range f {
			if !contains(topFields, k) {
				t.Errorf("%s: got unknown top-level field %q", name, k)
			}
		}
		if got, want := f["schema"], "missive-vectors/1"; got != want {
			t.Errorf("%s: schema: got %v, want %q", name, got, want)
		}
		if got, want := f["spec_version"], spec.Version; got != want {
			t.Errorf("%s: spec_version: got %v, want %q", name, got, want)
		}
		if got, want := f["protocol_version"], float64(spec.ProtocolVersion); got != want {
			t.Errorf("%s: protocol_version: got %v, want %v", name, got, want)
		}
		family, _ := f["family"].(string)
		if got, want := name, "v1/"+family+".json"; got != want {
			t.Errorf("file name: got %s, want %s", got, want)
		}
		extra, ok := familyFields[family]
		if !ok {
			t.Errorf("%s: got unknown family %q", name, family)
			continue
		}
		notes, _ := f["notes"].(map[string]any)
		cases, _ := f["cases"].([]any)
		if len(cases) == 0 {
			t.Errorf("%s: got no case, want at least one", name)
		}
		ids := map[string]bool{}
		usedFlags := map[string]bool{}
		for i, ci := range cases {
			c, ok := ci.(map[string]any)
			if !ok {
				t.Errorf("%s: case %d is not an object", name, i)
				continue
			}
			id, _ := c["id"].(string)
			where := name + ": " + id
			if id == "" || ids[id] {
				t.Errorf("%s: case %d: got id %q, want a unique non-empty id", name, i, id)
			}
			ids[id] = true
			for k := range c {
				if !contains(commonFields, k) && !contains(extra, k) {
					t.Errorf("%s: got unknown field %q", where, k)
				}
			}
			if s, _ := c["comment"].(string); s == "" {
				t.Errorf("%s: got no comment", where)
			}
			flags, ok := c["flags"].([]any)
			if !ok {
				t.Errorf("%s: got no flags list", where)
			}
			for _, fl := range flags {
				s, _ := fl.(string)
				if _, ok := notes[s]; !ok {
					t.Errorf("%s: flag %q is not explained in notes", where, s)
				}
				usedFlags[s] = true
			}
			reqs, _ := c["requirements"].([]any)
			if len(reqs) == 0 {
				t.Errorf("%s: got no requirement, want at least one", where)
			}
			for _, r := range reqs {
				s, _ := r.(string)
				if !idRE.MatchString(s) || !strings.Contains(specText, "["+s+"]") {
					t.Errorf("%s: requirement %q is not in the specification", where, s)
				}
			}
			for _, k := range extra {
				if _, ok := c[k]; !ok && !contains(optionalFields[family], k) {
					t.Errorf("%s: got no %q, a required field", where, k)
				}
			}
			checkExpect(t, where, c, names)
			switch family {
			case "ratchet":
				checkSteps(t, where, c, names)
			case "pqxdh":
				checkPQXDH(t, where, c)
			case "xeddsa":
				checkXEdDSA(t, where, c)
			}
		}
		for fl := range notes {
			if !usedFlags[fl] {
				t.Errorf("%s: flag %q is explained in notes but never used", name, fl)
			}
		}
	}
}

// checkPQXDH checks the presence rules of section 9.2 for pqxdh.json.
func checkPQXDH(t *testing.T, where string, c map[string]any) {
	t.Helper()
	op, valid := c["operation"], c["expect"] == "valid"
	switch {
	case op != "both" && op != "initiate" && op != "respond":
		t.Errorf("%s: got operation %v", where, op)
	case valid != (op == "both"):
		t.Errorf("%s: got operation %v in a case that is %v", where, op, c["expect"])
	}
	if _, ok := c["prekey_message"]; ok == (op == "initiate") {
		t.Errorf("%s: prekey_message present: %v, operation %v", where, ok, op)
	}
	for _, k := range []string{"sk", "ad"} {
		if _, ok := c[k]; ok != valid {
			t.Errorf("%s: %s present: %v, expect %v", where, k, ok, c["expect"])
		}
	}
	_, priv := c["bob_one_time_prekey_private"]
	_, id := c["bob_one_time_prekey_id"]
	if priv != id {
		t.Errorf("%s: bob_one_time_prekey_private and bob_one_time_prekey_id are not present together", where)
	}
	if s, _ := c["bob_ratchet_private"].(string); len(s) != 64 {
		t.Errorf("%s: bob_ratchet_private is not 32 bytes", where)
	}
}

// checkXEdDSA checks the presence rules of section 9.2 for xeddsa.json.
func checkXEdDSA(t *testing.T, where string, c map[string]any) {
	t.Helper()
	_, priv := c["private"]
	_, z := c["z"]
	if priv != z {
		t.Errorf("%s: private and z are not present together", where)
	}
	sig, _ := c["signature"].(string)
	aboutLength := false
	reqs, _ := c["requirements"].([]any)
	for _, r := range reqs {
		if r == "XED-004" {
			aboutLength = true
		}
	}
	if (len(sig) != 128) != aboutLength {
		t.Errorf("%s: a signature of %d bytes in a case that is about its length: %v", where, len(sig)/2, aboutLength)
	}
}

// checkExpect checks expect and error of a case or a step.
func checkExpect(t *testing.T, where string, c map[string]any, names map[string]bool) {
	t.Helper()
	errName, hasErr := c["error"].(string)
	switch c["expect"] {
	case "valid":
		if _, ok := c["error"]; ok {
			t.Errorf("%s: a valid case or step has error %q", where, errName)
		}
	case "invalid":
		if !hasErr || errName == "" {
			t.Errorf("%s: an invalid case or step has no error", where)
		} else if !names[errName] {
			t.Errorf("%s: error %q is not in spec/errors.json", where, errName)
		}
	default:
		t.Errorf("%s: got expect %v, want \"valid\" or \"invalid\"", where, c["expect"])
	}
}

// checkSteps checks the steps of a ratchet case.
func checkSteps(t *testing.T, where string, c map[string]any, names map[string]bool) {
	t.Helper()
	steps, _ := c["steps"].([]any)
	if len(steps) == 0 {
		t.Errorf("%s: got no step", where)
	}
	var invalid []string
	for i, si := range steps {
		s, ok := si.(map[string]any)
		if !ok {
			t.Errorf("%s: step %d is not an object", where, i)
			continue
		}
		for k := range s {
			if !contains(stepFields, k) {
				t.Errorf("%s: step %d: got unknown field %q", where, i, k)
			}
		}
		if op := s["op"]; op != "encrypt" && op != "decrypt" {
			t.Errorf("%s: step %d: got op %v", where, i, op)
		}
		if p := s["party"]; p != "alice" && p != "bob" {
			t.Errorf("%s: step %d: got party %v", where, i, p)
		}
		checkExpect(t, where, s, names)
		failed := s["expect"] == "invalid"
		_, hasPT := s["plaintext"]
		_, hasMsg := s["message"]
		_, hasRP := s["ratchet_private"]
		if hasPT == (s["op"] == "decrypt" && failed) {
			t.Errorf("%s: step %d: plaintext present: %v (op %v, expect %v)", where, i, hasPT, s["op"], s["expect"])
		}
		if hasMsg == (s["op"] == "encrypt" && failed) {
			t.Errorf("%s: step %d: message present: %v (op %v, expect %v)", where, i, hasMsg, s["op"], s["expect"])
		}
		if hasRP && s["op"] != "decrypt" {
			t.Errorf("%s: step %d: ratchet_private in an encrypt step", where, i)
		}
		if failed {
			e, _ := s["error"].(string)
			invalid = append(invalid, e)
		}
	}
	switch {
	case len(invalid) == 0 && c["expect"] != "valid":
		t.Errorf("%s: no step is invalid but the case is %v", where, c["expect"])
	case len(invalid) > 0 && (c["expect"] != "invalid" || c["error"] != invalid[0]):
		t.Errorf("%s: got case %v/%v, want invalid/%s (its first invalid step)", where, c["expect"], c["error"], invalid[0])
	}
}

// TestFieldOrder checks that the fields of every case appear in the order of
// section 9.1 (the common head), the family's table of section 9.2, then
// expect and error.
func TestFieldOrder(t *testing.T) {
	files, err := fs.Glob(FS, "v1/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector file: %v", err)
	}
	for _, name := range files {
		b, err := FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Family string            `json:"family"`
			Cases  []json.RawMessage `json:"cases"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		order := append(append([]string{"id", "comment", "flags", "requirements"}, familyFields[f.Family]...), "expect", "error")
		for i, raw := range f.Cases {
			keys, err := objectKeys(raw)
			if err != nil {
				t.Fatalf("%s: case %d: %v", name, i, err)
			}
			last := -1
			for _, k := range keys {
				j := -1
				for n, o := range order {
					if o == k {
						j = n
					}
				}
				if j <= last {
					t.Errorf("%s: case %d: field %q out of order (%v)", name, i, k, keys)
					break
				}
				last = j
			}
		}
	}
}

// objectKeys returns the keys of a JSON object in their order.
func objectKeys(raw []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func registeredErrors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := spec.FS.ReadFile("errors.json")
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		Codes []struct {
			Name string `json:"name"`
		} `json:"codes"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range reg.Codes {
		names[c.Name] = true
	}
	if len(names) == 0 {
		t.Fatal("spec/errors.json registers no code")
	}
	return names
}

func specMarkdown(t *testing.T) string {
	t.Helper()
	mds, err := fs.Glob(spec.FS, "*.md")
	if err != nil || len(mds) == 0 {
		t.Fatalf("no chapter in spec.FS: %v", err)
	}
	var b strings.Builder
	for _, m := range mds {
		text, err := spec.FS.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(text)
	}
	return b.String()
}
