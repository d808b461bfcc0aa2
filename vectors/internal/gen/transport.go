package gen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// transportCase is one case of transport.json (section 9.2).
type transportCase struct {
	caseHead
	Pattern                   string         `json:"pattern"`
	Preamble                  hexBytes       `json:"preamble"`
	InitiatorStaticPrivate    hexBytes       `json:"initiator_static_private"`
	ResponderStaticPrivate    hexBytes       `json:"responder_static_private"`
	InitiatorEphemeralPrivate hexBytes       `json:"initiator_ephemeral_private"`
	ResponderEphemeralPrivate hexBytes       `json:"responder_ephemeral_private"`
	Handshake                 []hsMessage    `json:"handshake"`
	HandshakeHash             hexBytes       `json:"handshake_hash"`
	Segments                  []noiseSegment `json:"segments"`
	Expect                    string         `json:"expect"`
	Error                     string         `json:"error,omitempty"`
}

type hsMessage struct {
	From    string   `json:"from"`
	Message hexBytes `json:"message"`
}

type noiseSegment struct {
	From      string   `json:"from"`
	Plaintext hexBytes `json:"plaintext"`
	Segment   hexBytes `json:"segment"`
	Expect    string   `json:"expect,omitempty"`
	Error     string   `json:"error,omitempty"`
}

var transportNotes = notes{
	{"first_contact", "an XX handshake: the device learns the server's static key from the handshake (TRN-004)"},
	{"known_server", "an IK handshake: the device uses the server's static key it stored"},
	{"register", "the hello registers the account (register: true, device id 1)"},
	{"spanning_frame", "a frame larger than one segment's plaintext (65535 - 16 bytes) spans two segments"},
	{"replayed", "the last segment repeats an earlier segment of the same sender"},
	{"reordered", "the last segment is the sender's next-but-one segment: the one before it was dropped or delayed"},
	{"reflected", "the last segment is one the receiver itself sent, sent back to it"},
	{"altered", "one bit of the last segment is flipped, in its ciphertext or in its tag"},
	{"truncated", "the last segment is shorter than a Noise transport message can be (16 bytes, the tag)"},
}

const transportDescription = "Noise sessions of chapter 12: the handshake of Noise_XX_25519_ChaChaPoly_SHA256 " +
	"(pattern 1) or Noise_IK_25519_ChaChaPoly_SHA256 (pattern 2), with the 5-byte preamble 'M' 'S' 'V' 0x01 pattern " +
	"as the prologue (TRN-001) and empty handshake payloads (TRN-003), then transport segments in both directions. " +
	"The initiator is the device, the responder the server. Both protocol names are exactly 32 bytes long, so the " +
	"initial h is the name itself, unhashed (Noise section 5.2). In a valid case both sides, with these keys, produce " +
	"these handshake messages and hash; each segment is the sender's next Noise transport message of plaintext, and " +
	"the receiver decrypts it to plaintext. Each direction's plaintexts, concatenated, are a stream of frames, " +
	"u32be(length) || frame encoding (section 12.3); every frame and its body decode (wire.json rules), the hello's " +
	"binding signature verifies under its identity key for the initiator's static key, device id and account " +
	"(section 12.4), every request is answered by a result with its request id (MSG-022), and a sender starts a " +
	"new segment for each frame and fills segments (at most 65519 plaintext bytes). An invalid case ends with one " +
	"segment marked invalid, which is not the sender's next transport message but an attacker's (see flags): its " +
	"plaintext is the plaintext of the segment it was made from, which the receiver must not output; decrypting " +
	"it fails with auth.decrypt_failed, and the receiver then closes the connection (TRN-007), so no segment follows."

// transportSession builds one case.
type transportSession struct {
	c        transportCase
	v        *vb
	iSend    *noiseCipher // initiator -> responder
	rSend    *noiseCipher // responder -> initiator
	iRecv    *noiseCipher
	rRecv    *noiseCipher
	idStatic []byte
	err      error
	// sent keeps each sender's segments, for the attacks.
	sent map[string][]noiseSegment
}

