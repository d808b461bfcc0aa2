package gen

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/missive-protocol/missive/spec"
)

// wireCase is one case of wire.json (section 9.2).
type wireCase struct {
	caseHead
	Rule       string   `json:"rule"`
	Encoding   hexBytes `json:"encoding"`
	Diagnostic string   `json:"diagnostic,omitempty"`
	Expect     string   `json:"expect"`
	Error      string   `json:"error,omitempty"`
}

var wireNotes = notes{
	{"at_limit", "a length, a count or a value is exactly at a limit that the specification sets; the case is valid"},
	{"cbor_form", "the input breaks stage 1 of the CBOR profile (section 10.2, form)"},
	{"indefinite", "an indefinite-length string, array or map"},
	{"float", "a floating-point value"},
	{"non_shortest", "an integer, length or count not in its shortest form"},
	{"utf8", "a text string that is not valid UTF-8"},
	{"depth", "nesting at or beyond CBOR_MAX_DEPTH"},
	{"map_keys", "map keys that repeat or are out of order"},
	{"version", "stage 2 of the CBOR profile (section 10.2, version)"},
	{"unknown_field", "a key that the structure does not define (stage 3a)"},
	{"wrong_type", "a value of another CBOR type than its field requires (stage 3a)"},
	{"missing_field", "a required key is absent (stage 3b)"},
	{"size", "a string longer or shorter than its field allows (stage 3c)"},
	{"range", "an integer or a boolean outside its field's range, or an undefined enumerated value (stage 3c)"},
	{"count", "a list with more or fewer elements than its field allows (stage 3c)"},
	{"order", "a list that section 11 requires sorted and without duplicates is not (MSG-010)"},
	{"account", "an account name that does not match the pattern of section 11.2 (MSG-001)"},
	{"frame_table", "a frame's request id or body is present or absent against the table of section 11.3 (MSG-003)"},
	{"content_table", "a content's fields do not match its type, against the table of section 11.9 (MSG-017)"},
	{"envelope_size", "an envelope larger than MAX_ENVELOPE_SIZE, refused before decoding (MSG-011)"},
}

const wireDescription = "Encodings of every structure rule of the CDDL of chapters 4, 5, 11, 15, 16 and 17 (the ```cddl " +
	"blocks of the specification), decoded as the rule named by rule: chapter 10, all three stages, with the checks that " +
	"these chapters attach to the rule's fields (account pattern and device id range, MSG-001; list orders, MSG-010: " +
	"sorted lists strictly increasing, integers by value and strings bytewise, the versions of a hello strictly " +
	"decreasing, and the lists sorted by account of chapter 16 (the members of a group state, group-devices) strictly " +
	"increasing by the account that starts each element, so that no account appears twice; the limits stated in the " +
	"comments of the CDDL, including those of a rule that is a list, such as at most 64 entries in a history and at " +
	"most 1 + MAX_COMPANIONS devices in a device list, and those in the comment of account-devices, which apply to " +
	"its list of device ids; the request-id and body table of section 11.3, MSG-003, and the content table of section " +
	"11.9, MSG-017 (a type requires the fields of its first column, allows those of its second, and forbids every " +
	"other of fields 5 to 17), both in pass 3b after the absent required keys; at least one field of a prekey upload, " +
	"MSG-006, in pass 3b; the last-resort flags of an upload, MSG-007, in pass 3c; registered error codes, MSG-016; the " +
	"ratchet ciphertext bounds of section 5.8; the envelope size, MSG-011, before stage 1). A field of type bstr .cbor " +
	"R, and the body of a frame, is checked as a byte string only: its bytes are decoded as R, a top-level item of its " +
	"own, by the processing rules that use it, not as part of the rule that carries it (section 10.2); in every case " +
	"they are nevertheless a valid encoding of R. The order of the states of a group-history (increasing version) is " +
	"likewise a processing rule, not checked by decoding. Key encodings in key slots are not checked by decoding " +
	"(section 1.3), nor are signatures, MACs, digests, or the rules of DEV-001 and GRP-001 beyond decoding (the " +
	"account asked for, device 1 listed); in valid cases signatures verify, MACs are those of section 15.3, group " +
	"messages decrypt with their sender keys, and device digests are those of section 16.4. A history entry's status is not checked against its direction by decoding (valid cases follow the " +
	"comment of section 15.5: 0 or 3 for a received message). In pass 3c, a list's count is checked before its " +
	"elements, and each element's own checks before its order relative to the element before it. A valid case " +
	"decodes and re-encodes to encoding; diagnostic is its value in the diagnostic notation of RFC 8949 section 8. An " +
	"invalid case fails with error. Lists of account names are chosen so that the byte-wise order of the names and " +
	"the order of their encodings agree."

