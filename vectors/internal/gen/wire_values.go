package gen

import (
	"bytes"
	"fmt"
)

// This file builds realistic values of the wire structures: real keys,
// XEdDSA signatures, ML-KEM keys, prekey bundles, and ratchet and prekey
// messages made by this generator's PQXDH and Double Ratchet, carrying
// content encodings. Every value is drawn from one SHAKE-128 stream.

// Times of the vectors, in milliseconds since 1970 (section 11.2).
const (
	wireT0     = 1767225600000 // 2026-01-01T00:00:00Z
	wireMaxTTL = 2592000
)

// vb builds the values of one case from its stream.
type vb struct {
	st  *stream
	err error
}

func newVB(label string) *vb { return &vb{st: newStream(label)} }

func (v *vb) fail(err error) {
	if v.err == nil && err != nil {
		v.err = err
	}
}

func (v *vb) read(n int) []byte { return v.st.read(n) }

// x25519Key returns a private key and the encoding of its public key.
func (v *vb) x25519Key() (priv, enc []byte) {
	priv = v.read(32)
	pub, err := x25519Public(priv)
	v.fail(err)
	return priv, encX25519(pub)
}

// sign is xeddsa_sign(k, msg, Z) with Z from the stream.
func (v *vb) sign(k, msg []byte) []byte {
	sig, err := xeddsaSign(k, msg, v.read(64))
	v.fail(err)
	if err == nil {
		pub, _ := x25519Public(k)
		v.fail(xeddsaVerify(pub, msg, sig))
	}
	return sig
}

func (v *vb) signedPrekey(ik []byte, id uint32) cMap {
	_, spk := v.x25519Key()
	return cMap{{1, cUint(id)}, {2, cBytes(spk)}, {3, cBytes(v.sign(ik, append([]byte(labelSigSignedPrekey), spk...)))}}
}

func (v *vb) kemPrekey(ik []byte, id uint32, lastResort bool) cMap {
	ek, err := kemPublic(v.read(64))
	v.fail(err)
	enc := encMLKEM(ek)
	return cMap{{1, cUint(id)}, {2, cBytes(enc)}, {3, cBytes(v.sign(ik, append([]byte(labelSigKEMPrekey), enc...)))},
		{4, cBool(lastResort)}}
}

func (v *vb) oneTimePrekey(id uint32) cMap {
	_, k := v.x25519Key()
	return cMap{{1, cUint(id)}, {2, cBytes(k)}}
}

// bundle returns a prekey bundle (section 4.2) that Alice's processing
// accepts.
func (v *vb) bundle(spkID, kemID uint32, lastResort, hasOPK bool, opkID uint32) []byte {
	ik, ikEnc := v.x25519Key()
	return v.bundleOf(ik, ikEnc, spkID, kemID, lastResort, hasOPK, opkID)
}

// bundleOf returns a prekey bundle of the identity key ik (private) whose
// encoding is ikEnc.
func (v *vb) bundleOf(ik, ikEnc []byte, spkID, kemID uint32, lastResort, hasOPK bool, opkID uint32) []byte {
	m := cMap{{1, cUint(pqxVersion)}, {2, cBytes(ikEnc)}, {3, v.signedPrekey(ik, spkID)}, {4, v.kemPrekey(ik, kemID, lastResort)}}
	if hasOPK {
		m = append(m, cPair{5, v.oneTimePrekey(opkID)})
	}
	b := encodeCBOR(m)
	if _, err := initiate(b, v.read(32), nil, bytes.NewReader(v.read(96))); err != nil {
		v.fail(fmt.Errorf("a generated bundle is refused: %v", err))
	}
	return b
}

// ratchetMessage returns the first message of a new session carrying pt,
// after checking that the receiving side decrypts it.
func (v *vb) ratchetMessage(pt []byte) []byte {
	sk, ad := v.read(32), v.read(66)
	alice, bob, err := initRatchet(sk, ad, v.read(32), v.read(32))
	if err != nil {
		v.fail(err)
		return nil
	}
	msg, err := alice.encrypt(pt)
	v.fail(err)
	got, err := bob.decrypt(msg, bytes.NewReader(v.read(32)))
	v.fail(err)
	if err == nil && !bytes.Equal(got, pt) {
		v.fail(fmt.Errorf("a generated ratchet message does not decrypt to its plaintext"))
	}
	return msg
}

