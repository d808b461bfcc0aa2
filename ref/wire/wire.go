// Package wire encodes and decodes the structures that Missive puts on the
// wire, under the CBOR profile of spec/10-cbor.md: core deterministic
// encoding, and strict decoding that rejects every other encoding with a
// registered error code.
//
// Decoding runs the three stages of the profile: a hand-written scan of the
// input's form (exact codes for every malformation, no allocation), the
// version check, then typed decoding with github.com/fxamacker/cbor/v2 and
// each structure's own schema checks. Finally the decoded value is encoded
// again and compared with the input byte for byte, which catches any
// non-canonical form the other stages might let through and every absent
// required field.
//
// The package has no cryptographic imports: key encodings are opaque byte
// strings of fixed size here, and are checked by the packages that use them.
package wire

import (
	"bytes"
	"errors"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
)

// ProtocolVersion is the protocol version of every top-level structure.
const ProtocolVersion = 1

var (
	encMode     cbor.EncMode
	decMode     cbor.DecMode
	lenientMode cbor.DecMode // for the ignore-unknown-fields mutant only
)

func init() {
	var err error
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	encMode, err = opts.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:             cbor.DupMapKeyEnforcedAPF,
		IndefLength:           cbor.IndefLengthForbidden,
		TagsMd:                cbor.TagsForbidden,
		IntDec:                cbor.IntDecConvertNone,
		UTF8:                  cbor.UTF8RejectInvalid,
		MaxNestedLevels:       MaxDepth + 1,
		MaxArrayElements:      MaxItems,
		MaxMapPairs:           MaxItems,
		ExtraReturnErrors:     cbor.ExtraDecErrorUnknownField,
		DefaultByteStringType: reflect.TypeOf([]byte(nil)),
	}.DecMode()
	if err != nil {
		panic(err)
	}
	lenientMode, err = cbor.DecOptions{MaxNestedLevels: MaxDepth + 1, MaxArrayElements: MaxItems, MaxMapPairs: MaxItems}.DecMode()
	if err != nil {
		panic(err)
	}
}

// A Message is a structure with a schema: sizes, ranges and nested
// versions that CBOR typing cannot express.
type Message interface {
	check() error
}

// versioned is implemented by top-level structures with a version in key 1.
type versioned interface {
	Message
	isVersioned()
}

// Marshal returns the deterministic encoding of m. It fails with the
// code of the first schema check m does not pass, so that an encoder never
// produces what a decoder would reject.
func Marshal(m Message) ([]byte, error) {
	if err := valid(m); err != nil {
		return nil, err
	}
	if f, ok := m.(fastEncoder); ok {
		return f.fastAppend(make([]byte, 0, sizeHint(m))), nil
	}
	return encMode.Marshal(m)
}

// valid checks what Marshal checks before it encodes m.
func valid(m Message) error {
	if p, ok := m.(interface{ presence() error }); ok {
		if err := p.presence(); err != nil {
			return err
		}
	}
	return m.check()
}

// sizeHint is a capacity for m's encoding.
func sizeHint(m Message) int {
	if h, ok := m.(interface{ sizeHint() int }); ok {
		return h.sizeHint()
	}
	return 64
}

// MarshalFrame encodes a frame of the current version, of type typ,
// answering or making request requestID (0: none), with the encoding of body
// (nil: none) as its body: the bytes Marshal gives for that Frame. A body
// that has a fast encoding is encoded in place in the frame's buffer
// rather than in a buffer of its own that the frame's encoding then copies.
func MarshalFrame(typ, requestID uint64, body Message) ([]byte, error) {
	return MarshalFrameIn(nil, typ, requestID, body)
}

// MarshalFrameIn is MarshalFrame encoding in buf's array when the frame and
// the room for its head fit in buf's capacity (the encoding then starts a
// few bytes into the array, where its head ends up), so that a caller can
// reuse one buffer for frames it writes and forgets.
func MarshalFrameIn(buf []byte, typ, requestID uint64, body Message) ([]byte, error) {
	fe, fast := body.(fastEncoder)
	if !fast {
		return marshalFrameSlow(typ, requestID, body)
	}
	if err := valid(body); err != nil {
		return nil, err
	}
	if need := frameHeadMax + sizeHint(body); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = fe.fastAppend(buf[:frameHeadMax])
	b := buf[frameHeadMax:]
	// The frame's methods are called on the concrete type, not through
	// Message as valid does, so that the frame, its request id and its
	// body's slice stay on the stack.
	f := Frame{Version: ProtocolVersion, Type: typ, Body: &b}
	if requestID != 0 {
		f.RequestID = &requestID
	}
	if err := f.presence(); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	var head [frameHeadMax]byte
	h := f.appendHead(head[:0])
	start := frameHeadMax - len(h)
	copy(buf[start:], h)
	return buf[start:], nil
}

// marshalFrameSlow is MarshalFrame for a body without a fast encoding, or
// none: the body's encoding, then the frame's.
func marshalFrameSlow(typ, requestID uint64, body Message) ([]byte, error) {
	f := &Frame{Version: ProtocolVersion, Type: typ}
	if requestID != 0 {
		f.RequestID = &requestID
	}
	if body != nil {
		b, err := Marshal(body)
		if err != nil {
			return nil, err
		}
		f.Body = &b
	}
	return Marshal(f)
}

