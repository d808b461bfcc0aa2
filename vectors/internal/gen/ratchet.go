package gen

import (
	"bytes"
	"fmt"
	"io"
)

// ratchetCase is one case of ratchet.json (section 9.2).
type ratchetCase struct {
	caseHead
	SK                  hexBytes      `json:"sk"`
	AD                  hexBytes      `json:"ad"`
	AliceRatchetPrivate hexBytes      `json:"alice_ratchet_private"`
	BobRatchetPrivate   hexBytes      `json:"bob_ratchet_private"`
	Steps               []ratchetStep `json:"steps"`
	Expect              string        `json:"expect"`
	Error               string        `json:"error,omitempty"`
}

// ratchetStep is one step of a ratchet case.
type ratchetStep struct {
	Op    string `json:"op"`
	Party string `json:"party"`
	// Plaintext and Message are omitted when nil (a failed decrypt, a
	// failed encrypt); an empty plaintext is written as "".
	Plaintext      hexBytes `json:"plaintext,omitzero"`
	Message        hexBytes `json:"message,omitzero"`
	RatchetPrivate hexBytes `json:"ratchet_private,omitempty"`
	Expect         string   `json:"expect"`
	Error          string   `json:"error,omitempty"`
}

var ratchetNotes = notes{
	{"out_of_order", "messages are decrypted in another order than they were sent"},
	{"dh_ratchet", "the case exercises DH ratchet steps: several in a row, or one that a failure rolls back"},
	{"skipped_keys", "message keys are skipped, stored, and used later or evicted"},
	{"injected", "a decrypt step's message is not the output of an encrypt step of the case: the generator made it from a copy of the sender's state (for example after unlisted messages), or altered a message; the sender's listed state never includes it"},
	{"limit", "a limit of section 5.1 is reached exactly or exceeded by one"},
	{"replay", "a message is decrypted a second time"},
	{"tampered", "a message is altered in transit, or made under other associated data"},
	{"padding", "the padded plaintext, authenticated and decrypted correctly, has invalid padding"},
	{"cbor", "the message or its header breaks the CBOR profile or the CDDL of section 5.6"},
	{"header_key", "the ratchet key in the header is not a valid X25519 public key encoding"},
	{"low_order", "the ratchet key in the header has small order"},
	{"sender_failure", "an encrypt step fails; it has no message"},
	{"state_unchanged", "a failed step is followed by steps that succeed only if the failure left the state unchanged (RAT-010)"},
	{"padding_lengths", "plaintext lengths around the boundaries of pad_len"},
	{"pqxdh_session", "sk, ad, alice_ratchet_private and bob_ratchet_private (Bob's signed prekey) are those of a valid case of pqxdh.json, whose prekey_message encloses the case's first message and whose bob_ratchet_private is the key of Bob's first decrypt step; Alice's later messages before she hears back travel in prekey messages with the same Enc(IK_A) and Enc(EK_A) (PQX-007), which Bob decrypts in this session (PQX-011)"},
}

// ratchetBuilder records a ratchet case while running both parties.
type ratchetBuilder struct {
	c          ratchetCase
	st         *stream
	alice, bob *session
	err        error
}

func newRatchetBuilder(id, comment string, flags, reqs []string) *ratchetBuilder {
	st := newStream("Missive v1 test vectors: ratchet: " + id)
	sk, ad := st.read(32), st.read(66)
	alice, bob := st.read(32), st.read(32)
	return newRatchetBuilderFrom(st, id, comment, flags, reqs, sk, ad, alice, bob)
}

// newRatchetBuilderFrom starts a case from given initial values; st supplies
// its plaintexts and the keys drawn in DH ratchet steps.
func newRatchetBuilderFrom(st *stream, id, comment string, flags, reqs []string, sk, ad, alicePriv, bobPriv []byte) *ratchetBuilder {
	b := &ratchetBuilder{st: st}
	b.c = ratchetCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs}, Expect: "valid"}
	if b.c.Flags == nil {
		b.c.Flags = []string{}
	}
	b.c.SK, b.c.AD, b.c.AliceRatchetPrivate, b.c.BobRatchetPrivate = sk, ad, alicePriv, bobPriv
	b.alice, b.bob, b.err = initRatchet(sk, ad, alicePriv, bobPriv)
	return b
}

// initRatchet initializes Alice and Bob directly from SK (section 5.4).
func initRatchet(sk, ad, alicePriv, bobPriv []byte) (*session, *session, error) {
	bobPub, err := x25519Public(bobPriv)
	if err != nil {
		return nil, nil, err
	}
	alice, err := newAlice(sk, ad, alicePriv, bobPub)
	if err != nil {
		return nil, nil, err
	}
	bob, err := newBob(sk, ad, bobPriv)
	if err != nil {
		return nil, nil, err
	}
	return alice, bob, nil
}

