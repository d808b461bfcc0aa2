package wire

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

// fuzzDecoder checks the properties every decoder must have: it never
// panics, every failure carries a registered code, and whatever it accepts
// encodes back to exactly the input (age's FuzzMalleability).
func fuzzDecoder[T any, P interface {
	*T
	Message
}](f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		err := Unmarshal(data, P(&v))
		if err != nil {
			if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
				t.Fatalf("error %v is not a registered decode code", err)
			}
			return
		}
		again, err := Marshal(P(&v))
		if err != nil {
			t.Fatalf("accepted input does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parse then marshal changed the bytes:\n%x\n%x", data, again)
		}
	})
}

func seedHeader() []byte {
	b, _ := Marshal(&RatchetHeader{RatchetKey: key33(), PN: 1, N: 2})
	return b
}

func seedMessage() []byte {
	b, _ := Marshal(&RatchetMessage{Version: 1, Header: seedHeader(), Ciphertext: make([]byte, 48)})
	return b
}

func seedPreKey() []byte {
	id := uint64(5)
	b, _ := Marshal(&PreKeyMessage{Version: 1, IdentityKey: key33(), EphemeralKey: key33(), SignedPreKeyID: 1,
		KEMPreKeyID: 70000, KEMCiphertext: make([]byte, KEMCiphertextSize), OneTimePreKeyID: &id,
		Message: seedMessage()})
	return b
}

func seedBundle() []byte {
	b, _ := Marshal(&Bundle{Version: 1, IdentityKey: key33(),
		SignedPreKey:  SignedPreKey{ID: 1, Key: key33(), Signature: make([]byte, 64)},
		KEMPreKey:     KEMPreKey{ID: 2, Key: make([]byte, MLKEMPublicSize), Signature: make([]byte, 64), LastResort: true},
		OneTimePreKey: &OneTimePreKey{ID: 3, Key: key33()}})
	return b
}

func FuzzRatchetHeader(f *testing.F)  { fuzzDecoder[RatchetHeader](f, seedHeader()) }
func FuzzRatchetMessage(f *testing.F) { fuzzDecoder[RatchetMessage](f, seedMessage()) }
func FuzzPreKeyMessage(f *testing.F)  { fuzzDecoder[PreKeyMessage](f, seedPreKey()) }
func FuzzBundle(f *testing.F)         { fuzzDecoder[Bundle](f, seedBundle()) }
func FuzzSessionState(f *testing.F)   { fuzzDecoder[SessionState](f) }
func FuzzStoredSession(f *testing.F)  { fuzzDecoder[StoredSession](f) }
func FuzzContent(f *testing.F)        { fuzzDecoder[Content](f, seedContent()) }
func FuzzGroupEnvelope(f *testing.F)  { fuzzDecoder[GroupEnvelope](f, seedGroupEnvelope()) }
func FuzzGroupState(f *testing.F)     { fuzzDecoder[GroupState](f, seedGroupState()) }
func FuzzFrame(f *testing.F)          { fuzzDecoder[Frame](f, seedFrames()...) }
func FuzzEnvelope(f *testing.F)       { fuzzDecoder[Envelope](f, seedHotMessages()...) }
func FuzzDelivery(f *testing.F)       { fuzzDecoder[Delivery](f, seedHotMessages()...) }
func FuzzSendResult(f *testing.F)     { fuzzDecoder[SendResult](f, seedSmall()...) }
func FuzzAck(f *testing.F)            { fuzzDecoder[Ack](f, seedSmall()...) }
func FuzzGroupMessage(f *testing.F)   { fuzzDecoder[GroupMessageBody](f, seedGroupBody()) }
func FuzzBlobPut(f *testing.F)        { fuzzDecoder[BlobPut](f) }

