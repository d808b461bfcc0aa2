package vectors

import (
	"bytes"
	"encoding/json"
	"fmt"
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
		"wire":                {"rule", "encoding", "diagnostic"},
		"transport": {"pattern", "preamble", "initiator_static_private", "responder_static_private",
			"initiator_ephemeral_private", "responder_ephemeral_private", "handshake", "handshake_hash", "segments"},
		"device_lists": {"account", "primary_private", "z", "recorded_primary", "accepted", "list"},
		"receipts":     {"devices", "messages", "events", "final"},
		"group_states": {"checker", "group_id", "connection", "accounts", "accepted_lists", "accepted", "author_private",
			"z", "state"},
		"sender_keys": {"group_id", "states", "sender", "epoch", "key_id", "iteration", "chain_key", "signing_private",
			"distribution", "keys", "steps"},
		"media": {"media_key", "key", "plaintext_size", "chunks", "truncate", "flip", "blob", "blob_size", "blob_sha256",
			"size", "digest"},
		"lifecycle":      {"device", "clock", "events", "final", "orders"},
		"group_receipts": {"devices", "versions", "device", "messages", "events", "final"},
	}
	handshakeFields = []string{"from", "message"}
	segmentFields   = []string{"from", "plaintext", "segment", "expect", "error"}
	stepFields      = []string{"op", "party", "plaintext", "message", "ratchet_private", "expect", "error"}
	// receipts.json (section 9.2).
	rcMessageFields = []string{"id", "from", "to"}
	rcEventFields   = map[string][]string{
		"sent":    {"to", "kind", "message"},
		"message": {"to", "kind", "message"},
		"receipt": {"to", "kind", "from", "receipt", "messages"},
		"read":    {"to", "kind", "messages"},
	}
	rcStateFields = []string{"sent", "read"}
	rcSentFields  = []string{"statuses", "overall"}
	// sender_keys.json, lifecycle.json, media.json and group_receipts.json
	// (section 9.2), in the order of their tables.
	skStepFields   = []string{"op", "from", "iteration", "group_version", "message_id", "sent_at", "distribution", "content", "z", "message", "keys", "expect", "error"}
	skKeyFields    = []string{"sender", "key_id", "epoch", "iteration", "chain_key", "signing_key", "skipped"}
	lcEventFields  = []string{"op", "from", "type", "id", "sent_at", "text", "view_once", "expire_after", "target", "timer", "messages", "now", "result", "error"}
	lcFinalFields  = []string{"messages", "pending", "timer", "timer_id"}
	lcMsgFields    = []string{"from", "id", "text", "edited_by", "deleted", "expired", "opened"}
	chunkFields    = []string{"offset", "length", "index", "last"}
	grEventFields  = []string{"kind", "message", "from", "receipt", "messages"}
	grStateFields  = []string{"statuses", "members", "overall"}
	lcResults      = []string{"applied", "pending", "dropped", "refused", "ignored", "expired", "duplicate"}
	lcContentTypes = []string{"text", "media", "receipt", "edit", "delete", "timer", "opened"}
	// Fields that section 9.2 marks optional ("?"); every other field of a
	// family is required in every case.
	optionalFields = map[string][]string{
		"xeddsa":       {"private", "z"},
		"pqxdh":        {"bob_one_time_prekey_private", "bob_one_time_prekey_id", "sk", "ad", "prekey_message"},
		"wire":         {"diagnostic"},
		"device_lists": {"recorded_primary"},
		"group_states": {"connection", "accounts"},
		"media":        {"truncate", "flip", "blob"},
		"lifecycle":    {"orders"},
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
	wireRules := cddlStructureRules(t)
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
			if family == "group_states" && c["expect"] == "duplicate" {
				if _, ok := c["error"]; ok {
					t.Errorf("%s: a duplicate case has an error", where)
				}
			} else {
				checkExpect(t, where, c, names)
			}
			switch family {
			case "ratchet":
				checkSteps(t, where, c, names)
			case "pqxdh":
				checkPQXDH(t, where, c)
			case "xeddsa":
				checkXEdDSA(t, where, c)
			case "wire":
				checkWire(t, where, c, wireRules)
			case "transport":
				checkTransport(t, where, c, names)
			case "device_lists":
				checkDeviceLists(t, where, c)
			case "receipts":
				checkReceipts(t, where, c)
			case "group_states":
				checkGroupStates(t, where, c)
			case "sender_keys":
				checkSenderKeys(t, where, c, names)
			case "media":
				checkMedia(t, where, c)
			case "lifecycle":
				checkLifecycle(t, where, c, names)
			case "group_receipts":
				checkGroupReceipts(t, where, c)
			}
		}
		for fl := range notes {
			if !usedFlags[fl] {
				t.Errorf("%s: flag %q is explained in notes but never used", name, fl)
			}
		}
		if family == "wire" {
			checkWireCoverage(t, name, cases, wireRules)
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

// cddlStructureRules returns the structure rules (a map {...} or an array
// [...]) of the ```cddl blocks of the chapters, read here independently of
// the generator, and checks that package spec reads the same list.
func cddlStructureRules(t *testing.T) map[string]bool {
	t.Helper()
	mds, err := fs.Glob(spec.FS, "*.md")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(mds)
	ruleRE := regexp.MustCompile(`^([a-z][a-z0-9-]*)\s*=\s*(.*)$`)
	var list []string
	for _, m := range mds {
		text, err := spec.FS.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		in := false
		for _, line := range strings.Split(string(text), "\n") {
			switch {
			case strings.HasPrefix(line, "```cddl"):
				in = true
			case strings.HasPrefix(line, "```"):
				in = false
			case in:
				if m := ruleRE.FindStringSubmatch(line); m != nil {
					rhs := strings.TrimSpace(m[2])
					if strings.HasPrefix(rhs, "{") || strings.HasPrefix(rhs, "[") {
						list = append(list, m[1])
					}
				}
			}
		}
	}
	rules, err := spec.CDDL()
	if err != nil {
		t.Fatal(err)
	}
	var fromSpec []string
	for _, r := range rules {
		if r.Structure {
			fromSpec = append(fromSpec, r.Name)
		}
	}
	if strings.Join(list, " ") != strings.Join(fromSpec, " ") {
		t.Errorf("structure rules: read %v, package spec reads %v", list, fromSpec)
	}
	if len(list) == 0 {
		t.Fatal("no CDDL structure rule in the specification")
	}
	out := map[string]bool{}
	for _, r := range list {
		out[r] = true
	}
	return out
}

// checkWire checks the presence rules of section 9.2 for wire.json.
func checkWire(t *testing.T, where string, c map[string]any, rules map[string]bool) {
	t.Helper()
	rule, _ := c["rule"].(string)
	if !rules[rule] {
		t.Errorf("%s: rule %q is not a CDDL structure rule of the specification", where, rule)
	}
	enc, ok := c["encoding"].(string)
	if !ok || len(enc)%2 != 0 || strings.ToLower(enc) != enc {
		t.Errorf("%s: encoding is not lowercase hexadecimal", where)
	}
	_, diag := c["diagnostic"]
	if diag != (c["expect"] == "valid") {
		t.Errorf("%s: diagnostic present: %v, expect %v", where, diag, c["expect"])
	}
	if d, _ := c["diagnostic"].(string); diag && d == "" {
		t.Errorf("%s: empty diagnostic", where)
	}
}

// checkWireCoverage checks that every structure rule has a valid case.
func checkWireCoverage(t *testing.T, name string, cases []any, rules map[string]bool) {
	t.Helper()
	valid := map[string]bool{}
	for _, ci := range cases {
		if c, ok := ci.(map[string]any); ok && c["expect"] == "valid" {
			r, _ := c["rule"].(string)
			valid[r] = true
		}
	}
	for r := range rules {
		if !valid[r] {
			t.Errorf("%s: structure rule %s has no valid case", name, r)
		}
	}
}

// checkTransport checks the presence rules of section 9.2 for
// transport.json.
func checkTransport(t *testing.T, where string, c map[string]any, names map[string]bool) {
	t.Helper()
	pattern, _ := c["pattern"].(string)
	wantPre := map[string]string{"XX": "4d53560101", "IK": "4d53560102"}[pattern]
	if wantPre == "" {
		t.Errorf("%s: got pattern %q, want XX or IK", where, pattern)
	}
	if c["preamble"] != wantPre {
		t.Errorf("%s: got preamble %v, want %s", where, c["preamble"], wantPre)
	}
	for _, k := range []string{"initiator_static_private", "responder_static_private", "initiator_ephemeral_private",
		"responder_ephemeral_private", "handshake_hash"} {
		if s, _ := c[k].(string); len(s) != 64 {
			t.Errorf("%s: %s is not 32 bytes", where, k)
		}
	}
	// Handshake: alternating senders, from the initiator, with the sizes
	// of empty payloads (TRN-003).
	sizes := map[string][]int{"XX": {32, 96, 64}, "IK": {96, 48}}[pattern]
	hs, _ := c["handshake"].([]any)
	if len(hs) != len(sizes) {
		t.Errorf("%s: %d handshake messages, want %d", where, len(hs), len(sizes))
	}
	for i, hi := range hs {
		h, _ := hi.(map[string]any)
		for k := range h {
			if !contains(handshakeFields, k) {
				t.Errorf("%s: handshake %d: got unknown field %q", where, i, k)
			}
		}
		wantFrom := "initiator"
		if i%2 == 1 {
			wantFrom = "responder"
		}
		if h["from"] != wantFrom {
			t.Errorf("%s: handshake %d: from %v, want %s", where, i, h["from"], wantFrom)
		}
		if m, _ := h["message"].(string); i < len(sizes) && len(m) != 2*sizes[i] {
			t.Errorf("%s: handshake %d: %d bytes, want %d", where, i, len(m)/2, sizes[i])
		}
	}
	segs, _ := c["segments"].([]any)
	if len(segs) == 0 {
		t.Errorf("%s: no segment", where)
	}
	var invalid []string
	for i, si := range segs {
		s, _ := si.(map[string]any)
		for k := range s {
			if !contains(segmentFields, k) {
				t.Errorf("%s: segment %d: got unknown field %q", where, i, k)
			}
		}
		if f := s["from"]; f != "initiator" && f != "responder" {
			t.Errorf("%s: segment %d: from %v", where, i, f)
		}
		pt, _ := s["plaintext"].(string)
		seg, _ := s["segment"].(string)
		if len(pt) > 2*(65535-16) || len(seg) > 2*65535 {
			t.Errorf("%s: segment %d is longer than MAX_SEGMENT", where, i)
		}
		if _, ok := s["expect"]; ok {
			checkExpect(t, fmt.Sprintf("%s: segment %d", where, i), s, names)
			if s["expect"] != "invalid" {
				t.Errorf("%s: segment %d: expect is present and not \"invalid\"", where, i)
			}
			if i != len(segs)-1 {
				t.Errorf("%s: invalid segment %d is not the last: the receiver closes the connection (TRN-007)", where, i)
			}
			e, _ := s["error"].(string)
			invalid = append(invalid, e)
		} else {
			if _, ok := s["error"]; ok {
				t.Errorf("%s: segment %d: error without expect", where, i)
			}
			if len(seg) != len(pt)+32 {
				t.Errorf("%s: segment %d: a valid segment is its plaintext and a 16-byte tag", where, i)
			}
		}
	}
	switch {
	case len(invalid) == 0 && c["expect"] != "valid":
		t.Errorf("%s: no segment is invalid but the case is %v", where, c["expect"])
	case len(invalid) > 0 && (c["expect"] != "invalid" || c["error"] != invalid[0]):
		t.Errorf("%s: got case %v/%v, want invalid/%s (its invalid segment)", where, c["expect"], c["error"], invalid[0])
	}
}

// TestNestedFieldOrder checks the field order of the objects inside
// transport cases (section 9.2 tables).
func TestNestedFieldOrder(t *testing.T) {
	b, err := FS.ReadFile("v1/transport.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Handshake []json.RawMessage `json:"handshake"`
			Segments  []json.RawMessage `json:"segments"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("transport.json has no case")
	}
	check := func(where string, raw []byte, order []string) {
		keys, err := objectKeys(raw)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
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
				t.Errorf("%s: field %q out of order (%v)", where, k, keys)
				return
			}
			last = j
		}
	}
	for i, c := range f.Cases {
		for j, h := range c.Handshake {
			check(fmt.Sprintf("case %d handshake %d", i, j), h, handshakeFields)
		}
		for j, s := range c.Segments {
			check(fmt.Sprintf("case %d segment %d", i, j), s, segmentFields)
		}
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

// isHex reports whether v is a lowercase hexadecimal string of n bytes (any
// length when n < 0).
func isHex(v any, n int) bool {
	s, ok := v.(string)
	if !ok || len(s)%2 != 0 || strings.ToLower(s) != s || (n >= 0 && len(s) != 2*n) {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// checkDeviceLists checks the presence rules of section 9.2 for
// device_lists.json.
func checkDeviceLists(t *testing.T, where string, c map[string]any) {
	t.Helper()
	if s, _ := c["account"].(string); !regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`).MatchString(s) {
		t.Errorf("%s: account %q is not an account name", where, s)
	}
	for k, n := range map[string]int{"primary_private": 32, "z": 64, "list": -1} {
		if !isHex(c[k], n) {
			t.Errorf("%s: %s is not %d bytes of lowercase hexadecimal", where, k, n)
		}
	}
	acc, ok := c["accepted"].([]any)
	if !ok {
		t.Errorf("%s: accepted is not a list", where)
	}
	for i, a := range acc {
		if !isHex(a, -1) || a == "" {
			t.Errorf("%s: accepted %d is not a non-empty hexadecimal string", where, i)
		}
	}
	rec, has := c["recorded_primary"]
	if has && (!isHex(rec, 33) || !strings.HasPrefix(rec.(string), "05")) {
		t.Errorf("%s: recorded_primary is not the encoding of an X25519 public key", where)
	}
	if has != (len(acc) > 0) {
		t.Errorf("%s: recorded_primary present: %v, with %d accepted lists", where, has, len(acc))
	}
}

// checkReceipts checks the form of a case of receipts.json (section 9.2).
func checkReceipts(t *testing.T, where string, c map[string]any) {
	t.Helper()
	if c["expect"] != "valid" {
		t.Errorf("%s: expect %v: every case of receipts.json is valid", where, c["expect"])
	}
	devices, ok := c["devices"].(map[string]any)
	if !ok || len(devices) < 2 {
		t.Errorf("%s: devices is not an object of two accounts or more", where)
	}
	listed := map[string]bool{}
	for acct, dv := range devices {
		ds, _ := dv.([]any)
		if len(ds) == 0 {
			t.Errorf("%s: devices of %s: not a non-empty list", where, acct)
		}
		last := 0.0
		for _, d := range ds {
			f, ok := d.(float64)
			if !ok || f < 1 || f > 4294967295 || f != float64(int64(f)) || f <= last {
				t.Errorf("%s: devices of %s: %v is not a device id in increasing order", where, acct, d)
			}
			last = f
			listed[fmt.Sprintf("%s/%d", acct, int64(f))] = true
		}
	}
	addrRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}/[1-9][0-9]*$`)
	keysIn := func(what string, o map[string]any, allowed []string) {
		for k := range o {
			if !contains(allowed, k) {
				t.Errorf("%s: %s: got unknown field %q", where, what, k)
			}
		}
		for _, k := range allowed {
			if _, ok := o[k]; !ok {
				t.Errorf("%s: %s: got no %q", where, what, k)
			}
		}
	}
	msgs, _ := c["messages"].([]any)
	if len(msgs) == 0 {
		t.Errorf("%s: no message", where)
	}
	to := map[string]string{}
	for i, mi := range msgs {
		m, _ := mi.(map[string]any)
		keysIn(fmt.Sprintf("message %d", i), m, rcMessageFields)
		id, _ := m["id"].(string)
		if !isHex(id, 16) || to[id] != "" {
			t.Errorf("%s: message %d: id is not 16 bytes, or repeats", where, i)
		}
		from, _ := m["from"].(string)
		if !listed[from] {
			t.Errorf("%s: message %d: from %q is not a listed device", where, i, from)
		}
		acct, _ := m["to"].(string)
		if _, ok := devices[acct]; !ok || strings.HasPrefix(from, acct+"/") {
			t.Errorf("%s: message %d: to %q is not another account of devices", where, i, acct)
		}
		to[id] = acct
	}
	events, _ := c["events"].([]any)
	if len(events) == 0 {
		t.Errorf("%s: no event", where)
	}
	for i, ei := range events {
		e, _ := ei.(map[string]any)
		what := fmt.Sprintf("event %d", i)
		kind, _ := e["kind"].(string)
		fields, ok := rcEventFields[kind]
		if !ok {
			t.Errorf("%s: %s: kind %q", where, what, kind)
			continue
		}
		keysIn(what, e, fields)
		if s, _ := e["to"].(string); !listed[s] {
			t.Errorf("%s: %s: to %q is not a listed device", where, what, s)
		}
		if _, ok := e["message"]; ok && to[e["message"].(string)] == "" {
			t.Errorf("%s: %s: message is not a message of the case", where, what)
		}
		if kind == "receipt" {
			if s, _ := e["from"].(string); !addrRE.MatchString(s) {
				t.Errorf("%s: %s: from %q is not an address", where, what, s)
			}
			if r := e["receipt"]; r != "delivered" && r != "read" && r != "played" {
				t.Errorf("%s: %s: receipt %v", where, what, r)
			}
		}
		if ids, ok := e["messages"]; ok {
			list, _ := ids.([]any)
			if len(list) == 0 {
				t.Errorf("%s: %s: messages is not a non-empty list", where, what)
			}
			for j, id := range list {
				if !isHex(id, 16) || (kind == "receipt" && j > 0 && id.(string) <= list[j-1].(string)) {
					t.Errorf("%s: %s: messages: %v is not a 16-byte id (in increasing order, for a receipt)", where, what, id)
				}
			}
		}
	}
	final, _ := c["final"].(map[string]any)
	for a := range listed {
		if _, ok := final[a]; !ok {
			t.Errorf("%s: final has no state for %s", where, a)
		}
	}
	statuses := []string{"pending", "sent", "delivered", "read", "played"}
	rank := func(s any) int {
		for i, x := range statuses {
			if x == s {
				return i
			}
		}
		return -1
	}
	for a, si := range final {
		if !listed[a] {
			t.Errorf("%s: final has a state for %s, which is not a listed device", where, a)
		}
		st, _ := si.(map[string]any)
		keysIn("final "+a, st, rcStateFields)
		sent, _ := st["sent"].(map[string]any)
		for id, ei := range sent {
			e, _ := ei.(map[string]any)
			keysIn("final "+a+" sent "+id, e, rcSentFields)
			if to[id] == "" || strings.HasPrefix(a, to[id]+"/") {
				t.Errorf("%s: final %s: sent %s is not a message of the case to another account", where, a, id)
			}
			ss, _ := e["statuses"].(map[string]any)
			top := -1
			for d, v := range ss {
				if !listed[to[id]+"/"+d] || rank(v) < 0 {
					t.Errorf("%s: final %s: sent %s: status %v of %s", where, a, id, v, d)
				}
				if rank(v) > top {
					top = rank(v)
				}
			}
			if n := len(devices[to[id]].([]any)); len(ss) != n {
				t.Errorf("%s: final %s: sent %s: %d statuses for %d devices", where, a, id, len(ss), n)
			}
			if top < 0 || e["overall"] != statuses[top] {
				t.Errorf("%s: final %s: sent %s: overall %v is not the highest status", where, a, id, e["overall"])
			}
		}
		read, ok := st["read"].([]any)
		if !ok {
			t.Errorf("%s: final %s: read is not a list", where, a)
		}
		for j, id := range read {
			if !isHex(id, 16) || (j > 0 && id.(string) <= read[j-1].(string)) {
				t.Errorf("%s: final %s: read is not a sorted list of distinct ids", where, a)
			}
			if s, _ := id.(string); to[s] == "" || !strings.HasPrefix(a, to[s]+"/") {
				t.Errorf("%s: final %s: read %v is not a message to its account", where, a, id)
			}
		}
	}
}

// TestReceiptsFieldOrder checks the field order of the objects inside
// receipts cases (section 9.2 tables).
func TestReceiptsFieldOrder(t *testing.T) {
	b, err := FS.ReadFile("v1/receipts.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Messages []json.RawMessage `json:"messages"`
			Events   []json.RawMessage `json:"events"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("receipts.json has no case")
	}
	eventOrder := []string{"to", "kind", "message", "from", "receipt", "messages"}
	for i, c := range f.Cases {
		for j, raw := range append(append([]json.RawMessage{}, c.Messages...), c.Events...) {
			order := rcMessageFields
			if j >= len(c.Messages) {
				order = eventOrder
			}
			keys, err := objectKeys(raw)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			last := -1
			for _, k := range keys {
				n := -1
				for x, o := range order {
					if o == k {
						n = x
					}
				}
				if n <= last {
					t.Errorf("case %d object %d: field %q out of order (%v)", i, j, k, keys)
					break
				}
				last = n
			}
		}
	}
}

