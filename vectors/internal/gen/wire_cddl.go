package gen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/missive-protocol/missive/spec"
)

// This file reads the CDDL of the specification (the ```cddl blocks of its
// chapters) into the types that stage 3 of the CBOR profile (section 10.2)
// checks. It understands the subset of CDDL (RFC 8610) that the
// specification uses, and fails on anything else, so that a new construct in
// the specification cannot be silently ignored. What the CDDL cannot say
// (limits and orders stated in comments, the tables of sections 11.3 and
// 11.9, and the processing rules of chapters 4, 5 and 11 that decoding
// applies) is added by wireAnnotate, which also fails when a comment states a
// constraint that it does not apply.

// wkind is the kind of a wire type.
type wkind int

const (
	wUint wkind = iota + 1
	wBstr
	wTstr
	wBool
	wArray // homogeneous: [* T] or [+ T]
	wTuple // fixed positions: [A, B]
	wMap
)

// sortKind is the order a list must have (MSG-010).
type sortKind int

const (
	sortNone   sortKind = iota
	sortValue           // strictly increasing values (uint or byte-wise strings)
	sortField1          // maps strictly increasing by the uint of their key 1
	sortDesc            // strictly decreasing unsigned integers (the versions of a hello)
	sortItem0           // arrays strictly increasing by their first element, an account (bytewise)
)

// wtype is a type of the wire CDDL, with the checks of stage 3.
type wtype struct {
	name string // the rule that defines it, when it is a named rule
	kind wkind
	// wUint: the range, and for an enumeration its values and names.
	min, max uint64
	enum     map[uint64]string
	// wBstr, wTstr: length bounds in bytes (maxLen < 0: unbounded).
	minLen, maxLen int
	pattern        *regexp.Regexp // wTstr: .regexp, anchored
	cbor           string         // wBstr: .cbor rule (not decoded by this rule)
	// wBool: a literal true or false.
	constBool *bool
	// wArray
	elem               *wtype
	minCount, maxCount int // maxCount < 0: unbounded (CBOR_MAX_ITEMS)
	sorted             sortKind
	// wTuple
	items []*wtype
	// wMap
	fields    []*wfield
	versioned bool
	// check3b runs in pass 3b after the map's own required keys and those
	// of the maps it contains (MSG-003, MSG-006, MSG-017).
	check3b func(it *item) error
	// maxEncoding, for a rule, is the largest encoding, checked before
	// decoding (MSG-011); 0: none.
	maxEncoding int
}

// wfield is one entry of a map rule.
type wfield struct {
	key      uint64
	optional bool
	typ      *wtype
	comment  string
}

func (t *wtype) field(k uint64) *wfield {
	for _, f := range t.fields {
		if f.key == k {
			return f
		}
	}
	return nil
}

// cddlRule is one rule as written in a chapter.
type cddlRule struct {
	name, chapter string
	rhs           string   // the type expression (for a map: "{...}")
	comment       string   // the comment of the rule's first line
	entries       []string // for a map: its entry lines, comments included
	structure     bool     // a map or an array
}

var (
	cddlRuleRE  = regexp.MustCompile(`^([a-z][a-z0-9-]*) = (.*)$`)
	cddlEntryRE = regexp.MustCompile(`^(\?\s*)?([0-9]+)\s*=>\s*(.+)$`)
)