// prekeyMessage returns a prekey message (section 4.5) carrying pt, after
// checking that Bob's processing returns pt.
func (v *vb) prekeyMessage(pt []byte, hasOPK bool) []byte {
	keys := bobKeys{ikPriv: v.read(32), spkID: 1 + uint32(v.read(1)[0]), spkPriv: v.read(32), kemID: 1000 + uint32(v.read(1)[0]),
		kemSeed: v.read(64)}
	if hasOPK {
		keys.hasOPK, keys.opkID, keys.opkPriv = true, 5000+uint32(v.read(1)[0]), v.read(32)
	}
	ikB, err := x25519Public(keys.ikPriv)
	v.fail(err)
	spk, err := x25519Public(keys.spkPriv)
	v.fail(err)
	ek, err := kemPublic(keys.kemSeed)
	v.fail(err)
	if v.err != nil {
		return nil
	}
	b := bundleParts{version: pqxVersion, ik: encX25519(ikB), spkID: keys.spkID, spk: encX25519(spk), kemID: keys.kemID, kem: encMLKEM(ek)}
	b.spkSig = v.sign(keys.ikPriv, append([]byte(labelSigSignedPrekey), b.spk...))
	b.kemSig = v.sign(keys.ikPriv, append([]byte(labelSigKEMPrekey), b.kem...))
	if hasOPK {
		opk, err := x25519Public(keys.opkPriv)
		v.fail(err)
		b.hasOPK, b.opkID, b.opk = true, keys.opkID, encX25519(opk)
	}
	r, err := initiate(b.encode(), v.read(32), pt, bytes.NewReader(v.read(96)))
	if err != nil {
		v.fail(err)
		return nil
	}
	got, err := respond(r.prekeyMessage, &keys, bytes.NewReader(v.read(32)))
	v.fail(err)
	if err == nil && !bytes.Equal(got.plaintext, pt) {
		v.fail(fmt.Errorf("a generated prekey message does not decrypt to its plaintext"))
	}
	return r.prekeyMessage
}

// messageID is a message id (MSG-002: 16 bytes from the random source).
func (v *vb) messageID() []byte { return v.read(16) }

func address(account string, device uint32) cArray { return cArray{cText(account), cUint(device)} }

// content returns a content map (section 11.9).
func content(typ uint64, id []byte, sentAt uint64, more ...cPair) cMap {
	return append(cMap{{1, cUint(1)}, {2, cUint(typ)}, {3, cBytes(id)}, {4, cUint(sentAt)}}, more...)
}

// Content types, kinds and other enumerations of chapter 11.
const (
	ctText, ctReceipt, ctMedia, ctEdit, ctDelete, ctSent = 1, 2, 3, 4, 5, 6
	ctRead, ctDeleted, ctHistory                         = 7, 8, 9
	envChat, envReceipt, envSync                         = 1, 2, 3
	prioLow, prioNormal, prioHigh                        = 0, 1, 2
	kindRatchet, kindPrekey                              = 1, 2
)

// frameMap returns a frame (section 11.3); rid 0 means absent, body nil
// means absent.
func frameMap(typ uint64, rid uint64, body []byte) cMap {
	m := cMap{{1, cUint(1)}, {2, cUint(typ)}}
	if rid != 0 {
		m = append(m, cPair{3, cUint(rid)})
	}
	if body != nil {
		m = append(m, cPair{4, cBytes(body)})
	}
	return m
}

// deviceMessage returns a device message carrying content for one device.
func (v *vb) deviceMessage(device uint32, kind uint64, pt []byte) cMap {
	var ct []byte
	if kind == kindPrekey {
		ct = v.prekeyMessage(pt, device%2 == 1)
	} else {
		ct = v.ratchetMessage(pt)
	}
	return cMap{{1, cUint(device)}, {2, cUint(kind)}, {3, cBytes(ct)}}
}