// keysIn checks that an object has exactly the allowed fields, in their
// order, and every field of required.
func keysIn(t *testing.T, where string, raw any, allowed, required []string) map[string]any {
	t.Helper()
	o, ok := raw.(map[string]any)
	if !ok {
		t.Errorf("%s: not an object", where)
		return map[string]any{}
	}
	for k := range o {
		if !contains(allowed, k) {
			t.Errorf("%s: got unknown field %q", where, k)
		}
	}
	for _, k := range required {
		if _, ok := o[k]; !ok {
			t.Errorf("%s: got no %q", where, k)
		}
	}
	return o
}

// checkGroupStates checks the presence rules of section 9.2 for
// group_states.json.
func checkGroupStates(t *testing.T, where string, c map[string]any) {
	t.Helper()
	server := c["checker"] == "server"
	if c["checker"] != "device" && !server {
		t.Errorf("%s: checker %v", where, c["checker"])
	}
	_, conn := c["connection"]
	_, accts := c["accounts"]
	if conn != server || accts != server {
		t.Errorf("%s: connection and accounts present: %v, %v, for checker %v", where, conn, accts, c["checker"])
	}
	for k, n := range map[string]int{"group_id": 16, "author_private": 32, "z": 64, "state": -1} {
		if !isHex(c[k], n) {
			t.Errorf("%s: %s is not %d bytes of lowercase hexadecimal", where, k, n)
		}
	}
	for _, k := range []string{"accepted_lists", "accepted"} {
		list, ok := c[k].([]any)
		if !ok {
			t.Errorf("%s: %s is not a list", where, k)
		}
		for i, x := range list {
			if !isHex(x, -1) || x == "" {
				t.Errorf("%s: %s %d is not a non-empty hexadecimal string", where, k, i)
			}
		}
	}
	if e := c["expect"]; e == "duplicate" && len(c["accepted"].([]any)) == 0 {
		t.Errorf("%s: a duplicate with no accepted state", where)
	}
}