// DecodeFrame decodes a frame as Unmarshal does, into one allocation that
// holds the frame with its request id and its body's slice (Unmarshal into a
// Frame takes one for each), for the readers of every connection. When the
// frame fails to decode after its request id was decoded (its keys and
// types passed, stage 3a, and the id is within its range), it returns the
// frame with the error, so that the error frame can carry the request id
// (TRN-009); otherwise the frame is nil on error.
func DecodeFrame(data []byte) (*Frame, error) {
	fw := new(frameWith)
	if fw.fastDecodeIn(data, &fw.id, &fw.body) {
		return &fw.Frame, nil
	}
	f := new(Frame)
	if typed, err := unmarshal(data, f); err != nil {
		if !typed || f.RequestID == nil || checkWithin(*f.RequestID, 1, maxUint32) != nil {
			return nil, err
		}
		return f, err
	}
	return f, nil
}

// frameWith is a frame with the memory its optional fields point to.
type frameWith struct {
	Frame
	id   uint64
	body []byte
}

// Unmarshal decodes data into m, which must be a pointer to a structure of
// this package, and returns a registered error code on any failure. The
// byte strings of the structures on the hot path (frame, envelope,
// delivery, ratchet message and header) may share data's memory: the
// caller must not change data while m is in use.
func Unmarshal(data []byte, m Message) error {
	_, err := unmarshal(data, m)
	return err
}

// unmarshal is Unmarshal, and reports whether m holds every key of data
// with its value (stage 3a passed), even when a later stage failed.
func unmarshal(data []byte, m Message) (typed bool, err error) {
	if f, ok := m.(fastDecoder); ok && f.fastDecode(data) {
		return true, nil
	}
	lenient := faults.Has(faults.AcceptNonCanonicalCBOR) || faults.Has(faults.IgnoreUnknownFields)
	if l, ok := m.(interface{ maxSize() int }); ok && len(data) > l.maxSize() {
		return false, errcode.DecodeTooLong
	}
	t, err := scan(data)
	if err != nil {
		return false, err
	}
	if _, ok := m.(versioned); ok {
		if err := checkVersion(t); err != nil {
			return false, err
		}
	}
	// Stage 3a: unknown keys and CBOR types.
	dm := decMode
	if faults.Has(faults.IgnoreUnknownFields) {
		dm = lenientMode
	}
	if err := dm.Unmarshal(data, m); err != nil {
		// The decoder's first complaint is not always the first fault in
		// input order (pass3a); what pass 3a does not find is a count of
		// an array's elements (pass 3c, countError).
		if code := pass3a(data, reflect.TypeOf(m), faults.Has(faults.IgnoreUnknownFields)); code != 0 {
			return false, code
		}
		return false, classify(err)
	}
	// Stage 3b: encode again and compare. Stage 1 rules out every
	// non-canonical form and stage 3a every unknown key, so a difference
	// is a required key that is absent (encoded again with its zero value).
	if !lenient && !encodesAs(m, data) {
		return true, errcode.DecodeMissingField
	}
	// Stage 3b, continued: fields whose presence depends on others.
	if p, ok := m.(interface{ presence() error }); ok {
		if err := p.presence(); err != nil {
			return true, err
		}
	}
	// Stage 3c: sizes and ranges.
	return true, m.check()
}

// buffers holds scratch space for encodesAs.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// encodesAs reports whether m encodes as data, with its hand-written
// encoder when it has one.
func encodesAs(m Message, data []byte) bool {
	if f, ok := m.(fastEncoder); ok {
		p := buffers.Get().(*[]byte)
		*p = f.fastAppend((*p)[:0])
		eq := bytes.Equal(*p, data)
		buffers.Put(p)
		return eq
	}
	b, err := encMode.Marshal(m)
	return err == nil && bytes.Equal(b, data)
}

func checkVersion(t top) error {
	switch {
	case !t.isMap:
		return errcode.DecodeWrongType
	case !t.hasVersion:
		return errcode.DecodeMissingField
	case !t.versionIsInt:
		return errcode.DecodeWrongType
	case t.version != ProtocolVersion:
		return errcode.DecodeUnsupportedVersion
	}
	return nil
}

// classify maps a decoding error of fxamacker/cbor, after stage 1 has
// passed, to a registered code.
func classify(err error) error {
	var (
		unknown *cbor.UnknownFieldError
		typ     *cbor.UnmarshalTypeError
		dup     *cbor.DupMapKeyError
		count   countError
	)
	switch {
	case errors.As(err, &count):
		return count.code
	case errors.As(err, &unknown):
		return errcode.DecodeUnknownField
	case errors.As(err, &typ):
		return errcode.DecodeWrongType
	case errors.As(err, &dup):
		return errcode.DecodeDuplicateKey
	}
	// Stage 1 accepted the input, so any other complaint is about its
	// shape against the Go type.
	return errcode.DecodeWrongType
}

// checkSize checks a byte string against a fixed size.
func checkSize(b []byte, n int) error {
	switch {
	case len(b) > n:
		return errcode.DecodeTooLong
	case len(b) < n:
		return errcode.DecodeTooShort
	}
	return nil
}

// checkRange checks a byte string against a range of sizes.
func checkRange(b []byte, lo, hi int) error {
	switch {
	case len(b) > hi:
		return errcode.DecodeTooLong
	case len(b) < lo:
		return errcode.DecodeTooShort
	}
	return nil
}

// checkUint32 checks that v fits the CDDL type uint32.
func checkUint32(v uint64) error {
	if v > 1<<32-1 {
		return errcode.DecodeValueOutOfRange
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
