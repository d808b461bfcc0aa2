package gen

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// This file implements the mechanisms of chapters 16 and 17 that several
// families use: group states and their signatures (section 16.2), sender
// keys and group messages (section 16.3), the device digest of a group
// (section 16.4), and the chunked encryption of attachments (section 17.2).

// Labels of chapters 16 and 17 (section 1.5).
const (
	labelGroupState   = "Missive v1 group state"
	labelGroupMessage = "Missive v1 group message"
	labelSenderKey    = "Missive v1 sender key message keys"
	labelGroupDevices = "Missive v1 group devices"
	labelMediaKeys    = "Missive v1 media keys"
)

// Constants of sections 16.1 and 17.1.
const (
	maxGroupMembers     = 1024
	maxGroupName        = 100
	maxSenderKeySkip    = 1000
	maxSenderKeySkipped = 2000
	maxSenderKeys       = 2
	mediaChunk          = 65536
	mediaTag            = 16
)

// gMember is one entry of a group state's member list.
type gMember struct {
	account string
	admin   bool
}

// groupState is a group-state (section 16.2).
type groupState struct {
	groupID   []byte
	version   uint64
	members   []gMember // in the order they are encoded
	author    rcAddr
	createdAt uint64
	name      string // "" when absent
}

func (g groupState) cval() cMap {
	ms := cArray{}
	for _, m := range g.members {
		role := uint64(0)
		if m.admin {
			role = 1
		}
		ms = append(ms, cArray{cText(m.account), cUint(role)})
	}
	out := cMap{{1, cUint(1)}, {2, cBytes(g.groupID)}, {3, cUint(g.version)}, {4, ms},
		{5, address(g.author.account, g.author.device)}, {6, cUint(g.createdAt)}}
	if g.name != "" {
		out = append(out, cPair{7, cText(g.name)})
	}
	return out
}

func (g groupState) encode() []byte { return encodeCBOR(g.cval()) }

// member returns the entry of an account, or nil.
func (g groupState) member(account string) *gMember {
	for i := range g.members {
		if g.members[i].account == account {
			return &g.members[i]
		}
	}
	return nil
}