func (s *transportSession) fail(err error) {
	if s.err == nil && err != nil {
		s.err = err
	}
}

// newTransportSession runs the handshake with keys from the case's stream.
func newTransportSession(id, comment, pattern string, flags, reqs []string) *transportSession {
	s := &transportSession{v: newVB("Missive v1 test vectors: transport: " + id), sent: map[string][]noiseSegment{}}
	var p byte = 1
	if pattern == "IK" {
		p = 2
	}
	s.c = transportCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs}, Pattern: pattern,
		Preamble: []byte{'M', 'S', 'V', 0x01, p}, Expect: "valid"}
	s.c.InitiatorStaticPrivate, s.c.ResponderStaticPrivate = s.v.read(32), s.v.read(32)
	s.c.InitiatorEphemeralPrivate, s.c.ResponderEphemeralPrivate = s.v.read(32), s.v.read(32)
	s.err = s.handshake()
	return s
}

// handshake runs both sides; it is also the check of a finished case.
func (s *transportSession) handshake() error {
	c := &s.c
	var rs []byte
	if c.Pattern == "IK" {
		var err error
		if rs, err = x25519Public(c.ResponderStaticPrivate); err != nil {
			return err
		}
	}
	ini, err := newNoiseHandshake(c.Pattern, true, c.Preamble, c.InitiatorStaticPrivate, rs, bytes.NewReader(c.InitiatorEphemeralPrivate))
	if err != nil {
		return err
	}
	rsp, err := newNoiseHandshake(c.Pattern, false, c.Preamble, c.ResponderStaticPrivate, nil, bytes.NewReader(c.ResponderEphemeralPrivate))
	if err != nil {
		return err
	}
	c.Handshake = nil
	var ic1, ic2, rc1, rc2 *noiseCipher
	for i := range noisePatterns[c.Pattern].messages {
		var msg, payload []byte
		from := "initiator"
		if i%2 == 0 {
			msg, ic1, ic2, err = ini.writeMessage(nil) // TRN-003: empty payloads
			if err == nil {
				payload, rc1, rc2, err = rsp.readMessage(msg)
			}
		} else {
			from = "responder"
			msg, rc1, rc2, err = rsp.writeMessage(nil)
			if err == nil {
				payload, ic1, ic2, err = ini.readMessage(msg)
			}
		}
		if err != nil {
			return fmt.Errorf("handshake message %d: %v", i, err)
		}
		if len(payload) != 0 {
			return fmt.Errorf("handshake message %d: a payload", i)
		}
		c.Handshake = append(c.Handshake, hsMessage{From: from, Message: msg})
	}
	if !bytes.Equal(ini.ss.h, rsp.ss.h) {
		return fmt.Errorf("the two sides' handshake hashes differ")
	}
	// The responder learned the initiator's static key; an XX initiator
	// learned the responder's.
	ipub, _ := x25519Public(c.InitiatorStaticPrivate)
	rpub, _ := x25519Public(c.ResponderStaticPrivate)
	if !bytes.Equal(rsp.rs, ipub) || !bytes.Equal(ini.rs, rpub) {
		return fmt.Errorf("the static keys were not transmitted")
	}
	c.HandshakeHash = ini.ss.h
	s.iSend, s.iRecv, s.rRecv, s.rSend = ic1, ic2, rc1, rc2
	s.idStatic = ipub
	return nil
}

const segmentPlaintextMax = noiseMaxMessage - 16

// frame sends one frame: u32be(length) || frame, in as many segments as it
// needs.
func (s *transportSession) frame(from string, f cMap) {
	if s.err != nil {
		return
	}
	enc := encodeCBOR(f)
	stream := binary.BigEndian.AppendUint32(nil, uint32(len(enc)))
	stream = append(stream, enc...)
	for len(stream) > 0 {
		n := min(len(stream), segmentPlaintextMax)
		s.segment(from, stream[:n])
		stream = stream[n:]
	}
}