// splitComment splits a CDDL line into its text and its comment, at the
// first ';' outside a quoted string.
func splitComment(line string) (text, comment string) {
	inQ := false
	for i, c := range line {
		switch {
		case c == '"':
			inQ = !inQ
		case c == ';' && !inQ:
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
	}
	return strings.TrimSpace(line), ""
}

// readCDDL returns the rules of the ```cddl blocks of every chapter, in the
// order of the chapters.
func readCDDL() ([]cddlRule, error) {
	names, err := fs.Glob(spec.FS, "*.md")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []cddlRule
	for _, name := range names {
		data, err := spec.FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		in := false
		var open *cddlRule
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "```cddl"):
				in = true
				continue
			case strings.HasPrefix(line, "```"):
				if open != nil {
					return nil, fmt.Errorf("%s: rule %s is not closed", name, open.name)
				}
				in = false
				continue
			case !in:
				continue
			}
			text, comment := splitComment(line)
			if open != nil {
				if text == "}" {
					out = append(out, *open)
					open = nil
					continue
				}
				if text != "" {
					open.entries = append(open.entries, line)
				}
				continue
			}
			if text == "" {
				continue
			}
			m := cddlRuleRE.FindStringSubmatch(text)
			if m == nil {
				return nil, fmt.Errorf("%s: CDDL line not understood: %q", name, line)
			}
			r := cddlRule{name: m[1], chapter: name, rhs: strings.TrimSpace(m[2]), comment: comment}
			r.structure = strings.HasPrefix(r.rhs, "{") || strings.HasPrefix(r.rhs, "[")
			if r.rhs == "{" {
				open = &r
				continue
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// wireRules is the result of readCDDL and wireAnnotate: every rule, and the
// names of the structure rules in the order of the specification.
type wireRules struct {
	types      map[string]*wtype
	structures []string
	rules      map[string]cddlRule
}

var wireRulesCache *wireRules

// loadWireRules reads and annotates the CDDL once.
func loadWireRules() (*wireRules, error) {
	if wireRulesCache != nil {
		return wireRulesCache, nil
	}
	rules, err := readCDDL()
	if err != nil {
		return nil, err
	}
	w := &wireRules{types: map[string]*wtype{}, rules: map[string]cddlRule{}}
	for _, r := range rules {
		if _, dup := w.rules[r.name]; dup {
			return nil, fmt.Errorf("CDDL rule %s is defined twice", r.name)
		}
		w.rules[r.name] = r
		if r.structure {
			w.structures = append(w.structures, r.name)
		}
	}
	p := &cddlParser{rules: w.rules, types: w.types, busy: map[string]bool{}}
	for _, r := range rules {
		if _, err := p.rule(r.name); err != nil {
			return nil, err
		}
	}
	if err := wireAnnotate(w); err != nil {
		return nil, err
	}
	wireRulesCache = w
	return w, nil
}

type cddlParser struct {
	rules map[string]cddlRule
	types map[string]*wtype
	busy  map[string]bool
}

// rule returns the type of a named rule. A named rule's type is shared by
// every use, so annotations of a named rule apply wherever it is used; an
// annotation that applies in one place only (MSG-007) copies it.
func (p *cddlParser) rule(name string) (*wtype, error) {
	if t, ok := p.types[name]; ok {
		return t, nil
	}
	r, ok := p.rules[name]
	if !ok {
		return nil, fmt.Errorf("CDDL: rule %s is not defined", name)
	}
	if p.busy[name] {
		return nil, fmt.Errorf("CDDL: rule %s is recursive", name)
	}
	p.busy[name] = true
	defer delete(p.busy, name)
	var t *wtype
	var err error
	if r.rhs == "{" || strings.HasPrefix(r.rhs, "{") {
		t, err = p.mapRule(r)
	} else {
		t, err = p.expr(r.rhs)
		if err == nil && (t.name != "" || t.kind == wMap) {
			// An alias of another rule: a copy that carries its own name.
			c := *t
			t = &c
		}
	}
	if err != nil {
		return nil, fmt.Errorf("CDDL rule %s (%s): %v", name, r.chapter, err)
	}
	t.name = name
	p.types[name] = t
	return t, nil
}

func (p *cddlParser) mapRule(r cddlRule) (*wtype, error) {
	t := &wtype{kind: wMap}
	if r.rhs != "{" {
		if r.rhs != "{}" {
			return nil, fmt.Errorf("a one-line map must be {}: %q", r.rhs)
		}
		return t, nil
	}
	for _, line := range r.entries {
		text, comment := splitComment(line)
		text = strings.TrimSuffix(strings.TrimSpace(text), ",")
		m := cddlEntryRE.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("map entry not understood: %q", line)
		}
		k, err := strconv.ParseUint(m[2], 10, 64)
		if err != nil {
			return nil, err
		}
		ft, err := p.expr(strings.TrimSpace(m[3]))
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", k, err)
		}
		if n := len(t.fields); n > 0 && t.fields[n-1].key >= k {
			return nil, fmt.Errorf("keys are not in increasing order at %d", k)
		}
		t.fields = append(t.fields, &wfield{key: k, optional: m[1] != "", typ: ft, comment: comment})
	}
	if len(t.fields) > 0 && t.fields[0].key == 1 && !t.fields[0].optional && t.fields[0].typ.kind == wUint &&
		strings.HasPrefix(t.fields[0].comment, "protocol version, ") {
		t.versioned = true
	}
	return t, nil
}

