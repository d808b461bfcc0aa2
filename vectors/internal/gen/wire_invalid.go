package gen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/missive-protocol/missive/spec"
)

// fieldNames names the fields of every map rule, for the ids and comments of
// the cases. The generator fails if a field of the CDDL has no name here.
var fieldNames = map[string][]string{
	"prekey-bundle":      {"version", "identity_key", "signed_prekey", "kem_prekey", "one_time_prekey"},
	"signed-prekey":      {"id", "key", "signature"},
	"kem-prekey":         {"id", "key", "signature", "last_resort"},
	"one-time-prekey":    {"id", "key"},
	"prekey-message":     {"version", "identity_key", "ephemeral_key", "signed_prekey_id", "kem_prekey_id", "kem_ciphertext", "one_time_prekey_id", "ratchet_message"},
	"ratchet-message":    {"version", "header", "ciphertext"},
	"ratchet-header":     {"ratchet_key", "pn", "n"},
	"address":            {"account", "device_id"},
	"frame":              {"version", "type", "request_id", "body"},
	"empty":              {},
	"hello":              {"versions", "account", "device_id", "identity_key", "binding", "register"},
	"welcome":            {"version", "server_time", "ec_prekeys", "kem_prekeys", "device_list"},
	"prekey-upload":      {"signed_prekey", "last_resort_kem_prekey", "one_time_prekeys", "one_time_kem_prekeys"},
	"upload-result":      {"ec_prekeys", "kem_prekeys"},
	"prekey-fetch":       {"account", "devices"},
	"fetch-result":       {"bundles", "device_list"},
	"device-bundle":      {"device_id", "bundle"},
	"send-result":        {"accepted_at"},
	"presence-subscribe": {"accounts"},
	"presence-result":    {"updates"},
	"privacy":            {"last_seen", "online"},
	"contacts":           {"accounts"},
	"envelope":           {"version", "message_id", "sender", "recipient", "device_messages", "type", "priority", "ttl", "sent_at"},
	"device-message":     {"device_id", "kind", "ciphertext"},
	"delivery":           {"version", "queue_id", "message_id", "sender", "type", "priority", "kind", "ciphertext", "sent_at", "accepted_at", "expires_at", "attempt"},
	"ack":                {"queue_ids"},
	"presence-update":    {"account", "state", "last_seen"},
	"typing":             {"account", "started"},
	"typing-notice":      {"device", "started"},
	"notice":             {"type", "count", "retry_after"},
	"error-body":         {"code", "detail", "fanout_mismatch", "retry_after", "device_list", "group_devices", "group_state"},
	"fanout-mismatch":    {"missing", "extra", "stale"},
	"content": {"version", "type", "message_id", "sent_at", "text", "receipt", "media", "target", "transcript", "read_sync",
		"deleted_sync", "history", "sender_key", "group_state", "timer", "expire_after", "opened_sync"},
	"receipt":         {"kind", "message_ids"},
	"media":           {"kind", "blob_id", "key", "digest", "size", "mime_type", "caption", "view_once"},
	"sent-transcript": {"recipient", "content"},
	// Chapter 15.
	"device-list":          {"version", "account", "list_version", "devices", "created_at"},
	"listed-device":        {"device_id", "identity_key"},
	"signed-device-list":   {"list", "signature"},
	"open-link":            {"link_id"},
	"link-request":         {"link_id", "identity_key", "mac"},
	"link-notice":          {"link_id", "identity_key", "mac", "device_id"},
	"answer-link":          {"link_id", "device_list"},
	"link-result":          {"device_id", "device_list"},
	"set-device-list":      {"device_list"},
	"read-sync":            {},
	"deleted-sync":         {},
	"conversation-message": {"account", "message_id"},
	"history":              {},
	"history-entry":        {"message_id", "peer", "outgoing", "text", "sent_at", "status"},
	"device-list-fetch":    {"account"},
	"device-list-result":   {"device_list"},
	"opened-sync":          {},
	// Chapter 16.
	"group-state":             {"version", "group_id", "group_version", "members", "author", "created_at", "name"},
	"group-member":            {"account", "role"},
	"signed-group-state":      {"state", "signature", "device_list"},
	"group-fetch":             {"group_id", "from"},
	"group-history":           {"states"},
	"sender-key-distribution": {"group_id", "epoch", "key_id", "iteration", "chain_key", "signing_key"},
	"group-message":           {"body", "signature"},
	"group-message-body":      {"version", "group_id", "group_version", "key_id", "iteration", "ciphertext"},
	"group-envelope": {"version", "message_id", "sender", "group_id", "group_version", "digest", "message", "priority",
		"ttl", "sent_at"},
	"group-devices":   {},
	"account-devices": {"account", "devices"},
	// Chapter 17.
	"blob-create":   {"size", "digest"},
	"blob-created":  {"blob_id", "held"},
	"blob-put":      {"blob_id", "offset", "bytes"},
	"blob-progress": {"held"},
	"blob-get":      {"blob_id", "offset", "length"},
	"blob-chunk":    {"size", "bytes"},
}

// fieldName returns the name of key k (1-based keys, or 0-based tuple items).
func fieldName(rule string, i int) (string, error) {
	names, ok := fieldNames[rule]
	if !ok || i < 0 || i >= len(names) {
		return "", fmt.Errorf("no name for field %d of %s", i, rule)
	}
	return names[i], nil
}