func (s *transportSession) segment(from string, pt []byte) {
	send, recv := s.iSend, s.rRecv
	if from == "responder" {
		send, recv = s.rSend, s.iRecv
	}
	ct, err := send.encryptWithAd(nil, pt)
	if err != nil {
		s.fail(err)
		return
	}
	back, err := recv.decryptWithAd(nil, ct)
	if err != nil || !bytes.Equal(back, pt) {
		s.fail(fmt.Errorf("a segment does not decrypt: %v", err))
		return
	}
	seg := noiseSegment{From: from, Plaintext: cloneBytes(pt), Segment: ct}
	s.c.Segments = append(s.c.Segments, seg)
	s.sent[from] = append(s.sent[from], seg)
}

// attack appends the invalid last segment.
func (s *transportSession) attack(from string, pt, seg []byte) {
	s.c.Segments = append(s.c.Segments, noiseSegment{From: from, Plaintext: cloneBytes(pt), Segment: seg, Expect: "invalid",
		Error: errDecryptFailed.name})
	s.c.Expect, s.c.Error = "invalid", errDecryptFailed.name
}

// hello sends the device's hello with a binding of its transport key (the
// initiator's static key) and the server's welcome.
func (s *transportSession) hello(account string, device uint32, register bool, ecHeld, kemHeld uint64) {
	h := s.v.hello([]uint64{1}, account, device, register)
	// Replace the binding: v.hello signed a fresh key; sign the real one.
	ik := s.v.read(32)
	ikPub, err := x25519Public(ik)
	s.fail(err)
	h[3].v = cBytes(encX25519(ikPub))
	h[4].v = cBytes(s.v.sign(ik, bindingMessage(s.idStatic, device, account)))
	s.frame("initiator", frameMap(1, 1, encodeCBOR(h)))
	s.frame("responder", frameMap(2, 1, encodeCBOR(cMap{{1, cUint(1)}, {2, cUint(wireT0 + 86_400_000)}, {3, cUint(ecHeld)},
		{4, cUint(kemHeld)}})))
}

func (s *transportSession) finish() (transportCase, error) {
	s.fail(s.v.err)
	if s.err != nil {
		return transportCase{}, fmt.Errorf("%s: %v", s.c.ID, s.err)
	}
	if s.c.Flags == nil {
		s.c.Flags = []string{}
	}
	if s.c.Expect == "invalid" {
		s.c.Requirements = withErr001(s.c.Requirements)
	}
	if err := checkTransportCase(&s.c); err != nil {
		return transportCase{}, fmt.Errorf("%s: %v", s.c.ID, err)
	}
	return s.c, nil
}

