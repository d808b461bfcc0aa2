package wire

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/missive-protocol/missive/ref/errcode"
)

// pass3a finds the first fault of pass 3a (spec/10-cbor.md section 10.2)
// of data, which stage 1 accepted, decoded as a value of type t: in input
// order, a map key that the structure does not define (of any type) or a
// value of another CBOR type than its field requires. It returns 0 when it
// finds neither. The decoder (fxamacker/cbor) finds both kinds too, but
// not in input order: it reports an unknown key at once and a wrong type
// only at the end, and a key that is a byte string or an array as a wrong
// type. Unmarshal asks pass3a only when that decoder failed, so it decides
// the code of a failure, never whether there is one. With unknown set, a
// key the structure does not define is passed over (the
// IgnoreUnknownFields fault).
func pass3a(data []byte, t reflect.Type, unknown bool) errcode.Code {
	w := walker{s: scanner{data: data}, ignoreUnknown: unknown}
	return w.value(t)
}

// walker reads an item that stage 1 accepted against a Go type, with the
// scanner of stage 1, whose checks it then passes.
type walker struct {
	s             scanner
	ignoreUnknown bool
}

// next is the major type of the next item, or false at the end.
func (w *walker) next() (byte, bool) {
	if w.s.pos >= len(w.s.data) {
		return 0, false
	}
	return w.s.data[w.s.pos] >> 5, true
}

// count reads the head of an array or a map and returns its count.
func (w *walker) count() uint64 {
	_, n, _ := w.s.head()
	return n
}

// skip passes over one item (below the top level: depth 2 is at most its
// own, so stage 1's depth check passes again).
func (w *walker) skip() { w.s.item(2, false) }

// value reads one item as a t and returns the first fault in it.
func (w *walker) value(t reflect.Type) errcode.Code {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want, ok := majorOf(t)
	if !ok { // a type this walk does not know: any item
		w.skip()
		return 0
	}
	if got, ok := w.next(); !ok {
		return 0
	} else if got != want {
		return errcode.DecodeWrongType
	}
	switch {
	case want == majorMap:
		return w.fields(t)
	case want == majorArray && t.Kind() == reflect.Struct:
		return w.elements(t)
	case want == majorArray:
		for range w.count() {
			if code := w.value(t.Elem()); code != 0 {
				return code
			}
		}
		return 0
	}
	w.skip()
	return 0
}

// majorOf is the major type of the items a value of type t decodes from.
func majorOf(t reflect.Type) (byte, bool) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return majorUint, true
	case reflect.String:
		return majorText, true
	case reflect.Bool:
		return majorSimple, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return majorBytes, true
		}
		return majorArray, true
	case reflect.Struct:
		if toArray(t) {
			return majorArray, true
		}
		return majorMap, true
	}
	return 0, false
}

// toArray reports whether the structure t is encoded as an array.
func toArray(t reflect.Type) bool {
	for f := range t.Fields() {
		if f.Name == "_" && strings.Contains(f.Tag.Get("cbor"), "toarray") {
			return true
		}
	}
	return false
}

// elements reads an array as the structure t, its elements as its fields
// in order; elements beyond the fields are a count (pass 3c), not a type.
func (w *walker) elements(t reflect.Type) errcode.Code {
	n := w.count()
	var fields []reflect.Type
	for f := range t.Fields() {
		if f.IsExported() {
			fields = append(fields, f.Type)
		}
	}
	for i := range n {
		if i >= uint64(len(fields)) {
			w.skip()
			continue
		}
		if code := w.value(fields[i]); code != 0 {
			return code
		}
	}
	return 0
}

// fields reads a map as the structure t, whose fields are keyed by
// unsigned integers (keyasint).
func (w *walker) fields(t reflect.Type) errcode.Code {
	for range w.count() {
		var field reflect.Type
		if major, _ := w.next(); major == majorUint {
			_, k, _ := w.s.head()
			field = fieldKeyed(t, k)
		} else {
			w.skip()
		}
		if field == nil {
			if !w.ignoreUnknown {
				return errcode.DecodeUnknownField
			}
			w.skip()
			continue
		}
		if code := w.value(field); code != 0 {
			return code
		}
	}
	return 0
}

// fieldKeyed returns the type of t's field whose key is k, or nil.
func fieldKeyed(t reflect.Type, k uint64) reflect.Type {
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("cbor"), ",")
		if n, err := strconv.ParseUint(tag, 10, 64); err == nil && n == k && f.IsExported() {
			return f.Type
		}
	}
	return nil
}