func genWire() (any, error) {
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	for _, name := range w.structures {
		if _, ok := fieldNames[name]; !ok {
			return nil, fmt.Errorf("CDDL structure %s has no field names", name)
		}
		t := w.types[name]
		n := len(t.fields)
		if t.kind == wTuple {
			n = len(t.items)
		}
		if n != len(fieldNames[name]) {
			return nil, fmt.Errorf("%s: %d fields, %d names", name, n, len(fieldNames[name]))
		}
	}
	var cases []wireCase
	roots := map[string]*node{}
	valids := wireValids()
	byRule := map[string][]string{}
	for _, c := range valids {
		if retiredWireIDs[c.id] {
			return nil, fmt.Errorf("%s: a retired id (VER-003: never reused)", c.id)
		}
		v := newVB("Missive v1 test vectors: wire: " + c.id)
		val := c.build(v)
		if v.err != nil {
			return nil, fmt.Errorf("%s: %v", c.id, v.err)
		}
		enc := encodeCBOR(val)
		it, err := w.decodeWire(c.rule, enc)
		if err != nil {
			return nil, fmt.Errorf("%s: the valid encoding fails to decode as %s: %v", c.id, c.rule, err)
		}
		if err := w.checkEmbedded(it, w.types[c.rule]); err != nil {
			return nil, fmt.Errorf("%s: %v", c.id, err)
		}
		if !bytes.Equal(toNode(it).encode(), enc) {
			return nil, fmt.Errorf("%s: the encoding is not canonical", c.id)
		}
		flags := c.flags
		if flags == nil {
			flags = []string{}
		}
		cases = append(cases, wireCase{caseHead: caseHead{ID: c.id, Comment: c.comment, Flags: flags, Requirements: c.reqs},
			Rule: c.rule, Encoding: enc, Diagnostic: diagnostic(it), Expect: "valid"})
		roots[c.id] = toNode(it)
		byRule[c.rule] = append(byRule[c.rule], c.id)
	}
	// Every structure rule has a valid case, and every case names one.
	isStructure := map[string]bool{}
	for _, name := range w.structures {
		isStructure[name] = true
		if len(byRule[name]) == 0 {
			return nil, fmt.Errorf("CDDL structure rule %s has no valid case", name)
		}
	}
	for rule := range byRule {
		if !isStructure[rule] {
			return nil, fmt.Errorf("a case names %s, which is not a CDDL structure rule of the specification", rule)
		}
	}

	var negs []wireNeg
	// Stage 1 and stage 2 on frame and envelope.
	s1, err := stage1Cases("frame", "frame", "frame_hello", roots["frame_hello"], formPlaces{
		version: []step{{key: 1}}, uint: []step{{key: 3}}, bstr: []step{{key: 4}}})
	if err != nil {
		return nil, err
	}
	negs = append(negs, s1...)
	s1, err = stage1Cases("envelope", "envelope", "envelope_receipt", roots["envelope_receipt"], formPlaces{
		version: []step{{key: 1}}, uint: []step{{key: 8}}, bstr: []step{{key: 5}, {idx: 0, isIdx: true}, {key: 3}},
		tstr: []step{{key: 4}}, arr: []step{{key: 5}}, ts: []step{{key: 9}}})
	if err != nil {
		return nil, err
	}
	negs = append(negs, s1...)
	more, err := tooManyItems(roots)
	if err != nil {
		return nil, err
	}
	negs = append(negs, more...)
	negs = append(negs, stage2Cases("frame", "frame", "frame_hello", roots["frame_hello"], true)...)
	negs = append(negs, stage2Cases("envelope", "envelope", "envelope_receipt", roots["envelope_receipt"], true)...)
	for _, name := range w.structures {
		if w.types[name].versioned && name != "frame" && name != "envelope" {
			base := byRule[name][0]
			negs = append(negs, stage2Cases(name, ruleID(name), base, roots[base], false)...)
		}
	}
	// Stage 3, from every valid case of every rule.
	for _, name := range w.structures {
		k := &walker{w: w, rule: name, seen: map[string]bool{}}
		for _, id := range byRule[name] {
			k.base, k.root = id, roots[id]
			k.walk(nil, w.types[name], ruleID(name), "The "+name, name, 0)
		}
		if k.err != nil {
			return nil, fmt.Errorf("%s: %v", name, k.err)
		}
		negs = append(negs, k.out...)
	}
	tables, err := tableCases(roots, byRule)
	if err != nil {
		return nil, err
	}
	negs = append(negs, tables...)
	negs = append(negs, orderCases(roots)...)
	big, err := envelopeTooLarge(w)
	if err != nil {
		return nil, err
	}
	negs = append(negs, big)

	for _, n := range negs {
		if retiredWireIDs[n.id] {
			return nil, fmt.Errorf("%s: a retired id (VER-003: never reused)", n.id)
		}
		_, err := w.decodeWire(n.rule, n.enc)
		if err == nil || err != error(n.want) {
			return nil, fmt.Errorf("%s: decoding as %s gives %v, want %v", n.id, n.rule, err, n.want)
		}
		if err := crossCheckChapter45(n.rule, n.enc, n.want); err != nil {
			return nil, fmt.Errorf("%s: %v", n.id, err)
		}
		cases = append(cases, wireCase{caseHead: caseHead{ID: n.id, Comment: n.comment, Flags: n.flags,
			Requirements: withErr001(dedupe(n.reqs))}, Rule: n.rule, Encoding: n.enc, Expect: "invalid", Error: n.want.name})
	}
	for _, c := range cases {
		if c.Expect == "valid" {
			if err := crossCheckChapter45(c.Rule, c.Encoding, nil); err != nil {
				return nil, fmt.Errorf("%s: %v", c.ID, err)
			}
		}
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("wire", wireNotes, heads); err != nil {
		return nil, err
	}
	return newFile("wire", wireDescription, wireNotes, cases), nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// crossCheckChapter45 decodes the structures of chapters 4 and 5 with the
// hand-written schemas that the pqxdh and ratchet families use, and fails
// when they disagree with the schemas read from the CDDL.
func crossCheckChapter45(rule string, enc []byte, want *codeError) error {
	var s schema
	versioned := true
	switch rule {
	case "prekey-bundle":
		s = bundleSchema
	case "prekey-message":
		s = prekeyMessageSchema
	case "ratchet-message":
		s = ratchetMessageSchema
	case "ratchet-header":
		s, versioned = ratchetHeaderSchema, false
	default:
		return nil
	}
	err := func() error {
		it, err := decodeCBOR(enc)
		if err != nil {
			return err
		}
		if versioned {
			if err := checkVersion(it, 1); err != nil {
				return err
			}
		}
		return checkSchema(it, s)
	}()
	if (want == nil && err != nil) || (want != nil && err != error(want)) {
		return fmt.Errorf("the schema of the pqxdh and ratchet families gives %v, the CDDL %v", err, want)
	}
	return nil
}

// tooManyItems returns the CBOR_MAX_ITEMS cases (stage 1).
func tooManyItems(roots map[string]*node) ([]wireNeg, error) {
	var out []wireNeg
	// A complete frame map of 4097 pairs: the real fields, then keys 5 ..
	// 4097 with value 0.
	f := roots["frame_hello"].clone()
	for k := uint64(5); k <= 4097; k++ {
		f.set(k, uintNode(0))
	}
	out = append(out, wireNeg{id: "frame_map_4097_pairs", comment: "The frame of frame_hello followed by keys 5 to 4097 " +
		"(value 0): a complete map of 4097 pairs, more than CBOR_MAX_ITEMS (4096). The count is certain at the map's " +
		"initial byte and argument, before any pair is read.", flags: []string{"cbor_form", "count"},
		reqs: []string{"CBOR-004", "CBOR-005"}, rule: "frame", enc: f.encode(), want: errTooMany})
	g := roots["frame_hello"].clone()
	for k := uint64(5); k <= 4096; k++ {
		g.set(k, uintNode(0))
	}
	out = append(out, wireNeg{id: "frame_map_4096_pairs", comment: "The frame of frame_hello followed by keys 5 to 4096: " +
		"4096 pairs, exactly CBOR_MAX_ITEMS, pass stage 1; stage 3a finds key 5, which a frame does not define.",
		flags: []string{"unknown_field", "count"}, reqs: []string{"CBOR-004", "CBOR-005"}, rule: "frame", enc: g.encode(),
		want: errUnknownField})
	// An envelope whose device-message array claims 4097 elements and holds
	// one: the count is certain at the header, before the input ends.
	e := roots["envelope_receipt"].clone()
	e.get(5).hooks.head = []byte{0x99, 0x10, 0x01}
	out = append(out, wireNeg{id: "envelope_array_header_4097", comment: "The envelope of envelope_receipt whose " +
		"device-message array's header claims 4097 elements (0x99 0x1001), followed by its one element and the " +
		"rest of the envelope: decode.too_many is certain at the header, before the input runs out (which it does, " +
		"so a decoder that counts only after reading the elements reports decode.truncated instead).",
		flags: []string{"cbor_form", "count"}, reqs: []string{"CBOR-004", "CBOR-005"}, rule: "envelope", enc: e.encode(),
		want: errTooMany})
	return out, nil
}

// tableCases returns the cases of MSG-003 (section 11.3), MSG-017 (section
// 11.9) and MSG-006.
func tableCases(roots map[string]*node, byRule map[string][]string) ([]wireNeg, error) {
	var out []wireNeg
	rows, err := readFrameTable()
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		var baseID string
		for _, id := range byRule["frame"] {
			if roots[id].get(2).val == r.typ {
				baseID = id
				break
			}
		}
		if baseID == "" {
			return nil, fmt.Errorf("no valid frame of type %d", r.typ)
		}
		base := roots[baseID]
		name := "frame_" + strings.ReplaceAll(r.name, "-", "_")
		add := func(id, comment string, want *codeError, f func(c *node)) {
			c := base.clone()
			f(c)
			out = append(out, wireNeg{id: name + "_" + id, comment: fmt.Sprintf("%s %s frame (type %d) %s (from %s).",
				article(r.name), r.name, r.typ, comment, baseID), flags: []string{"frame_table"}, reqs: []string{"MSG-003", "CBOR-004"},
				rule: "frame", enc: c.encode(), want: want})
		}
		switch r.requestID {
		case "required":
			add("without_request_id", "without a request id, which the table requires", errMissingField, func(c *node) { c.del(3) })
		case "absent":
			add("with_request_id", "with request id 9, which the table says is absent", errUnknownField,
				func(c *node) { c.set(3, uintNode(9)) })
		}
		if r.body != "" {
			add("without_body", "without a body, which the table requires", errMissingField, func(c *node) { c.del(4) })
		} else {
			add("with_body", "with a body (the empty map), which the table says is absent", errUnknownField,
				func(c *node) { c.set(4, bstrNode([]byte{0xa0})) })
		}
	}
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	ct := w.types["content"]
	crow, err := readContentTable(ct)
	if err != nil {
		return nil, err
	}
	// value returns a valid value of content field k, from the case's
	// stream.
	value := func(id string, k uint64) *node {
		v := newVB("Missive v1 test vectors: wire: " + id)
		switch k {
		case 5:
			return tstrNode("hello")
		case 6:
			return nodeOfCval(cMap{{1, cUint(1)}, {2, v.sortedIDs(1)}})
		case 7:
			return nodeOfCval(v.media(1, "image/png", "", false))
		case 8:
			return bstrNode(v.messageID())
		case 9:
			return nodeOfCval(cMap{{1, cText("bob")}, {2, cBytes(encodeCBOR(content(ctText, v.messageID(), wireT0,
				cPair{5, cText("hi")})))}})
		case 10, 11:
			return nodeOfCval(v.conversationMessages("bob"))
		case 12:
			return nodeOfCval(cArray{v.historyEntry("bob", true, "hi", wireT0, 2)})
		case 13:
			return nodeOf(v.distributionOf(v.read(16), 1, 1, 0))
		case 14:
			return bstrNode(v.signedGroupStateOf(v.read(16), 1, wireGroupMembers, 1, wireT0, ""))
		case 15:
			return uintNode(3600)
		case 16:
			return uintNode(86400)
		case 17:
			return nodeOfCval(v.conversationMessages("bob"))
		default:
			v.fail(fmt.Errorf("no value for content field %d", k))
			return nil
		}
	}
	for _, r := range crow {
		var typ uint64
		for val, n := range ct.field(2).typ.enum {
			if n == r.name {
				typ = val
			}
		}
		var baseID string
		for _, id := range byRule["content"] {
			if roots[id].get(2).val == typ {
				baseID = id
				break
			}
		}
		if baseID == "" {
			return nil, fmt.Errorf("no valid content of type %s", r.name)
		}
		for _, k := range r.requires {
			fname, _ := fieldName("content", int(k)-1)
			c := roots[baseID].clone()
			c.del(k)
			out = append(out, wireNeg{id: fmt.Sprintf("content_%s_without_%s", ruleID(r.name), fname), comment: fmt.Sprintf(
				"%s %s content without field %d (%s), which its type requires (from %s).", article(r.name), r.name, k, fname, baseID),
				flags: []string{"content_table"}, reqs: []string{"MSG-017", "CBOR-004"}, rule: "content", enc: c.encode(),
				want: errMissingField})
		}
		for _, k := range r.forbids {
			fname, _ := fieldName("content", int(k)-1)
			c := roots[baseID].clone()
			id := fmt.Sprintf("content_%s_with_%s", ruleID(r.name), fname)
			val := value(id, k)
			if val == nil {
				return nil, fmt.Errorf("%s: no value for field %d", id, k)
			}
			c.set(k, val)
			out = append(out, wireNeg{id: id, comment: fmt.Sprintf(
				"%s %s content with a valid field %d (%s), which its type forbids (from %s).", article(r.name), r.name, k, fname, baseID),
				flags: []string{"content_table"}, reqs: []string{"MSG-017", "CBOR-004"}, rule: "content", enc: c.encode(),
				want: errUnknownField})
		}
	}
	out = append(out, wireNeg{id: "prekey_upload_no_field", comment: "A prekey upload with no field at all (the empty " +
		"map): at least one field is required.", flags: []string{"missing_field"}, reqs: []string{"MSG-006", "CBOR-004"},
		rule: "prekey-upload", enc: []byte{0xa0}, want: errMissingField})
	return out, nil
}

// envelopeTooLarge returns the MSG-011 case: a well-formed envelope of
// MAX_ENVELOPE_SIZE + 1 bytes that decoding would otherwise accept. The
// check comes before decoding, so no smaller input can test it; this one
// case is most of the size of wire.json.
func envelopeTooLarge(w *wireRules) (wireNeg, error) {
	max := w.types["envelope"].maxEncoding
	v := newVB("Missive v1 test vectors: wire: envelope_larger_than_max_envelope_size")
	id := v.messageID()
	const full = 73728 // MAX_DEVICE_MESSAGE
	cts := v.read(15 * full)
	build := func(last int) []byte {
		dms := cArray{}
		for d := 1; d <= 15; d++ {
			n := full
			if d == 15 {
				n = last
			}
			dms = append(dms, cMap{{1, cUint(uint64(d))}, {2, cUint(kindRatchet)}, {3, cBytes(cts[(d-1)*full : (d-1)*full+n])}})
		}
		return encodeCBOR(cMap{{1, cUint(1)}, {2, cBytes(id)}, {3, address("alice", 1)}, {4, cText("bob")}, {5, dms},
			{6, cUint(envChat)}, {7, cUint(prioNormal)}, {8, cUint(604800)}, {9, cUint(wireT0 + 3_600_000)}})
	}
	last := 1
	enc := build(last)
	for i := 0; i < 3 && len(enc) != max+1; i++ {
		last += max + 1 - len(enc)
		enc = build(last)
	}
	if len(enc) != max+1 || last < 1 || last > full {
		return wireNeg{}, fmt.Errorf("envelope_larger_than_max_envelope_size: %d bytes (last ciphertext %d)", len(enc), last)
	}
	// Without the size check, the envelope decodes.
	t := *w.types["envelope"]
	t.maxEncoding = 0
	w2 := &wireRules{types: map[string]*wtype{"envelope": &t}}
	if _, err := w2.decodeWire("envelope", enc); err != nil {
		return wireNeg{}, fmt.Errorf("envelope_larger_than_max_envelope_size is not otherwise valid: %v", err)
	}
	return wireNeg{id: "envelope_larger_than_max_envelope_size", comment: fmt.Sprintf("A well-formed chat envelope of "+
		"MAX_ENVELOPE_SIZE + 1 (%d) bytes to 15 devices of bob, 14 ciphertexts of MAX_DEVICE_MESSAGE (73728) bytes "+
		"and one of %d (random bytes standing for ratchet messages: this rule does not decode them). Without the size "+
		"check it would decode; the check comes before decoding.", max+1, last),
		flags: []string{"envelope_size"}, reqs: []string{"MSG-011"}, rule: "envelope", enc: enc, want: errTooLong}, nil
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "An"
	}
	return "A"
}

