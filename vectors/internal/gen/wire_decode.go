package gen

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// This file decodes an encoding as a rule of the wire CDDL: the size check of
// MSG-011, then stages 1 to 3 of section 10.2, with the types of
// wire_cddl.go. A field of type bstr .cbor R is checked as a byte string only
// (section 10.2: its bytes are decoded afterwards, as a top-level item of
// their own, when the processing rules say so), and so is the body of a
// frame (section 11.3).

// decodeWire decodes in as rule.
func (w *wireRules) decodeWire(rule string, in []byte) (*item, error) {
	t, ok := w.types[rule]
	if !ok {
		return nil, fmt.Errorf("no rule %s", rule)
	}
	if t.maxEncoding > 0 && len(in) > t.maxEncoding {
		return nil, errTooLong
	}
	it, err := decodeCBOR(in)
	if err != nil {
		return nil, err
	}
	if t.versioned {
		if err := checkVersion(it, uint64(pqxVersion)); err != nil {
			return nil, err
		}
	}
	if err := pass3a(it, t); err != nil {
		return nil, err
	}
	if err := pass3b(it, t); err != nil {
		return nil, err
	}
	return it, pass3c(it, t)
}

var kindMajor = map[wkind]byte{wUint: 0, wBstr: 2, wTstr: 3, wBool: 7, wArray: 4, wTuple: 4, wMap: 5}

// pass3a: keys the structure does not define, values of another CBOR type.
func pass3a(it *item, t *wtype) error {
	if it.major != kindMajor[t.kind] {
		return errWrongType
	}
	switch t.kind {
	case wArray:
		for _, e := range it.arr {
			if err := pass3a(e, t.elem); err != nil {
				return err
			}
		}
	case wTuple:
		for i, e := range it.arr {
			if i < len(t.items) {
				if err := pass3a(e, t.items[i]); err != nil {
					return err
				}
			}
		}
	case wMap:
		for i, k := range it.keys {
			if k.major != 0 {
				return errUnknownField
			}
			f := t.field(k.val)
			if f == nil {
				return errUnknownField
			}
			if err := pass3a(it.vals[i], f.typ); err != nil {
				return err
			}
		}
	}
	return nil
}

// pass3b: required keys that are absent, then the rule's own checks.
func pass3b(it *item, t *wtype) error {
	switch t.kind {
	case wArray:
		for _, e := range it.arr {
			if err := pass3b(e, t.elem); err != nil {
				return err
			}
		}
	case wTuple:
		for i, e := range it.arr {
			if i < len(t.items) {
				if err := pass3b(e, t.items[i]); err != nil {
					return err
				}
			}
		}
	case wMap:
		for _, f := range t.fields {
			v := it.get(f.key)
			switch {
			case v == nil && !f.optional:
				return errMissingField
			case v != nil:
				if err := pass3b(v, f.typ); err != nil {
					return err
				}
			}
		}
		if t.check3b != nil {
			return t.check3b(it)
		}
	}
	return nil
}

// pass3c: sizes, counts, ranges, patterns and orders, in input order.
func pass3c(it *item, t *wtype) error {
	switch t.kind {
	case wUint:
		if t.enum != nil {
			if _, ok := t.enum[it.val]; !ok {
				return errValueOutOfRange
			}
		} else if it.val < t.min || it.val > t.max {
			return errValueOutOfRange
		}
	case wBstr, wTstr:
		if t.maxLen >= 0 && len(it.bstr) > t.maxLen {
			return errTooLong
		}
		if len(it.bstr) < t.minLen {
			return errTooShort
		}
		if t.pattern != nil && !t.pattern.Match(it.bstr) {
			return errValueOutOfRange
		}
	case wBool:
		if t.constBool != nil && it.b != *t.constBool {
			return errValueOutOfRange
		}
	case wArray:
		if t.maxCount >= 0 && len(it.arr) > t.maxCount {
			return errTooMany
		}
		if len(it.arr) < t.minCount {
			return errTooShort
		}
		for i, e := range it.arr {
			if err := pass3c(e, t.elem); err != nil {
				return err
			}
			if i > 0 && t.sorted != sortNone && !inOrder(it.arr[i-1], e, t.sorted) {
				return errValueOutOfRange
			}
		}
	case wTuple:
		if len(it.arr) > len(t.items) {
			return errTooMany
		}
		if len(it.arr) < len(t.items) {
			return errTooShort
		}
		for i, e := range it.arr {
			if err := pass3c(e, t.items[i]); err != nil {
				return err
			}
		}
	case wMap:
		for i, k := range it.keys {
			if err := pass3c(it.vals[i], t.field(k.val).typ); err != nil {
				return err
			}
		}
	}
	return nil
}

// inOrder reports whether b strictly follows a (MSG-010): strictly
// increasing, or strictly decreasing for sortDesc.
func inOrder(a, b *item, s sortKind) bool {
	switch s {
	case sortField1:
		a, b = a.get(1), b.get(1)
	case sortItem0:
		a, b = a.arr[0], b.arr[0]
	case sortDesc:
		return a.val > b.val
	}
	if a.major == 0 {
		return a.val < b.val
	}
	return bytes.Compare(a.bstr, b.bstr) < 0
}

// Encoding hooks of an item, for building inputs that break the profile.
// They are kept apart from item so that the decoder's items stay plain.
type itemHooks struct {
	over []byte // the whole encoding of the item
	head []byte // the initial byte and argument
	tail []byte // bytes after the item's contents
}

