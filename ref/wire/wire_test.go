package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

func key33() []byte { return append([]byte{0x05}, bytes.Repeat([]byte{7}, 32)...) }

func validHeader(t *testing.T) []byte {
	t.Helper()
	b, err := Marshal(&RatchetHeader{RatchetKey: key33(), PN: 3, N: 300})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	h := validHeader(t)
	var got RatchetHeader
	if err := Unmarshal(h, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if got.N != 300 || got.PN != 3 || !bytes.Equal(got.RatchetKey, key33()) {
		t.Errorf("got %+v", got)
	}
	m := &RatchetMessage{Version: 1, Header: h, Ciphertext: make([]byte, 48)}
	enc, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var m2 RatchetMessage
	if err := Unmarshal(enc, &m2); err != nil {
		t.Fatalf("Unmarshal message: %v", err)
	}
	opk := uint64(0)
	pk := &PreKeyMessage{Version: 1, IdentityKey: key33(), EphemeralKey: key33(), KEMCiphertext: make([]byte, KEMCiphertextSize), OneTimePreKeyID: &opk, Message: enc}
	enc, err = Marshal(pk)
	if err != nil {
		t.Fatal(err)
	}
	var pk2 PreKeyMessage
	if err := Unmarshal(enc, &pk2); err != nil {
		t.Fatalf("Unmarshal prekey message: %v", err)
	}
	if pk2.OneTimePreKeyID == nil || *pk2.OneTimePreKeyID != 0 {
		t.Errorf("one-time prekey id 0 lost")
	}
}

// TestHeaderMalformations checks one change per case against the codes of
// spec/10-cbor.md section 10.2.
func TestHeaderMalformations(t *testing.T) {
	h := validHeader(t)
	k := hex.EncodeToString(key33())
	tests := []struct {
		name string
		in   string
		want errcode.Code
	}{
		{"empty", "", errcode.DecodeTruncated},
		{"truncated", hex.EncodeToString(h[:len(h)-1]), errcode.DecodeTruncated},
		{"trailing", hex.EncodeToString(h) + "00", errcode.DecodeTrailingBytes},
		{"indefinite_map", "bf01582105" + k[2:] + "0203ff", errcode.DecodeIndefiniteLength},
		{"tag", "c1" + hex.EncodeToString(h), errcode.DecodeTag},
		{"float", "a3015821" + k + "02f9000003" + "19012c", errcode.DecodeFloat},
		{"non_shortest_pn", "a3015821" + k + "02180303" + "19012c", errcode.DecodeNonShortest},
		{"non_shortest_n", "a3015821" + k + "0203" + "1a0000012c", errcode.DecodeNonShortest},
		{"unsorted", "a30203015821" + k + "0319012c", errcode.DecodeUnsortedMap},
		{"duplicate", "a3015821" + k + "0203" + "0203", errcode.DecodeDuplicateKey},
		{"negative", "a3015821" + k + "0220" + "0319012c", errcode.DecodeWrongType},
		{"null", "a3015821" + k + "02f6" + "0319012c", errcode.DecodeWrongType},
		{"missing", "a2015821" + k + "0203", errcode.DecodeMissingField},
		{"unknown", "a4015821" + k + "0203" + "0319012c" + "0400", errcode.DecodeUnknownField},
		{"text_key", "a4015821" + k + "0203" + "0319012c" + "6161" + "00", errcode.DecodeUnknownField},
		{"wrong_type", "a3015821" + k + "0241" + "00" + "0319012c", errcode.DecodeWrongType},
		{"key_too_long", "a3015822" + k + "00" + "0203" + "0319012c", errcode.DecodeTooLong},
		{"key_too_short", "a3015820" + k[2:] + "0203" + "0319012c", errcode.DecodeTooShort},
		{"n_out_of_range", "a3015821" + k + "0203" + "031b0000000100000000", errcode.DecodeValueOutOfRange},
		{"reserved_ai", "a3015821" + k + "021c" + "0319012c", errcode.DecodeMalformed},
		{"break", "ff", errcode.DecodeMalformed},
		{"bad_utf8", "a4015821" + k + "0203" + "0319012c" + "62c328" + "00", errcode.DecodeInvalidUTF8},
		{"deep", "818181818181818181" + "00", errcode.DecodeTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got RatchetHeader
			err := Unmarshal(mustHex(t, tt.in), &got)
			if c := errcode.Of(err); c != tt.want {
				t.Errorf("got %v (%v), want %v", c, err, tt.want)
			}
		})
	}
}