// TestSeedPrefixes checks that every strict prefix of every seed fails
// with decode.truncated.
func TestSeedPrefixes(t *testing.T) {
	type dec func([]byte) error
	tests := map[string]struct {
		enc []byte
		dec dec
	}{
		"header":  {seedHeader(), func(b []byte) error { return Unmarshal(b, new(RatchetHeader)) }},
		"message": {seedMessage(), func(b []byte) error { return Unmarshal(b, new(RatchetMessage)) }},
		"prekey":  {seedPreKey(), func(b []byte) error { return Unmarshal(b, new(PreKeyMessage)) }},
		"bundle":  {seedBundle(), func(b []byte) error { return Unmarshal(b, new(Bundle)) }},
	}
	for name, tt := range tests {
		if len(tt.enc) == 0 {
			t.Fatalf("%s: no seed", name)
		}
		if err := tt.dec(tt.enc); err != nil {
			t.Fatalf("%s: seed does not decode: %v", name, err)
		}
		for i := range len(tt.enc) {
			if err := tt.dec(tt.enc[:i]); errcode.Of(err) != errcode.DecodeTruncated {
				t.Fatalf("%s: prefix of %d bytes: got %v, want %v", name, i, err, errcode.DecodeTruncated)
			}
		}
	}
}

// generalUnmarshal is Unmarshal without the fast paths.
func generalUnmarshal(data []byte, m Message) error {
	t, err := scan(data)
	if err != nil {
		return err
	}
	if _, ok := m.(versioned); ok {
		if err := checkVersion(t); err != nil {
			return err
		}
	}
	if err := decMode.Unmarshal(data, m); err != nil {
		return classify(err)
	}
	again, err := encMode.Marshal(m)
	if err != nil || !bytes.Equal(again, data) {
		return errcode.DecodeMissingField
	}
	if p, ok := m.(interface{ presence() error }); ok {
		if err := p.presence(); err != nil {
			return err
		}
	}
	return m.check()
}

// FuzzFastPaths checks that the fast decoders accept only what the general
// decoder accepts, with the same result, and that the fast encoders give
// the general encoder's bytes.
func FuzzFastPaths(f *testing.F) {
	f.Add(seedHeader())
	f.Add(seedMessage())
	for _, fr := range seedFrames() {
		f.Add(fr)
	}
	for _, m := range append(seedHotMessages(), seedSmall()...) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pair := range []struct {
			fast, general interface {
				Message
				fastEncoder
				fastDecoder
			}
		}{
			{new(RatchetHeader), new(RatchetHeader)},
			{new(RatchetMessage), new(RatchetMessage)},
			{new(Frame), new(Frame)},
			{new(Envelope), new(Envelope)},
			{new(Delivery), new(Delivery)},
			{new(SendResult), new(SendResult)},
			{new(Ack), new(Ack)},
		} {
			if !pair.fast.fastDecode(data) {
				continue
			}
			if err := generalUnmarshal(data, pair.general); err != nil {
				t.Fatalf("%T: fast path accepted what the general path rejects (%v): %x", pair.fast, err, data)
			}
			a, _ := encMode.Marshal(pair.fast)
			b, _ := encMode.Marshal(pair.general)
			if !bytes.Equal(a, b) || !bytes.Equal(pair.fast.fastAppend(nil), b) {
				t.Fatalf("%T: fast and general paths disagree on %x", pair.fast, data)
			}
		}
	})
}

// seedFrames are frames of each presence pattern, with request ids and
// bodies of several size classes.
func seedFrames() [][]byte {
	var out [][]byte
	for _, id := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1} {
		for _, n := range []int{-1, 0, 1, 23, 24, 255, 256, 65535, 65536} {
			f := &Frame{Version: ProtocolVersion, Type: FrameResult}
			switch {
			case id == 0 && n < 0:
				f.Type = FramePing
			case id == 0:
				f.Type = FrameDeliver
			case n < 0:
				continue
			}
			if id != 0 {
				f.RequestID = &id
			}
			if n >= 0 {
				b := make([]byte, n)
				f.Body = &b
			}
			enc, err := encMode.Marshal(f)
			if err != nil {
				panic(err)
			}
			out = append(out, enc)
		}
	}
	return out
}

