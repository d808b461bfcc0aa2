package gen

import (
	"crypto/sha256"
	"errors"
	"io"
)

// This file implements PQXDH (chapter 4): the bundle, Alice's processing and
// initiation, and Bob's processing of a prekey message.

const pqxVersion = 1

// Schemas of sections 4.2 and 4.5.
var (
	x25519Field = func(k uint64, required bool) field {
		return field{key: k, kind: kindBytes, required: required, minLen: lenX25519Public, maxLen: lenX25519Public}
	}
	bundleSchema = schema{
		{key: 1, kind: kindUint, required: true, max: ^uint64(0)},
		x25519Field(2, true),
		{key: 3, kind: kindMap, required: true, sub: schema{
			{key: 1, kind: kindUint, required: true, max: maxUint32},
			x25519Field(2, true),
			{key: 3, kind: kindBytes, required: true, minLen: 64, maxLen: 64},
		}},
		{key: 4, kind: kindMap, required: true, sub: schema{
			{key: 1, kind: kindUint, required: true, max: maxUint32},
			{key: 2, kind: kindBytes, required: true, minLen: lenMLKEMPublic, maxLen: lenMLKEMPublic},
			{key: 3, kind: kindBytes, required: true, minLen: 64, maxLen: 64},
			{key: 4, kind: kindBool, required: true},
		}},
		{key: 5, kind: kindMap, sub: schema{
			{key: 1, kind: kindUint, required: true, max: maxUint32},
			x25519Field(2, true),
		}},
	}
	prekeyMessageSchema = schema{
		{key: 1, kind: kindUint, required: true, max: ^uint64(0)},
		x25519Field(2, true),
		x25519Field(3, true),
		{key: 4, kind: kindUint, required: true, max: maxUint32},
		{key: 5, kind: kindUint, required: true, max: maxUint32},
		{key: 6, kind: kindBytes, required: true, minLen: lenMLKEMCT, maxLen: lenMLKEMCT},
		{key: 7, kind: kindUint, max: maxUint32},
		// bstr .cbor ratchet-message: checked here only as a byte string,
		// decoded at step 6 of section 4.6 as a top-level item of its own.
		{key: 8, kind: kindBytes, required: true, maxLen: int(^uint(0) >> 1)},
	}
)

// bundleParts are the fields of a bundle before encoding. The generator
// alters them to build negative cases.
type bundleParts struct {
	version    uint64
	ik         []byte // Enc(IK_B) as carried
	spkID      uint32
	spk        []byte
	spkSig     []byte
	kemID      uint32
	kem        []byte
	kemSig     []byte
	lastResort bool
	hasOPK     bool
	opkID      uint32
	opk        []byte
}

func (b *bundleParts) encode() []byte {
	m := cMap{
		{1, cUint(b.version)},
		{2, cBytes(b.ik)},
		{3, cMap{{1, cUint(b.spkID)}, {2, cBytes(b.spk)}, {3, cBytes(b.spkSig)}}},
		{4, cMap{{1, cUint(b.kemID)}, {2, cBytes(b.kem)}, {3, cBytes(b.kemSig)}, {4, cBool(b.lastResort)}}},
	}
	if b.hasOPK {
		m = append(m, cPair{5, cMap{{1, cUint(b.opkID)}, {2, cBytes(b.opk)}}})
	}
	return encodeCBOR(m)
}

// prekeyParts are the fields of a prekey message before encoding.
type prekeyParts struct {
	version uint64
	ikA     []byte
	ekA     []byte
	spkID   uint32
	kemID   uint32
	ct      []byte
	hasOPK  bool
	opkID   uint32
	ratchet []byte // the encoded ratchet message, carried as a byte string
	// embedRatchet carries the ratchet message as an embedded map instead
	// of a byte string, for a negative case.
	embedRatchet bool
}