func genTransport() (any, error) {
	var cases []transportCase
	valid := []string{"TRN-001", "TRN-003", "CBOR-001", "PRIM-005"}
	t1 := uint64(wireT0 + 86_400_000)

	// XX: first contact, registration, prekey upload, presence, ping.
	{
		s := newTransportSession("transport_xx_first_contact", "A device registers account alice over an XX "+
			"handshake, uploads prekeys, sends a message to bob's two devices, receives a delivery and "+
			"acknowledges it, subscribes to bob's presence, and pings.", "XX", []string{"first_contact", "register"},
			append([]string{"TRN-004"}, valid...))
		s.hello("alice", 1, true, 0, 0)
		ik := s.v.read(32)
		up := cMap{{1, s.v.signedPrekey(ik, 1)}, {2, s.v.kemPrekey(ik, 1, true)},
			{3, cArray{s.v.oneTimePrekey(1), s.v.oneTimePrekey(2), s.v.oneTimePrekey(3)}}, {4, cArray{s.v.kemPrekey(ik, 2, false)}}}
		s.frame("initiator", frameMap(4, 2, encodeCBOR(up)))
		s.frame("responder", frameMap(2, 2, encodeCBOR(cMap{{1, cUint(3)}, {2, cUint(1)}})))
		env := s.v.envelope(envChat, "bob", []uint32{1, 2}, []uint64{kindPrekey, kindPrekey}, "Hi Bob, it's Alice!", t1+5000)
		s.frame("initiator", frameMap(6, 3, encodeCBOR(env)))
		s.frame("responder", frameMap(2, 3, encodeCBOR(cMap{{1, cUint(t1 + 5120)}})))
		s.frame("responder", frameMap(7, 0, encodeCBOR(s.v.delivery(1, 1))))
		s.frame("initiator", frameMap(8, 0, encodeCBOR(cMap{{1, cArray{cUint(1)}}})))
		s.frame("initiator", frameMap(11, 4, encodeCBOR(cMap{{1, cArray{cText("bob")}}})))
		s.frame("responder", frameMap(2, 4, encodeCBOR(cMap{{1, cArray{cMap{{1, cText("bob")}, {2, cUint(1)}}}}})))
		s.frame("initiator", frameMap(9, 0, nil))
		s.frame("responder", frameMap(10, 0, nil))
		c, err := s.finish()
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	// IK: a known server; a send large enough to span two segments.
	{
		s := newTransportSession("transport_ik_reconnect", "Device 2 of alice reconnects with an IK handshake, "+
			"sends a long text to bob's five devices in one envelope (a frame that spans two segments), receives "+
			"the result, a delivery, a typing notice and a server ping, and answers.", "IK",
			[]string{"known_server", "spanning_frame"}, valid)
		s.hello("alice", 2, false, 97, 12)
		long := strings.Repeat("All work and no play makes Jack a dull boy. ", 364)[:16000]
		devs, kinds := []uint32{1, 2, 3, 4, 5}, []uint64{kindRatchet, kindRatchet, kindRatchet, kindRatchet, kindRatchet}
		env := s.v.envelope(envChat, "bob", devs, kinds, long, t1+7000)
		s.frame("initiator", frameMap(6, 2, encodeCBOR(env)))
		s.frame("responder", frameMap(2, 2, encodeCBOR(cMap{{1, cUint(t1 + 7412)}})))
		s.frame("responder", frameMap(7, 0, encodeCBOR(s.v.delivery(88, 2))))
		s.frame("responder", frameMap(15, 0, encodeCBOR(cMap{{1, address("bob", 1)}, {2, cBool(true)}})))
		s.frame("initiator", frameMap(8, 0, encodeCBOR(cMap{{1, cArray{cUint(88)}}})))
		s.frame("responder", frameMap(9, 0, nil))
		s.frame("initiator", frameMap(10, 0, nil))
		c, err := s.finish()
		if err != nil {
			return nil, err
		}
		if len(c.Segments) != 10 {
			return nil, fmt.Errorf("transport_ik_reconnect: %d segments, want 10 (the send spans two)", len(c.Segments))
		}
		cases = append(cases, c)
	}
	// Invalid segments (TRN-007): a short session, then the attack.
	bad := []string{"TRN-007", "PRIM-004", "TRN-001", "TRN-003"}
	type attackCase struct {
		id, comment, pattern, flag string
		do                         func(s *transportSession)
	}
	flip := func(b []byte, i int) []byte { c := cloneBytes(b); c[i] ^= 0x01; return c }
	for _, a := range []attackCase{
		{"transport_xx_replayed_segment", "The server receives the device's ping segment a second time.", "XX", "replayed",
			func(s *transportSession) {
				p := s.sent["initiator"][1]
				s.attack("initiator", p.Plaintext, p.Segment)
			}},
		{"transport_ik_replayed_hello", "The server receives the device's hello segment again after the ping: an " +
			"attacker replays the authentication.", "IK", "replayed", func(s *transportSession) {
			p := s.sent["initiator"][0]
			s.attack("initiator", p.Plaintext, p.Segment)
		}},
		{"transport_xx_altered_tag", "The device's next segment (an ack) with one bit of its tag flipped.", "XX", "altered",
			func(s *transportSession) {
				pt := frameBytes(frameMap(8, 0, encodeCBOR(cMap{{1, cArray{cUint(5)}}})))
				ct, _ := (&noiseCipher{k: s.iSend.k, n: s.iSend.n}).encryptWithAd(nil, pt)
				s.attack("initiator", pt, flip(ct, len(ct)-1))
			}},
		{"transport_ik_altered_ciphertext", "The server's next segment (a pong) with one bit of its first ciphertext " +
			"byte flipped: a length prefix changed in transit.", "IK", "altered", func(s *transportSession) {
			pt := frameBytes(frameMap(10, 0, nil))
			ct, _ := (&noiseCipher{k: s.rSend.k, n: s.rSend.n}).encryptWithAd(nil, pt)
			s.attack("responder", pt, flip(ct, 0))
		}},
		{"transport_ik_reordered_segment", "The device sends an ack and then a ping; the ack is dropped and the ping " +
			"arrives first, under the nonce after the one the server expects.", "IK", "reordered", func(s *transportSession) {
			pt := frameBytes(frameMap(9, 0, nil))
			ct, _ := (&noiseCipher{k: s.iSend.k, n: s.iSend.n + 1}).encryptWithAd(nil, pt)
			s.attack("initiator", pt, ct)
		}},
		{"transport_xx_reflected_segment", "The device receives its own ping segment back, as if the server had sent " +
			"it: the two directions have different keys.", "XX", "reflected", func(s *transportSession) {
			p := s.sent["initiator"][1]
			s.attack("responder", p.Plaintext, p.Segment)
		}},
		{"transport_xx_truncated_segment", "The server's next segment (a pong) cut to 15 bytes, shorter than a tag.",
			"XX", "truncated", func(s *transportSession) {
				pt := frameBytes(frameMap(10, 0, nil))
				ct, _ := (&noiseCipher{k: s.rSend.k, n: s.rSend.n}).encryptWithAd(nil, pt)
				s.attack("responder", pt, ct[:15])
			}},
	} {
		fl := "first_contact"
		if a.pattern == "IK" {
			fl = "known_server"
		}
		s := newTransportSession(a.id, a.comment, a.pattern, []string{fl, a.flag}, bad)
		s.hello("carol.d", 3, false, 10, 10)
		s.frame("initiator", frameMap(9, 0, nil))
		s.frame("responder", frameMap(10, 0, nil))
		if s.err == nil {
			a.do(s)
		}
		c, err := s.finish()
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("transport", transportNotes, heads); err != nil {
		return nil, err
	}
	return newFile("transport", transportDescription, transportNotes, cases), nil
}

// frameBytes returns u32be(length) || the frame's encoding.
func frameBytes(f cMap) []byte {
	enc := encodeCBOR(f)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(enc))), enc...)
}