// sortedMembers returns members sorted by account.
func sortedMembers(ms ...gMember) []gMember {
	out := append([]gMember{}, ms...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].account < out[j-1].account; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// parseGroupState reads a decoded group-state.
func parseGroupState(it *item) groupState {
	g := groupState{groupID: it.get(2).bstr, version: it.get(3).val, createdAt: it.get(6).val}
	for _, m := range it.get(4).arr {
		g.members = append(g.members, gMember{account: string(m.arr[0].bstr), admin: m.arr[1].val == 1})
	}
	a := it.get(5)
	g.author = rcAddr{string(a.arr[0].bstr), uint32(a.arr[1].val)}
	if n := it.get(7); n != nil {
		g.name = string(n.bstr)
	}
	return g
}

// groupStateMessage is LABEL_GROUP_STATE || field 1, the message of a group
// state's signature.
func groupStateMessage(state []byte) []byte { return append([]byte(labelGroupState), state...) }

// signedGroupState returns the encoding of a signed-group-state.
func signedGroupState(state, sig, list []byte) []byte {
	return encodeCBOR(cMap{{1, cBytes(state)}, {2, cBytes(sig)}, {3, cBytes(list)}})
}

// groupDevicesDigest is the device digest of section 16.4:
// SHA-256(LABEL_GROUP_DEVICES || group-id || the group-devices encoding).
func groupDevicesDigest(groupID, devices []byte) []byte {
	h := sha256.New()
	h.Write([]byte(labelGroupDevices))
	h.Write(groupID)
	h.Write(devices)
	return h.Sum(nil)
}

// senderKey is a sender key of section 16.3, as its owner or a receiver
// holds it. sigPriv is known to the owner only.
type senderKey struct {
	groupID   []byte
	epoch     uint32
	keyID     uint32
	iteration uint32 // the next iteration
	ck        []byte // the chain key at iteration
	sigPriv   []byte // nil at a receiver
	sigPub    []byte // Enc of the signing public key
	skipped   []skippedSK
}

// skippedSK is a stored message key of a skipped iteration.
type skippedSK struct {
	iteration uint32
	mk        []byte
}

func (k *senderKey) clone() *senderKey {
	c := *k
	c.groupID, c.ck, c.sigPriv, c.sigPub = cloneBytes(k.groupID), cloneBytes(k.ck), cloneBytes(k.sigPriv), cloneBytes(k.sigPub)
	c.skipped = make([]skippedSK, len(k.skipped))
	for i, s := range k.skipped {
		c.skipped[i] = skippedSK{s.iteration, cloneBytes(s.mk)}
	}
	return &c
}

// makeSenderKey makes a sender key from the randomness drawn (section 16.3,
// section 2.2): 32 bytes of chain key, then 32 bytes of signing key.
func makeSenderKey(groupID []byte, epoch, keyID uint32, chainKey, signingPriv []byte) (*senderKey, error) {
	pub, err := x25519Public(signingPriv)
	if err != nil {
		return nil, err
	}
	return &senderKey{groupID: cloneBytes(groupID), epoch: epoch, keyID: keyID, ck: cloneBytes(chainKey),
		sigPriv: cloneBytes(signingPriv), sigPub: encX25519(pub)}, nil
}

// distribution returns the sender-key-distribution of the key at its
// current iteration.
func (k *senderKey) distribution() []byte {
	return encodeCBOR(cMap{{1, cBytes(k.groupID)}, {2, cUint(k.epoch)}, {3, cUint(k.keyID)}, {4, cUint(k.iteration)},
		{5, cBytes(k.ck)}, {6, cBytes(k.sigPub)}})
}

// receiverCopy returns the key as a receiver holds it after the
// distribution of its current state.
func (k *senderKey) receiverCopy() *senderKey {
	c := k.clone()
	c.sigPriv = nil
	c.skipped = nil
	return c
}

// advance moves the chain to iteration i without encrypting.
func (k *senderKey) advance(i uint32) {
	for k.iteration < i {
		k.ck, _ = kdfCK(k.ck)
		k.iteration++
	}
}

// senderKeyMessageKeys is the key and nonce of section 16.3.
func senderKeyMessageKeys(mk []byte) (key, nonce []byte, err error) {
	out, err := hkdfSHA256(make([]byte, 32), mk, labelSenderKey, 44)
	if err != nil {
		return nil, nil, err
	}
	return out[:32], out[32:], nil
}

// groupAD is group-id || u32be(epoch) || u32be(key id) || u32be(i).
func groupAD(groupID []byte, epoch, keyID, i uint32) []byte {
	out := cloneBytes(groupID)
	for _, v := range []uint32{epoch, keyID, i} {
		out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return out
}

// groupMessageBody returns the encoding of a group-message-body.
func groupMessageBody(groupID []byte, groupVersion uint64, keyID, i uint32, ct []byte) []byte {
	return encodeCBOR(cMap{{1, cUint(1)}, {2, cBytes(groupID)}, {3, cUint(groupVersion)}, {4, cUint(keyID)},
		{5, cUint(i)}, {6, cBytes(ct)}})
}

// groupMessage returns the encoding of a group-message.
func groupMessage(body, sig []byte) []byte {
	return encodeCBOR(cMap{{1, cBytes(body)}, {2, cBytes(sig)}})
}

// encryptPadded encrypts an already padded plaintext at the key's current
// iteration, signs the body with Z = z, and advances the chain (section
// 16.3). The caller pads (pad of section 5.5), or does not, for a case whose
// padding is invalid.
func (k *senderKey) encryptPadded(groupVersion uint64, padded, z []byte) ([]byte, error) {
	if k.sigPriv == nil {
		return nil, fmt.Errorf("sender key: not the owner")
	}
	if k.iteration == maxUint32 {
		return nil, errChainExhausted
	}
	next, mk := kdfCK(k.ck)
	key, nonce, err := senderKeyMessageKeys(mk)
	if err != nil {
		return nil, err
	}
	ct, err := aeadSeal(key, nonce, padded, groupAD(k.groupID, k.epoch, k.keyID, k.iteration))
	if err != nil {
		return nil, err
	}
	body := groupMessageBody(k.groupID, groupVersion, k.keyID, k.iteration, ct)
	sig, err := xeddsaSign(k.sigPriv, append([]byte(labelGroupMessage), body...), z)
	if err != nil {
		return nil, err
	}
	k.ck = next
	k.iteration++
	return groupMessage(body, sig), nil
}

// encrypt is the encryption of section 16.3 (GRP-005).
func (k *senderKey) encrypt(groupVersion uint64, pt, z []byte) ([]byte, error) {
	if len(pt) > maxPlaintext {
		return nil, errTooLarge
	}
	return k.encryptPadded(groupVersion, pad(pt), z)
}

// parsedGroupMessage is a decoded group message.
type parsedGroupMessage struct {
	body         []byte // the exact bytes of field 1
	sig          []byte
	groupID      []byte
	groupVersion uint64
	keyID, i     uint32
	ct           []byte
}

// parseGroupMessage is step 1 of GRP-007: the group message and its body
// decode.
func parseGroupMessage(msg []byte) (*parsedGroupMessage, error) {
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	gm, err := w.decodeWire("group-message", msg)
	if err != nil {
		return nil, err
	}
	p := &parsedGroupMessage{body: gm.get(1).bstr, sig: gm.get(2).bstr}
	b, err := w.decodeWire("group-message-body", p.body)
	if err != nil {
		return nil, err
	}
	p.groupID, p.groupVersion = b.get(2).bstr, b.get(3).val
	p.keyID, p.i, p.ct = uint32(b.get(4).val), uint32(b.get(5).val), b.get(6).bstr
	return p, nil
}

// verifyGroupMessage is step 6 of GRP-007.
func (k *senderKey) verify(p *parsedGroupMessage) error {
	pub, err := decodeX25519(k.sigPub)
	if err != nil {
		return err
	}
	return xeddsaVerify(pub, append([]byte(labelGroupMessage), p.body...), p.sig)
}

// open runs steps 7 and 8 of GRP-007 on a copy of the key and returns the
// plaintext and the key as it is after the message; the caller commits it
// only when every later check passes (GRP-008).
func (k *senderKey) open(p *parsedGroupMessage) ([]byte, *senderKey, error) {
	c := k.clone()
	var mk []byte
	for j, s := range c.skipped {
		if s.iteration == p.i {
			mk = s.mk
			c.skipped = append(c.skipped[:j:j], c.skipped[j+1:]...)
			break
		}
	}
	if mk == nil {
		switch {
		case p.i < c.iteration:
			return nil, nil, errDuplicateMessage
		case uint64(p.i) > uint64(c.iteration)+maxSenderKeySkip || p.i == maxUint32:
			return nil, nil, errTooManySkipped
		}
		for c.iteration < p.i {
			next, smk := kdfCK(c.ck)
			c.skipped = append(c.skipped, skippedSK{c.iteration, smk})
			if len(c.skipped) > maxSenderKeySkipped {
				c.skipped = c.skipped[1:]
			}
			c.ck = next
			c.iteration++
		}
		next, m := kdfCK(c.ck)
		c.ck, mk = next, m
		c.iteration++
	}
	key, nonce, err := senderKeyMessageKeys(mk)
	if err != nil {
		return nil, nil, err
	}
	padded, err := aeadOpen(key, nonce, p.ct, groupAD(c.groupID, c.epoch, c.keyID, p.i))
	if err != nil {
		return nil, nil, err
	}
	pt, err := unpad(padded)
	if err != nil {
		return nil, nil, err
	}
	return pt, c, nil
}

// mediaKeyOf is the media encryption key of section 17.2.
func mediaKeyOf(K []byte) ([]byte, error) { return hkdfSHA256(make([]byte, 32), K, labelMediaKeys, 32) }

// mediaNonce is the 11-byte big-endian encoding of i followed by the
// last-chunk flag.
func mediaNonce(i uint64, last bool) []byte {
	n := make([]byte, 12)
	for j := 0; j < 8; j++ {
		n[10-j] = byte(i >> (8 * j))
	}
	if last {
		n[11] = 1
	}
	return n
}

// mediaPiece is one chunk of a blob: the plaintext bytes [offset, offset +
// length) sealed with the nonce of index and last.
type mediaPiece struct {
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	Index  uint64 `json:"index"`
	Last   bool   `json:"last"`
}

// mediaPieces cuts a plaintext of n bytes as section 17.2 does.
func mediaPieces(n int) []mediaPiece {
	if n == 0 {
		return []mediaPiece{{0, 0, 0, true}}
	}
	var out []mediaPiece
	for off, i := 0, uint64(0); off < n; off, i = off+mediaChunk, i+1 {
		l := min(mediaChunk, n-off)
		out = append(out, mediaPiece{off, l, i, off+l == n})
	}
	return out
}

// sealMedia seals the pieces of plaintext under key and concatenates them.
func sealMedia(key, plaintext []byte, pieces []mediaPiece) ([]byte, error) {
	var blob []byte
	for _, p := range pieces {
		ct, err := aeadSeal(key, mediaNonce(p.Index, p.Last), plaintext[p.Offset:p.Offset+p.Length], nil)
		if err != nil {
			return nil, err
		}
		blob = append(blob, ct...)
	}
	return blob, nil
}

// openMedia is the receiver's processing of section 17.2 (MED-002): the
// size, the digest, the cut into chunks, then every chunk.
func openMedia(K, blob []byte, size uint64, digest []byte) ([]byte, error) {
	if uint64(len(blob)) != size {
		return nil, errDigestMismatch
	}
	if d := sha256.Sum256(blob); !bytes.Equal(d[:], digest) {
		return nil, errDigestMismatch
	}
	const full = mediaChunk + mediaTag
	if len(blob) < mediaTag {
		return nil, errDecryptFailed
	}
	n := (len(blob) + full - 1) / full
	lastLen := len(blob) - (n-1)*full
	if lastLen <= mediaTag && len(blob) != mediaTag {
		return nil, errDecryptFailed
	}
	key, err := mediaKeyOf(K)
	if err != nil {
		return nil, err
	}
	var out []byte
	for i := 0; i < n; i++ {
		end := min((i+1)*full, len(blob))
		pt, err := aeadOpen(key, mediaNonce(uint64(i), i == n-1), blob[i*full:end], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, pt...)
	}
	return out, nil
}

// mediaPlaintext is the plaintext of media.json: byte j is j mod 251.
func mediaPlaintext(n int) []byte {
	out := make([]byte, n)
	for j := range out {
		out[j] = byte(j % 251)
	}
	return out
}

// groupDevicesList returns a group-devices value: for each account in
// order, its sorted device ids.
func groupDevicesList(entries ...any) cArray {
	out := cArray{}
	for i := 0; i+1 < len(entries); i += 2 {
		ds := cArray{}
		for _, d := range entries[i+1].([]uint32) {
			ds = append(ds, cUint(d))
		}
		out = append(out, cArray{cText(entries[i].(string)), ds})
	}
	return out
}
