package gen

import (
	"bytes"
	"unicode/utf8"
)

// This file holds a minimal CBOR implementation of the profile of chapter 10,
// written for the generator only: an encoder of the few item kinds Missive
// uses (unsigned integers, byte strings, booleans, maps with unsigned integer
// keys) and a strict decoder that reports the registered error codes in the
// order of section 10.2.

// CBOR profile limits (section 10.3).
const (
	cborMaxDepth = 8
	cborMaxItems = 4096
)

// cval is a CBOR value that the encoder can write.
type cval interface {
	appendCBOR(b []byte) []byte
}

// cUint is an unsigned integer (major type 0).
type cUint uint64

// cBytes is a byte string (major type 2).
type cBytes []byte

// cBool is false or true (major type 7).
type cBool bool

// cRaw is an already encoded data item, copied as is.
type cRaw []byte

// cText is a text string (major type 3).
type cText string

// cArray is an array (major type 4).
type cArray []cval

// cPair is one entry of a map with an unsigned integer key.
type cPair struct {
	k uint64
	v cval
}

// cMap is a map with unsigned integer keys. The encoder sorts the keys.
type cMap []cPair

func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return append(b, m|25, byte(arg>>8), byte(arg))
	case arg <= 0xffffffff:
		return append(b, m|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	default:
		return append(b, m|27, byte(arg>>56), byte(arg>>48), byte(arg>>40), byte(arg>>32),
			byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
}

func (u cUint) appendCBOR(b []byte) []byte { return appendHead(b, 0, uint64(u)) }

func (s cBytes) appendCBOR(b []byte) []byte {
	b = appendHead(b, 2, uint64(len(s)))
	return append(b, s...)
}

func (v cBool) appendCBOR(b []byte) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}

func (r cRaw) appendCBOR(b []byte) []byte { return append(b, r...) }

func (s cText) appendCBOR(b []byte) []byte {
	b = appendHead(b, 3, uint64(len(s)))
	return append(b, s...)
}

func (a cArray) appendCBOR(b []byte) []byte {
	b = appendHead(b, 4, uint64(len(a)))
	for _, e := range a {
		b = e.appendCBOR(b)
	}
	return b
}

func (m cMap) appendCBOR(b []byte) []byte {
	// Insertion sort on a copy: the encodings of unsigned integers sort
	// bytewise in numeric order, so sorting by value is the canonical order.
	s := make([]cPair, len(m))
	copy(s, m)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].k < s[j-1].k; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	b = appendHead(b, 5, uint64(len(s)))
	for _, p := range s {
		b = cUint(p.k).appendCBOR(b)
		b = p.v.appendCBOR(b)
	}
	return b
}

// encodeCBOR returns the encoding of v.
func encodeCBOR(v cval) []byte { return v.appendCBOR(nil) }

// item is a decoded CBOR data item.
type item struct {
	major byte   // major type
	val   uint64 // the unsigned integer (major 0)
	bstr  []byte // the byte string (major 2) or text string (major 3)
	b     bool   // the boolean (major 7)
	arr   []*item
	keys  []*item // map keys, in input order
	vals  []*item // map values
	raw   []byte  // the encoding of the whole item
}

type cborDecoder struct {
	in  []byte
	off int
}

// decodeCBOR runs stage 1 of section 10.2 over in.
func decodeCBOR(in []byte) (*item, error) {
	d := &cborDecoder{in: in}
	it, err := d.item(1)
	if err != nil {
		return nil, err
	}
	if d.off != len(d.in) {
		return nil, errTrailingBytes
	}
	return it, nil
}

func (d *cborDecoder) byte1() (byte, error) {
	if d.off >= len(d.in) {
		return 0, errTruncated
	}
	c := d.in[d.off]
	d.off++
	return c, nil
}