func (b *ratchetBuilder) party(name string) *session {
	if name == "alice" {
		return b.alice
	}
	return b.bob
}

func (b *ratchetBuilder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(b.c.ID+": "+format, args...)
	}
}

// pt draws a plaintext of n bytes.
func (b *ratchetBuilder) pt(n int) []byte { return b.st.read(n) }

// sendN records n valid encrypt steps of party, the i-th of a plaintext
// of size(i) bytes, and returns the plaintexts and the messages.
func (b *ratchetBuilder) sendN(party string, n int, size func(i int) int) (pts, msgs [][]byte) {
	for i := range n {
		pt := b.pt(size(i))
		pts, msgs = append(pts, pt), append(msgs, b.encrypt(party, pt))
	}
	return pts, msgs
}

// encrypt records a valid encrypt step and returns the message.
func (b *ratchetBuilder) encrypt(party string, pt []byte) []byte {
	if b.err != nil {
		return nil
	}
	msg, err := b.party(party).encrypt(pt)
	if err != nil {
		b.fail("%s encrypt: %v", party, err)
		return nil
	}
	b.c.Steps = append(b.c.Steps, ratchetStep{Op: "encrypt", Party: party, Plaintext: pt, Message: msg, Expect: "valid"})
	return msg
}

// encryptFail records an encrypt step that must fail.
func (b *ratchetBuilder) encryptFail(party string, pt []byte, want *codeError) {
	if b.err != nil {
		return
	}
	_, err := b.party(party).encrypt(pt)
	if err != want {
		b.fail("%s encrypt: got %v, want %v", party, err, want)
		return
	}
	b.c.Steps = append(b.c.Steps, ratchetStep{Op: "encrypt", Party: party, Plaintext: pt,
		Expect: "invalid", Error: want.name})
}

// decrypt records a decrypt step: valid when want is nil, and then it must
// return wantPT.
func (b *ratchetBuilder) decrypt(party string, msg, wantPT []byte, want *codeError) {
	b.decryptWith(party, msg, wantPT, want, b.st)
}

// decryptWith is decrypt with the randomness of a DH ratchet step taken from src.
func (b *ratchetBuilder) decryptWith(party string, msg, wantPT []byte, want *codeError, src io.Reader) {
	if b.err != nil {
		return
	}
	rec := &recorder{src: src}
	pt, err := b.party(party).decrypt(msg, rec)
	if err != nil && want == nil {
		b.fail("%s decrypt: %v", party, err)
		return
	}
	if want != nil && err != want {
		b.fail("%s decrypt: got %v, want %v", party, err, want)
		return
	}
	if want == nil && !bytes.Equal(pt, wantPT) {
		b.fail("%s decrypt: wrong plaintext", party)
		return
	}
	step := ratchetStep{Op: "decrypt", Party: party, Plaintext: pt, Message: msg, Expect: "valid"}
	if len(rec.got) > 0 {
		if len(rec.got) != 32 {
			b.fail("%s decrypt drew %d random bytes", party, len(rec.got))
			return
		}
		step.RatchetPrivate = rec.got
	}
	if want != nil {
		step.Plaintext, step.Expect, step.Error = nil, "invalid", want.name
	}
	b.c.Steps = append(b.c.Steps, step)
}

func (b *ratchetBuilder) ok(party string, msg, pt []byte) { b.decrypt(party, msg, pt, nil) }

// peek returns a copy of a party's state, whose operations are not recorded.
func (b *ratchetBuilder) peek(party string) *session { return b.party(party).clone() }

// offEncrypt encrypts on an unrecorded copy.
func (b *ratchetBuilder) offEncrypt(s *session, pt []byte) []byte {
	if b.err != nil {
		return nil
	}
	msg, err := s.encrypt(pt)
	if err != nil {
		b.fail("unrecorded encrypt: %v", err)
	}
	return msg
}

// offDecrypt decrypts on an unrecorded copy, with randomness from the case stream.
func (b *ratchetBuilder) offDecrypt(s *session, msg []byte) {
	if b.err != nil {
		return
	}
	if _, err := s.decrypt(msg, b.st); err != nil {
		b.fail("unrecorded decrypt: %v", err)
	}
}