// retiredWireIDs are ids of earlier versions of wire.json whose meaning the
// specification changed; they are never used again (VER-003).
var retiredWireIDs = map[string]bool{
	// Codes 2008, 3012 and 4009 were registered for chapter 15.
	"error_body_code_unregistered_2008": true,
	"error_body_code_unregistered_3012": true,
	"error_body_code_unregistered_4009": true,
	// Codes 2012, 3014 and 4010 were registered for chapters 16 to 18.
	"error_body_code_unregistered_2012": true,
	"error_body_code_unregistered_3014": true,
	"error_body_code_unregistered_4010": true,
}

// checkEmbedded checks, in a valid case, that every byte string of type
// bstr .cbor R holds a valid encoding of R (decoded as a top-level item of
// its own, section 10.2), and that a frame's body is a valid encoding of a
// rule that the table of section 11.3 allows for its type.
func (w *wireRules) checkEmbedded(it *item, t *wtype) error {
	switch t.kind {
	case wBstr:
		if t.cbor == "" {
			return nil
		}
		inner, err := w.decodeWire(t.cbor, it.bstr)
		if err != nil {
			return fmt.Errorf("an embedded %s does not decode: %v", t.cbor, err)
		}
		return w.checkEmbedded(inner, w.types[t.cbor])
	case wArray:
		for _, e := range it.arr {
			if err := w.checkEmbedded(e, t.elem); err != nil {
				return err
			}
		}
	case wTuple:
		for i, e := range it.arr {
			if err := w.checkEmbedded(e, t.items[i]); err != nil {
				return err
			}
		}
	case wMap:
		for i, k := range it.keys {
			if err := w.checkEmbedded(it.vals[i], t.field(k.val).typ); err != nil {
				return err
			}
		}
		if t.name == "frame" {
			return w.checkFrameBody(it)
		}
	}
	return nil
}