// checkSenderKeys checks the form of a case of sender_keys.json.
func checkSenderKeys(t *testing.T, where string, c map[string]any, names map[string]bool) {
	t.Helper()
	for k, n := range map[string]int{"group_id": 16, "chain_key": 32, "signing_private": 32, "distribution": -1} {
		if !isHex(c[k], n) {
			t.Errorf("%s: %s is not %d bytes of lowercase hexadecimal", where, k, n)
		}
	}
	checkKeys := func(what string, v any) {
		list, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %s is not a list", where, what)
			return
		}
		for i, k := range list {
			o := keysIn(t, fmt.Sprintf("%s: %s %d", where, what, i), k, skKeyFields, skKeyFields)
			if !isHex(o["chain_key"], 32) || !isHex(o["signing_key"], 33) {
				t.Errorf("%s: %s %d: chain_key or signing_key of the wrong size", where, what, i)
			}
			sk, _ := o["skipped"].([]any)
			for j, x := range sk {
				so := keysIn(t, fmt.Sprintf("%s: %s %d skipped %d", where, what, i, j), x, []string{"iteration", "message_key"},
					[]string{"iteration", "message_key"})
				if !isHex(so["message_key"], 32) {
					t.Errorf("%s: %s %d skipped %d: message_key is not 32 bytes", where, what, i, j)
				}
			}
		}
	}
	checkKeys("keys", c["keys"])
	steps, _ := c["steps"].([]any)
	if len(steps) == 0 {
		t.Errorf("%s: no step", where)
	}
	req := map[string][]string{
		"encrypt":    {"op", "iteration", "group_version", "content", "z", "message", "expect"},
		"distribute": {"op", "from", "distribution", "keys", "expect"},
		"decrypt":    {"op", "from", "message_id", "sent_at", "message", "keys", "expect"},
	}
	allowed := map[string][]string{
		"encrypt":    req["encrypt"],
		"distribute": append(append([]string{}, req["distribute"]...), "error"),
		"decrypt":    append(append([]string{}, req["decrypt"]...), "content", "error"),
	}
	first := ""
	for i, si := range steps {
		w := fmt.Sprintf("%s: step %d", where, i)
		s, _ := si.(map[string]any)
		op, _ := s["op"].(string)
		if _, ok := req[op]; !ok {
			t.Errorf("%s: op %q", w, op)
			continue
		}
		keysIn(t, w, s, allowed[op], req[op])
		checkExpect(t, w, s, names)
		if op == "encrypt" && s["expect"] != "valid" {
			t.Errorf("%s: an encrypt step that is not valid", w)
		}
		if _, ok := s["content"]; op == "decrypt" && ok != (s["expect"] == "valid") {
			t.Errorf("%s: content present: %v, expect %v", w, ok, s["expect"])
		}
		if op != "encrypt" {
			checkKeys(fmt.Sprintf("step %d keys", i), s["keys"])
		}
		if e, _ := s["error"].(string); e != "" && first == "" {
			first = e
		}
	}
	if got, _ := c["error"].(string); got != first || (first == "") != (c["expect"] == "valid") {
		t.Errorf("%s: got case %v/%v, want the outcome of its first invalid step (%q)", where, c["expect"], c["error"], first)
	}
}

