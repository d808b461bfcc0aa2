package gen

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// This file writes sender_keys.json (section 9.2): a sender key made from
// drawn randomness, its distribution, group messages it encrypts (GRP-005),
// and a receiving device that processes distributions (GRP-006) and group
// messages (GRP-007) from a stated state, with its sender keys after each
// step (GRP-008).

// senderKeyCase is one case of sender_keys.json.
type senderKeyCase struct {
	caseHead
	GroupID        hexBytes   `json:"group_id"`
	States         []hexBytes `json:"states"`
	Sender         string     `json:"sender"`
	Epoch          uint32     `json:"epoch"`
	KeyID          uint32     `json:"key_id"`
	Iteration      uint32     `json:"iteration"`
	ChainKey       hexBytes   `json:"chain_key"`
	SigningPrivate hexBytes   `json:"signing_private"`
	Distribution   hexBytes   `json:"distribution"`
	Keys           []skKey    `json:"keys"`
	Steps          []skStep   `json:"steps"`
	Expect         string     `json:"expect"`
	Error          string     `json:"error,omitempty"`
}

// skKey is a sender key as the receiving device holds it.
type skKey struct {
	Sender     string      `json:"sender"`
	KeyID      uint32      `json:"key_id"`
	Epoch      uint32      `json:"epoch"`
	Iteration  uint32      `json:"iteration"`
	ChainKey   hexBytes    `json:"chain_key"`
	SigningKey hexBytes    `json:"signing_key"`
	Skipped    []skSkipped `json:"skipped"`
}

type skSkipped struct {
	Iteration  uint32   `json:"iteration"`
	MessageKey hexBytes `json:"message_key"`
}

// skStep is one step of a case.
type skStep struct {
	Op           string   `json:"op"`
	From         string   `json:"from,omitempty"`
	Iteration    *uint32  `json:"iteration,omitempty"`
	GroupVersion uint64   `json:"group_version,omitempty"`
	MessageID    hexBytes `json:"message_id,omitempty"`
	SentAt       uint64   `json:"sent_at,omitempty"`
	Distribution hexBytes `json:"distribution,omitempty"`
	Content      hexBytes `json:"content,omitempty"`
	Z            hexBytes `json:"z,omitempty"`
	Message      hexBytes `json:"message,omitempty"`
	Keys         *[]skKey `json:"keys,omitempty"`
	Expect       string   `json:"expect"`
	Error        string   `json:"error,omitempty"`
}

var senderKeyNotes = notes{
	{"out_of_order", "group messages reach the receiver in another order than they were sent: skipped message keys are " +
		"stored and used"},
	{"skip_limit", "a message MAX_SENDER_KEY_SKIP (1000) iterations ahead of the key's next iteration, the most a " +
		"message may skip, or one more"},
	{"replay", "a group message the receiver has already decrypted"},
	{"signature", "a group message whose signature is not the sender key's signing key's over LABEL_GROUP_MESSAGE || " +
		"field 1; the comment says how it was made"},
	{"tampered", "a group message changed after it was made; the comment says how"},
	{"membership", "a message or a distribution from a device of an account that is not a member (GRP-006, GRP-007 step " +
		"3)"},
	{"removal", "the receiver's states remove an account after the epoch of a sender key (GRP-007 step 5, GRP-011)"},
	{"distribution", "the receiver processes sender-key distributions (GRP-006)"},
	{"unknown", "the receiver holds no sender key, or no state, that the message needs (GRP-007 steps 2 and 4)"},
	{"content", "the decrypted content fails its checks (GRP-007 step 9)"},
	{"drawn_chain", "the sender key is not made at iteration 0: its chain key, drawn from the case's stream, stands for " +
		"the chain key of a key that has reached iteration"},
	{"decode", "a group message that does not decode (GRP-007 step 1)"},
	{"check_order", "several checks of GRP-007 fail; the step's error is that of the first"},
}

const senderKeyDescription = "A sender key of the device sender for the group group_id (section 16.3), group messages " +
	"it encrypts, and a receiving device, a member of the group, that processes them. The sender key has epoch, key_id, " +
	"and at iteration its chain key chain_key; signing_private is its signing key (an X25519 private key, used with " +
	"XEdDSA). A key made by the case has iteration 0, and chain_key and signing_private are the 32 + 32 bytes drawn to " +
	"make it, in that order (section 2.2); distribution is the sender-key-distribution of the key at iteration (the " +
	"value of field 13 of its sender-key content). The receiving device has accepted the signed group states of " +
	"states, in order (each passes GRP-001; they start at version 1; states is empty when the device holds no state of " +
	"the group), and holds, before the first step, the sender keys of keys, sorted by sender then key id: each with " +
	"its sender address, key id, epoch, next iteration with the chain key at it, the signing key's encoding, and the " +
	"skipped message keys stored for it, in increasing iteration (the order they were stored in). The steps run in " +
	"order. An encrypt step is the sender's: it moves its chain forward to iteration (the messages of the iterations " +
	"it passes were sent, but are not part of the case), then encrypts content (a content encoding) for group " +
	"version group_version with signing randomness z (GRP-005: key, nonce, AD, pad, body, signature as section 16.3), " +
	"giving message, and its chain moves to the next iteration; an encrypt step is always valid. A distribute step is " +
	"the receiver's: it receives sender-key content from the device from carrying distribution, and applies GRP-006 " +
	"(from's account is a member in the latest state it accepted, else policy.not_member, or, when the distribution's " +
	"epoch is above that state's version, state.unknown_group: a device would fetch the states it lacks first, which " +
	"a receiver cannot do here; it keeps for each sender " +
	"device the MAX_SENDER_KEYS keys with the highest key ids, and a distribution of a key id it holds changes " +
	"nothing). A decrypt step is the receiver's: a delivery from the device from, with message_id and sent_at, whose " +
	"ciphertext is message, processed with the checks of GRP-007 in order; content is the decrypted content of a valid " +
	"step (a content encoding, which passes step 9). A receiver that has not accepted a message's group version cannot " +
	"fetch the states it lacks here, so step 2 fails with state.unknown_group. The AD of a message is built from the " +
	"group id and the key id and iteration of its body, and the epoch of the receiver's key. keys, in every distribute " +
	"and decrypt step, are the receiver's sender keys after the step: a failed step changes none (GRP-008); a valid " +
	"decrypt step stores the keys of the iterations it skips (evicting the oldest beyond MAX_SENDER_KEY_SKIPPED) and " +
	"moves the key to the iteration after the message's, or uses and deletes a stored skipped key. A step's expect is " +
	"\"valid\", or \"invalid\" with error; a case is invalid when one of its steps is, with the error of its first " +
	"invalid step."