// checkFrameBody checks that a frame's body decodes as one of the rules
// that the table of section 11.3 (and, for result, that of section 11.4)
// names for its type.
func (w *wireRules) checkFrameBody(it *item) error {
	body := it.get(4)
	if body == nil {
		return nil
	}
	rules, err := frameBodyRules(it.get(2).val)
	if err != nil {
		return err
	}
	var errs []string
	for _, r := range rules {
		inner, err := w.decodeWire(r, body.bstr)
		if err == nil {
			err = w.checkEmbedded(inner, w.types[r])
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", r, err))
	}
	return fmt.Errorf("the body of a frame of type %d decodes as none of its rules (%s)", it.get(2).val, strings.Join(errs, "; "))
}

var backtickRE = regexp.MustCompile("`([a-z-]+)`")

// frameBodyRules returns the rules of the body of a frame type: the names
// in backquotes of the body column of section 11.3 that are CDDL rules, and
// for result, the result bodies of the table of section 11.4.
func frameBodyRules(typ uint64) ([]string, error) {
	rows, err := readFrameTable()
	if err != nil {
		return nil, err
	}
	if typ < 1 || typ > uint64(len(rows)) {
		return nil, fmt.Errorf("frame type %d", typ)
	}
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	text := rows[typ-1].body
	if strings.Contains(text, "table in 11.4") {
		data, err := spec.FS.ReadFile("11-messages.md")
		if err != nil {
			return nil, err
		}
		text = ""
		for _, m := range regexp.MustCompile("(?m)^\\| [^|]+ \\| (`[a-z-]+`[^|]*) \\|$").FindAllStringSubmatch(string(data), -1) {
			text += m[1] + " "
		}
	}
	var out []string
	for _, m := range backtickRE.FindAllStringSubmatch(text, -1) {
		if _, ok := w.types[m[1]]; ok && w.rules[m[1]].structure {
			out = append(out, m[1])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("frame type %d: no body rule in %q", typ, rows[typ-1].body)
	}
	return out, nil
}

// orderCases returns cases with two faults of stage 3 each, of which the
// decoder must report the first in input order within pass 3a, and any
// fault of pass 3a before one of pass 3c (CBOR-004): wrong types before
// keys of another type than an unsigned integer, and the reverse.
func orderCases(roots map[string]*node) []wireNeg {
	var out []wireNeg
	add := func(id, comment, rule, base string, flags []string, want *codeError, f func(c *node)) {
		c := roots[base].clone()
		f(c)
		out = append(out, wireNeg{id: id, comment: comment + " (from " + base + ")", flags: flags,
			reqs: []string{"CBOR-004"}, rule: rule, enc: c.encode(), want: want})
	}
	textKey := func(c *node, k string) { // after every unsigned integer key, where canonical order puts it
		c.keys = append(c.keys, tstrNode(k))
		c.vals = append(c.vals, uintNode(0))
	}
	alice := tstrNode("alice")
	add("ack_wrong_type_then_text_key", "The queue ids are the text \"x\", and a text key \"a\" follows: the wrong "+
		"type comes first.", "ack", "ack", []string{"wrong_type", "unknown_field"}, errWrongType, func(c *node) {
		c.set(1, tstrNode("x"))
		textKey(c, "a")
	})
	add("ack_map_with_text_key", "The queue ids are a map {\"x\": 0}: a map where a list belongs is the fault, "+
		"found at its initial byte, before its key.", "ack", "ack", []string{"wrong_type"}, errWrongType, func(c *node) {
		m := mapNode()
		textKey(m, "x")
		c.set(1, m)
	})
	add("ack_bstr_key", "A key that is the byte string h'01': a key the structure does not define.", "ack", "ack",
		[]string{"unknown_field"}, errUnknownField, func(c *node) {
			c.keys = append(c.keys, bstrNode([]byte{1}))
			c.vals = append(c.vals, uintNode(0))
		})
	add("typing_notice_short_address_then_text_key", "The address is [\"alice\"], one element short (pass 3c), and "+
		"a text key follows (pass 3a): the unknown key is reported.", "typing-notice", "typing_notice",
		[]string{"count", "unknown_field"}, errUnknownField, func(c *node) {
			c.set(1, arrNode(alice))
			textKey(c, "a")
		})
	add("typing_notice_long_address_then_wrong_type", "The address has a third element (pass 3c), and typing is the "+
		"text \"x\" (pass 3a): the wrong type is reported.", "typing-notice", "typing_notice",
		[]string{"count", "wrong_type"}, errWrongType, func(c *node) {
			c.set(1, arrNode(alice, uintNode(1), uintNode(2)))
			c.set(2, tstrNode("x"))
		})
	return out
}