// checkMedia checks the form of a case of media.json.
func checkMedia(t *testing.T, where string, c map[string]any) {
	t.Helper()
	for k, n := range map[string]int{"media_key": 32, "key": 32, "blob_sha256": 32, "digest": 32} {
		if !isHex(c[k], n) {
			t.Errorf("%s: %s is not %d bytes of lowercase hexadecimal", where, k, n)
		}
	}
	chunks, _ := c["chunks"].([]any)
	if len(chunks) == 0 {
		t.Errorf("%s: no chunk", where)
	}
	for i, ch := range chunks {
		keysIn(t, fmt.Sprintf("%s: chunk %d", where, i), ch, chunkFields, chunkFields)
	}
	size, _ := c["blob_size"].(float64)
	blob, has := c["blob"]
	if has != (size <= 1024) || (has && !isHex(blob, int(size))) {
		t.Errorf("%s: blob is not given exactly when blob_size is at most 1024, or is not blob_size bytes", where)
	}
	if c["expect"] == "valid" {
		for _, k := range []string{"truncate", "flip"} {
			if _, ok := c[k]; ok {
				t.Errorf("%s: a valid case with %s", where, k)
			}
		}
		if c["size"] != c["blob_size"] || c["digest"] != c["blob_sha256"] {
			t.Errorf("%s: a valid case whose size and digest are not the blob's", where)
		}
	}
}