// envelope returns an envelope of a text message from alice's device 1 to
// the devices of recipient (section 11.5), with one device message per
// device, of the kinds given.
func (v *vb) envelope(typ uint64, recipient string, devices []uint32, kinds []uint64, text string, sentAt uint64) cMap {
	id := v.messageID()
	var pt []byte
	switch typ {
	case envReceipt:
		pt = encodeCBOR(content(ctReceipt, id, sentAt, cPair{6, cMap{{1, cUint(2)}, {2, cArray{cBytes(v.messageID())}}}}))
	default:
		pt = encodeCBOR(content(ctText, id, sentAt, cPair{5, cText(text)}))
	}
	if typ == envSync {
		pt = encodeCBOR(content(ctSent, id, sentAt, cPair{9, cMap{{1, cText("bob")}, {2, cBytes(pt)}}}))
	}
	var dms cArray
	for i, d := range devices {
		dms = append(dms, v.deviceMessage(d, kinds[i], pt))
	}
	prio := uint64(prioNormal)
	if typ == envReceipt {
		prio = prioLow
	}
	return cMap{{1, cUint(1)}, {2, cBytes(id)}, {3, address("alice", 1)}, {4, cText(recipient)}, {5, dms},
		{6, cUint(typ)}, {7, cUint(prio)}, {8, cUint(604800)}, {9, cUint(sentAt)}}
}

// hello returns a hello (section 11.4) whose binding signs a new transport
// key (section 12.4).
func (v *vb) hello(versions []uint64, account string, device uint32, register bool) cMap {
	ik, ikEnc := v.x25519Key()
	_, transport := v.x25519Key()
	sig := v.sign(ik, bindingMessage(transport[1:], device, account))
	var vs cArray
	for _, x := range versions {
		vs = append(vs, cUint(x))
	}
	m := cMap{{1, vs}, {2, cText(account)}, {3, cUint(device)}, {4, cBytes(ikEnc)}, {5, cBytes(sig)}}
	if register {
		m = append(m, cPair{6, cBool(true)})
	}
	return m
}

// bindingMessage is the message of the binding signature of section 12.4:
// LABEL_TRANSPORT_BINDING || Enc(transport public key) || u32be(device id) ||
// account.
func bindingMessage(transportPub []byte, device uint32, account string) []byte {
	m := append([]byte(labelTransportBinding), encX25519(transportPub)...)
	m = append(m, byte(device>>24), byte(device>>16), byte(device>>8), byte(device))
	return append(m, account...)
}

const labelTransportBinding = "Missive v1 transport key"

// delivery returns the delivery of one device message of an envelope.
func (v *vb) delivery(queueID uint64, attempt uint64) cMap {
	sentAt := uint64(wireT0 + 3_600_000)
	id := v.messageID()
	pt := encodeCBOR(content(ctText, id, sentAt, cPair{5, cText("Are we still on for Friday?")}))
	ct := v.ratchetMessage(pt)
	accepted := sentAt + 412
	return cMap{{1, cUint(1)}, {2, cUint(queueID)}, {3, cBytes(id)}, {4, address("alice", 1)}, {5, cUint(envChat)},
		{6, cUint(prioNormal)}, {7, cUint(kindRatchet)}, {8, cBytes(ct)}, {9, cUint(sentAt)}, {10, cUint(accepted)},
		{11, cUint(accepted + 604800*1000)}, {12, cUint(attempt)}}
}

// media returns a media map (section 11.9).
func (v *vb) media(kind uint64, mime string, caption string, viewOnce bool) cMap {
	m := cMap{{1, cUint(kind)}, {2, cText(fmt.Sprintf("blob-%x", v.read(12)))}, {3, cBytes(v.read(32))},
		{4, cBytes(v.read(32))}, {5, cUint(1_482_304)}, {6, cText(mime)}}
	if caption != "" {
		m = append(m, cPair{7, cText(caption)})
	}
	if viewOnce {
		m = append(m, cPair{8, cBool(true)})
	}
	return m
}