func (d *cborDecoder) item(depth int) (*item, error) {
	start := d.off
	ib, err := d.byte1()
	if err != nil {
		return nil, err
	}
	major, ai := ib>>5, ib&0x1f
	switch {
	case ai >= 28 && ai <= 30:
		return nil, errMalformed
	case ai == 31:
		if major >= 2 && major <= 5 {
			return nil, errIndefiniteLength
		}
		return nil, errMalformed
	case major == 6:
		return nil, errTag
	case major == 7 && ai >= 25 && ai <= 27:
		return nil, errFloat
	case major == 1:
		return nil, errWrongType
	case major == 7:
		if ai != 20 && ai != 21 {
			return nil, errWrongType
		}
		return &item{major: 7, b: ai == 21, raw: d.in[start:d.off]}, nil
	case (major == 4 || major == 5) && depth > cborMaxDepth:
		// Certain as soon as the initial byte is read, before the
		// argument bytes (section 10.2: a fault is found at the byte that
		// makes it certain).
		return nil, errTooDeep
	}
	arg := uint64(ai)
	if ai >= 24 {
		n := 1 << (ai - 24)
		arg = 0
		for i := 0; i < n; i++ {
			c, err := d.byte1()
			if err != nil {
				return nil, err
			}
			arg = arg<<8 | uint64(c)
		}
		var min uint64
		switch n {
		case 1:
			min = 24
		case 2:
			min = 0x100
		case 4:
			min = 0x10000
		case 8:
			min = 0x100000000
		}
		if arg < min {
			return nil, errNonShortest
		}
	}
	it := &item{major: major}
	switch major {
	case 0:
		it.val = arg
	case 2, 3:
		if arg > uint64(len(d.in)-d.off) {
			d.off = len(d.in)
			return nil, errTruncated
		}
		it.bstr = d.in[d.off : d.off+int(arg)]
		d.off += int(arg)
		if major == 3 && !utf8.Valid(it.bstr) {
			return nil, errInvalidUTF8
		}
	case 4, 5:
		if arg > cborMaxItems {
			return nil, errTooMany
		}
		for i := uint64(0); i < arg; i++ {
			if major == 4 {
				e, err := d.item(depth + 1)
				if err != nil {
					return nil, err
				}
				it.arr = append(it.arr, e)
				continue
			}
			k, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			if n := len(it.keys); n > 0 {
				switch c := bytes.Compare(k.raw, it.keys[n-1].raw); {
				case c == 0:
					return nil, errDuplicateKey
				case c < 0:
					return nil, errUnsortedMap
				}
			}
			v, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			it.keys = append(it.keys, k)
			it.vals = append(it.vals, v)
		}
	}
	it.raw = d.in[start:d.off]
	return it, nil
}

// Field kinds of a schema.
const (
	kindUint = iota + 1
	kindBytes
	kindBool
	kindMap
)

// field describes one map field for stage 3 of section 10.2.
type field struct {
	key      uint64
	kind     int
	required bool
	max      uint64 // kindUint: largest value
	minLen   int    // kindBytes: shortest length
	maxLen   int    // kindBytes: longest length
	sub      schema // kindMap: the nested structure
}

// schema is the list of fields of a map structure.
type schema []field

const maxUint32 = 0xffffffff

// checkVersion runs stage 2 of section 10.2 on a versioned structure.
func checkVersion(it *item, version uint64) error {
	if it.major != 5 {
		return errWrongType
	}
	v := it.get(1)
	if v == nil {
		return errMissingField
	}
	if v.major != 0 {
		return errWrongType
	}
	if v.val != version {
		return errUnsupportedVersion
	}
	return nil
}

// checkSchema runs stage 3 of section 10.2: three passes over the whole
// item, each depth first with keys in increasing order. 3a: keys that the
// structure does not define, values of another CBOR type; 3b: absent
// required keys; 3c: sizes and ranges.
func checkSchema(it *item, s schema) error {
	if it.major != 5 {
		return errWrongType
	}
	if err := schemaPassTypes(it, s); err != nil {
		return err
	}
	if err := schemaPassMissing(it, s); err != nil {
		return err
	}
	return schemaPassSizes(it, s)
}

// lookup returns the field of schema s for map key k, or nil.
func (s schema) lookup(k *item) *field {
	if k.major != 0 {
		return nil
	}
	for j := range s {
		if s[j].key == k.val {
			return &s[j]
		}
	}
	return nil
}

// schemaPassTypes is pass 3a.
func schemaPassTypes(it *item, s schema) error {
	for i, k := range it.keys {
		f := s.lookup(k)
		if f == nil {
			return errUnknownField
		}
		v := it.vals[i]
		want := map[int]byte{kindUint: 0, kindBytes: 2, kindBool: 7, kindMap: 5}[f.kind]
		if v.major != want {
			return errWrongType
		}
		if f.kind == kindMap {
			if err := schemaPassTypes(v, f.sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaPassMissing is pass 3b. It visits the keys of the structure in
// increasing order, present or not, so an absent key is reported at the
// place it would have in the input: after the maps nested in lower keys,
// before those nested in higher keys.
func schemaPassMissing(it *item, s schema) error {
	for _, f := range s {
		v := it.get(f.key)
		switch {
		case v == nil && f.required:
			return errMissingField
		case v != nil && f.kind == kindMap:
			if err := schemaPassMissing(v, f.sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaPassSizes is pass 3c.
func schemaPassSizes(it *item, s schema) error {
	for i, k := range it.keys {
		f, v := s.lookup(k), it.vals[i]
		switch f.kind {
		case kindUint:
			if v.val > f.max {
				return errValueOutOfRange
			}
		case kindBytes:
			if len(v.bstr) > f.maxLen {
				return errTooLong
			}
			if len(v.bstr) < f.minLen {
				return errTooShort
			}
		case kindMap:
			if err := schemaPassSizes(v, f.sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// get returns the value of unsigned integer key k of a map, or nil.
func (it *item) get(k uint64) *item {
	for i, key := range it.keys {
		if key.major == 0 && key.val == k {
			return it.vals[i]
		}
	}
	return nil
}