// recurseInto lists the places where the walker descends into a named map
// structure; elsewhere a named structure is covered by the cases of its own
// rule.
var recurseInto = map[string]bool{
	"envelope.5": true, "prekey-bundle.3": true, "prekey-bundle.4": true, "prekey-bundle.5": true,
	"prekey-upload.2": true, "prekey-upload.4": true,
}

// fullAccountSet lists the account fields that get every account case;
// others get three.
var fullAccountSet = map[string]bool{"address.0": true, "hello.2": true, "envelope.4": true}

// wireNeg is an invalid case.
type wireNeg struct {
	id, comment string
	flags, reqs []string
	rule        string
	enc         []byte
	want        *codeError
}

// step is one step from a node to a child: a map key or an array index.
type step struct {
	key   uint64
	idx   int
	isIdx bool
}

func find(n *node, loc []step) *node {
	for _, s := range loc {
		if s.isIdx {
			n = n.arr[s.idx]
		} else {
			n = n.get(s.key)
		}
	}
	return n
}

func withStep(loc []step, s step) []step { return append(append([]step{}, loc...), s) }

// walker derives the stage-3 cases of one rule from its valid cases.
type walker struct {
	w    *wireRules
	rule string
	base string // the valid case
	root *node
	out  []wireNeg
	seen map[string]bool
	err  error
}

func (k *walker) fail(err error) {
	if k.err == nil && err != nil {
		k.err = err
	}
}

func (k *walker) add(id, comment string, flags, reqs []string, want *codeError, root *node) {
	if k.seen[id] {
		return
	}
	k.seen[id] = true
	k.out = append(k.out, wireNeg{id: id, comment: comment + " (from " + k.base + ")", flags: flags,
		reqs: append([]string{"CBOR-004", "CBOR-005"}, reqs...), rule: k.rule, enc: root.encode(), want: want})
}

// edit returns a copy of the root with f applied to the node at loc.
func (k *walker) edit(loc []step, f func(n *node)) *node {
	c := k.root.clone()
	f(find(c, loc))
	return c
}

// replace returns a copy of the root with the node at loc replaced.
func (k *walker) replace(loc []step, v *node) *node {
	return k.edit(loc, func(n *node) { *n = *v.clone() })
}

func ruleID(rule string) string { return strings.ReplaceAll(rule, "-", "_") }