// checkLifecycle checks the form of a case of lifecycle.json.
func checkLifecycle(t *testing.T, where string, c map[string]any, names map[string]bool) {
	t.Helper()
	if c["expect"] != "valid" {
		t.Errorf("%s: expect %v: every case of lifecycle.json is valid", where, c["expect"])
	}
	events, _ := c["events"].([]any)
	if len(events) == 0 {
		t.Errorf("%s: no event", where)
	}
	for i, ei := range events {
		w := fmt.Sprintf("%s: event %d", where, i)
		e := keysIn(t, w, ei, lcEventFields, []string{"op", "result"})
		switch e["op"] {
		case "clock":
			keysIn(t, w, ei, []string{"op", "now", "result"}, []string{"now"})
		case "receive", "send":
			if !contains(lcContentTypes, fmt.Sprint(e["type"])) || !isHex(e["id"], 16) {
				t.Errorf("%s: type %v or id %v", w, e["type"], e["id"])
			}
			if _, ok := e["from"]; ok != (e["op"] == "receive") {
				t.Errorf("%s: from present: %v, op %v", w, ok, e["op"])
			}
			if _, ok := e["target"]; ok != (e["type"] == "edit" || e["type"] == "delete") {
				t.Errorf("%s: target present: %v, type %v", w, ok, e["type"])
			}
			if _, ok := e["timer"]; ok != (e["type"] == "timer") {
				t.Errorf("%s: timer present: %v, type %v", w, ok, e["type"])
			}
			if _, ok := e["messages"]; ok != (e["type"] == "opened") {
				t.Errorf("%s: messages present: %v, type %v", w, ok, e["type"])
			}
		default:
			t.Errorf("%s: op %v", w, e["op"])
		}
		r, _ := e["result"].(string)
		if !contains(lcResults, r) {
			t.Errorf("%s: result %q", w, r)
		}
		errName, hasErr := e["error"].(string)
		if hasErr != (r == "dropped" || r == "refused") || (hasErr && !names[errName]) {
			t.Errorf("%s: result %s with error %q", w, r, errName)
		}
	}
	final := keysIn(t, where+": final", c["final"], lcFinalFields, []string{"messages", "pending", "timer"})
	msgs, _ := final["messages"].([]any)
	last := ""
	for i, mi := range msgs {
		m := keysIn(t, fmt.Sprintf("%s: final message %d", where, i), mi, lcMsgFields,
			[]string{"from", "id", "deleted", "expired"})
		id, _ := m["id"].(string)
		if !isHex(id, 16) || id <= last {
			t.Errorf("%s: final messages are not sorted by id", where)
		}
		last = id
	}
	orders, has := c["orders"].([]any)
	if _, ok := c["orders"]; ok && (!has || len(orders) == 0) {
		t.Errorf("%s: orders is not a non-empty list", where)
	}
	for i, oi := range orders {
		o, _ := oi.([]any)
		seen := map[int]bool{}
		for _, x := range o {
			f, _ := x.(float64)
			if f < 0 || int(f) >= len(events) {
				t.Errorf("%s: order %d: index %v", where, i, x)
			}
			seen[int(f)] = true
		}
		if len(seen) != len(events) {
			t.Errorf("%s: order %d does not hold every event", where, i)
		}
	}
}