func (p *prekeyParts) encode() []byte {
	m := cMap{
		{1, cUint(p.version)},
		{2, cBytes(p.ikA)},
		{3, cBytes(p.ekA)},
		{4, cUint(p.spkID)},
		{5, cUint(p.kemID)},
		{6, cBytes(p.ct)},
		{8, cBytes(p.ratchet)},
	}
	if p.embedRatchet {
		m[len(m)-1] = cPair{8, cRaw(p.ratchet)}
	}
	if p.hasOPK {
		m = append(m, cPair{7, cUint(p.opkID)})
	}
	return encodeCBOR(m)
}

// initiateResult is what Alice produces.
type initiateResult struct {
	sk, ad, prekeyMessage []byte
	parts                 *prekeyParts
	alice                 *session
}

// initiate is Alice's processing of a bundle (section 4.2) and initiation
// (sections 4.3 to 4.5). rnd supplies EK_A, m and her first ratchet key, in
// this order.
func initiate(bundle, ikAPriv, plaintext []byte, rnd io.Reader) (*initiateResult, error) {
	it, err := decodeCBOR(bundle)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(it, pqxVersion); err != nil {
		return nil, err
	}
	if err := checkSchema(it, bundleSchema); err != nil {
		return nil, err
	}
	encIKB := it.get(2).bstr
	spkM, kemM, opkM := it.get(3), it.get(4), it.get(5)
	encSPK, encPQPK := spkM.get(2).bstr, kemM.get(2).bstr
	ikB, err := decodeX25519(encIKB)
	if err != nil {
		return nil, err
	}
	spk, err := decodeX25519(encSPK)
	if err != nil {
		return nil, err
	}
	ek, err := decodeMLKEM(encPQPK)
	if err != nil {
		return nil, err
	}
	var opk, encOPK []byte
	if opkM != nil {
		encOPK = opkM.get(2).bstr
		if opk, err = decodeX25519(encOPK); err != nil {
			return nil, err
		}
	}
	if err := xeddsaVerify(ikB, append([]byte(labelSigSignedPrekey), encSPK...), spkM.get(3).bstr); err != nil {
		return nil, err
	}
	if err := xeddsaVerify(ikB, append([]byte(labelSigKEMPrekey), encPQPK...), kemM.get(3).bstr); err != nil {
		return nil, err
	}

	ekAPriv, m, ratchetPriv := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	for _, b := range [][]byte{ekAPriv, m, ratchetPriv} {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, errors.New("pqxdh: randomness exhausted")
		}
	}
	ikAPub, err := x25519Public(ikAPriv)
	if err != nil {
		return nil, err
	}
	ekAPub, err := x25519Public(ekAPriv)
	if err != nil {
		return nil, err
	}
	var km []byte
	for _, dh := range [][2][]byte{{ikAPriv, spk}, {ekAPriv, ikB}, {ekAPriv, spk}, {ekAPriv, opk}} {
		if dh[1] == nil {
			continue
		}
		out, err := x25519(dh[0], dh[1])
		if err != nil {
			return nil, err
		}
		km = append(km, out...)
	}
	ct, ss, err := kemEncaps(ek, m)
	if err != nil {
		return nil, err
	}
	km = append(km, ss...)
	sk, ad, err := pqxdhKDF(encX25519(ikAPub), encIKB, encSPK, encOPK, encPQPK, encX25519(ekAPub), ct, km)
	if err != nil {
		return nil, err
	}
	alice, err := newAlice(sk, ad, ratchetPriv, spk)
	if err != nil {
		return nil, err
	}
	rm, err := alice.encrypt(plaintext)
	if err != nil {
		return nil, err
	}
	p := &prekeyParts{version: pqxVersion, ikA: encX25519(ikAPub), ekA: encX25519(ekAPub),
		spkID: uint32(spkM.get(1).val), kemID: uint32(kemM.get(1).val), ct: ct, ratchet: rm}
	if opkM != nil {
		p.hasOPK, p.opkID = true, uint32(opkM.get(1).val)
	}
	return &initiateResult{sk: sk, ad: ad, prekeyMessage: p.encode(), parts: p, alice: alice}, nil
}