// walk visits the node at loc, of type t; prefix is the case id so far and
// where names it in comments; ctx is "rule.key" of the field that holds it.
func (k *walker) walk(loc []step, t *wtype, prefix, where, ctx string, depth int) {
	n := find(k.root, loc)
	if n == nil {
		return
	}
	size := []string{"size"}
	switch t.kind {
	case wMap:
		rule := t.name
		if depth == 0 && !t.versioned { // stage 2 for a versioned structure
			vals := arrNode(n.vals...)
			k.add(prefix+"_not_a_map", fmt.Sprintf("The %s as an array of its values instead of a map.", rule),
				[]string{"wrong_type"}, nil, errWrongType, vals)
		}
		var maxKey uint64
		for _, f := range t.fields {
			maxKey = f.key
		}
		k.add(prefix+"_unknown_field", fmt.Sprintf("%s with an extra key %d (0), which the structure does not define.",
			where, maxKey+1), []string{"unknown_field"}, []string{"CBOR-002"}, errUnknownField,
			k.edit(loc, func(m *node) { m.set(maxKey+1, uintNode(0)) }))
		if depth == 0 {
			k.add(prefix+"_text_key", fmt.Sprintf("%s with an extra text key \"x\" (a key that is not an unsigned "+
				"integer).", where), []string{"unknown_field"}, []string{"CBOR-002"}, errUnknownField,
				k.edit(loc, func(m *node) { m.keys = append(m.keys, tstrNode("x")); m.vals = append(m.vals, uintNode(0)) }))
		}
		for _, f := range t.fields {
			name, err := fieldName(rule, int(f.key)-1)
			if err != nil {
				k.fail(err)
				return
			}
			v := n.get(f.key)
			if v == nil {
				continue
			}
			fl := withStep(loc, step{key: f.key})
			fp, fw := prefix+"_"+name, fmt.Sprintf("%s field %d (%s)", where, f.key, name)
			if t.versioned && f.key == 1 {
				continue // stage 2
			}
			if !f.optional {
				k.add(fp+"_missing", fw+" is absent.", []string{"missing_field"}, nil, errMissingField,
					k.edit(loc, func(m *node) { m.del(f.key) }))
			}
			if wt := wrongTypeNode(v, f.typ); wt != nil {
				k.add(fp+"_wrong_type", fw+" is of another CBOR type: "+wt.what+".", []string{"wrong_type"}, nil,
					errWrongType, k.replace(fl, wt.n))
			}
			c := fmt.Sprintf("%s.%d", rule, f.key)
			if (f.typ.kind == wMap || f.typ.kind == wArray) && f.typ.name != "" && !recurseInto[c] {
				continue
			}
			k.walk(fl, f.typ, fp, fw, c, depth+1)
		}
	case wArray:
		if depth == 0 {
			m := mapNode()
			for i, e := range n.arr {
				m.set(uint64(i+1), e.clone())
			}
			k.add(prefix+"_not_an_array", fmt.Sprintf("The %s as a map {1: its first element, ...} instead of an array.",
				t.name), []string{"wrong_type"}, nil, errWrongType, m)
		}
		if t.maxCount >= 0 && (t.elem.name != "kem-prekey") {
			if es := k.fresh(t, ctx, prefix+"_too_many", t.maxCount+1); es != nil {
				k.add(prefix+"_too_many", fmt.Sprintf("%s has %d elements, one more than it allows.", where, t.maxCount+1),
					[]string{"count"}, nil, errTooMany, k.replace(loc, arrNode(es...)))
			}
		}
		if t.minCount == 1 {
			k.add(prefix+"_empty", where+" is an empty list ([+ ...] needs one element).", []string{"count"}, nil,
				errTooShort, k.replace(loc, arrNode()))
		}
		if t.sorted == sortDesc && len(n.arr) >= 2 {
			k.add(prefix+"_ascending", where+" in increasing order (lowest first), where it must be strictly decreasing.",
				[]string{"order"}, []string{"MSG-010"}, errValueOutOfRange, k.edit(loc, func(m *node) {
					for i, j := 0, len(m.arr)-1; i < j; i, j = i+1, j-1 {
						m.arr[i], m.arr[j] = m.arr[j], m.arr[i]
					}
				}))
		} else if t.sorted != sortNone && len(n.arr) >= 2 {
			k.add(prefix+"_unsorted", where+" with its first two elements swapped.", []string{"order"},
				[]string{"MSG-010"}, errValueOutOfRange, k.edit(loc, func(m *node) { m.arr[0], m.arr[1] = m.arr[1], m.arr[0] }))
		}
		if t.sorted != sortNone && len(n.arr) >= 1 {
			k.add(prefix+"_duplicate", where+" with its last element repeated.", []string{"order"},
				[]string{"MSG-010"}, errValueOutOfRange, k.edit(loc, func(m *node) { m.arr = append(m.arr, m.arr[len(m.arr)-1].clone()) }))
		}
		if len(n.arr) > 0 {
			if t.elem.kind == wMap && t.elem.name != "" && !recurseInto[ctx] {
				return
			}
			k.walk(withStep(loc, step{idx: 0, isIdx: true}), t.elem, prefix+"_item", where+", first element,", ctx, depth+1)
		}
	case wTuple:
		rule := t.name
		if depth == 0 {
			var parts []string
			m := mapNode()
			for i := range t.items {
				name, err := fieldName(rule, i)
				if err != nil {
					k.fail(err)
					return
				}
				parts = append(parts, fmt.Sprintf("%d: %s", i+1, strings.ReplaceAll(name, "_", " ")))
				m.set(uint64(i+1), n.arr[i].clone())
			}
			k.add(prefix+"_not_an_array", "The "+rule+" as a map {"+strings.Join(parts, ", ")+"}.", []string{"wrong_type"}, nil,
				errWrongType, m)
		}
		k.add(prefix+"_too_short", where+" without its last element.", []string{"count"}, nil, errTooShort,
			k.edit(loc, func(m *node) { m.arr = m.arr[:len(m.arr)-1] }))
		k.add(prefix+"_too_many", where+" with a third element (0).", []string{"count"}, nil, errTooMany,
			k.edit(loc, func(m *node) { m.arr = append(m.arr, uintNode(0)) }))
		for i, it := range t.items {
			name, err := fieldName(rule, i)
			if err != nil {
				k.fail(err)
				return
			}
			il := withStep(loc, step{idx: i, isIdx: true})
			if wt := wrongTypeNode(n.arr[i], it); wt != nil {
				k.add(prefix+"_"+name+"_wrong_type", fmt.Sprintf("%s element %d (%s) is %s.", where, i, name, wt.what),
					[]string{"wrong_type"}, nil, errWrongType, k.replace(il, wt.n))
			}
			k.walk(il, it, prefix+"_"+name, fmt.Sprintf("%s element %d (%s)", where, i, name), fmt.Sprintf("%s.%d", rule, i), depth+1)
		}
	case wUint:
		reqs := []string{}
		if t.name == "device-id" {
			reqs = append(reqs, "MSG-001")
		}
		if strings.HasPrefix(ctx, "ratchet-header.") {
			reqs = append(reqs, "RAT-014")
		}
		switch {
		case ctx == "error-body.1":
			probes, err := unregisteredProbes()
			if err != nil {
				k.fail(err)
				return
			}
			for _, c := range probes {
				k.add(fmt.Sprintf("%s_unregistered_%d", prefix, c), fmt.Sprintf("%s is %d, which is not a registered "+
					"code.", where, c), []string{"range"}, []string{"MSG-016"}, errValueOutOfRange, k.replace(loc, uintNode(c)))
			}
		case t.enum != nil:
			k.add(prefix+"_undefined", fmt.Sprintf("%s is %d, one above the largest defined value.", where, t.max+1),
				[]string{"range"}, reqs, errValueOutOfRange, k.replace(loc, uintNode(t.max+1)))
			if _, ok := t.enum[0]; !ok {
				k.add(prefix+"_undefined_zero", where+" is 0, which is not defined.", []string{"range"}, reqs,
					errValueOutOfRange, k.replace(loc, uintNode(0)))
			}
		default:
			if t.max < ^uint64(0) {
				k.add(prefix+"_above_range", fmt.Sprintf("%s is %d, one above its largest value.", where, t.max+1),
					[]string{"range"}, reqs, errValueOutOfRange, k.replace(loc, uintNode(t.max+1)))
			}
			if t.min > 0 {
				id := prefix + "_below_range"
				if t.min == 1 {
					id = prefix + "_zero"
				}
				k.add(id, fmt.Sprintf("%s is %d, one below its smallest value.", where, t.min-1), []string{"range"}, reqs,
					errValueOutOfRange, k.replace(loc, uintNode(t.min-1)))
			}
		}
	case wBstr, wTstr:
		big := depth > 1 && t.maxLen > 4096
		if t.maxLen >= 0 && !big {
			k.add(prefix+"_too_long", fmt.Sprintf("%s is %d bytes, one more than it allows.", where, t.maxLen+1),
				size, nil, errTooLong, k.replace(loc, resized(n, t.maxLen+1)))
		}
		if t.minLen > 0 {
			k.add(prefix+"_too_short", fmt.Sprintf("%s is %d bytes, one less than it needs.", where, t.minLen-1),
				size, nil, errTooShort, k.replace(loc, resized(n, t.minLen-1)))
		}
		if t.pattern != nil {
			for _, a := range badAccounts {
				if !fullAccountSet[ctx] && !a.always {
					continue
				}
				if t.pattern.MatchString(a.value) {
					k.fail(fmt.Errorf("account %q matches the pattern", a.value))
				}
				k.add(prefix+"_"+a.name, fmt.Sprintf("%s is %s: %s.", where, strconv.Quote(a.value), a.why),
					[]string{"account"}, []string{"MSG-001"}, errValueOutOfRange, k.replace(loc, tstrNode(a.value)))
			}
		}
	case wBool:
		if t.constBool != nil {
			reqs := []string{}
			if strings.HasPrefix(prefix, "prekey_upload_") {
				reqs = append(reqs, "MSG-007") // the flags of an upload's KEM prekeys
			}
			k.add(fmt.Sprintf("%s_%v", prefix, !*t.constBool), fmt.Sprintf("%s is %v; it must be %v.", where,
				!*t.constBool, *t.constBool), []string{"range"}, reqs, errValueOutOfRange, k.replace(loc, boolNode(!*t.constBool)))
		}
	}
}