// checkTransportCase replays a case as a consumer would: the handshake from
// the keys, each segment encrypted by its sender and decrypted by its
// receiver, the streams of frames decoded with their bodies, the hello's
// binding verified, and every request answered.
func checkTransportCase(c *transportCase) error {
	want := *c
	s := &transportSession{c: *c}
	if err := s.handshake(); err != nil {
		return err
	}
	if len(s.c.Handshake) != len(want.Handshake) || !bytes.Equal(s.c.HandshakeHash, want.HandshakeHash) {
		return fmt.Errorf("the handshake does not replay")
	}
	for i := range want.Handshake {
		if !bytes.Equal(s.c.Handshake[i].Message, want.Handshake[i].Message) || s.c.Handshake[i].From != want.Handshake[i].From {
			return fmt.Errorf("handshake message %d does not replay", i)
		}
	}
	if want.Preamble[0] != 'M' || want.Preamble[1] != 'S' || want.Preamble[2] != 'V' || want.Preamble[3] != 1 ||
		(want.Preamble[4] == 1) != (want.Pattern == "XX") {
		return fmt.Errorf("bad preamble %x", want.Preamble)
	}
	streams := map[string][]byte{}
	invalid := 0
	for i, seg := range want.Segments {
		send, recv := s.iSend, s.rRecv
		if seg.From == "responder" {
			send, recv = s.rSend, s.iRecv
		}
		if len(seg.Segment) > noiseMaxMessage || len(seg.Plaintext) > segmentPlaintextMax {
			return fmt.Errorf("segment %d is too long", i)
		}
		if seg.Expect == "invalid" {
			if i != len(want.Segments)-1 {
				return fmt.Errorf("segment %d is invalid but not the last", i)
			}
			invalid++
			if _, err := recv.decryptWithAd(nil, seg.Segment); err != errDecryptFailed || seg.Error != errDecryptFailed.name {
				return fmt.Errorf("invalid segment %d: decrypt gives %v", i, err)
			}
			continue
		}
		ct, err := send.encryptWithAd(nil, seg.Plaintext)
		if err != nil || !bytes.Equal(ct, seg.Segment) {
			return fmt.Errorf("segment %d is not the encryption of its plaintext", i)
		}
		pt, err := recv.decryptWithAd(nil, seg.Segment)
		if err != nil || !bytes.Equal(pt, seg.Plaintext) {
			return fmt.Errorf("segment %d does not decrypt", i)
		}
		streams[seg.From] = append(streams[seg.From], pt...)
	}
	if (invalid == 1) != (want.Expect == "invalid") || (invalid == 1 && want.Error != errDecryptFailed.name) {
		return fmt.Errorf("case expect %s/%s with %d invalid segments", want.Expect, want.Error, invalid)
	}
	return checkFrameStreams(streams, s.idStatic)
}