var (
	cddlRangeRE  = regexp.MustCompile(`^\(\s*([0-9]+)\s*\.\.\s*([0-9]+)\s*\)$`)
	cddlEnumRE   = regexp.MustCompile(`^&\((.*)\)$`)
	cddlEnumItem = regexp.MustCompile(`^([a-z][a-z0-9-]*):\s*([0-9]+)$`)
)

// expr parses a type expression.
func (p *cddlParser) expr(s string) (*wtype, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if strings.HasPrefix(inner, "+ ") || strings.HasPrefix(inner, "* ") {
			e, err := p.expr(inner[2:])
			if err != nil {
				return nil, err
			}
			t := &wtype{kind: wArray, elem: e, maxCount: -1}
			if inner[0] == '+' {
				t.minCount = 1
			}
			return t, nil
		}
		t := &wtype{kind: wTuple}
		for _, part := range strings.Split(inner, ",") {
			e, err := p.expr(part)
			if err != nil {
				return nil, err
			}
			t.items = append(t.items, e)
		}
		return t, nil
	case cddlEnumRE.MatchString(s):
		t := &wtype{kind: wUint, enum: map[uint64]string{}}
		first := true
		for _, part := range strings.Split(cddlEnumRE.FindStringSubmatch(s)[1], ",") {
			m := cddlEnumItem.FindStringSubmatch(strings.TrimSpace(part))
			if m == nil {
				return nil, fmt.Errorf("enumeration item not understood: %q", part)
			}
			v, _ := strconv.ParseUint(m[2], 10, 64)
			t.enum[v] = m[1]
			if first || v < t.min {
				t.min = v
			}
			if first || v > t.max {
				t.max = v
			}
			first = false
		}
		return t, nil
	}
	// A base type, optionally with one control operator.
	base, op, arg := s, "", ""
	if i := strings.Index(s, " ."); i >= 0 {
		base = strings.TrimSpace(s[:i])
		rest := strings.TrimSpace(s[i+2:])
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			return nil, fmt.Errorf("control operator without argument: %q", s)
		}
		op, arg = rest[:j], strings.TrimSpace(rest[j+1:])
	}
	var t *wtype
	switch base {
	case "uint":
		t = &wtype{kind: wUint, max: ^uint64(0)}
	case "bstr":
		t = &wtype{kind: wBstr, maxLen: -1}
	case "tstr":
		t = &wtype{kind: wTstr, maxLen: -1}
	case "bool":
		t = &wtype{kind: wBool}
	case "true", "false":
		v := base == "true"
		t = &wtype{kind: wBool, constBool: &v}
	default:
		if op != "" {
			return nil, fmt.Errorf("control operator on a named type: %q", s)
		}
		return p.rule(base)
	}
	switch op {
	case "":
	case "le":
		v, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || t.kind != wUint {
			return nil, fmt.Errorf("bad .le: %q", s)
		}
		t.max = v
	case "within":
		m := cddlRangeRE.FindStringSubmatch(arg)
		if m == nil || t.kind != wUint {
			return nil, fmt.Errorf("bad .within: %q", s)
		}
		t.min, _ = strconv.ParseUint(m[1], 10, 64)
		t.max, _ = strconv.ParseUint(m[2], 10, 64)
	case "size":
		if t.kind != wBstr && t.kind != wTstr {
			return nil, fmt.Errorf(".size on %q", base)
		}
		if m := cddlRangeRE.FindStringSubmatch(arg); m != nil {
			t.minLen, _ = strconv.Atoi(m[1])
			t.maxLen, _ = strconv.Atoi(m[2])
		} else {
			n, err := strconv.Atoi(arg)
			if err != nil {
				return nil, fmt.Errorf("bad .size: %q", s)
			}
			t.minLen, t.maxLen = n, n
		}
	case "regexp":
		re, err := strconv.Unquote(arg)
		if err != nil || t.kind != wTstr {
			return nil, fmt.Errorf("bad .regexp: %q", s)
		}
		// A CDDL .regexp (XSD regular expression) matches the whole string.
		t.pattern, err = regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return nil, err
		}
	case "cbor":
		if t.kind != wBstr {
			return nil, fmt.Errorf(".cbor on %q", base)
		}
		if _, ok := p.rules[arg]; !ok {
			return nil, fmt.Errorf(".cbor names an undefined rule: %q", s)
		}
		t.cbor = arg
	default:
		return nil, fmt.Errorf("control operator .%s not understood", op)
	}
	return t, nil
}