func TestVersionStage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want errcode.Code
	}{
		{"not_map", "80", errcode.DecodeWrongType},
		{"no_version", "a10240", errcode.DecodeMissingField},
		{"version_bytes", "a10140", errcode.DecodeWrongType},
		{"version_2_with_unknown_field", "a2010218ff00", errcode.DecodeUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m RatchetMessage
			err := Unmarshal(mustHex(t, tt.in), &m)
			if c := errcode.Of(err); c != tt.want {
				t.Errorf("got %v (%v), want %v", c, err, tt.want)
			}
		})
	}
}

// TestStrictPrefixes checks that every strict prefix of a valid encoding
// fails to decode.
func TestStrictPrefixes(t *testing.T) {
	m := &RatchetMessage{Version: 1, Header: validHeader(t), Ciphertext: make([]byte, 48)}
	enc, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(enc) {
		var got RatchetMessage
		if err := Unmarshal(enc[:i], &got); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		} else if !errors.Is(err, errcode.DecodeTruncated) {
			t.Errorf("prefix of %d bytes: got %v, want %v", i, err, errcode.DecodeTruncated)
		}
	}
}

func TestValidAccount(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "a": true, "0": true, "bob.smith_2-x": true, "abcdefghijklmnopqrstuvwxyz012345": true,
		"": false, "Alice": false, "-bob": false, ".bob": false, "_bob": false, "bob smith": false,
		"abcdefghijklmnopqrstuvwxyz0123456": false, "bøb": false,
	} {
		if got := ValidAccount(name); got != want {
			t.Errorf("ValidAccount(%q): got %v, want %v", name, got, want)
		}
	}
}

// TestMarshalFrame checks that MarshalFrame gives the bytes, and the
// errors, of Marshal of a Frame whose body is Marshal of the body: bodies
// with and without a fast encoding, none, request ids absent and at their
// bound, and bodies whose byte string heads take 1, 2, 3 and 5 bytes.
func TestMarshalFrame(t *testing.T) {
	delivery := func(n int) *Delivery {
		return &Delivery{Version: 1, QueueID: 7, MessageID: bytes.Repeat([]byte{1}, MessageIDSize), Sender: Address{Account: "alice", Device: 1},
			Type: EnvelopeChat, Priority: PriorityNormal, Kind: KindRatchet, Ciphertext: bytes.Repeat([]byte{2}, n), SentAt: 1, AcceptedAt: 2, ExpiresAt: 3, Attempt: 1}
	}
	detail := "detail"
	for _, tc := range []struct {
		name      string
		typ, id   uint64
		body      Message
		wantError bool
	}{
		{name: "send result", typ: FrameResult, id: 9, body: &SendResult{AcceptedAt: 1 << 40}},
		{name: "ack, no request id", typ: FrameAck, body: &Ack{QueueIDs: []uint64{1, 2, 3}}},
		{name: "ping, no body", typ: FramePing},
		{name: "error body (no fast encoding)", typ: FrameError, id: 3, body: &ErrorBody{Code: uint64(errcode.PolicyRateLimited), Detail: &detail}},
		{name: "request id at its bound", typ: FrameResult, id: 1<<32 - 1, body: &SendResult{}},
		{name: "send result, 1-byte body head", typ: FrameResult, id: 1, body: &SendResult{AcceptedAt: 1}},
		{name: "delivery, 2-byte body head", typ: FrameDeliver, body: delivery(100)},
		{name: "delivery, 3-byte body head", typ: FrameDeliver, body: delivery(1000)},
		{name: "delivery, 5-byte body head", typ: FrameDeliver, body: delivery(70000)},
		{name: "request id over its bound", typ: FrameResult, id: 1 << 32, body: &SendResult{}, wantError: true},
		{name: "request id missing", typ: FrameResult, body: &SendResult{}, wantError: true},
		{name: "body of a bodiless frame", typ: FramePing, body: &SendResult{}, wantError: true},
		{name: "invalid body", typ: FrameDeliver, body: &Delivery{}, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mismatch, err := checkMarshalFrame(tc.typ, tc.id, tc.body)
			if mismatch != nil {
				t.Fatal(mismatch)
			}
			if (err != nil) != tc.wantError {
				t.Fatalf("got %v, want an error: %t", err, tc.wantError)
			}
		})
	}
}