// badAccounts are account names that do not match the pattern of section
// 11.2 (MSG-001).
var badAccounts = []struct {
	name, value, why string
	always           bool
}{
	{"uppercase", "Alice", "an uppercase letter", true},
	{"empty", "", "empty", true},
	{"33_characters", "abcdefghijklmnopqrstuvwxyz0123456", "33 characters, one more than the pattern allows", true},
	{"leading_hyphen", "-alice", "it starts with '-'", false},
	{"leading_dot", ".alice", "it starts with '.'", false},
	{"leading_underscore", "_alice", "it starts with '_'", false},
	{"space", "alice smith", "a space", false},
	{"non_ascii", "alicé", "a non-ASCII letter (valid UTF-8)", false},
	{"trailing_newline", "alice\n", "a trailing newline (a pattern matched with a line anchor would accept it)", false},
}

// resized returns a string node of length l: the node's bytes cut, or
// extended with copies of its bytes (or 'a' for an empty text).
func resized(n *node, l int) *node {
	b := cloneBytes(n.bstr)
	c := n.clone()
	if n.major == 3 {
		// A text stays valid UTF-8: cut at a character boundary, then
		// extend with 'a'.
		for len(b) > l || (len(b) > 0 && !utf8.Valid(b)) {
			b = b[:len(b)-1]
		}
		for len(b) < l {
			b = append(b, 'a')
		}
		c.bstr = b
		return c
	}
	for len(b) < l {
		if len(n.bstr) == 0 {
			b = append(b, 0)
		} else {
			b = append(b, n.bstr...)
		}
	}
	c.bstr = b[:l]
	return c
}

type wrongType struct {
	n    *node
	what string
}