// checkGroupReceipts checks the form of a case of group_receipts.json.
func checkGroupReceipts(t *testing.T, where string, c map[string]any) {
	t.Helper()
	if c["expect"] != "valid" {
		t.Errorf("%s: expect %v: every case of group_receipts.json is valid", where, c["expect"])
	}
	versions, _ := c["versions"].(map[string]any)
	if len(versions) == 0 {
		t.Errorf("%s: no version", where)
	}
	msgs, _ := c["messages"].([]any)
	known := map[string]bool{}
	for i, mi := range msgs {
		m := keysIn(t, fmt.Sprintf("%s: message %d", where, i), mi, []string{"id", "group_version"},
			[]string{"id", "group_version"})
		if _, ok := versions[fmt.Sprint(m["group_version"])]; !ok || !isHex(m["id"], 16) {
			t.Errorf("%s: message %d: an id or a group version that versions does not hold", where, i)
		}
		id, _ := m["id"].(string)
		known[id] = true
	}
	events, _ := c["events"].([]any)
	for i, ei := range events {
		w := fmt.Sprintf("%s: event %d", where, i)
		e := keysIn(t, w, ei, grEventFields, []string{"kind"})
		switch e["kind"] {
		case "sent":
			keysIn(t, w, ei, []string{"kind", "message"}, []string{"message"})
		case "receipt":
			keysIn(t, w, ei, []string{"kind", "from", "receipt", "messages"}, []string{"from", "receipt", "messages"})
		default:
			t.Errorf("%s: kind %v", w, e["kind"])
		}
	}
	final, _ := c["final"].(map[string]any)
	for id, si := range final {
		if !known[id] {
			t.Errorf("%s: final has a message that is not in messages", where)
		}
		keysIn(t, where+": final "+id, si, grStateFields, grStateFields)
	}
}