// specLimits returns the named constants of the tables of the chapters
// (`NAME` | value |, or `NAME` | value s | for a time in seconds), with the
// values that are integers.
func specLimits() (map[string]uint64, error) {
	names, err := fs.Glob(spec.FS, "*.md")
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\| ([0-9]+)(?: s)? \\|")
	out := map[string]uint64{}
	for _, name := range names {
		data, err := spec.FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			v, _ := strconv.ParseUint(m[2], 10, 64)
			out[m[1]] = v
		}
	}
	return out, nil
}

var (
	// "at most MAX_X", "at most 1 + MAX_X", "at most BLOB_CHUNK" or "at most 64".
	atMostRE = regexp.MustCompile(`at most (?:(?:([0-9]+) \+ )?([A-Z][A-Z0-9_]+)|([0-9]+)\b)`)
	sortedRE = regexp.MustCompile(`\bsorted\b`)
)

// atMost returns the limit that a comment states with "at most", the
// named constant it uses ("" for a plain number), and whether it states
// one.
func atMost(comment string, limits map[string]uint64) (uint64, string, bool, error) {
	m := atMostRE.FindStringSubmatch(comment)
	if m == nil {
		return 0, "", false, nil
	}
	if m[3] != "" {
		v, err := strconv.ParseUint(m[3], 10, 64)
		return v, "", true, err
	}
	v, ok := limits[m[2]]
	if !ok {
		return 0, "", false, fmt.Errorf("limit %s is in no table", m[2])
	}
	if m[1] != "" {
		add, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return 0, "", false, err
		}
		v += add
	}
	return v, m[2], true, nil
}