// skReceiver is the receiving device of a case.
type skReceiver struct {
	groupID []byte
	states  map[uint64]groupState
	latest  uint64
	keys    map[string][]*senderKey // by sender address, sorted by key id
}

// hold adds a key as GRP-006 keeps it.
func (r *skReceiver) hold(sender string, k *senderKey) {
	ks := r.keys[sender]
	for _, h := range ks {
		if h.keyID == k.keyID {
			return // a key id it holds changes nothing
		}
	}
	ks = append(ks, k)
	sort.Slice(ks, func(i, j int) bool { return ks[i].keyID < ks[j].keyID })
	if len(ks) > maxSenderKeys {
		ks = ks[len(ks)-maxSenderKeys:]
	}
	r.keys[sender] = ks
}

// distribute is GRP-006.
func (r *skReceiver) distribute(from rcAddr, dist []byte) error {
	w, err := loadWireRules()
	if err != nil {
		return err
	}
	d, err := w.decodeWire("sender-key-distribution", dist)
	if err != nil {
		return err
	}
	if r.latest == 0 {
		return fmt.Errorf("a distribution with no state: not a case of this family")
	}
	if m := r.states[r.latest].member(from.account); m == nil {
		if d.get(2).val > r.latest {
			return errUnknownGroup // the states it lacks first (GRP-006), which it cannot fetch here
		}
		return errNotMember
	}
	if !bytes.Equal(d.get(1).bstr, r.groupID) {
		return fmt.Errorf("a distribution for another group: not a case of this family")
	}
	r.hold(from.String(), &senderKey{groupID: cloneBytes(r.groupID), epoch: uint32(d.get(2).val), keyID: uint32(d.get(3).val),
		iteration: uint32(d.get(4).val), ck: cloneBytes(d.get(5).bstr), sigPub: cloneBytes(d.get(6).bstr)})
	return nil
}

// removes reports whether state v removes an account of state v - 1.
func (r *skReceiver) removes(v uint64) bool {
	prev, ok := r.states[v-1]
	if !ok {
		return false
	}
	cur := r.states[v]
	for _, m := range prev.members {
		if cur.member(m.account) == nil {
			return true
		}
	}
	return false
}

// decrypt is GRP-007; it commits the key only when every check passes.
func (r *skReceiver) decrypt(from rcAddr, messageID []byte, sentAt uint64, msg []byte) ([]byte, error) {
	// Step 1.
	p, err := parseGroupMessage(msg)
	if err != nil {
		return nil, err
	}
	// Step 2.
	if r.latest == 0 || !bytes.Equal(p.groupID, r.groupID) {
		return nil, errUnknownGroup
	}
	st, ok := r.states[p.groupVersion]
	if !ok {
		return nil, errUnknownGroup
	}
	// Step 3.
	if st.member(from.account) == nil {
		return nil, errNotMember
	}
	// Step 4.
	var k *senderKey
	var at int
	for i, h := range r.keys[from.String()] {
		if h.keyID == p.keyID {
			k, at = h, i
		}
	}
	if k == nil {
		return nil, errUnknownSenderKey
	}
	// Step 5.
	for v := uint64(k.epoch) + 1; v <= p.groupVersion; v++ {
		if r.removes(v) {
			return nil, errStaleSenderKey
		}
	}
	// Step 6.
	if err := k.verify(p); err != nil {
		return nil, err
	}
	// Steps 7 and 8.
	pt, next, err := k.open(p)
	if err != nil {
		return nil, err
	}
	// Step 9.
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	c, err := w.decodeWire("content", pt)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c.get(3).bstr, messageID) || c.get(4).val != sentAt {
		return nil, errContentMismatch
	}
	r.keys[from.String()][at] = next
	return pt, nil
}

// view returns the receiver's keys as the case lists them.
func (r *skReceiver) view() []skKey {
	out := []skKey{}
	var senders []string
	for a := range r.keys {
		senders = append(senders, a)
	}
	sort.Strings(senders)
	for _, a := range senders {
		for _, k := range r.keys[a] {
			sk := skKey{Sender: a, KeyID: k.keyID, Epoch: k.epoch, Iteration: k.iteration, ChainKey: k.ck,
				SigningKey: k.sigPub, Skipped: []skSkipped{}}
			for _, s := range k.skipped {
				sk.Skipped = append(sk.Skipped, skSkipped{s.iteration, s.mk})
			}
			out = append(out, sk)
		}
	}
	return out
}

// skWorld builds one case.
type skWorld struct {
	v      *vb
	gw     *gsWorld
	states []*gsState
	sender rcAddr
	key    *senderKey // the sender's key
	start  uint32     // its iteration when made
	ck0    []byte     // its chain key then
	dist0  []byte     // its distribution then
	recv   *skReceiver
	keys0  []skKey
	steps  []skStep
	msgs   []skMsg // the messages encrypted, in order
	clock  uint64
	err    error
}

// skMsg is a message an encrypt step made.
type skMsg struct {
	id      []byte
	sentAt  uint64
	content []byte
	msg     []byte
	iter    uint32
}