// seedHotMessages are envelopes and deliveries with fields of several size
// classes, times of 64 bits among them.
func seedHotMessages() [][]byte {
	var out [][]byte
	for _, n := range []uint64{1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1_790_000_000_000} {
		e := benchEnvelope()
		e.SentAt, e.TTL = n, min(n, MaxTTL)
		e.Messages[1].Device = min(n+1, maxUint32)
		if e.Messages[1].Device <= e.Messages[0].Device {
			e.Messages[1].Device = 2
		}
		enc, err := encMode.Marshal(e)
		if err != nil {
			panic(err)
		}
		out = append(out, enc)
		d := &Delivery{Version: 1, QueueID: n, MessageID: make([]byte, MessageIDSize),
			Sender: Address{Account: "bob.b", Device: min(n, maxUint32)}, Type: EnvelopeChat, Priority: PriorityNormal,
			Kind: 1, Ciphertext: make([]byte, min(n, 300)), SentAt: n, AcceptedAt: n + 1, ExpiresAt: n + 2,
			Attempt: min(n, maxUint32)}
		if enc, err = encMode.Marshal(d); err != nil {
			panic(err)
		}
		out = append(out, enc)
	}
	return out
}

// seedSmall are send results and acks with values of every size class.
func seedSmall() [][]byte {
	var out [][]byte
	ids := []uint64{}
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1_790_000_000_000} {
		enc, _ := encMode.Marshal(&SendResult{AcceptedAt: n})
		out = append(out, enc)
		if n > 0 {
			ids = append(ids, n)
			enc, _ = encMode.Marshal(&Ack{QueueIDs: ids})
			out = append(out, enc)
		}
	}
	return out
}

// TestFastPathsMatch checks the fast encoders against the general encoder
// on values of every size class.
func TestFastPathsMatch(t *testing.T) {
	for _, enc := range seedHotMessages() {
		decoded := 0
		for _, pair := range []struct{ fast, general Message }{
			{new(Envelope), new(Envelope)}, {new(Delivery), new(Delivery)},
		} {
			if generalUnmarshal(enc, pair.general) != nil {
				continue // an envelope's encoding given to the delivery, or the other way
			}
			decoded++
			if !pair.fast.(fastDecoder).fastDecode(enc) {
				t.Errorf("%T %x: fast decode failed", pair.fast, enc[:16])
				continue
			}
			if !reflect.DeepEqual(pair.fast, pair.general) {
				t.Errorf("%T %x: fast and general decodings differ", pair.fast, enc[:16])
			}
		}
		if decoded != 1 {
			t.Errorf("seed %x: %d structures decode it, want 1", enc[:16], decoded)
		}
	}
	for _, enc := range seedSmall() {
		var fr, gr SendResult
		var fa, ga Ack
		okR, okA := generalUnmarshal(enc, &gr) == nil, generalUnmarshal(enc, &ga) == nil
		if okR == okA {
			t.Errorf("seed %x: send result %v, ack %v: want exactly one", enc, okR, okA)
		}
		if okR && (!fr.fastDecode(enc) || fr != gr || !bytes.Equal(fr.fastAppend(nil), enc)) {
			t.Errorf("send result %x: fast path differs", enc)
		}
		if okA && (!fa.fastDecode(enc) || !reflect.DeepEqual(fa, ga) || !bytes.Equal(fa.fastAppend(nil), enc)) {
			t.Errorf("ack %x: fast path differs", enc)
		}
	}
	for _, enc := range seedFrames() {
		var fast, general Frame
		if !fast.fastDecode(enc) {
			t.Errorf("frame %x: fast decode failed", enc[:min(len(enc), 16)])
			continue
		}
		if err := generalUnmarshal(enc, &general); err != nil {
			t.Fatalf("frame %x: %v", enc[:min(len(enc), 16)], err)
		}
		if got := fast.fastAppend(nil); !bytes.Equal(got, enc) {
			t.Errorf("frame %x: fast encoding differs", enc[:min(len(enc), 16)])
		}
		if !reflect.DeepEqual(fast, general) {
			t.Errorf("frame %x: fast and general decodings differ", enc[:min(len(enc), 16)])
		}
	}
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1} {
		h := &RatchetHeader{RatchetKey: key33(), PN: n, N: n / 2}
		want, _ := encMode.Marshal(h)
		if got := h.fastAppend(nil); !bytes.Equal(got, want) {
			t.Errorf("header %d: got %x, want %x", n, got, want)
		}
		var back RatchetHeader
		if !back.fastDecode(want) || back.PN != n {
			t.Errorf("header %d: fast decode failed", n)
		}
	}
	for _, n := range []int{16, 23, 24, 255, 256, 65535, 65536, MaxCiphertext} {
		m := &RatchetMessage{Version: 1, Header: seedHeader(), Ciphertext: make([]byte, n)}
		want, _ := encMode.Marshal(m)
		if got := m.fastAppend(nil); !bytes.Equal(got, want) {
			t.Errorf("message %d: encodings differ", n)
		}
		var back RatchetMessage
		if !back.fastDecode(want) || len(back.Ciphertext) != n {
			t.Errorf("message %d: fast decode failed", n)
		}
	}
}