// sortedIDs returns n message ids in increasing order.
func (v *vb) sortedIDs(n int) cArray {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = v.messageID()
	}
	sortBytes(ids)
	var out cArray
	for _, id := range ids {
		out = append(out, cBytes(id))
	}
	return out
}

func sortBytes(list [][]byte) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j], list[j-1]) < 0; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// accounts returns n account names of equal length, in increasing order.
func accounts(prefix string, n int) cArray {
	var out cArray
	for i := 0; i < n; i++ {
		out = append(out, cText(fmt.Sprintf("%s%04d", prefix, i)))
	}
	return out
}

// Labels of chapter 15 (section 1.5).
const (
	labelDeviceList = "Missive v1 device list"
	labelLink       = "Missive v1 linking keys"
	labelLinkMAC    = "Missive v1 link request"
)

// deviceKey is a device of a device list with its identity key.
type deviceKey struct {
	id        uint32
	priv, enc []byte
}

// deviceKeys draws an identity key for each device id.
func (v *vb) deviceKeys(ids ...uint32) []deviceKey {
	var out []deviceKey
	for _, id := range ids {
		priv, enc := v.x25519Key()
		out = append(out, deviceKey{id, priv, enc})
	}
	return out
}

// deviceList returns a device list (section 15.2) listing devs in the
// order given.
func deviceList(account string, version uint64, devs []deviceKey, createdAt uint64) cMap {
	var ds cArray
	for _, d := range devs {
		ds = append(ds, cMap{{1, cUint(d.id)}, {2, cBytes(d.enc)}})
	}
	return cMap{{1, cUint(1)}, {2, cText(account)}, {3, cUint(version)}, {4, ds}, {5, cUint(createdAt)}}
}

// deviceListSignature is xeddsa_sign(signer, LABEL_DEVICE_LIST || list, z).
func deviceListSignature(signer, list, z []byte) ([]byte, error) {
	return xeddsaSign(signer, append([]byte(labelDeviceList), list...), z)
}

// signedDeviceList returns the encoding of a signed device list of the
// device-list encoding list, signed by signer with Z from the stream.
func (v *vb) signedDeviceList(signer, list []byte) []byte {
	sig := v.sign(signer, append([]byte(labelDeviceList), list...))
	return encodeCBOR(cMap{{1, cBytes(list)}, {2, cBytes(sig)}})
}

// linkKeys returns the link id and the MAC key of a linking secret
// (section 15.3).
func linkKeys(secret []byte) (linkID, macKey []byte, err error) {
	okm, err := hkdfSHA256(make([]byte, 32), secret, labelLink, 48)
	if err != nil {
		return nil, nil, err
	}
	return okm[:16], okm[16:], nil
}

// linkMAC is HMAC(mac-key, LABEL_LINK_MAC || link-id || Enc(IK_c)).
func linkMAC(macKey, linkID, ikC []byte) []byte {
	m := append([]byte(labelLinkMAC), linkID...)
	return hmacSHA256(macKey, append(m, ikC...))
}

// link draws a linking secret and a companion identity key, and returns
// the link id, the companion's key encoding and the MAC of its request.
func (v *vb) link() (linkID, ikC, mac []byte) {
	secret := v.read(16) // LINK_SECRET_SIZE
	id, macKey, err := linkKeys(secret)
	v.fail(err)
	_, ikC = v.x25519Key()
	return id, ikC, linkMAC(macKey, id, ikC)
}

// historyEntry returns a history entry (section 15.5).
func (v *vb) historyEntry(peer string, outgoing bool, text string, sentAt, status uint64) cMap {
	return cMap{{1, cBytes(v.messageID())}, {2, cText(peer)}, {3, cBool(outgoing)}, {4, cText(text)}, {5, cUint(sentAt)},
		{6, cUint(status)}}
}

// conversationMessages returns n (account, message id) pairs.
func (v *vb) conversationMessages(accounts ...string) cArray {
	out := cArray{}
	for _, a := range accounts {
		out = append(out, cArray{cText(a), cBytes(v.messageID())})
	}
	return out
}