func (w *skWorld) fail(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

// The states of the group of sender_keys.json:
//
//	v1: alice/1 creates it: alice (admin), bob, carol
//	v2: alice/1 adds dave
//	v3: alice/1 removes bob
func (w *skWorld) groupStates(n int) {
	a1 := rcAddr{"alice", 1}
	alice, bob, carol, dave := gMember{"alice", true}, gMember{"bob", false}, gMember{"carol", false}, gMember{"dave", false}
	all := []groupState{
		w.gw.st(1, a1, "Book club", alice, bob, carol),
		w.gw.st(2, a1, "Book club", alice, bob, carol, dave),
		w.gw.st(3, a1, "Book club", alice, carol, dave),
	}
	w.states = nil
	w.recv.states, w.recv.latest = map[uint64]groupState{}, 0
	for _, s := range all[:n] {
		w.states = append(w.states, w.gw.sign(s))
		w.recv.states[s.version] = s
		w.recv.latest = s.version
	}
}

// makeKey makes the case's sender key: 32 bytes of chain key, then 32 of
// signing key, from the stream; at iteration start (0 for a key made here).
func (w *skWorld) makeKey(sender rcAddr, epoch, keyID, start uint32) {
	k, err := makeSenderKey(w.gw.gid, epoch, keyID, w.v.read(32), w.v.read(32))
	w.fail(err)
	if k != nil {
		k.iteration = start
		w.ck0, w.dist0 = cloneBytes(k.ck), k.distribution()
	}
	w.sender, w.key, w.start = sender, k, start
}

// otherKey makes a key of another sender (or another key of the sender)
// that the receiver holds, at iteration 0.
func (w *skWorld) otherKey(sender string, epoch, keyID uint32) *senderKey {
	k, err := makeSenderKey(w.gw.gid, epoch, keyID, w.v.read(32), w.v.read(32))
	w.fail(err)
	return k
}

// hold makes the receiver hold k's distribution at its current iteration,
// before the steps.
func (w *skWorld) hold(sender string, k *senderKey) {
	w.recv.hold(sender, k.receiverCopy())
	w.keys0 = w.recv.view()
}

// encrypt is an encrypt step of the case's key at iteration i.
func (w *skWorld) encrypt(i uint32, groupVersion uint64, text string) *skMsg {
	w.key.advance(i)
	w.clock += 1000
	id := w.v.messageID()
	ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText(text)}))
	z := w.v.read(64)
	msg, err := w.key.encrypt(groupVersion, ct, z)
	w.fail(err)
	it := i
	w.steps = append(w.steps, skStep{Op: "encrypt", Iteration: &it, GroupVersion: groupVersion, Content: ct, Z: z,
		Message: msg, Expect: "valid"})
	m := skMsg{id: id, sentAt: w.clock, content: ct, msg: msg, iter: i}
	w.msgs = append(w.msgs, m)
	return &w.msgs[len(w.msgs)-1]
}

// decrypt is a decrypt step of m from the sender, delivered from from with
// the message id and sent-at of its content.
func (w *skWorld) decrypt(from string, m *skMsg, msg []byte, want *codeError) {
	w.decryptAs(from, m.id, m.sentAt, msg, m.content, want)
}

func (w *skWorld) decryptAs(from string, id []byte, sentAt uint64, msg, ct []byte, want *codeError) {
	a, err := parseAddr(from)
	w.fail(err)
	before := w.recv.view()
	pt, err := w.recv.decrypt(a, id, sentAt, msg)
	st := skStep{Op: "decrypt", From: from, MessageID: id, SentAt: sentAt, Message: msg, Expect: "valid"}
	keys := w.recv.view()
	st.Keys = &keys
	if want != nil {
		st.Expect, st.Error = "invalid", want.name
		if err != error(want) {
			w.fail(fmt.Errorf("decrypt step %d: got %v, want %v", len(w.steps), err, want))
		}
		if !sameKeys(before, keys) {
			w.fail(fmt.Errorf("decrypt step %d: a failed step changed the keys", len(w.steps)))
		}
	} else {
		switch {
		case err != nil:
			w.fail(fmt.Errorf("decrypt step %d: %v", len(w.steps), err))
		case !bytes.Equal(pt, ct):
			w.fail(fmt.Errorf("decrypt step %d: another plaintext", len(w.steps)))
		}
		st.Content = pt
	}
	w.steps = append(w.steps, st)
}

// distribute is a distribute step.
func (w *skWorld) distribute(from string, dist []byte, want *codeError) {
	a, err := parseAddr(from)
	w.fail(err)
	before := w.recv.view()
	err = w.recv.distribute(a, dist)
	st := skStep{Op: "distribute", From: from, Distribution: dist, Expect: "valid"}
	keys := w.recv.view()
	st.Keys = &keys
	if want != nil {
		st.Expect, st.Error = "invalid", want.name
		if err != error(want) || !sameKeys(before, keys) {
			w.fail(fmt.Errorf("distribute step %d: got %v, want %v, or the keys changed", len(w.steps), err, want))
		}
	} else if err != nil {
		w.fail(fmt.Errorf("distribute step %d: %v", len(w.steps), err))
	}
	w.steps = append(w.steps, st)
}

func sameKeys(a, b []skKey) bool {
	ea, _ := marshalFile(a)
	eb, _ := marshalFile(b)
	return bytes.Equal(ea, eb)
}

// resignBody returns a group message whose body is body, signed by priv
// over LABEL_GROUP_MESSAGE || body with Z from the stream.
func (w *skWorld) resignBody(body, priv []byte) []byte {
	sig, err := xeddsaSign(priv, append([]byte(labelGroupMessage), body...), w.v.read(64))
	w.fail(err)
	return groupMessage(body, sig)
}

// editBody decodes a group message's body, applies f to it and signs the
// result with the sender's signing key.
func (w *skWorld) editBody(msg []byte, f func(n *node)) []byte {
	b := nodeOf(nodeOf(msg).get(1).bstr)
	f(b)
	return w.resignBody(b.encode(), w.key.sigPriv)
}

func flipSigS(msg []byte) []byte {
	n := nodeOf(msg)
	sig := cloneBytes(n.get(2).bstr)
	sig[32] ^= 0x01
	n.set(2, bstrNode(sig))
	return n.encode()
}