// pqxdhKDF derives SK and AD (section 4.4). encOPK is nil without OPK_B.
func pqxdhKDF(encIKA, encIKB, encSPK, encOPK, encPQPK, encEKA, ct, km []byte) (sk, ad []byte, err error) {
	h := sha256.New()
	for _, b := range [][]byte{encIKA, encIKB, encSPK, encOPK, encPQPK, encEKA, ct} {
		h.Write(b)
	}
	th := h.Sum(nil)
	ikm := make([]byte, 32, 32+len(km))
	for i := range ikm {
		ikm[i] = 0xff
	}
	ikm = append(ikm, km...)
	sk, err = hkdfSHA256(make([]byte, 32), ikm, labelPQXDH+string(th), 32)
	if err != nil {
		return nil, nil, err
	}
	return sk, append(cloneBytes(encIKA), encIKB...), nil
}

// bobKeys are the keys Bob holds in a case.
type bobKeys struct {
	ikPriv     []byte
	spkID      uint32
	spkPriv    []byte
	kemID      uint32
	kemSeed    []byte
	lastResort bool
	hasOPK     bool
	opkID      uint32
	opkPriv    []byte
}

// respondResult is what Bob produces.
type respondResult struct {
	sk, ad, plaintext []byte
	bob               *session
}

// respond is Bob's processing of a prekey message (section 4.6), for a Bob
// who holds no session yet, so that the lookup of step 2 (PQX-011) finds
// none. rnd supplies the new ratchet key of his first DH ratchet step.
func respond(msg []byte, keys *bobKeys, rnd io.Reader) (*respondResult, error) {
	it, err := decodeCBOR(msg)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(it, pqxVersion); err != nil {
		return nil, err
	}
	if err := checkSchema(it, prekeyMessageSchema); err != nil {
		return nil, err
	}
	encIKA, encEKA := it.get(2).bstr, it.get(3).bstr
	ikA, err := decodeX25519(encIKA)
	if err != nil {
		return nil, err
	}
	ekA, err := decodeX25519(encEKA)
	if err != nil {
		return nil, err
	}
	if uint32(it.get(4).val) != keys.spkID || uint32(it.get(5).val) != keys.kemID {
		return nil, errUnknownPrekey
	}
	opkItem := it.get(7)
	if opkItem != nil && (!keys.hasOPK || uint32(opkItem.val) != keys.opkID) {
		return nil, errUnknownPrekey
	}
	ikBPub, err := x25519Public(keys.ikPriv)
	if err != nil {
		return nil, err
	}
	spkPub, err := x25519Public(keys.spkPriv)
	if err != nil {
		return nil, err
	}
	dhs := [][2][]byte{{keys.spkPriv, ikA}, {keys.ikPriv, ekA}, {keys.spkPriv, ekA}}
	var encOPK []byte
	if opkItem != nil {
		dhs = append(dhs, [2][]byte{keys.opkPriv, ekA})
		opkPub, err := x25519Public(keys.opkPriv)
		if err != nil {
			return nil, err
		}
		encOPK = encX25519(opkPub)
	}
	var km []byte
	for _, dh := range dhs {
		out, err := x25519(dh[0], dh[1])
		if err != nil {
			return nil, err
		}
		km = append(km, out...)
	}
	ct := it.get(6).bstr
	ss, err := kemDecaps(keys.kemSeed, ct)
	if err != nil {
		return nil, err
	}
	km = append(km, ss...)
	ekPub, err := kemPublic(keys.kemSeed)
	if err != nil {
		return nil, err
	}
	sk, ad, err := pqxdhKDF(encIKA, encX25519(ikBPub), encX25519(spkPub), encOPK, encMLKEM(ekPub), encEKA, ct, km)
	if err != nil {
		return nil, err
	}
	bob, err := newBob(sk, ad, keys.spkPriv)
	if err != nil {
		return nil, err
	}
	// Step 6: the bytes of field 8 are decoded as a ratchet message of their
	// own (stages 1 to 3 of chapter 10, then the header), then decrypted.
	pm, err := parseRatchetMessage(it.get(8).bstr)
	if err != nil {
		return nil, err
	}
	pt, err := bob.decryptParsed(pm, rnd)
	if err != nil {
		return nil, err
	}
	return &respondResult{sk: sk, ad: ad, plaintext: pt, bob: bob}, nil
}