// checkFrameStreams decodes the frames of both directions and checks the
// request/result pairing and the hello binding.
func checkFrameStreams(streams map[string][]byte, transportPub []byte) error {
	w, err := loadWireRules()
	if err != nil {
		return err
	}
	rows, err := readFrameTable()
	if err != nil {
		return err
	}
	requests := map[uint64]uint64{} // request id -> frame type
	results := map[string]string{"hello": "welcome", "upload-prekeys": "upload-result", "fetch-prekeys": "fetch-result",
		"send": "send-result", "subscribe-presence": "presence-result", "set-privacy": "empty", "set-contacts": "empty"}
	first := true
	for _, from := range []string{"initiator", "responder"} {
		st := streams[from]
		for len(st) > 0 {
			if len(st) < 4 {
				return fmt.Errorf("%s: the stream ends inside a length", from)
			}
			n := binary.BigEndian.Uint32(st)
			if int(n) > len(st)-4 {
				return fmt.Errorf("%s: the stream ends inside a frame", from)
			}
			enc := st[4 : 4+n]
			st = st[4+n:]
			it, err := w.decodeWire("frame", enc)
			if err != nil {
				return fmt.Errorf("%s: a frame does not decode: %v", from, err)
			}
			row := rows[it.get(2).val-1]
			sender := map[string]string{"initiator": "device", "responder": "server"}[from]
			if row.sender != sender && row.sender != "either" {
				return fmt.Errorf("%s sends a %s frame (MSG-004)", from, row.name)
			}
			body := row.body
			switch {
			case row.name == "result":
				body = results[rows[requests[it.get(3).val]-1].name]
				delete(requests, it.get(3).val)
			case row.name == "error":
				body = "error-body"
			case row.name == "typing" && from == "responder":
				body = "typing-notice"
			case row.name == "typing":
				body = "typing"
			default:
				body = strings.Trim(body, "`")
			}
			if row.requestID == "required" && row.name != "result" {
				requests[it.get(3).val] = row.typ
			}
			if from == "initiator" && first {
				if row.name != "hello" {
					return fmt.Errorf("the device's first frame is not hello (TRN-013)")
				}
				first = false
			}
			if b := it.get(4); b != nil {
				bi, err := w.decodeWire(body, b.bstr)
				if err != nil {
					return fmt.Errorf("%s: a %s body does not decode as %s: %v", from, row.name, body, err)
				}
				if row.name == "hello" {
					ikEnc := bi.get(4).bstr
					msg := bindingMessage(transportPub, uint32(bi.get(3).val), string(bi.get(2).bstr))
					if err := xeddsaVerify(ikEnc[1:], msg, bi.get(5).bstr); err != nil {
						return fmt.Errorf("the hello's binding does not verify")
					}
				}
			}
		}
	}
	if len(requests) != 0 {
		return fmt.Errorf("%d requests have no result (MSG-022)", len(requests))
	}
	return nil
}
