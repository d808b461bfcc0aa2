package wire

import (
	"bytes"
	"unicode/utf8"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
)

// Limits of the CBOR profile (spec/10-cbor.md section 10.3).
const (
	MaxDepth = 8    // CBOR_MAX_DEPTH
	MaxItems = 4096 // CBOR_MAX_ITEMS
)

// CBOR major types.
const (
	majorUint   = 0
	majorNint   = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// top describes the top-level item, for the version stage (10.2 stage 2).
type top struct {
	isMap        bool
	hasVersion   bool   // key 1 is present
	versionIsInt bool   // and its value is an unsigned integer
	version      uint64 // that value
}

// scanner performs stage 1 of spec/10-cbor.md section 10.2: one
// left-to-right pass that checks form and profile and reports the first
// fault in input order. It allocates nothing.
type scanner struct {
	data []byte
	pos  int
	top  top
}

// scan checks that data is exactly one data item under the profile.
func scan(data []byte) (top, error) {
	s := scanner{data: data}
	if err := s.item(1, false); err != nil {
		return top{}, err
	}
	if s.pos != len(data) {
		return top{}, errcode.DecodeTrailingBytes
	}
	return s.top, nil
}

// head reads an initial byte and its argument.
func (s *scanner) head() (major byte, arg uint64, err error) {
	if s.pos >= len(s.data) {
		return 0, 0, errcode.DecodeTruncated
	}
	ib := s.data[s.pos]
	s.pos++
	major, ai := ib>>5, ib&0x1f
	switch {
	case ai >= 28 && ai <= 30:
		return 0, 0, errcode.DecodeMalformed
	case ai == 31:
		if major == majorSimple || major == majorUint || major == majorNint || major == majorTag {
			return 0, 0, errcode.DecodeMalformed // a break, or an indefinite form that does not exist
		}
		return 0, 0, errcode.DecodeIndefiniteLength
	}
	switch major {
	case majorNint:
		return 0, 0, errcode.DecodeWrongType
	case majorTag:
		return 0, 0, errcode.DecodeTag
	case majorSimple:
		switch {
		case ai >= 25 && ai <= 27:
			return 0, 0, errcode.DecodeFloat
		case ai == 20 || ai == 21:
			return major, uint64(ai), nil
		default:
			return 0, 0, errcode.DecodeWrongType
		}
	}
	if ai < 24 {
		return major, uint64(ai), nil
	}
	n := 1 << (ai - 24) // 1, 2, 4 or 8 bytes
	if len(s.data)-s.pos < n {
		s.pos = len(s.data)
		return 0, 0, errcode.DecodeTruncated
	}
	for _, b := range s.data[s.pos : s.pos+n] {
		arg = arg<<8 | uint64(b)
	}
	s.pos += n
	if ((n == 1 && arg < 24) || (n > 1 && arg < 1<<(4*n))) && !faults.Has(faults.AcceptNonCanonicalCBOR) {
		return 0, 0, errcode.DecodeNonShortest
	}
	return major, arg, nil
}

// item checks one data item at the given depth. atTop is set for the
// values of the top-level map, to record the version field.
func (s *scanner) item(depth int, versionValue bool) error {
	major, arg, err := s.head()
	if err != nil {
		return err
	}
	if versionValue {
		s.top.hasVersion = true
		s.top.versionIsInt = major == majorUint
		s.top.version = arg
	}
	switch major {
	case majorBytes, majorText:
		if uint64(len(s.data)-s.pos) < arg {
			s.pos = len(s.data)
			return errcode.DecodeTruncated
		}
		body := s.data[s.pos : s.pos+int(arg)]
		s.pos += int(arg)
		if major == majorText && !utf8.Valid(body) {
			return errcode.DecodeInvalidUTF8
		}
	case majorArray:
		if depth > MaxDepth {
			return errcode.DecodeTooDeep
		}
		if arg > MaxItems {
			return errcode.DecodeTooMany
		}
		for range arg {
			if err := s.item(depth+1, false); err != nil {
				return err
			}
		}
	case majorMap:
		if depth > MaxDepth {
			return errcode.DecodeTooDeep
		}
		if arg > MaxItems {
			return errcode.DecodeTooMany
		}
		if depth == 1 {
			s.top.isMap = true
		}
		var prev []byte
		for i := range arg {
			start := s.pos
			if err := s.item(depth+1, false); err != nil {
				return err
			}
			key := s.data[start:s.pos]
			if i > 0 {
				switch c := bytes.Compare(prev, key); {
				case c == 0:
					return errcode.DecodeDuplicateKey
				case c > 0 && !faults.Has(faults.AcceptNonCanonicalCBOR):
					return errcode.DecodeUnsortedMap
				}
			}
			prev = key
			isVersion := depth == 1 && len(key) == 1 && key[0] == 0x01
			if err := s.item(depth+1, isVersion); err != nil {
				return err
			}
		}
	}
	return nil
}