// checkMarshalFrame compares MarshalFrame with the two-step encoding
// (marshalFrameSlow: Marshal of the Frame whose body is Marshal of body),
// which bodies with a fast encoding no longer take: mismatch describes a
// difference in their bytes or errors, and err is the error both gave.
func checkMarshalFrame(typ, id uint64, body Message) (mismatch, err error) {
	want, wantErr := marshalFrameSlow(typ, id, body)
	got, err := MarshalFrame(typ, id, body)
	switch {
	case !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil):
		return fmt.Errorf("MarshalFrame: got error %v, want %v", err, wantErr), err
	case !bytes.Equal(got, want):
		return fmt.Errorf("MarshalFrame: got %x, want %x", got, want), err
	}
	// In a buffer too small and in one large enough, both full of junk.
	for _, n := range []int{8, 1 << 17} {
		buf := bytes.Repeat([]byte{0xEE}, n)
		in, inErr := MarshalFrameIn(buf[:0], typ, id, body)
		switch {
		case !errors.Is(inErr, wantErr) || (wantErr == nil) != (inErr == nil):
			return fmt.Errorf("MarshalFrameIn, buffer of %d: got error %v, want %v", n, inErr, wantErr), err
		case !bytes.Equal(in, want):
			return fmt.Errorf("MarshalFrameIn, buffer of %d: got %x, want %x", n, in, want), err
		}
	}
	return nil, err
}

// TestDecodeFrameRequestID checks that DecodeFrame returns, with its error,
// a frame whose request id was decoded (TRN-009): one that fails after
// its keys and types passed, with an id within its range; and no frame
// otherwise.
func TestDecodeFrameRequestID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hex    string // the frame
		code   errcode.Code
		wantID uint64 // 0: no frame returned
	}{
		{"send without its body", "a3010102060307", errcode.DecodeMissingField, 7},
		{"type without a definition", "a30101021863030b", errcode.DecodeValueOutOfRange, 11},
		{"ping with a request id", "a3010102090305", errcode.DecodeUnknownField, 5},
		{"request id 0", "a401010206030004420102", errcode.DecodeValueOutOfRange, 0},
		{"request id over its range", "a401010206031b000000010000000004420102", errcode.DecodeValueOutOfRange, 0},
		{"request id of the wrong type", "a30101020603617a", errcode.DecodeWrongType, 0},
		{"truncated", "a30101020603", errcode.DecodeTruncated, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrame(mustHex(t, tc.hex))
			if got := errcode.Of(err); got != tc.code {
				t.Fatalf("error: got %v, want %v", got, tc.code)
			}
			switch {
			case tc.wantID == 0 && f != nil:
				t.Errorf("frame: got %+v, want none", f)
			case tc.wantID != 0 && (f == nil || f.RequestID == nil || *f.RequestID != tc.wantID):
				t.Errorf("frame: got %+v, want one with request id %d", f, tc.wantID)
			}
		})
	}
}

// TestPass3aInputOrder checks that decoding reports the first fault of
// pass 3a in input order, wrong types and keys the structure does not
// define alike, and any of them before a count of pass 3c.
func TestPass3aInputOrder(t *testing.T) {
	alice := "65616c696365" // "alice"
	for _, tc := range []struct {
		name string
		hex  string
		m    Message
		want errcode.Code
	}{
		{"a map with a text key where an array belongs", "a101a1617800", new(Ack), errcode.DecodeWrongType},
		{"a wrong type, then a text key", "a2016178616100", new(Ack), errcode.DecodeWrongType},
		{"a wrong type holding a text key, then a field", "a201a16178000200", new(Privacy), errcode.DecodeWrongType},
		{"a text key", "a1616100", new(Ack), errcode.DecodeUnknownField},
		{"a byte string key", "a1410100", new(Ack), errcode.DecodeUnknownField},
		{"an array key", "a1810100", new(Ack), errcode.DecodeUnknownField},
		{"an element of the wrong type", "a1018161 78", new(Ack), errcode.DecodeWrongType},
		{"a key after a valid field", "a201810102 00", new(Ack), errcode.DecodeUnknownField},
		{"an address too short, then an undefined key", "a30181" + alice + "02f50300", new(TypingNotice), errcode.DecodeUnknownField},
		{"an address with a wrong element", "a20182" + alice + "617802f5", new(TypingNotice), errcode.DecodeWrongType},
		{"an address too long, then a wrong type", "a20183" + alice + "0102026178", new(TypingNotice), errcode.DecodeWrongType},
		{"an address too short alone", "a20181" + alice + "02f5", new(TypingNotice), errcode.DecodeTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := mustHex(t, strings.ReplaceAll(tc.hex, " ", ""))
			if got := errcode.Of(Unmarshal(data, tc.m)); got != tc.want {
				t.Errorf("%x: got %v, want %v", data, got, tc.want)
			}
		})
	}
}