// FuzzFastEncoders checks that the hand-written encoders give the general
// encoder's bytes for every value that decodes.
func FuzzFastEncoders(f *testing.F) {
	env, _ := encMode.Marshal(benchEnvelope())
	f.Add(env)
	del, _ := encMode.Marshal(&Delivery{Version: 1, QueueID: 7, MessageID: make([]byte, 16),
		Sender: Address{Account: "bob", Device: 3}, Type: 1, Priority: 2, Kind: 1, Ciphertext: make([]byte, 300),
		SentAt: 1, AcceptedAt: 2, ExpiresAt: 3, Attempt: 1})
	f.Add(del)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []interface {
			Message
			fastEncoder
		}{new(Envelope), new(Delivery), new(RatchetHeader), new(RatchetMessage), new(Frame), new(SendResult), new(Ack)} {
			if err := generalUnmarshal(data, m); err != nil {
				continue
			}
			want, _ := encMode.Marshal(m)
			if got := m.fastAppend(nil); !bytes.Equal(got, want) || !bytes.Equal(want, data) {
				t.Fatalf("%T: hand-written encoding differs:\n%x\n%x", m, got, want)
			}
			// As the body of a frame, encoded in place.
			for _, id := range []uint64{0, uint64(len(data)) + 1} {
				if mismatch, _ := checkMarshalFrame(FrameDeliver, id, m); mismatch != nil {
					t.Fatalf("%T: %v", m, mismatch)
				}
			}
		}
	})
}

func seedContent() []byte {
	text, exp := "hello", uint64(60)
	b, _ := Marshal(&Content{Version: 1, Type: ContentText, MessageID: make([]byte, 16), SentAt: 5, Text: &text, Expire: &exp})
	return b
}

func seedGroupEnvelope() []byte {
	b, _ := Marshal(&GroupEnvelope{Version: 1, MessageID: make([]byte, 16), Sender: Address{Account: "alice", Device: 1},
		GroupID: make([]byte, 16), Serial: 2, Digest: make([]byte, 32), Message: []byte{1, 2, 3}, Priority: 1, TTL: 60, SentAt: 9})
	return b
}

func seedGroupState() []byte {
	name := "friends"
	b, _ := Marshal(&GroupState{Version: 1, GroupID: make([]byte, 16), Serial: 1,
		Members: []GroupMember{{Account: "alice", Role: RoleAdmin}, {Account: "bob"}}, Author: Address{Account: "alice", Device: 1},
		IssuedAt: 7, Name: &name})
	return b
}

func seedGroupBody() []byte {
	b, _ := Marshal(&GroupMessageBody{Version: 1, GroupID: make([]byte, 16), Serial: 1, KeyID: 1, Iteration: 3, Ciphertext: make([]byte, 48)})
	return b
}

// FuzzDecodeFrame checks that DecodeFrame, which holds a frame and its
// optional fields in one allocation, answers as Unmarshal into a Frame does.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want Frame
		wantErr := Unmarshal(data, &want)
		got, err := DecodeFrame(data)
		if errcode.Of(err) != errcode.Of(wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("got error %v, want %v", err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("got %+v, want %+v", *got, want)
		}
	})
}