func genSenderKeys() (any, error) {
	a1, a2 := "alice/1", "alice/2"
	type spec struct {
		id, comment string
		flags, reqs []string
		build       func(w *skWorld)
	}
	// standard: states v1 to n, alice/1's key id 1 of epoch 1 made at
	// iteration 0 and held by the receiver at iteration 0.
	standard := func(w *skWorld, n int) {
		w.groupStates(n)
		w.makeKey(rcAddr{"alice", 1}, 1, 1, 0)
		w.hold(a1, w.key)
	}
	specs := []spec{
		{"sender_key_in_order", "alice/1 makes key 1 (epoch 1) and sends three messages; the receiver, holding the " +
			"key at iteration 0, decrypts them in order.", nil, []string{"GRP-005", "GRP-007", "GRP-008"},
			func(w *skWorld) {
				standard(w, 1)
				for i := uint32(0); i < 3; i++ {
					m := w.encrypt(i, 1, fmt.Sprintf("Chapter %d tonight?", i+1))
					w.decrypt(a1, m, m.msg, nil)
				}
			}},
		{"sender_key_out_of_order", "Five messages arrive in the order 3, 0, 4, 1, 2: the keys of iterations 0 to 2 " +
			"are stored when 3 arrives, then used and deleted.", []string{"out_of_order"},
			[]string{"GRP-005", "GRP-007", "GRP-008"}, func(w *skWorld) {
				standard(w, 1)
				var ms []*skMsg
				for i := uint32(0); i < 5; i++ {
					ms = append(ms, w.encrypt(i, 1, fmt.Sprintf("part %d", i)))
				}
				for _, i := range []int{3, 0, 4, 1, 2} {
					w.decrypt(a1, ms[i], ms[i].msg, nil)
				}
			}},
		{"sender_key_replay", "Messages 0 and 1 are decrypted, then message 1 again: below the key's next " +
			"iteration, with no stored key for it.", []string{"replay"}, []string{"GRP-007", "GRP-008"},
			func(w *skWorld) {
				standard(w, 1)
				m0, m1 := w.encrypt(0, 1, "hi"), w.encrypt(1, 1, "hi again")
				w.decrypt(a1, m0, m0.msg, nil)
				w.decrypt(a1, m1, m1.msg, nil)
				w.decrypt(a1, m1, m1.msg, errDuplicateMessage)
			}},
		{"sender_key_replay_of_skipped", "Message 2 arrives first (the keys of 0 and 1 are stored), then message 0 " +
			"(its stored key is used and deleted), then message 0 again.", []string{"replay", "out_of_order"},
			[]string{"GRP-007", "GRP-008"}, func(w *skWorld) {
				standard(w, 1)
				m0, _, m2 := w.encrypt(0, 1, "a"), w.encrypt(1, 1, "b"), w.encrypt(2, 1, "c")
				w.decrypt(a1, m2, m2.msg, nil)
				w.decrypt(a1, m0, m0.msg, nil)
				w.decrypt(a1, m0, m0.msg, errDuplicateMessage)
			}},
		{"sender_key_skip_at_limit", "The receiver holds the key at iteration 0; the first message it gets is at " +
			"iteration 1000, exactly MAX_SENDER_KEY_SKIP ahead: it stores the keys of iterations 0 to 999.",
			[]string{"skip_limit", "out_of_order"}, []string{"GRP-007", "GRP-008"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(1000, 1, "a long way ahead")
				w.decrypt(a1, m, m.msg, nil)
			}},
		{"sender_key_skip_beyond_limit", "The first message the receiver gets is at iteration 1001, one more than " +
			"MAX_SENDER_KEY_SKIP ahead: refused, and nothing is stored; message 1002 then fails likewise.",
			[]string{"skip_limit"}, []string{"GRP-007", "GRP-008"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(1001, 1, "too far ahead")
				m2 := w.encrypt(1002, 1, "still too far")
				w.decrypt(a1, m, m.msg, errTooManySkipped)
				w.decrypt(a1, m2, m2.msg, errTooManySkipped)
			}},
		{"sender_key_skip_limit_from_later_iteration", "The receiver has decrypted messages 0 to 4 (next iteration " +
			"5); message 1006 (1001 ahead) is refused, message 1005 (1000 ahead) is accepted.", []string{"skip_limit",
			"out_of_order"}, []string{"GRP-007", "GRP-008"}, func(w *skWorld) {
			standard(w, 1)
			for i := uint32(0); i < 5; i++ {
				m := w.encrypt(i, 1, "warming up")
				w.decrypt(a1, m, m.msg, nil)
			}
			m5 := w.encrypt(1005, 1, "at the limit")
			m6 := w.encrypt(1006, 1, "beyond it")
			w.decrypt(a1, m6, m6.msg, errTooManySkipped)
			w.decrypt(a1, m5, m5.msg, nil)
		}},
		{"sender_key_bad_signature", "Message 0 with the low bit of s of its signature flipped is refused; the " +
			"message itself then decrypts.", []string{"signature"}, []string{"GRP-007", "GRP-008"}, func(w *skWorld) {
			standard(w, 1)
			m := w.encrypt(0, 1, "signed")
			w.decrypt(a1, m, flipSigS(m.msg), errBadSignature)
			w.decrypt(a1, m, m.msg, nil)
		}},
		{"sender_key_signed_by_other_key", "Message 0's body signed by bob/1's signing key (of bob's own sender key, " +
			"which the receiver holds) instead of alice/1's: delivered from alice/1.", []string{"signature"},
			[]string{"GRP-007", "GRP-008"}, func(w *skWorld) {
				standard(w, 1)
				bk := w.otherKey("bob/1", 1, 1)
				w.hold("bob/1", bk)
				m := w.encrypt(0, 1, "signed by whom?")
				w.decrypt(a1, m, w.resignBody(nodeOf(m.msg).get(1).bstr, bk.sigPriv), errBadSignature)
			}},
		{"sender_key_signature_without_label", "Message 0's body signed by alice/1's signing key without " +
			"LABEL_GROUP_MESSAGE.", []string{"signature"}, []string{"GRP-007"}, func(w *skWorld) {
			standard(w, 1)
			m := w.encrypt(0, 1, "no label")
			body := nodeOf(m.msg).get(1).bstr
			sig, err := xeddsaSign(w.key.sigPriv, body, w.v.read(64))
			w.fail(err)
			w.decrypt(a1, m, groupMessage(body, sig), errBadSignature)
		}},
		{"sender_key_tampered_ciphertext", "Message 0 with the first byte of its ciphertext flipped, its body signed " +
			"again by alice/1's signing key (as a faulty sender would): the signature verifies and AEAD-Open fails. The " +
			"message itself then decrypts.", []string{"tampered"}, []string{"GRP-007", "GRP-008", "PRIM-004"},
			func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(0, 1, "tamper with me")
				bad := w.editBody(m.msg, func(b *node) {
					ct := cloneBytes(b.get(6).bstr)
					ct[0] ^= 0x01
					b.set(6, bstrNode(ct))
				})
				w.decrypt(a1, m, bad, errDecryptFailed)
				w.decrypt(a1, m, m.msg, nil)
			}},
		{"sender_key_tampered_iteration", "Message 1 whose body says iteration 0, signed again by alice/1's signing " +
			"key: the key of iteration 0 and its AD do not open it.", []string{"tampered"}, []string{"GRP-007", "GRP-008"},
			func(w *skWorld) {
				standard(w, 1)
				w.encrypt(0, 1, "zero")
				m1 := w.encrypt(1, 1, "one")
				bad := w.editBody(m1.msg, func(b *node) { b.set(5, uintNode(0)) })
				w.decrypt(a1, m1, bad, errDecryptFailed)
			}},
		{"sender_key_bad_padding", "A message at iteration 0 whose plaintext, sealed and signed as section 16.3 says, " +
			"is the content without padding (no 0x80 byte): AEAD-Open succeeds and the padding is invalid.",
			[]string{"tampered"}, []string{"GRP-007", "GRP-008", "RAT-005"}, func(w *skWorld) {
				standard(w, 1)
				w.clock += 1000
				id := w.v.messageID()
				ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText("unpadded")}))
				msg, err := w.key.clone().encryptPadded(1, ct, w.v.read(64))
				w.fail(err)
				w.decryptAs(a1, id, w.clock, msg, nil, errBadPadding)
			}},
		{"sender_key_content_mismatch", "Message 0 delivered with another message id than its content's, then with " +
			"another sent-at: both refused at step 9, and the key is unchanged; then delivered as it was sent.",
			[]string{"content"}, []string{"GRP-007", "GRP-008", "MSG-018"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(0, 1, "which id?")
				w.decryptAs(a1, w.v.messageID(), m.sentAt, m.msg, nil, errContentMismatch)
				w.decryptAs(a1, m.id, m.sentAt+1, m.msg, nil, errContentMismatch)
				w.decrypt(a1, m, m.msg, nil)
			}},
		{"sender_key_not_member", "mallory/1, whose account is not a member, sends a group message under a sender " +
			"key of her own that the receiver does not hold: step 3 comes before step 4.",
			[]string{"membership", "check_order"}, []string{"GRP-007"}, func(w *skWorld) {
				w.groupStates(1)
				w.makeKey(rcAddr{"mallory", 1}, 1, 1, 0)
				w.keys0 = w.recv.view()
				m := w.encrypt(0, 1, "let me in")
				w.decrypt("mallory/1", m, m.msg, errNotMember)
			}},
		{"sender_key_removed_member", "States 1 to 3 (bob removed in version 3); the receiver deleted bob's keys. A " +
			"message of bob/1 for group version 3 is from a non-member; one for group version 2, when bob was a member, " +
			"finds no key.", []string{"membership", "removal", "unknown"}, []string{"GRP-007"}, func(w *skWorld) {
			w.groupStates(3)
			w.makeKey(rcAddr{"bob", 1}, 2, 1, 0)
			w.keys0 = w.recv.view()
			m0 := w.encrypt(0, 3, "still here?")
			m1 := w.encrypt(1, 2, "as of version 2")
			w.decrypt("bob/1", m0, m0.msg, errNotMember)
			w.decrypt("bob/1", m1, m1.msg, errUnknownSenderKey)
		}},
		{"sender_key_stale", "States 1 to 3 (bob removed in version 3). alice/1's key of epoch 2, made before the " +
			"removal: a message for group version 2, sent before it, decrypts; one for group version 3 is refused.",
			[]string{"removal"}, []string{"GRP-007", "GRP-011", "GRP-008"}, func(w *skWorld) {
				w.groupStates(3)
				w.makeKey(rcAddr{"alice", 1}, 2, 1, 0)
				w.hold(a1, w.key)
				m0 := w.encrypt(0, 2, "before bob left")
				m1 := w.encrypt(1, 3, "after bob left")
				w.decrypt(a1, m0, m0.msg, nil)
				w.decrypt(a1, m1, m1.msg, errStaleSenderKey)
			}},
		{"sender_key_after_add", "States 1 and 2 (dave added in version 2): alice/1's key of epoch 1 still encrypts " +
			"for group version 2; adding a member needs no new key.", nil, []string{"GRP-007", "GRP-012"},
			func(w *skWorld) {
				standard(w, 2)
				m := w.encrypt(0, 2, "welcome dave")
				w.decrypt(a1, m, m.msg, nil)
			}},
		{"sender_key_rekeyed", "States 1 to 3. After bob's removal alice/1 made key 2 of epoch 3 (the case's key); " +
			"the receiver holds her keys 1 (epoch 1) and 2. A message under key 2 for version 3 decrypts, and so does " +
			"one under key 1 for version 1 that arrives late.", []string{"removal"},
			[]string{"GRP-005", "GRP-007", "GRP-011"}, func(w *skWorld) {
				w.groupStates(3)
				old := w.otherKey(a1, 1, 1)
				w.makeKey(rcAddr{"alice", 1}, 3, 2, 0)
				w.hold(a1, old)
				w.hold(a1, w.key)
				m := w.encrypt(0, 3, "new key")
				w.decrypt(a1, m, m.msg, nil)
				w.clock += 1000
				id := w.v.messageID()
				ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText("sent before the removal")}))
				late, err := old.encrypt(1, ct, w.v.read(64))
				w.fail(err)
				w.decryptAs(a1, id, w.clock, late, ct, nil)
			}},
		{"sender_key_unknown_key_id", "The receiver holds alice/1's key 1; the message is under her key 2.",
			[]string{"unknown"}, []string{"GRP-007"}, func(w *skWorld) {
				w.groupStates(1)
				w.hold(a1, w.otherKey(a1, 1, 1))
				w.makeKey(rcAddr{"alice", 1}, 1, 2, 0)
				m := w.encrypt(0, 1, "key 2")
				w.decrypt(a1, m, m.msg, errUnknownSenderKey)
			}},
		{"sender_key_unknown_sender_device", "The receiver holds alice/1's key 1; the message is from alice/2, whose " +
			"key 1 it does not hold.", []string{"unknown"}, []string{"GRP-007"}, func(w *skWorld) {
			w.groupStates(1)
			w.hold(a1, w.otherKey(a1, 1, 1))
			w.makeKey(rcAddr{"alice", 2}, 1, 1, 0)
			m := w.encrypt(0, 1, "from my laptop")
			w.decrypt(a2, m, m.msg, errUnknownSenderKey)
		}},
		{"sender_key_wrong_sender", "alice/1's message, which the receiver can decrypt, delivered as from carol/1 " +
			"(a member, whose keys the receiver does not hold): the sender is the delivery's.", []string{"unknown"},
			[]string{"GRP-007"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(0, 1, "whose is it?")
				w.decrypt("carol/1", m, m.msg, errUnknownSenderKey)
			}},
		{"sender_key_unknown_group", "The receiver holds no state of the group (and no key).", []string{"unknown"},
			[]string{"GRP-007"}, func(w *skWorld) {
				w.makeKey(rcAddr{"alice", 1}, 1, 1, 0)
				w.keys0 = w.recv.view()
				m := w.encrypt(0, 1, "hello?")
				w.decrypt(a1, m, m.msg, errUnknownGroup)
			}},
		{"sender_key_other_group", "The receiver holds states of the group; the message is for another group, under " +
			"a key of the same key id.", []string{"unknown"}, []string{"GRP-007"}, func(w *skWorld) {
			standard(w, 1)
			other := w.v.read(16)
			k, err := makeSenderKey(other, 1, 1, w.v.read(32), w.v.read(32))
			w.fail(err)
			w.clock += 1000
			id := w.v.messageID()
			ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText("wrong room")}))
			msg, err := k.encrypt(1, ct, w.v.read(64))
			w.fail(err)
			w.decryptAs(a1, id, w.clock, msg, nil, errUnknownGroup)
		}},
		{"sender_key_group_version_not_accepted", "The receiver has accepted version 1 only; the message is for group " +
			"version 2, which it cannot fetch here.", []string{"unknown"}, []string{"GRP-007", "GRP-003"},
			func(w *skWorld) {
				standard(w, 2)
				w.states = w.states[:1]
				delete(w.recv.states, 2)
				w.recv.latest = 1
				m := w.encrypt(0, 2, "from the future")
				w.decrypt(a1, m, m.msg, errUnknownGroup)
			}},
		{"sender_key_last_iteration", "A key that has reached iteration 4294967290 (drawn chain key): message " +
			"4294967294 decrypts; a message at iteration 4294967295 (2^32 - 1, made as section 16.3 would make it, " +
			"though a sender never sends it) is refused: the chain is exhausted.", []string{"drawn_chain", "skip_limit"},
			[]string{"GRP-007", "GRP-008"}, func(w *skWorld) {
				w.groupStates(1)
				w.makeKey(rcAddr{"alice", 1}, 1, 1, 4294967290)
				w.hold(a1, w.key)
				m := w.encrypt(4294967294, 1, "nearly done")
				w.decrypt(a1, m, m.msg, nil)
				w.clock += 1000
				id := w.v.messageID()
				ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText("one too many")}))
				last := lastIterationMessage(w, ct)
				w.decryptAs(a1, id, w.clock, last, nil, errTooManySkipped)
			}},
		{"sender_key_truncated", "Message 0 without its last byte.", []string{"decode"}, []string{"GRP-007", "CBOR-004"},
			func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(0, 1, "cut")
				w.decrypt(a1, m, m.msg[:len(m.msg)-1], errTruncated)
			}},
		{"sender_key_body_version_2", "Message 0 whose body has protocol version 2, signed again by alice/1's " +
			"signing key.", []string{"decode", "tampered"}, []string{"GRP-007", "VER-002"}, func(w *skWorld) {
			standard(w, 1)
			m := w.encrypt(0, 1, "from the future")
			w.decrypt(a1, m, w.editBody(m.msg, func(b *node) { b.set(1, uintNode(2)) }), errUnsupportedVersion)
		}},
		// Distributions (GRP-006).
		{"sender_key_distribution", "The receiver holds no key of alice/1; her distribution of key 1 at iteration 0 " +
			"arrives, then message 0 under it.", []string{"distribution"}, []string{"GRP-006", "GRP-007"},
			func(w *skWorld) {
				w.groupStates(1)
				w.makeKey(rcAddr{"alice", 1}, 1, 1, 0)
				w.keys0 = w.recv.view()
				dist := w.key.distribution()
				m := w.encrypt(0, 1, "first message")
				w.distribute(a1, dist, nil)
				w.decrypt(a1, m, m.msg, nil)
			}},
		{"sender_key_distribution_later_iteration", "dave, added in version 2, gets alice/1's key 1 at the iteration " +
			"it had reached (5): message 5 decrypts, message 4, sent before, cannot (below the key's iteration).",
			[]string{"distribution", "replay"}, []string{"GRP-006", "GRP-007", "GRP-012"}, func(w *skWorld) {
				w.groupStates(2)
				w.makeKey(rcAddr{"alice", 1}, 1, 1, 0)
				w.keys0 = w.recv.view()
				m4 := w.encrypt(4, 1, "before dave")
				dist := w.key.distribution()
				m5 := w.encrypt(5, 2, "hello dave")
				w.distribute(a1, dist, nil)
				w.decrypt(a1, m5, m5.msg, nil)
				w.decrypt(a1, m4, m4.msg, errDuplicateMessage)
			}},
		{"sender_key_distribution_not_member", "mallory/1, not a member, sends a distribution: refused, nothing " +
			"held.", []string{"distribution", "membership"}, []string{"GRP-006"}, func(w *skWorld) {
			w.groupStates(1)
			w.makeKey(rcAddr{"mallory", 1}, 1, 1, 0)
			w.keys0 = w.recv.view()
			w.distribute("mallory/1", w.key.distribution(), errNotMember)
		}},
		{"sender_key_distribution_later_epoch", "States 1 and 2; mallory/1, not a member of either, sends a " +
			"distribution of epoch 3: a device would fetch the states it lacks first (GRP-006), which the receiver cannot " +
			"do here: state.unknown_group, nothing held.", []string{"distribution", "membership"}, []string{"GRP-006"},
			func(w *skWorld) {
				w.groupStates(2)
				w.makeKey(rcAddr{"mallory", 1}, 3, 1, 0)
				w.keys0 = w.recv.view()
				w.distribute("mallory/1", w.key.distribution(), errUnknownGroup)
			}},
		{"sender_key_distribution_removed_member", "States 1 to 3 (bob removed in version 3): bob/1's distribution " +
			"is refused.", []string{"distribution", "membership", "removal"}, []string{"GRP-006"}, func(w *skWorld) {
			w.groupStates(3)
			w.makeKey(rcAddr{"bob", 1}, 3, 2, 0)
			w.keys0 = w.recv.view()
			w.distribute("bob/1", w.key.distribution(), errNotMember)
		}},
		{"sender_key_distribution_again", "The receiver holds alice/1's key 1 and has decrypted messages 0 and 1; the " +
			"distribution of key 1 arrives again (at iteration 0): it changes nothing, and message 1 is still a replay.",
			[]string{"distribution", "replay"}, []string{"GRP-006", "GRP-007"}, func(w *skWorld) {
				standard(w, 1)
				dist := w.key.distribution()
				m0, m1 := w.encrypt(0, 1, "one"), w.encrypt(1, 1, "two")
				w.decrypt(a1, m0, m0.msg, nil)
				w.decrypt(a1, m1, m1.msg, nil)
				w.distribute(a1, dist, nil)
				w.decrypt(a1, m1, m1.msg, errDuplicateMessage)
			}},
		{"sender_key_distribution_third_key", "The receiver holds alice/1's keys 1 and 2; key 3 (the case's key, epoch " +
			"1) arrives: it keeps keys 2 and 3 (MAX_SENDER_KEYS), and a message under key 1 is then unknown.",
			[]string{"distribution", "unknown"}, []string{"GRP-006", "GRP-007"}, func(w *skWorld) {
				w.groupStates(1)
				k1 := w.otherKey(a1, 1, 1)
				k2 := w.otherKey(a1, 1, 2)
				w.makeKey(rcAddr{"alice", 1}, 1, 3, 0)
				w.hold(a1, k1)
				w.hold(a1, k2)
				w.distribute(a1, w.key.distribution(), nil)
				w.clock += 1000
				id := w.v.messageID()
				ct := encodeCBOR(content(ctText, id, w.clock, cPair{5, cText("key 1")}))
				msg, err := k1.encrypt(1, ct, w.v.read(64))
				w.fail(err)
				w.decryptAs(a1, id, w.clock, msg, nil, errUnknownSenderKey)
				m := w.encrypt(0, 1, "key 3")
				w.decrypt(a1, m, m.msg, nil)
			}},
		// Several checks fail: the first in the order of GRP-007.
		{"sender_key_unknown_key_and_bad_signature", "A message under alice/1's key 2, which the receiver does not " +
			"hold, with its signature's low bit of s flipped: step 4 comes before step 6.",
			[]string{"unknown", "signature", "check_order"}, []string{"GRP-007"}, func(w *skWorld) {
				w.groupStates(1)
				w.hold(a1, w.otherKey(a1, 1, 1))
				w.makeKey(rcAddr{"alice", 1}, 1, 2, 0)
				m := w.encrypt(0, 1, "two faults")
				w.decrypt(a1, m, flipSigS(m.msg), errUnknownSenderKey)
			}},
		{"sender_key_stale_and_bad_signature", "States 1 to 3; alice/1's key of epoch 1 for group version 3, with its " +
			"signature's low bit of s flipped: step 5 comes before step 6.", []string{"removal", "signature", "check_order"},
			[]string{"GRP-007"}, func(w *skWorld) {
				standard(w, 3)
				m := w.encrypt(0, 3, "two faults")
				w.decrypt(a1, m, flipSigS(m.msg), errStaleSenderKey)
			}},
		{"sender_key_bad_signature_and_replay", "Message 0 again, after it was decrypted, with its signature's low bit " +
			"of s flipped: step 6 comes before step 7.", []string{"signature", "replay", "check_order"},
			[]string{"GRP-007"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(0, 1, "once")
				w.decrypt(a1, m, m.msg, nil)
				w.decrypt(a1, m, flipSigS(m.msg), errBadSignature)
			}},
		{"sender_key_too_far_and_tampered", "Message 1001 with its ciphertext's first byte flipped and its body " +
			"signed again: step 7 comes before step 8.", []string{"skip_limit", "tampered", "check_order"},
			[]string{"GRP-007"}, func(w *skWorld) {
				standard(w, 1)
				m := w.encrypt(1001, 1, "two faults")
				w.decrypt(a1, m, w.editBody(m.msg, func(b *node) {
					ct := cloneBytes(b.get(6).bstr)
					ct[0] ^= 0x01
					b.set(6, bstrNode(ct))
				}), errTooManySkipped)
			}},
	}
	var cases []senderKeyCase
	for _, s := range specs {
		v := newVB("Missive v1 test vectors: sender_keys: " + s.id)
		gw := &gsWorld{v: v, accts: map[string]*gsAccount{}}
		gw.gid = v.read(16)
		w := &skWorld{v: v, gw: gw, recv: &skReceiver{groupID: gw.gid, states: map[uint64]groupState{},
			keys: map[string][]*senderKey{}}, clock: wireT0 + 2*86_400_000, keys0: []skKey{}}
		s.build(w)
		if w.err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, w.err)
		}
		if v.err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, v.err)
		}
		c := senderKeyCase{caseHead: caseHead{ID: s.id, Comment: s.comment, Flags: s.flags, Requirements: s.reqs},
			GroupID: gw.gid, States: encs(w.states), Sender: w.sender.String(), Epoch: w.key.epoch, KeyID: w.key.keyID,
			Iteration: w.start, Keys: w.keys0, Steps: w.steps, Expect: "valid"}
		if c.Flags == nil {
			c.Flags = []string{}
		}
		c.ChainKey, c.SigningPrivate, c.Distribution = w.ck0, w.key.sigPriv, w.dist0
		for _, st := range c.Steps {
			if st.Expect == "invalid" {
				c.Expect, c.Error = "invalid", st.Error
				c.Requirements = withErr001(c.Requirements)
				break
			}
		}
		if err := checkSenderKeyCase(&c); err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("sender_keys", senderKeyNotes, heads); err != nil {
		return nil, err
	}
	return newFile("sender_keys", senderKeyDescription, senderKeyNotes, cases), nil
}