// wireAnnotate adds what the CDDL's comments and the chapters' rules say and
// the CDDL syntax cannot: the counts and orders of lists, the flags of
// MSG-007, the registered codes of MSG-016, the ciphertext bounds of section
// 5.8, and the rule checks of pass 3b. It fails when a comment states a
// limit or an order that it does not turn into a check.
func wireAnnotate(w *wireRules) error {
	limits, err := specLimits()
	if err != nil {
		return err
	}
	handled := map[string]bool{}
	for _, name := range w.structures {
		t := w.types[name]
		for _, f := range t.fields {
			where := fmt.Sprintf("%s.%d", name, f.key)
			v, limitName, ok, err := atMost(f.comment, limits)
			if err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			if ok {
				switch f.typ.kind {
				case wArray:
					c := *f.typ
					c.maxCount = int(v)
					f.typ = &c
				case wBstr, wTstr:
					// The size is in the CDDL; the comment must agree.
					if f.typ.maxLen != int(v) {
						return fmt.Errorf("%s: the CDDL size %d disagrees with %s = %d", where, f.typ.maxLen, limitName, v)
					}
				case wUint:
					if f.typ.max != v {
						return fmt.Errorf("%s: the CDDL range %d disagrees with %s = %d", where, f.typ.max, limitName, v)
					}
				default:
					return fmt.Errorf("%s: %s on a %v", where, limitName, f.typ.kind)
				}
				handled[where+" at most"] = true
			}
			if sortedRE.MatchString(f.comment) {
				if f.typ.kind != wArray {
					return fmt.Errorf("%s: sorted, but not a list", where)
				}
				c := *f.typ
				switch {
				case strings.Contains(f.comment, "sorted by device id"):
					if c.elem.kind != wMap || c.elem.field(1) == nil || c.elem.field(1).typ.name != "device-id" {
						return fmt.Errorf("%s: sorted by device id, but its elements have no device id in key 1", where)
					}
					c.sorted = sortField1
				case strings.Contains(f.comment, "sorted by account, without duplicates"):
					if err := byAccount(&c); err != nil {
						return fmt.Errorf("%s: %v", where, err)
					}
				case strings.Contains(f.comment, "sorted, without duplicates"):
					c.sorted = sortValue
				default:
					return fmt.Errorf("%s: an order that is not understood: %q", where, f.comment)
				}
				f.typ = &c
				handled[where+" sorted"] = true
			}
			if strings.Contains(f.comment, "highest first") {
				// MSG-010: the versions of a hello, strictly decreasing.
				if f.typ.kind != wArray || f.typ.elem.kind != wUint || f.typ.sorted != sortNone {
					return fmt.Errorf("%s: highest first, but not a list of unsigned integers", where)
				}
				c := *f.typ
				c.sorted = sortDesc
				f.typ = &c
				handled[where+" highest first"] = true
			}
		}
	}
	// Limits and orders stated in the comment of a rule that is a list
	// (read-sync, deleted-sync, history, opened-sync, group-devices): the
	// rule's own type, shared by every use. In the comment of a rule that is
	// a fixed array with one list among its elements (account-devices), they
	// apply to that list.
	for _, name := range w.structures {
		t, r := w.types[name], w.rules[name]
		target := t
		if t.kind == wTuple {
			target = nil
			for i, it := range t.items {
				if it.kind == wArray {
					if target != nil {
						return fmt.Errorf("%s: a fixed array with two lists", name)
					}
					c := *it
					t.items[i] = &c
					target = &c
				}
			}
		}
		v, _, ok, err := atMost(r.comment, limits)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if ok {
			if target == nil || target.kind != wArray {
				return fmt.Errorf("%s: a limit in the comment of a rule that is not a list", name)
			}
			target.maxCount = int(v)
			handled[name+" at most"] = true
		}
		switch {
		case strings.HasPrefix(r.comment, "sorted by account, "):
			if target == nil || target.kind != wArray {
				return fmt.Errorf("%s: an order in the comment of a rule that is not a list", name)
			}
			if err := byAccount(target); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		case strings.Contains(r.comment, "sorted, without duplicates"):
			if target == nil || target.kind != wArray {
				return fmt.Errorf("%s: an order in the comment of a rule that is not a list", name)
			}
			target.sorted = sortValue
		case sortedRE.MatchString(r.comment) || strings.Contains(r.comment, "highest first"):
			return fmt.Errorf("%s: an order in the comment of a rule is not understood: %q", name, r.comment)
		}
	}
	// Section 11.8: each list of fanout-mismatch is sorted and without
	// duplicates (stated in the text, not in the comments).
	fm := w.types["fanout-mismatch"]
	if fm == nil || len(fm.fields) != 3 {
		return fmt.Errorf("fanout-mismatch: not the three lists of section 11.8")
	}
	for _, f := range fm.fields {
		c := *f.typ
		c.sorted = sortValue
		f.typ = &c
	}
	// MSG-007: the flag of prekey-upload field 2 is true, those of field 4
	// false.
	pu := w.types["prekey-upload"]
	for _, fc := range []struct {
		key  uint64
		flag bool
	}{{2, true}, {4, false}} {
		f := pu.field(fc.key)
		if f == nil {
			return fmt.Errorf("prekey-upload has no field %d", fc.key)
		}
		target := f.typ
		if f.typ.kind == wArray {
			c := *f.typ
			f.typ = &c
			target = c.elem
		}
		if target.name != "kem-prekey" {
			return fmt.Errorf("prekey-upload.%d: not kem-prekey", fc.key)
		}
		kp := *target
		kp.fields = nil
		for _, kf := range target.fields {
			kf2 := *kf
			if kf.key == 4 {
				v := fc.flag
				kf2.typ = &wtype{kind: wBool, constBool: &v}
			}
			kp.fields = append(kp.fields, &kf2)
		}
		if f.typ.kind == wArray {
			f.typ.elem = &kp
		} else {
			f.typ = &kp
		}
	}
	// MSG-006: at least one field.
	pu.check3b = func(it *item) error {
		if len(it.keys) == 0 {
			return errMissingField
		}
		return nil
	}
	// MSG-016: a registered code.
	codes, err := registeredCodes()
	if err != nil {
		return err
	}
	eb := w.types["error-body"].field(1)
	eb.typ = &wtype{kind: wUint, enum: codes, min: 0, max: ^uint64(0)}
	// Section 5.8: the ciphertext of a ratchet message is 16 ..
	// MAX_CIPHERTEXT bytes.
	rc := w.types["ratchet-message"].field(3)
	rc.typ = &wtype{kind: wBstr, minLen: 16, maxLen: int(limits["MAX_CIPHERTEXT"])}
	// MSG-011.
	w.types["envelope"].maxEncoding = int(limits["MAX_ENVELOPE_SIZE"])
	// MSG-003 and MSG-017: the tables of sections 11.3 and 11.9.
	if err := annotateFrameTable(w); err != nil {
		return err
	}
	if err := annotateContentTable(w); err != nil {
		return err
	}
	// Every comment that states a limit or an order was handled above.
	for _, name := range w.structures {
		for _, f := range w.types[name].fields {
			where := fmt.Sprintf("%s.%d", name, f.key)
			if strings.Contains(f.comment, "at most") && !handled[where+" at most"] {
				return fmt.Errorf("%s: %q states a limit that is not checked", where, f.comment)
			}
			if strings.Contains(f.comment, "sorted") && !handled[where+" sorted"] {
				return fmt.Errorf("%s: %q states an order that is not checked", where, f.comment)
			}
			if strings.Contains(f.comment, "highest first") && !handled[where+" highest first"] {
				return fmt.Errorf("%s: %q states an order that is not checked", where, f.comment)
			}
		}
		if c := w.rules[name].comment; strings.Contains(c, "at most") && !handled[name+" at most"] {
			return fmt.Errorf("%s: %q states a limit that is not checked", name, c)
		}
	}
	return nil
}