func (b *ratchetBuilder) finish() (ratchetCase, error) {
	if b.err != nil {
		return ratchetCase{}, b.err
	}
	for _, s := range b.c.Steps {
		// The case's error is that of its first failing step.
		if s.Expect == "invalid" && b.c.Expect != "invalid" {
			b.c.Expect, b.c.Error = "invalid", s.Error
		}
		if s.Plaintext == nil && (s.Op == "encrypt" || s.Expect == "valid") {
			return ratchetCase{}, fmt.Errorf("%s: a %s step without plaintext", b.c.ID, s.Op)
		}
		if s.Message == nil && (s.Op == "decrypt" || s.Expect == "valid") {
			return ratchetCase{}, fmt.Errorf("%s: a %s step without message", b.c.ID, s.Op)
		}
		if (s.Plaintext == nil) != (s.Op == "decrypt" && s.Expect == "invalid") ||
			(s.Message == nil) != (s.Op == "encrypt" && s.Expect == "invalid") {
			return ratchetCase{}, fmt.Errorf("%s: plaintext or message present in a failed step", b.c.ID)
		}
	}
	if b.c.Expect == "invalid" {
		b.c.Requirements = withErr001(b.c.Requirements)
	}
	if err := replayRatchetCase(&b.c); err != nil {
		return ratchetCase{}, fmt.Errorf("%s: replay: %v", b.c.ID, err)
	}
	return b.c, nil
}

// replayRatchetCase runs a finished case the way a consumer does, from its
// fields only, and checks that every step gives the recorded result and that
// ratchet_private is present exactly when a step draws randomness.
func replayRatchetCase(c *ratchetCase) error {
	alice, bob, err := initRatchet(c.SK, c.AD, c.AliceRatchetPrivate, c.BobRatchetPrivate)
	if err != nil {
		return err
	}
	for i, s := range c.Steps {
		p := alice
		if s.Party == "bob" {
			p = bob
		}
		var got []byte
		var err error
		switch s.Op {
		case "encrypt":
			got, err = p.encrypt(s.Plaintext)
			if err == nil && !bytes.Equal(got, s.Message) {
				return fmt.Errorf("step %d: encrypt: message differs", i)
			}
		case "decrypt":
			var rnd io.Reader = emptyReader{}
			var br *bytes.Reader
			if s.RatchetPrivate != nil {
				br = bytes.NewReader(s.RatchetPrivate)
				rnd = br
			}
			got, err = p.decrypt(s.Message, rnd)
			if err == nil && !bytes.Equal(got, s.Plaintext) {
				return fmt.Errorf("step %d: decrypt: plaintext differs", i)
			}
			if br != nil && br.Len() != 0 {
				return fmt.Errorf("step %d: ratchet_private not used", i)
			}
		default:
			return fmt.Errorf("step %d: unknown op %q", i, s.Op)
		}
		name, nerr := errName(err)
		if nerr != nil {
			return fmt.Errorf("step %d: %v", i, nerr)
		}
		if name != s.Error || (name == "") != (s.Expect == "valid") {
			return fmt.Errorf("step %d: got error %q, want %q", i, name, s.Error)
		}
	}
	return nil
}

// alter re-encodes a ratchet message with some parts replaced.
type msgEdit struct {
	version *uint64
	header  []byte
	ct      []byte
}

func editMessage(msg []byte, e msgEdit) ([]byte, error) {
	pm, err := parseRatchetMessage(msg)
	if err != nil {
		return nil, err
	}
	v := uint64(ratVersion)
	if e.version != nil {
		v = *e.version
	}
	h, ct := pm.header, pm.ct
	if e.header != nil {
		h = e.header
	}
	if e.ct != nil {
		ct = e.ct
	}
	return ratchetMessage(v, h, ct), nil
}

func genRatchet() (any, error) {
	var cases []ratchetCase
	add := func(c ratchetCase, err error) error {
		if err != nil {
			return err
		}
		cases = append(cases, c)
		return nil
	}
	basic := []string{"RAT-001", "RAT-002", "RAT-003", "RAT-004", "RAT-007", "RAT-009", "CBOR-001", "CBOR-002", "CBOR-003"}
	for _, f := range ratchetCaseFuncs {
		if err := add(f(basic)); err != nil {
			return nil, err
		}
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("ratchet", ratchetNotes, heads); err != nil {
		return nil, err
	}
	return newFile("ratchet", "The Double Ratchet (chapter 5), started directly from sk: messages in and out of "+
		"order, DH ratchet steps, skipped keys and their limits, replays, forgeries, padding, and the decoding of "+
		"ratchet messages. A failed step leaves the state unchanged and later steps continue from it; a case's error "+
		"is that of its first failing step. A failed decrypt step has no plaintext and a failed encrypt step no "+
		"message. ratchet_private is present exactly when a decrypt step draws a new ratchet key (section 5.8), "+
		"including a step that draws it and then fails.", ratchetNotes, cases), nil
}