// wrongTypeNode returns the value of another CBOR type that a confused
// encoder would put in place of v.
func wrongTypeNode(v *node, t *wtype) *wrongType {
	switch t.kind {
	case wUint:
		return &wrongType{tstrNode(strconv.FormatUint(v.val, 10)), "the text string of its decimal digits"}
	case wBstr:
		if t.cbor != "" {
			return &wrongType{rawNode(v.bstr), "the embedded " + t.cbor + " itself rather than the byte string of its encoding"}
		}
		return &wrongType{tstrNode(hex.EncodeToString(v.bstr)), "the text string of its hexadecimal digits"}
	case wTstr:
		return &wrongType{bstrNode(v.bstr), "a byte string of the same bytes"}
	case wBool:
		x := uint64(0)
		if v.b {
			x = 1
		}
		return &wrongType{uintNode(x), fmt.Sprintf("the unsigned integer %d", x)}
	case wArray:
		if len(v.arr) == 0 {
			return &wrongType{uintNode(0), "the unsigned integer 0"}
		}
		return &wrongType{v.arr[0].clone(), "its first element, not in a list"}
	case wTuple:
		switch {
		case v.arr[1].major == 2:
			return &wrongType{tstrNode(fmt.Sprintf("%s/%x", v.arr[0].bstr, v.arr[1].bstr)), "a text string \"account/message id\""}
		case v.arr[1].major == 4:
			var ds []string
			for _, d := range v.arr[1].arr {
				ds = append(ds, strconv.FormatUint(d.val, 10))
			}
			return &wrongType{tstrNode(fmt.Sprintf("%s/%s", v.arr[0].bstr, strings.Join(ds, ","))),
				"a text string \"account/device,device\""}
		case t.name == "group-member":
			return &wrongType{tstrNode(fmt.Sprintf("%s/%d", v.arr[0].bstr, v.arr[1].val)), "a text string \"account/role\""}
		}
		return &wrongType{tstrNode(fmt.Sprintf("%s/%d", v.arr[0].bstr, v.arr[1].val)), "a text string \"account/device\""}
	case wMap:
		return &wrongType{arrNode(v.vals...), "an array of its values"}
	}
	return nil
}

// fresh returns n new elements for the list at ctx, in the order the list
// requires.
func (k *walker) fresh(t *wtype, ctx, id string, n int) []*node {
	v := newVB("Missive v1 test vectors: wire: " + id)
	var out []*node
	for i := 0; i < n; i++ {
		switch {
		case t.elem.kind == wUint && t.sorted == sortDesc:
			out = append(out, uintNode(uint64(n-i))) // highest first (hello)
		case t.elem.kind == wUint:
			out = append(out, uintNode(uint64(1000+i)))
		case t.elem.kind == wTstr:
			out = append(out, tstrNode(fmt.Sprintf("user%04d", i)))
		case t.elem.kind == wBstr && t.elem.cbor == "":
			if i == 0 {
				for _, id := range v.sortedIDs(n) {
					out = append(out, nodeOfCval(id))
				}
			}
		case t.elem.name == "one-time-prekey":
			out = append(out, nodeOfCval(v.oneTimePrekey(uint32(1+i))))
		case t.elem.name == "device-message":
			out = append(out, nodeOfCval(v.deviceMessage(uint32(1+i), kindRatchet, []byte("hi"))))
		case t.elem.name == "listed-device":
			_, ik := v.x25519Key()
			out = append(out, nodeOfCval(cMap{{1, cUint(uint64(1 + i))}, {2, cBytes(ik)}}))
		case t.elem.name == "conversation-message":
			out = append(out, nodeOfCval(cArray{cText(fmt.Sprintf("user%04d", i)), cBytes(v.messageID())}))
		case t.elem.name == "history-entry":
			out = append(out, nodeOfCval(v.historyEntry(fmt.Sprintf("user%04d", i%3), i%2 == 0, fmt.Sprintf("message %d", i),
				uint64(wireT0+60_000*i), uint64(1+i%4))))
		case t.elem.name == "group-member":
			out = append(out, nodeOfCval(cArray{cText(fmt.Sprintf("user%04d", i)), cUint(uint64(i % 2))}))
		case t.elem.name == "account-devices":
			out = append(out, nodeOfCval(groupDevicesList(fmt.Sprintf("user%04d", i), []uint32{1, 2})[0]))
		case t.elem.kind == wBstr && t.elem.cbor == "signed-group-state":
			if i == 0 {
				gid := v.read(16)
				devs := v.deviceKeys(1)
				list := v.signedDeviceList(devs[0].priv, encodeCBOR(deviceList("alice", 1, devs, wireT0)))
				for j := 1; j <= n; j++ {
					st := groupState{groupID: gid, version: uint64(j), members: []gMember{{"alice", true}},
						author: rcAddr{"alice", 1}, createdAt: uint64(wireT0 + 60_000*j)}.encode()
					out = append(out, bstrNode(signedGroupState(st, v.sign(devs[0].priv, groupStateMessage(st)), list)))
				}
			}
		case t.elem.name == "device-bundle":
			out = append(out, nodeOfCval(cMap{{1, cUint(uint64(1 + i))}, {2, cBytes(v.bundle(uint32(1+i), uint32(1+i), true, false, 0))}}))
		default:
			k.fail(fmt.Errorf("%s: no way to make new elements", ctx))
			return nil
		}
	}
	k.fail(v.err)
	return out
}

// ---- Stage 1 and stage 2 (section 10.2), applied to frame and envelope ----

// formPlaces locates, in a base, the items that stage-1 cases change.
type formPlaces struct {
	version []step // the version (an unsigned integer)
	uint    []step // another unsigned integer
	bstr    []step // a byte string
	tstr    []step // a text string, or nil
	arr     []step // an array, or nil
	ts      []step // a timestamp, or nil
}

func hx(s string) []byte { return mustHex(strings.ReplaceAll(s, " ", "")) }

// offsetOf returns the offset of the node at loc in the encoding of root.
func offsetOf(root *node, loc []step) int {
	c := root.clone()
	marker := []byte("\x00MARKER-OFFSET-OF\x00")
	n := find(c, loc)
	n.hooks.over = marker
	return bytes.Index(c.encode(), marker)
}