// byAccount makes a list sorted by account (section 11.4, MSG-010): its
// elements are fixed arrays whose first element is an account name, in
// strictly increasing bytewise order of that name, so that no account
// appears twice.
func byAccount(t *wtype) error {
	if t.elem.kind != wTuple || len(t.elem.items) == 0 || t.elem.items[0].name != "account" {
		return fmt.Errorf("sorted by account, but its elements are not arrays that start with an account")
	}
	t.sorted = sortItem0
	return nil
}

// registeredCodes returns the codes of spec/errors.json.
func registeredCodes() (map[uint64]string, error) {
	b, err := spec.FS.ReadFile("errors.json")
	if err != nil {
		return nil, err
	}
	var reg struct {
		Codes []struct {
			Code uint64 `json:"code"`
			Name string `json:"name"`
		} `json:"codes"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		return nil, err
	}
	out := map[uint64]string{}
	for _, c := range reg.Codes {
		out[c.Code] = c.Name
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("errors.json registers no code")
	}
	return out, nil
}

// frameRow is one row of the table of section 11.3.
type frameRow struct {
	typ       uint64
	name      string
	sender    string
	requestID string // "required", "absent" or "optional"
	body      string // the body rule(s), or "" when absent
}

// readFrameTable parses the table of section 11.3.
func readFrameTable() ([]frameRow, error) {
	data, err := spec.FS.ReadFile("11-messages.md")
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile("(?m)^\\| ([0-9]+) \\| `([a-z-]+)` \\| ([^|]+) \\| ([^|]+) \\| ([^|]+) \\|$")
	var rows []frameRow
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		v, _ := strconv.ParseUint(m[1], 10, 64)
		r := frameRow{typ: v, name: m[2], sender: strings.TrimSpace(m[3])}
		switch rid := strings.TrimSpace(m[4]); rid {
		case "required", "absent":
			r.requestID = rid
		case "when it answers a request":
			r.requestID = "optional"
		default:
			return nil, fmt.Errorf("section 11.3: request id %q not understood", rid)
		}
		if b := strings.TrimSpace(m[5]); b != "absent" {
			r.body = b
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("section 11.3: no frame type")
	}
	for i, r := range rows {
		if r.typ != uint64(i+1) {
			return nil, fmt.Errorf("section 11.3: row %d has type %d", i, r.typ)
		}
	}
	return rows, nil
}

func annotateFrameTable(w *wireRules) error {
	rows, err := readFrameTable()
	if err != nil {
		return err
	}
	ft := w.types["frame"]
	if ft == nil || ft.field(2) == nil || ft.field(2).typ.max != uint64(len(rows)) {
		return fmt.Errorf("frame-type does not cover the table of section 11.3")
	}
	ft.check3b = func(it *item) error {
		t := it.get(2)
		if t == nil || t.major != 0 || t.val < 1 || t.val > uint64(len(rows)) {
			return nil // an undefined type fails in pass 3c
		}
		r := rows[t.val-1]
		rid, body := it.get(3) != nil, it.get(4) != nil
		switch {
		case r.requestID == "required" && !rid:
			return errMissingField
		case r.requestID == "absent" && rid:
			return errUnknownField
		case r.body != "" && !body:
			return errMissingField
		case r.body == "" && body:
			return errUnknownField
		}
		return nil
	}
	return nil
}

// contentRow is one row of the table of section 11.9: the optional fields
// of content that a type requires, those it allows, and the others, which it
// forbids.
type contentRow struct {
	name                      string
	requires, allows, forbids []uint64
	envelope                  string // the envelope type it arrives in
}

// readContentTable parses the table of section 11.9, whose columns are the
// fields a type requires, the fields it allows besides (every other
// optional field of content is forbidden with the type) and the envelope
// type it arrives in (MSG-021).
func readContentTable(ct *wtype) ([]contentRow, error) {
	data, err := spec.FS.ReadFile("11-messages.md")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(data), "\n| content type | fields it requires | fields it allows besides | envelope type |\n") {
		return nil, fmt.Errorf("section 11.9: the content table's header is not understood")
	}
	re := regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| ([0-9, ]+) \\|([0-9, ]*)\\| `([a-z]+)` \\|$")
	nums := func(s string) []uint64 {
		var out []uint64
		for _, p := range strings.Split(s, ",") {
			if strings.TrimSpace(p) == "" {
				continue
			}
			v, _ := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
			out = append(out, v)
		}
		return out
	}
	var rows []contentRow
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		r := contentRow{name: m[1], requires: nums(m[2]), allows: nums(m[3]), envelope: m[4]}
		for _, f := range ct.fields {
			if f.optional && !containsUint(r.requires, f.key) && !containsUint(r.allows, f.key) {
				r.forbids = append(r.forbids, f.key)
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func annotateContentTable(w *wireRules) error {
	ct := w.types["content"]
	rows, err := readContentTable(ct)
	if err != nil {
		return err
	}
	types := ct.field(2).typ
	if len(rows) != len(types.enum) {
		return fmt.Errorf("section 11.9: %d rows for %d content types", len(rows), len(types.enum))
	}
	byValue := map[uint64]contentRow{}
	for v, name := range types.enum {
		found := false
		for _, r := range rows {
			if r.name == name {
				byValue[v], found = r, true
			}
		}
		if !found {
			return fmt.Errorf("section 11.9: no row for content type %s", name)
		}
	}
	// Every field a row names is an optional field of content, and its
	// envelope type is one of the envelope's (MSG-021).
	envTypes := w.types["envelope"].field(6).typ.enum
	for _, r := range rows {
		if !slices.Contains(slices.Collect(maps.Values(envTypes)), r.envelope) {
			return fmt.Errorf("section 11.9: row %s names envelope type %q, which is not an envelope-type", r.name, r.envelope)
		}
		for _, k := range append(append([]uint64{}, r.requires...), r.allows...) {
			if f := ct.field(k); f == nil || !f.optional {
				return fmt.Errorf("section 11.9: row %s names field %d, which is not an optional field of content", r.name, k)
			}
		}
	}
	ct.check3b = func(it *item) error {
		t := it.get(2)
		if t == nil || t.major != 0 {
			return nil
		}
		r, ok := byValue[t.val]
		if !ok {
			return nil // an undefined type fails in pass 3c
		}
		// The optional keys in increasing order, like the rest of pass 3b.
		for _, f := range ct.fields {
			if !f.optional {
				continue
			}
			present := it.get(f.key) != nil
			switch {
			case !present && containsUint(r.requires, f.key):
				return errMissingField
			case present && containsUint(r.forbids, f.key):
				return errUnknownField
			}
		}
		return nil
	}
	return nil
}

func containsUint(list []uint64, v uint64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