// node is an item being edited: the item, its hooks, and its children as
// nodes.
type node struct {
	major byte
	val   uint64
	bstr  []byte
	b     bool
	arr   []*node
	keys  []*node
	vals  []*node
	hooks itemHooks
}

func toNode(it *item) *node {
	n := &node{major: it.major, val: it.val, bstr: cloneBytes(it.bstr), b: it.b}
	for _, e := range it.arr {
		n.arr = append(n.arr, toNode(e))
	}
	for i := range it.keys {
		n.keys = append(n.keys, toNode(it.keys[i]))
		n.vals = append(n.vals, toNode(it.vals[i]))
	}
	if n.arr == nil && it.major == 4 {
		n.arr = []*node{}
	}
	return n
}

func (n *node) clone() *node {
	c := *n
	c.bstr = cloneBytes(n.bstr)
	c.arr, c.keys, c.vals = nil, nil, nil
	for _, e := range n.arr {
		c.arr = append(c.arr, e.clone())
	}
	for i := range n.keys {
		c.keys = append(c.keys, n.keys[i].clone())
		c.vals = append(c.vals, n.vals[i].clone())
	}
	return &c
}

// encode writes the node: arguments in shortest form unless a hook says
// otherwise, map entries in the node's order.
func (n *node) encode() []byte { return n.appendTo(nil) }

func (n *node) appendTo(b []byte) []byte {
	if n.hooks.over != nil {
		return append(b, n.hooks.over...)
	}
	head := func(arg uint64) {
		if n.hooks.head != nil {
			b = append(b, n.hooks.head...)
		} else {
			b = appendHead(b, n.major, arg)
		}
	}
	switch n.major {
	case 0:
		head(n.val)
	case 2, 3:
		head(uint64(len(n.bstr)))
		b = append(b, n.bstr...)
	case 4:
		head(uint64(len(n.arr)))
		for _, e := range n.arr {
			b = e.appendTo(b)
		}
	case 5:
		head(uint64(len(n.keys)))
		for i := range n.keys {
			b = n.keys[i].appendTo(b)
			b = n.vals[i].appendTo(b)
		}
	case 7:
		if n.b {
			b = append(b, 0xf5)
		} else {
			b = append(b, 0xf4)
		}
	}
	return append(b, n.hooks.tail...)
}

// get returns the value of uint key k of a map node, or nil.
func (n *node) get(k uint64) *node {
	for i, key := range n.keys {
		if key.major == 0 && key.val == k {
			return n.vals[i]
		}
	}
	return nil
}

// set replaces or inserts uint key k, keeping uint keys in increasing order.
func (n *node) set(k uint64, v *node) {
	for i, key := range n.keys {
		if key.major == 0 && key.val == k {
			n.vals[i] = v
			return
		}
	}
	i := 0
	for i < len(n.keys) && n.keys[i].major == 0 && n.keys[i].val < k {
		i++
	}
	n.keys = append(n.keys[:i], append([]*node{uintNode(k)}, n.keys[i:]...)...)
	n.vals = append(n.vals[:i], append([]*node{v}, n.vals[i:]...)...)
}

// del removes uint key k.
func (n *node) del(k uint64) {
	for i, key := range n.keys {
		if key.major == 0 && key.val == k {
			n.keys = append(n.keys[:i:i], n.keys[i+1:]...)
			n.vals = append(n.vals[:i:i], n.vals[i+1:]...)
			return
		}
	}
}

func uintNode(v uint64) *node   { return &node{major: 0, val: v} }
func bstrNode(b []byte) *node   { return &node{major: 2, bstr: cloneBytes(b)} }
func tstrNode(s string) *node   { return &node{major: 3, bstr: []byte(s)} }
func boolNode(v bool) *node     { return &node{major: 7, b: v} }
func rawNode(b []byte) *node    { return &node{hooks: itemHooks{over: cloneBytes(b)}} }
func arrNode(es ...*node) *node { return &node{major: 4, arr: append([]*node{}, es...)} }
func mapNode() *node            { return &node{major: 5} }
func nodeOf(enc []byte) *node   { it, _ := decodeCBOR(enc); return toNode(it) }
func nodeOfCval(v cval) *node   { return nodeOf(encodeCBOR(v)) }

// diagnostic returns the item in the diagnostic notation of RFC 8949
// section 8: unsigned integers in decimal, byte strings as h'..', text
// strings in double quotes with JSON escapes, arrays as [a, b], maps as
// {k: v, k: v}, and false and true.
func diagnostic(it *item) string {
	var b strings.Builder
	writeDiag(&b, it)
	return b.String()
}

func writeDiag(b *strings.Builder, it *item) {
	switch it.major {
	case 0:
		b.WriteString(strconv.FormatUint(it.val, 10))
	case 2:
		b.WriteString("h'")
		b.WriteString(hex.EncodeToString(it.bstr))
		b.WriteString("'")
	case 3:
		s, _ := marshalNoEscape(string(it.bstr))
		b.Write(s)
	case 4:
		b.WriteByte('[')
		for i, e := range it.arr {
			if i > 0 {
				b.WriteString(", ")
			}
			writeDiag(b, e)
		}
		b.WriteByte(']')
	case 5:
		b.WriteByte('{')
		for i := range it.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeDiag(b, it.keys[i])
			b.WriteString(": ")
			writeDiag(b, it.vals[i])
		}
		b.WriteByte('}')
	case 7:
		if it.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	}
}