// stage1Cases returns the stage-1 cases of one base.
func stage1Cases(rule, prefix, baseID string, root *node, p formPlaces) ([]wireNeg, error) {
	var out []wireNeg
	enc := root.encode()
	add := func(id, comment string, flags []string, want *codeError, in []byte) {
		out = append(out, wireNeg{id: prefix + "_" + id, comment: comment + " (from " + baseID + ")",
			flags: append([]string{"cbor_form"}, flags...), reqs: []string{"CBOR-004", "CBOR-005"}, rule: rule, enc: in, want: want})
	}
	rep := func(loc []step, raw []byte) []byte {
		c := root.clone()
		find(c, loc).hooks.over = raw
		return c.encode()
	}
	head := func(loc []step, h []byte) []byte {
		c := root.clone()
		find(c, loc).hooks.head = h
		return c.encode()
	}
	bn := find(root, p.bstr)
	// Truncation.
	add("empty_input", "The empty input.", nil, errTruncated, []byte{})
	add("truncated_last_byte", "The encoding without its last byte.", nil, errTruncated, enc[:len(enc)-1])
	off := offsetOf(root, p.bstr)
	add("truncated_in_argument", "The encoding cut after the initial byte of a byte string whose length takes "+
		"argument bytes.", nil, errTruncated, enc[:off+1])
	add("truncated_in_string", "The encoding cut in the middle of a byte string.", nil, errTruncated,
		enc[:off+len(appendHead(nil, 2, uint64(len(bn.bstr))))+len(bn.bstr)/2])
	// Reserved additional information, break, indefinite lengths.
	add("reserved_28", "The version's initial byte has additional information 28 (0x1c).", nil, errMalformed, rep(p.version, hx("1c")))
	add("reserved_29", "A byte string's initial byte has additional information 29 (0x5d).", nil, errMalformed, rep(p.bstr, hx("5d")))
	add("reserved_30", "The top-level map's initial byte has additional information 30 (0xbe).", nil, errMalformed, head(nil, hx("be")))
	add("break_as_value", "A value is the break code 0xff, outside any indefinite-length item.", nil, errMalformed, rep(p.uint, hx("ff")))
	add("break_as_key", "The first key is the break code 0xff.", nil, errMalformed,
		func() []byte { c := root.clone(); c.keys[0].hooks.over = hx("ff"); return c.encode() }())
	add("uint_indefinite", "An unsigned integer with additional information 31 (0x1f), which is no item at all.",
		nil, errMalformed, rep(p.uint, hx("1f")))
	chunked := append(append([]byte{0x5f}, appendHead(nil, 2, uint64(len(bn.bstr)))...), bn.bstr...)
	add("indefinite_bstr", "A byte string in indefinite-length form (0x5f, one chunk, 0xff).", []string{"indefinite"},
		errIndefiniteLength, rep(p.bstr, append(chunked, 0xff)))
	if p.tstr != nil {
		tn := find(root, p.tstr)
		ch := append(append([]byte{0x7f}, appendHead(nil, 3, uint64(len(tn.bstr)))...), tn.bstr...)
		add("indefinite_tstr", "A text string in indefinite-length form (0x7f, one chunk, 0xff).", []string{"indefinite"},
			errIndefiniteLength, rep(p.tstr, append(ch, 0xff)))
	} else {
		add("indefinite_tstr", "An unsigned integer replaced by the indefinite-length text string \"1\" (0x7f 0x61 "+
			"0x31 0xff): stage 1 fails before the type is checked.", []string{"indefinite"}, errIndefiniteLength, rep(p.uint, hx("7f 61 31 ff")))
	}
	if p.arr != nil {
		an := find(root, p.arr)
		c := root.clone()
		a := find(c, p.arr)
		a.hooks.head, a.hooks.tail = hx("9f"), hx("ff")
		_ = an
		add("indefinite_array", "An array in indefinite-length form (0x9f ... 0xff).", []string{"indefinite"}, errIndefiniteLength, c.encode())
	} else {
		add("indefinite_array", "An unsigned integer replaced by the indefinite-length array [1] (0x9f 0x01 0xff).",
			[]string{"indefinite"}, errIndefiniteLength, rep(p.uint, hx("9f 01 ff")))
	}
	{
		c := root.clone()
		c.hooks.head, c.hooks.tail = hx("bf"), hx("ff")
		add("indefinite_map", "The top-level map in indefinite-length form (0xbf ... 0xff).", []string{"indefinite"}, errIndefiniteLength, c.encode())
	}
	// Tags.
	add("tag_encoded_cbor", "A byte string wrapped in tag 24 (encoded CBOR data item).", nil, errTag,
		rep(p.bstr, append(hx("d8 18"), bn.encode()...)))
	add("tag_self_described", "The whole item wrapped in tag 55799 (self-described CBOR, 0xd9d9f7).", nil, errTag,
		append(hx("d9 d9 f7"), enc...))
	if p.ts != nil {
		tsn := find(root, p.ts)
		add("tag_epoch_time", "A timestamp wrapped in tag 1 (epoch-based date/time).", nil, errTag,
			rep(p.ts, append(hx("c1"), tsn.encode()...)))
		f := float64(tsn.val)
		fb := make([]byte, 9)
		fb[0] = 0xfb
		bits := math.Float64bits(f)
		for i := 0; i < 8; i++ {
			fb[1+i] = byte(bits >> (56 - 8*i))
		}
		add("float64_timestamp", "A timestamp encoded as a float64 of the same value, as a JavaScript encoder may do.", []string{"float"}, errFloat, rep(p.ts, fb))
	}
	// Floats, negative integers, simple values.
	add("float16_version", "The version as the float16 1.0 (0xf9 0x3c00).", []string{"float"}, errFloat, rep(p.version, hx("f9 3c 00")))
	add("float32_version", "The version as the float32 1.0 (0xfa 0x3f800000).", []string{"float"}, errFloat, rep(p.version, hx("fa 3f 80 00 00")))
	add("float64_version", "The version as the float64 1.0 (0xfb 0x3ff0000000000000).", []string{"float"}, errFloat,
		rep(p.version, hx("fb 3f f0 00 00 00 00 00 00")))
	add("negative_integer", "An unsigned integer replaced by -1 (0x20).", nil, errWrongType, rep(p.uint, hx("20")))
	add("null", "An unsigned integer replaced by null (0xf6).", nil, errWrongType, rep(p.uint, hx("f6")))
	add("undefined", "An unsigned integer replaced by undefined (0xf7).", nil, errWrongType, rep(p.uint, hx("f7")))
	add("simple_0", "An unsigned integer replaced by simple(0) (0xe0).", nil, errWrongType, rep(p.uint, hx("e0")))
	add("simple_32", "An unsigned integer replaced by simple(32) (0xf8 0x20).", nil, errWrongType, rep(p.uint, hx("f8 20")))
	// Non-shortest forms.
	add("non_shortest_1_byte", "The version 1 as 0x18 0x01.", []string{"non_shortest"}, errNonShortest, rep(p.version, hx("18 01")))
	add("non_shortest_2_bytes", "The version 1 as 0x19 0x0001.", []string{"non_shortest"}, errNonShortest, rep(p.version, hx("19 00 01")))
	add("non_shortest_4_bytes", "The version 1 as 0x1a 0x00000001.", []string{"non_shortest"}, errNonShortest,
		rep(p.version, hx("1a 00 00 00 01")))
	add("non_shortest_8_bytes", "The version 1 as 0x1b 0x0000000000000001.", []string{"non_shortest"}, errNonShortest,
		rep(p.version, hx("1b 00 00 00 00 00 00 00 01")))
	un := find(root, p.uint)
	wide := []byte{0x1b, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 8; i++ {
		wide[1+i] = byte(un.val >> (56 - 8*i))
	}
	add("non_shortest_8_bytes_value", fmt.Sprintf("The unsigned integer %d in the 8-byte form.", un.val), []string{"non_shortest"},
		errNonShortest, rep(p.uint, wide))
	add("non_shortest_key", "The first map key 1 as 0x18 0x01.", []string{"non_shortest"}, errNonShortest,
		func() []byte { c := root.clone(); c.keys[0].hooks.over = hx("18 01"); return c.encode() }())
	{
		l := uint64(len(bn.bstr))
		h := []byte{0x59, byte(l >> 8), byte(l)}
		if l >= 256 {
			h = []byte{0x5a, 0, 0, byte(l >> 8), byte(l)}
		}
		add("non_shortest_length", fmt.Sprintf("A byte string's length %d in a longer form than needed.", l), []string{"non_shortest"},
			errNonShortest, head(p.bstr, h))
	}
	add("non_shortest_count", "The top-level map's count in the 1-byte form (0xb8).", []string{"non_shortest"}, errNonShortest,
		head(nil, []byte{0xb8, byte(len(root.keys))}))
	// UTF-8.
	if p.tstr != nil {
		for _, u := range []struct{ name, b, what string }{
			{"lone_continuation", "62 80 62", "a lone continuation byte"},
			{"overlong", "c0 af", "an overlong encoding of '/'"},
			{"surrogate", "ed a0 80", "an encoded UTF-16 surrogate (U+D800)"},
			{"truncated_sequence", "62 6f c3", "a two-byte sequence cut after its first byte"},
			{"above_max", "f4 90 80 80", "a code point above U+10FFFF"},
		} {
			s := hx(u.b)
			add("invalid_utf8_"+u.name, "A text string with "+u.what+".", []string{"utf8"}, errInvalidUTF8,
				rep(p.tstr, append(appendHead(nil, 3, uint64(len(s))), s...)))
		}
	} else {
		add("invalid_utf8", "An unsigned integer replaced by a text string with an invalid byte (0x62 0xff): "+
			"stage 1 fails before the type is checked.", []string{"utf8"}, errInvalidUTF8, rep(p.uint, hx("62 62 ff")))
	}
	// Depth: the top-level map is at depth 1.
	nest := func(n int, inner []byte) []byte {
		return append(bytes.Repeat([]byte{0x81}, n), inner...)
	}
	place := p.uint
	if p.arr != nil {
		place = p.arr
	}
	add("too_deep", "A value at depth 2 replaced by 8 nested arrays: the innermost is at depth 9, beyond CBOR_MAX_DEPTH (8).",
		[]string{"depth"}, errTooDeep, rep(place, nest(7, hx("80"))))
	add("too_deep_maps", "A value at depth 2 replaced by 8 nested maps {1: {1: ...}}: the innermost is at depth 9.",
		[]string{"depth"}, errTooDeep, rep(place, append(bytes.Repeat(hx("a1 01"), 7), 0xa0)))
	add("deepest_allowed", "A value at depth 2 replaced by 7 nested arrays (depth 8, the limit): stage 1 passes and "+
		"stage 3 finds a value of the wrong type.", []string{"depth"}, errWrongType, rep(place, nest(6, hx("80"))))
	// Keys.
	{
		c := root.clone()
		c.keys = append(c.keys[:2:2], append([]*node{c.keys[1].clone()}, c.keys[2:]...)...)
		c.vals = append(c.vals[:2:2], append([]*node{c.vals[1].clone()}, c.vals[2:]...)...)
		add("duplicate_key", "Key 2 and its value appear twice in a row.", []string{"map_keys"}, errDuplicateKey, c.encode())
	}
	{
		c := root.clone()
		c.keys[0], c.keys[1] = c.keys[1], c.keys[0]
		c.vals[0], c.vals[1] = c.vals[1], c.vals[0]
		add("unsorted_keys", "Keys 1 and 2 in the order 2, 1.", []string{"map_keys"}, errUnsortedMap, c.encode())
	}
	// Trailing bytes.
	add("trailing_zero", "The encoding followed by one zero byte.", nil, errTrailingBytes, append(cloneBytes(enc), 0))
	add("trailing_item", "The encoding followed by a second copy of itself.", nil, errTrailingBytes, append(cloneBytes(enc), enc...))
	return out, nil
}

// stage2Cases returns the version cases of one versioned base.
func stage2Cases(rule, prefix, baseID string, root *node, full bool) []wireNeg {
	var out []wireNeg
	add := func(id, comment string, want *codeError, n *node) {
		out = append(out, wireNeg{id: prefix + "_" + id, comment: comment + " (from " + baseID + ")", flags: []string{"version"},
			reqs: []string{"CBOR-004", "VER-002"}, rule: rule, enc: n.encode(), want: want})
	}
	set := func(f func(c *node)) *node { c := root.clone(); f(c); return c }
	add("version_2", "Version 2, which this protocol version does not implement.", errUnsupportedVersion,
		set(func(c *node) { c.set(1, uintNode(2)) }))
	add("not_a_map", "The top-level item is an array of the map's values.", errWrongType, arrNode(root.vals...))
	if !full {
		return out
	}
	add("wrapped_in_bstr", "The top-level item is a byte string holding the encoding.", errWrongType, bstrNode(root.encode()))
	add("version_missing", "Key 1 (the version) is absent; the other fields are valid.", errMissingField,
		set(func(c *node) { c.del(1) }))
	add("version_text", "The version is the text string \"1\".", errWrongType, set(func(c *node) { c.set(1, tstrNode("1")) }))
	add("version_bool", "The version is true.", errWrongType, set(func(c *node) { c.set(1, boolNode(true)) }))
	add("version_0", "Version 0.", errUnsupportedVersion, set(func(c *node) { c.set(1, uintNode(0)) }))
	add("version_largest", "Version 2^64 - 1.", errUnsupportedVersion, set(func(c *node) { c.set(1, uintNode(^uint64(0))) }))
	add("version_2_unknown_field", "Version 2 with a key the version 1 structure does not define: the version is "+
		"reported, not the field (VER-002).", errUnsupportedVersion, set(func(c *node) {
		c.set(1, uintNode(2))
		c.set(99, tstrNode("a field of version 2"))
	}))
	add("version_2_missing_field", "Version 2 without key 2, which version 1 requires: the version is reported.",
		errUnsupportedVersion, set(func(c *node) { c.set(1, uintNode(2)); c.del(2) }))
	add("version_2_wrong_type", "Version 2 whose key 2 is a map: the version is reported.",
		errUnsupportedVersion, set(func(c *node) { c.set(1, uintNode(2)); c.set(2, mapNode()) }))
	return out
}

// unregisteredProbes returns the unregistered error codes that the cases of
// MSG-016 use: 0, the first code of the first layer, one above the highest
// registered code of each layer, and one above the last layer.
func unregisteredProbes() ([]uint64, error) {
	b, err := spec.FS.ReadFile("errors.json")
	if err != nil {
		return nil, err
	}
	var reg struct {
		Layers []struct {
			First, Last uint64
		} `json:"layers"`
		Codes []struct {
			Code uint64 `json:"code"`
		} `json:"codes"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		return nil, err
	}
	if len(reg.Layers) == 0 {
		return nil, fmt.Errorf("errors.json has no layer")
	}
	registered := map[uint64]bool{}
	for _, c := range reg.Codes {
		registered[c.Code] = true
	}
	out := []uint64{0, reg.Layers[0].First}
	for _, l := range reg.Layers {
		top := l.First
		for c := range registered {
			if c >= l.First && c <= l.Last && c > top {
				top = c
			}
		}
		out = append(out, top+1)
	}
	out = append(out, reg.Layers[len(reg.Layers)-1].Last+1)
	for i, c := range out {
		if registered[c] || (i > 0 && c <= out[i-1]) {
			return nil, fmt.Errorf("unregistered probe %d is registered or out of order", c)
		}
	}
	return out, nil
}