// lastIterationMessage returns a message of the case's key at iteration
// 2^32 - 1, made as section 16.3 would make it.
func lastIterationMessage(w *skWorld, ct []byte) []byte {
	k := w.key.clone()
	k.advance(maxUint32)
	_, mk := kdfCK(k.ck)
	key, nonce, err := senderKeyMessageKeys(mk)
	w.fail(err)
	sealed, err := aeadSeal(key, nonce, pad(ct), groupAD(k.groupID, k.epoch, k.keyID, maxUint32))
	w.fail(err)
	return w.resignBody(groupMessageBody(k.groupID, 1, k.keyID, maxUint32, sealed), k.sigPriv)
}

// checkSenderKeyCase runs a case again from its fields alone: the sender
// from chain_key, signing_private and iteration, the receiver from states
// and keys; every step must give its outputs, keys and outcome.
func checkSenderKeyCase(c *senderKeyCase) error {
	w, err := loadWireRules()
	if err != nil {
		return err
	}
	r := &skReceiver{groupID: c.GroupID, states: map[uint64]groupState{}, keys: map[string][]*senderKey{}}
	gc, err := newGSChecker(&groupStateCase{Checker: "device", GroupID: c.GroupID, Accepted: c.States})
	if err != nil {
		return fmt.Errorf("states: %v", err)
	}
	for _, st := range gc.accepted {
		r.states[st.version] = st
		r.latest = st.version
	}
	for _, k := range c.Keys {
		h := &senderKey{groupID: cloneBytes(c.GroupID), epoch: k.Epoch, keyID: k.KeyID, iteration: k.Iteration,
			ck: cloneBytes(k.ChainKey), sigPub: cloneBytes(k.SigningKey)}
		for _, sk := range k.Skipped {
			h.skipped = append(h.skipped, skippedSK{sk.Iteration, cloneBytes(sk.MessageKey)})
		}
		r.keys[k.Sender] = append(r.keys[k.Sender], h)
	}
	if !sameKeys(r.view(), c.Keys) {
		return fmt.Errorf("keys are not in the order of the view")
	}
	sender, err := makeSenderKey(c.GroupID, c.Epoch, c.KeyID, c.ChainKey, c.SigningPrivate)
	if err != nil {
		return err
	}
	sender.iteration = c.Iteration
	if !bytes.Equal(sender.distribution(), c.Distribution) {
		return fmt.Errorf("distribution is not the key's at iteration")
	}
	if _, err := w.decodeWire("sender-key-distribution", c.Distribution); err != nil {
		return fmt.Errorf("distribution: %v", err)
	}
	firstErr := ""
	for i, st := range c.Steps {
		var got error
		switch st.Op {
		case "encrypt":
			if st.Iteration == nil || *st.Iteration < sender.iteration {
				return fmt.Errorf("step %d: an encrypt step without a forward iteration", i)
			}
			sender.advance(*st.Iteration)
			msg, err := sender.encrypt(st.GroupVersion, st.Content, st.Z)
			if err != nil || !bytes.Equal(msg, st.Message) {
				return fmt.Errorf("step %d: encrypt gives another message (%v)", i, err)
			}
			if _, err := w.decodeWire("content", st.Content); err != nil {
				return fmt.Errorf("step %d: content does not decode: %v", i, err)
			}
		case "distribute":
			a, err := parseAddr(st.From)
			if err != nil {
				return err
			}
			got = r.distribute(a, st.Distribution)
		case "decrypt":
			a, err := parseAddr(st.From)
			if err != nil {
				return err
			}
			pt, err := r.decrypt(a, st.MessageID, st.SentAt, st.Message)
			got = err
			if err == nil && !bytes.Equal(pt, st.Content) {
				return fmt.Errorf("step %d: another plaintext", i)
			}
			if err != nil && st.Content != nil {
				return fmt.Errorf("step %d: a failed step with content", i)
			}
		default:
			return fmt.Errorf("step %d: op %q", i, st.Op)
		}
		name, err := errName(got)
		if err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
		if name != st.Error || (name == "") != (st.Expect == "valid") {
			return fmt.Errorf("step %d: got %q, want %s %q", i, name, st.Expect, st.Error)
		}
		if name != "" && firstErr == "" {
			firstErr = name
		}
		if st.Op != "encrypt" {
			if st.Keys == nil || !sameKeys(r.view(), *st.Keys) {
				return fmt.Errorf("step %d: the keys after the step differ", i)
			}
		} else if st.Keys != nil || st.From != "" {
			return fmt.Errorf("step %d: an encrypt step with receiver fields", i)
		}
	}
	if firstErr != c.Error || (firstErr == "") != (c.Expect == "valid") {
		return fmt.Errorf("the case's outcome is not its first failing step's")
	}
	has := func(f string) bool {
		for _, x := range c.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	if has("drawn_chain") != (c.Iteration != 0) {
		return fmt.Errorf("the drawn_chain flag does not match iteration")
	}
	hasOp := func(op string) bool {
		for _, st := range c.Steps {
			if st.Op == op {
				return true
			}
		}
		return false
	}
	if has("distribution") != hasOp("distribute") {
		return fmt.Errorf("the distribution flag does not match the steps")
	}
	if has("decode") != strings.Contains(c.Error, "decode.") && !strings.Contains(c.Error, "bad_padding") {
		return fmt.Errorf("the decode flag does not match the error")
	}
	return nil
}