// TestNestedFieldOrderNewFamilies checks the field order of the objects
// inside the cases of the families of chapters 16 to 18 (section 9.2
// tables).
func TestNestedFieldOrderNewFamilies(t *testing.T) {
	check := func(where string, raw []byte, order []string) {
		keys, err := objectKeys(raw)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
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
				t.Errorf("%s: field %q out of order (%v)", where, k, keys)
				return
			}
			last = j
		}
	}
	load := func(name string, v any) {
		b, err := FS.ReadFile("v1/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	var sk struct {
		Cases []struct {
			Keys     []json.RawMessage `json:"keys"`
			RawSteps []json.RawMessage `json:"steps"`
		} `json:"cases"`
	}
	load("sender_keys", &sk)
	var lc struct {
		Cases []struct {
			Events []json.RawMessage `json:"events"`
			Final  json.RawMessage   `json:"final"`
		} `json:"cases"`
	}
	load("lifecycle", &lc)
	var md struct {
		Cases []struct {
			Chunks []json.RawMessage `json:"chunks"`
		} `json:"cases"`
	}
	load("media", &md)
	var gr struct {
		Cases []struct {
			Events []json.RawMessage `json:"events"`
		} `json:"cases"`
	}
	load("group_receipts", &gr)
	if len(sk.Cases) == 0 || len(lc.Cases) == 0 || len(md.Cases) == 0 || len(gr.Cases) == 0 {
		t.Fatal("a family has no case")
	}
	for i, c := range sk.Cases {
		for j, k := range c.Keys {
			check(fmt.Sprintf("sender_keys case %d key %d", i, j), k, skKeyFields)
		}
		for j, s := range c.RawSteps {
			check(fmt.Sprintf("sender_keys case %d step %d", i, j), s, skStepFields)
		}
	}
	for i, c := range lc.Cases {
		for j, e := range c.Events {
			check(fmt.Sprintf("lifecycle case %d event %d", i, j), e, lcEventFields)
		}
		check(fmt.Sprintf("lifecycle case %d final", i), c.Final, lcFinalFields)
	}
	for i, c := range md.Cases {
		for j, ch := range c.Chunks {
			check(fmt.Sprintf("media case %d chunk %d", i, j), ch, chunkFields)
		}
	}
	for i, c := range gr.Cases {
		for j, e := range c.Events {
			check(fmt.Sprintf("group_receipts case %d event %d", i, j), e, grEventFields)
		}
	}
}
