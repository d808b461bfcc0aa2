package gen

import (
	"bytes"
	"fmt"
)

// pqxdhCase is one case of pqxdh.json (section 9.2).
type pqxdhCase struct {
	caseHead
	Operation               string   `json:"operation"`
	AliceIdentityPrivate    hexBytes `json:"alice_identity_private"`
	BobIdentityPrivate      hexBytes `json:"bob_identity_private"`
	BobSignedPrekeyPrivate  hexBytes `json:"bob_signed_prekey_private"`
	BobSignedPrekeyID       uint32   `json:"bob_signed_prekey_id"`
	BobKEMPrekeySeed        hexBytes `json:"bob_kem_prekey_seed"`
	BobKEMPrekeyID          uint32   `json:"bob_kem_prekey_id"`
	BobKEMPrekeyLastResort  bool     `json:"bob_kem_prekey_last_resort"`
	BobOneTimePrekeyPrivate hexBytes `json:"bob_one_time_prekey_private,omitempty"`
	BobOneTimePrekeyID      *uint32  `json:"bob_one_time_prekey_id,omitempty"`
	SignedPrekeyZ           hexBytes `json:"signed_prekey_z"`
	KEMPrekeyZ              hexBytes `json:"kem_prekey_z"`
	Bundle                  hexBytes `json:"bundle"`
	AliceEphemeralPrivate   hexBytes `json:"alice_ephemeral_private"`
	KEMEncapsRandom         hexBytes `json:"kem_encaps_random"`
	AliceRatchetPrivate     hexBytes `json:"alice_ratchet_private"`
	BobRatchetPrivate       hexBytes `json:"bob_ratchet_private"`
	Plaintext               hexBytes `json:"plaintext"`
	SK                      hexBytes `json:"sk,omitempty"`
	AD                      hexBytes `json:"ad,omitempty"`
	PrekeyMessage           hexBytes `json:"prekey_message,omitempty"`
	Expect                  string   `json:"expect"`
	Error                   string   `json:"error,omitempty"`
}

var pqxdhNotes = notes{
	{"one_time_prekey", "Bob's bundle has a one-time EC prekey OPK_B, so the handshake uses DH4"},
	{"last_resort", "the KEM prekey is Bob's last-resort KEM prekey"},
	{"signature", "a bundle signature does not verify"},
	{"key_confusion", "a key slot holds an encoding of another kind (another type byte), or a key of another kind"},
	{"noncanonical", "a key slot holds a non-canonical key body"},
	{"low_order", "an X25519 key of small order: a Diffie-Hellman output is all zero"},
	{"cbor", "the structure breaks the CBOR profile or the CDDL of its structure"},
	{"binding", "a value that PQXDH binds into SK or AD is changed, which only the AEAD of the enclosed ratchet message detects"},
}

// pqxdhScenario is a complete, valid handshake from which negative cases are derived.
type pqxdhScenario struct {
	id, comment   string
	keys          bobKeys
	ikA           []byte
	spkZ, kemZ    []byte
	ekA, m, ratch []byte
	bobRatch      []byte // the ratchet key Bob draws in his first decryption
	plaintext     []byte
	bundle        bundleParts
	bobRand       *stream // bobRatch, then the randomness of the checks
	result        *initiateResult
	flags         []string
}

func newScenario(id, comment string, spkID, kemID uint32, lastResort, hasOPK bool, opkID uint32, ptLen int) (*pqxdhScenario, error) {
	st := newStream("Missive v1 test vectors: pqxdh: " + id)
	s := &pqxdhScenario{id: id, comment: comment, bobRand: newStream("Missive v1 test vectors: pqxdh: bob ratchet: " + id)}
	s.bobRatch = s.bobRand.read(32)
	s.ikA = st.read(32)
	s.keys = bobKeys{ikPriv: st.read(32), spkID: spkID, spkPriv: st.read(32), kemID: kemID, kemSeed: st.read(64),
		lastResort: lastResort}
	if hasOPK {
		s.keys.hasOPK, s.keys.opkID, s.keys.opkPriv = true, opkID, st.read(32)
		s.flags = append(s.flags, "one_time_prekey")
	}
	if lastResort {
		s.flags = append(s.flags, "last_resort")
	}
	s.spkZ, s.kemZ = st.read(64), st.read(64)
	s.ekA, s.m, s.ratch = st.read(32), st.read(32), st.read(32)
	s.plaintext = st.read(ptLen)

	ikB, err := x25519Public(s.keys.ikPriv)
	if err != nil {
		return nil, err
	}
	spk, err := x25519Public(s.keys.spkPriv)
	if err != nil {
		return nil, err
	}
	ek, err := kemPublic(s.keys.kemSeed)
	if err != nil {
		return nil, err
	}
	b := bundleParts{version: pqxVersion, ik: encX25519(ikB), spkID: spkID, spk: encX25519(spk), kemID: kemID,
		kem: encMLKEM(ek), lastResort: lastResort}
	if b.spkSig, err = xeddsaSign(s.keys.ikPriv, append([]byte(labelSigSignedPrekey), b.spk...), s.spkZ); err != nil {
		return nil, err
	}
	if b.kemSig, err = xeddsaSign(s.keys.ikPriv, append([]byte(labelSigKEMPrekey), b.kem...), s.kemZ); err != nil {
		return nil, err
	}
	if hasOPK {
		opk, err := x25519Public(s.keys.opkPriv)
		if err != nil {
			return nil, err
		}
		b.hasOPK, b.opkID, b.opk = true, opkID, encX25519(opk)
	}
	s.bundle = b
	// Alice, then Bob: the generator's own two sides must agree.
	s.result, err = initiate(b.encode(), s.ikA, s.plaintext, bytes.NewReader(concat(s.ekA, s.m, s.ratch)))
	if err != nil {
		return nil, fmt.Errorf("%s: initiate: %v", id, err)
	}
	keys := s.keys
	bobRnd := bytes.NewReader(s.bobRatch)
	r, err := respond(s.result.prekeyMessage, &keys, bobRnd)
	if err != nil {
		return nil, fmt.Errorf("%s: respond: %v", id, err)
	}
	if bobRnd.Len() != 0 {
		return nil, fmt.Errorf("%s: Bob did not draw his ratchet key", id)
	}
	if !bytes.Equal(r.sk, s.result.sk) || !bytes.Equal(r.ad, s.result.ad) || !bytes.Equal(r.plaintext, s.plaintext) {
		return nil, fmt.Errorf("%s: Alice and Bob disagree", id)
	}
	// Bob answers and Alice decrypts: the sessions are usable both ways.
	reply := []byte("reply")
	msg, err := r.bob.encrypt(reply)
	if err != nil {
		return nil, fmt.Errorf("%s: Bob's reply: %v", id, err)
	}
	got, err := s.result.alice.decrypt(msg, s.bobRand)
	if err != nil || !bytes.Equal(got, reply) {
		return nil, fmt.Errorf("%s: Alice cannot read Bob's reply: %v", id, err)
	}
	return s, nil
}

// lastResortScenario is the valid case without any one-time prekey. The
// ratchet family continues its session (ratchet_prekey_session_*).
func lastResortScenario() (*pqxdhScenario, error) {
	return newScenario("pqxdh_last_resort_without_one_time_prekey", "The last-resort KEM prekey without a one-time "+
		"EC prekey; the signed prekey and the KEM prekey share the id 2^32 - 1 (PQX-002 allows it).",
		0xffffffff, 0xffffffff, true, false, 0, 1000)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// baseCase returns the case of the scenario as a valid case.
func (s *pqxdhScenario) baseCase() pqxdhCase {
	c := pqxdhCase{
		caseHead: caseHead{ID: s.id, Comment: s.comment, Flags: append([]string{}, s.flags...),
			Requirements: []string{"CONV-001", "CBOR-001", "CBOR-002", "CBOR-003", "PQX-001", "PQX-003", "PQX-005", "PQX-007",
				"PQX-008", "RAT-003", "RAT-004", "RAT-007", "PRIM-005"}},
		Operation:              "both",
		AliceIdentityPrivate:   s.ikA,
		BobIdentityPrivate:     s.keys.ikPriv,
		BobSignedPrekeyPrivate: s.keys.spkPriv,
		BobSignedPrekeyID:      s.keys.spkID,
		BobKEMPrekeySeed:       s.keys.kemSeed,
		BobKEMPrekeyID:         s.keys.kemID,
		BobKEMPrekeyLastResort: s.keys.lastResort,
		SignedPrekeyZ:          s.spkZ,
		KEMPrekeyZ:             s.kemZ,
		Bundle:                 s.bundle.encode(),
		AliceEphemeralPrivate:  s.ekA,
		KEMEncapsRandom:        s.m,
		AliceRatchetPrivate:    s.ratch,
		BobRatchetPrivate:      s.bobRatch,
		Plaintext:              s.plaintext,
		SK:                     s.result.sk,
		AD:                     s.result.ad,
		PrekeyMessage:          s.result.prekeyMessage,
		Expect:                 "valid",
	}
	if s.keys.hasOPK {
		id := s.keys.opkID
		c.BobOneTimePrekeyPrivate, c.BobOneTimePrekeyID = s.keys.opkPriv, &id
	}
	return c
}

// initiateCase returns a negative "initiate" case with an altered bundle.
func (s *pqxdhScenario) initiateCase(id, comment string, flags, reqs []string, errWant *codeError, alter func(b *bundleParts)) pqxdhCase {
	c := s.baseCase()
	b := s.bundle
	alter(&b)
	c.caseHead = caseHead{ID: id, Comment: comment, Flags: append(append([]string{}, s.flags...), flags...), Requirements: reqs}
	c.Operation = "initiate"
	c.Bundle = b.encode()
	c.SK, c.AD, c.PrekeyMessage = nil, nil, nil
	c.Expect, c.Error = "invalid", errWant.name
	return c
}

// respondCase returns a negative "respond" case with an altered prekey message.
func (s *pqxdhScenario) respondCase(id, comment string, flags, reqs []string, errWant *codeError, alter func(p *prekeyParts)) pqxdhCase {
	c := s.baseCase()
	p := *s.result.parts
	alter(&p)
	c.caseHead = caseHead{ID: id, Comment: comment, Flags: append(append([]string{}, s.flags...), flags...), Requirements: reqs}
	c.Operation = "respond"
	c.PrekeyMessage = p.encode()
	c.SK, c.AD = nil, nil
	c.Expect, c.Error = "invalid", errWant.name
	return c
}

func flipBit(b []byte, i int, bit byte) []byte {
	c := cloneBytes(b)
	c[i] ^= bit
	return c
}

func genPQXDH() (any, error) {
	s1, err := newScenario("pqxdh_one_time_prekeys", "Alice uses a one-time EC prekey and a one-time KEM prekey: "+
		"DH1 to DH4 and the KEM.", 1, 23, false, true, 24, 40)
	if err != nil {
		return nil, err
	}
	s2, err := newScenario("pqxdh_no_one_time_ec_prekey", "The bundle has no one-time EC prekey: DH1 to DH3 and the "+
		"KEM; the prekey message has no field 7.", 255, 256, false, false, 0, 0)
	if err != nil {
		return nil, err
	}
	s3, err := newScenario("pqxdh_last_resort_with_one_time_prekey", "The last-resort KEM prekey with a one-time EC "+
		"prekey (id 0).", 65535, 65536, true, true, 0, 1)
	if err != nil {
		return nil, err
	}
	s4, err := lastResortScenario()
	if err != nil {
		return nil, err
	}
	cases := []pqxdhCase{s1.baseCase(), s2.baseCase(), s3.baseCase(), s4.baseCase()}

	// Alice: the bundle checks of section 4.2, in order.
	ikB, _ := x25519Public(s1.keys.ikPriv)
	spk, _ := x25519Public(s1.keys.spkPriv)
	opk, _ := x25519Public(s1.keys.opkPriv)
	ek, err := kemPublic(s1.keys.kemSeed)
	if err != nil {
		return nil, err
	}
	keyType := []string{"CONV-003", "CONV-006", "PQX-003", "PQX-004"}
	nonCanon := []string{"CONV-003", "CONV-004", "PQX-003", "PQX-004"}
	sigReqs := []string{"PQX-001", "PQX-003", "PQX-004", "XED-003"}
	wrongType := func(body []byte, t byte) []byte { return append([]byte{t}, body...) }
	highBit := func(enc []byte) []byte { return flipBit(enc, 32, 0x80) }
	lowOrder := lowOrderPoints[2]
	ini := []pqxdhCase{
		s1.initiateCase("pqxdh_bundle_unsupported_version", "The bundle of pqxdh_one_time_prekeys with version 2.",
			nil, []string{"VER-002", "PQX-003", "PQX-004", "CBOR-004"}, errUnsupportedVersion,
			func(b *bundleParts) { b.version = 2 }),
		s1.initiateCase("pqxdh_identity_key_wrong_type", "IK_B carried with the ML-KEM type byte 0x0A and its 32-byte "+
			"X25519 body (33 bytes, so the CBOR size constraint holds).", []string{"key_confusion"}, keyType, errKeyType,
			func(b *bundleParts) { b.ik = wrongType(ikB, typeMLKEMPublic) }),
		s1.initiateCase("pqxdh_signed_prekey_wrong_type", "SPK_B carried with the ML-KEM type byte 0x0A.",
			[]string{"key_confusion"}, keyType, errKeyType,
			func(b *bundleParts) { b.spk = wrongType(spk, typeMLKEMPublic) }),
		s1.initiateCase("pqxdh_signed_prekey_private_type", "SPK_B carried with the X25519 private-key type byte 0x85.",
			[]string{"key_confusion"}, append([]string{"CONV-002"}, keyType...), errKeyType,
			func(b *bundleParts) { b.spk = wrongType(spk, typeX25519Private) }),
		s1.initiateCase("pqxdh_kem_prekey_wrong_type", "PQPK_B carried with the X25519 type byte 0x05 and its 1568-byte "+
			"ML-KEM body (1569 bytes, so the CBOR size constraint holds).", []string{"key_confusion"}, keyType, errKeyType,
			func(b *bundleParts) { b.kem = wrongType(ek, typeX25519Public) }),
		s1.initiateCase("pqxdh_one_time_prekey_wrong_type", "OPK_B carried with the ML-KEM type byte 0x0A.",
			[]string{"key_confusion"}, keyType, errKeyType,
			func(b *bundleParts) { b.opk = wrongType(opk, typeMLKEMPublic) }),
		s1.initiateCase("pqxdh_identity_key_is_kem_key", "The IK_B slot holds Enc(PQPK_B), 1569 bytes: the CBOR schema "+
			"(x25519-public = bstr .size 33) fails before any key is decoded.", []string{"key_confusion", "cbor"},
			[]string{"CBOR-004", "CONV-006", "PQX-003", "PQX-004"}, errTooLong,
			func(b *bundleParts) { b.ik = encMLKEM(ek) }),
		s1.initiateCase("pqxdh_kem_prekey_is_x25519_key", "The PQPK_B slot holds Enc(SPK_B), 33 bytes: the CBOR schema "+
			"(mlkem-public = bstr .size 1569) fails before any key is decoded.", []string{"key_confusion", "cbor"},
			[]string{"CBOR-004", "CONV-006", "PQX-003", "PQX-004"}, errTooShort,
			func(b *bundleParts) { b.kem = b.spk }),
		s1.initiateCase("pqxdh_identity_key_noncanonical", "IK_B with the high bit of u set (u + 2^255): a masking "+
			"decoder would read the same key.", []string{"noncanonical"}, nonCanon, errKeyNoncanonical,
			func(b *bundleParts) { b.ik = highBit(b.ik) }),
		s1.initiateCase("pqxdh_signed_prekey_noncanonical", "SPK_B with the high bit of u set (u + 2^255).",
			[]string{"noncanonical"}, nonCanon, errKeyNoncanonical,
			func(b *bundleParts) { b.spk = highBit(b.spk) }),
		s1.initiateCase("pqxdh_one_time_prekey_noncanonical", "OPK_B with the high bit of u set (u + 2^255).",
			[]string{"noncanonical"}, nonCanon, errKeyNoncanonical,
			func(b *bundleParts) { b.opk = highBit(b.opk) }),
		s1.initiateCase("pqxdh_kem_prekey_noncanonical", "PQPK_B whose first 12-bit coefficient is 4095 >= 3329: the "+
			"modulus check of FIPS 203 section 7.2 fails.", []string{"noncanonical"},
			append([]string{"PRIM-003"}, nonCanon...), errKeyNoncanonical,
			func(b *bundleParts) {
				b.kem = cloneBytes(b.kem)
				b.kem[1] = 0xff
				b.kem[2] |= 0x0f
			}),
		s1.initiateCase("pqxdh_bad_signed_prekey_signature", "The signed-prekey signature with one bit of R flipped.",
			[]string{"signature"}, sigReqs, errBadSignature,
			func(b *bundleParts) { b.spkSig = flipBit(b.spkSig, 0, 0x01) }),
		s1.initiateCase("pqxdh_bad_kem_prekey_signature", "The KEM-prekey signature with one bit of s flipped.",
			[]string{"signature"}, sigReqs, errBadSignature,
			func(b *bundleParts) { b.kemSig = flipBit(b.kemSig, 40, 0x01) }),
	}
	// Signatures over the wrong label, with the same z.
	wrongLabelSPK, err := xeddsaSign(s1.keys.ikPriv, append([]byte(labelSigKEMPrekey), s1.bundle.spk...), s1.spkZ)
	if err != nil {
		return nil, err
	}
	wrongLabelKEM, err := xeddsaSign(s1.keys.ikPriv, append([]byte(labelSigSignedPrekey), s1.bundle.kem...), s1.kemZ)
	if err != nil {
		return nil, err
	}
	ini = append(ini,
		s1.initiateCase("pqxdh_signed_prekey_signature_wrong_label", "SPK_B signed as LABEL_SIG_KEM_PREKEY || Enc(SPK_B) "+
			"(with signed_prekey_z): a valid signature for another purpose.", []string{"signature"},
			append([]string{"XED-008"}, sigReqs...), errBadSignature,
			func(b *bundleParts) { b.spkSig = wrongLabelSPK }),
		s1.initiateCase("pqxdh_kem_prekey_signature_wrong_label", "PQPK_B signed as LABEL_SIG_SIGNED_PREKEY || Enc(PQPK_B) "+
			"(with kem_prekey_z): a valid signature for another purpose.", []string{"signature"},
			append([]string{"XED-008"}, sigReqs...), errBadSignature,
			func(b *bundleParts) { b.kemSig = wrongLabelKEM }),
		s1.initiateCase("pqxdh_signature_too_short", "The signed-prekey signature truncated to 63 bytes: the CBOR schema "+
			"(signature = bstr .size 64) fails in the decoding step, before any signature is verified.",
			[]string{"cbor"}, []string{"CBOR-004", "CONV-006", "PQX-003", "PQX-004"}, errTooShort,
			func(b *bundleParts) { b.spkSig = b.spkSig[:63] }),
	)
	// Low-order keys, properly signed: the signature checks pass and a DH fails.
	lowSPKSig, err := xeddsaSign(s1.keys.ikPriv, append([]byte(labelSigSignedPrekey), encX25519(lowOrder)...), s1.spkZ)
	if err != nil {
		return nil, err
	}
	ini = append(ini,
		s1.initiateCase("pqxdh_low_order_signed_prekey", "SPK_B is a point of order 8, correctly signed with IK_B "+
			"(signed_prekey_z): the signatures verify and DH1 is all zero.", []string{"low_order"},
			[]string{"PRIM-001", "PRIM-002", "PQX-004"}, errLowOrderKey,
			func(b *bundleParts) { b.spk, b.spkSig = encX25519(lowOrder), lowSPKSig }),
		s1.initiateCase("pqxdh_low_order_one_time_prekey", "OPK_B (unsigned) is a point of order 8: DH1 to DH3 succeed "+
			"and DH4 is all zero.", []string{"low_order"}, []string{"PRIM-001", "PRIM-002", "PQX-004"}, errLowOrderKey,
			func(b *bundleParts) { b.opk = encX25519(lowOrder) }),
	)
	// IK_B of small order (u = 0), with both signatures forged for it so
	// that they verify when the small-order check is left out: XED-009
	// rejects the key at the first signature check (step 3 of PQX-003).
	fst := newStream("Missive v1 test vectors: pqxdh: low-order identity forgery")
	zeroU := make([]byte, 32)
	spkMsg := append([]byte(labelSigSignedPrekey), s1.bundle.spk...)
	kemMsg := append([]byte(labelSigKEMPrekey), s1.bundle.kem...)
	forgedSPK, err := forgeLowOrder(fst, zeroU, spkMsg)
	if err != nil {
		return nil, err
	}
	forgedKEM, err := forgeLowOrder(fst, zeroU, kemMsg)
	if err != nil {
		return nil, err
	}
	if xeddsaVerifyMode(zeroU, spkMsg, forgedSPK, verifyNoSmallOrderCheck) != nil ||
		xeddsaVerifyMode(zeroU, kemMsg, forgedKEM, verifyNoSmallOrderCheck) != nil {
		return nil, fmt.Errorf("pqxdh_low_order_identity_key: the forgeries do not verify without XED-009")
	}
	ini = append(ini, s1.initiateCase("pqxdh_low_order_identity_key", "IK_B is u = 0 (order 2) and both signatures are "+
		"forgeries that verify under it when the small-order check is left out (see xeddsa_low_order_public_key; "+
		"signed_prekey_z and kem_prekey_z do not produce them). XED-009 rejects the key, so the signed-prekey "+
		"signature fails (step 3 of PQX-003) before any Diffie-Hellman; without that check, DH2 = X25519(EK_A, IK_B) "+
		"would be all zero.", []string{"low_order", "signature"},
		[]string{"XED-003", "XED-009", "PQX-003", "PQX-004"}, errBadSignature,
		func(b *bundleParts) {
			b.ik, b.spkSig, b.kemSig = encX25519(make([]byte, 32)), forgedSPK, forgedKEM
		}))
	// CBOR shape of the bundle.
	cborReqs := []string{"CBOR-004", "CBOR-005", "PQX-003", "PQX-004"}
	ini = append(ini,
		s1.initiateCase("pqxdh_bundle_id_out_of_range", "The signed-prekey id is 2^32, above uint32.", []string{"cbor"},
			cborReqs, errValueOutOfRange, func(b *bundleParts) {}),
	)
	// The id 2^32 does not fit bundleParts: build that bundle by hand.
	ini[len(ini)-1].Bundle = encodeCBOR(bundleMap(&s1.bundle, cUint(1<<32), nil))
	ini = append(ini, s1.initiateCase("pqxdh_bundle_last_resort_not_bool", "The last-resort flag encoded as the "+
		"unsigned integer 0 instead of false.", []string{"cbor"}, cborReqs, errWrongType, func(b *bundleParts) {}))
	ini[len(ini)-1].Bundle = encodeCBOR(bundleMap(&s1.bundle, nil, cUint(0)))
	ini = append(ini, s1.initiateCase("pqxdh_bundle_unknown_field", "The bundle with an extra field 6 (an empty byte "+
		"string).", []string{"cbor"}, append([]string{"CBOR-002"}, cborReqs...), errUnknownField, func(b *bundleParts) {}))
	ini[len(ini)-1].Bundle = encodeCBOR(append(bundleMap(&s1.bundle, nil, nil), cPair{6, cBytes{}}))
	ini = append(ini, s1.initiateCase("pqxdh_bundle_missing_kem_prekey", "The bundle without field 4 (the KEM prekey).",
		[]string{"cbor"}, cborReqs, errMissingField, func(b *bundleParts) {}))
	{
		m := bundleMap(&s1.bundle, nil, nil)
		var n cMap
		for _, p := range m {
			if p.k != 4 {
				n = append(n, p)
			}
		}
		ini[len(ini)-1].Bundle = encodeCBOR(n)
	}
	cases = append(cases, ini...)

	// Bob: the checks of section 4.6, in order.
	ikA, _ := x25519Public(s1.ikA)
	ekA, _ := x25519Public(s1.ekA)
	other := newStream("Missive v1 test vectors: pqxdh: substituted keys")
	otherIK, err := x25519Public(other.read(32))
	if err != nil {
		return nil, err
	}
	otherEK, err := x25519Public(other.read(32))
	if err != nil {
		return nil, err
	}
	rsp := []pqxdhCase{
		s1.respondCase("pqxdh_respond_unsupported_version", "The prekey message of pqxdh_one_time_prekeys with version 2.",
			nil, []string{"VER-002", "PQX-008", "CBOR-004"}, errUnsupportedVersion, func(p *prekeyParts) { p.version = 2 }),
		s1.respondCase("pqxdh_respond_alice_identity_wrong_type", "IK_A carried with the ML-KEM type byte 0x0A.",
			[]string{"key_confusion"}, []string{"CONV-003", "PQX-008"}, errKeyType,
			func(p *prekeyParts) { p.ikA = wrongType(ikA, typeMLKEMPublic) }),
		s1.respondCase("pqxdh_respond_ephemeral_wrong_type", "EK_A carried with the ML-KEM type byte 0x0A.",
			[]string{"key_confusion"}, []string{"CONV-003", "PQX-008"}, errKeyType,
			func(p *prekeyParts) { p.ekA = wrongType(ekA, typeMLKEMPublic) }),
		s1.respondCase("pqxdh_respond_alice_identity_is_kem_key", "The IK_A slot holds a 1569-byte ML-KEM key "+
			"encoding: the CBOR schema fails first.", []string{"key_confusion", "cbor"},
			[]string{"CBOR-004", "CONV-006", "PQX-008"}, errTooLong, func(p *prekeyParts) { p.ikA = encMLKEM(ek) }),
		s1.respondCase("pqxdh_respond_ephemeral_noncanonical", "EK_A with the high bit of u set (u + 2^255).",
			[]string{"noncanonical"}, []string{"CONV-003", "CONV-004", "PQX-008"}, errKeyNoncanonical,
			func(p *prekeyParts) { p.ekA = highBit(p.ekA) }),
		s1.respondCase("pqxdh_respond_unknown_signed_prekey", "The prekey message names signed prekey id 2, which Bob "+
			"does not hold.", nil, []string{"PQX-008", "PQX-009"}, errUnknownPrekey, func(p *prekeyParts) { p.spkID++ }),
		s1.respondCase("pqxdh_respond_unknown_kem_prekey", "The prekey message names KEM prekey id 24, which Bob does "+
			"not hold.", nil, []string{"PQX-008", "PQX-009"}, errUnknownPrekey, func(p *prekeyParts) { p.kemID++ }),
		s1.respondCase("pqxdh_respond_unknown_one_time_prekey", "The prekey message names one-time prekey id 25, which "+
			"Bob does not hold.", nil, []string{"PQX-008", "PQX-009"}, errUnknownPrekey, func(p *prekeyParts) { p.opkID++ }),
	}
	used := s1.respondCase("pqxdh_respond_one_time_prekey_already_used", "The prekey message of pqxdh_one_time_prekeys, "+
		"unchanged, but Bob no longer holds the one-time prekey (bob_one_time_prekey_* are absent): it was used by an "+
		"earlier prekey message. Bob holds no session either, so the lookup of section 4.6 step 2 (PQX-011) finds "+
		"none and the prekey lookup fails.", nil, []string{"PQX-008"}, errUnknownPrekey, func(p *prekeyParts) {})
	used.BobOneTimePrekeyPrivate, used.BobOneTimePrekeyID = nil, nil
	rsp = append(rsp, used,
		s1.respondCase("pqxdh_respond_low_order_alice_identity", "IK_A is a point of order 8: DH1 = X25519(SPK_B, IK_A) "+
			"is all zero.", []string{"low_order"}, []string{"PRIM-001", "PRIM-002", "PQX-008"}, errLowOrderKey,
			func(p *prekeyParts) { p.ikA = encX25519(lowOrder) }),
		s1.respondCase("pqxdh_respond_low_order_ephemeral", "EK_A is a point of order 8: DH1 succeeds and "+
			"DH2 = X25519(IK_B, EK_A) is all zero.", []string{"low_order"}, []string{"PRIM-001", "PRIM-002", "PQX-008"},
			errLowOrderKey, func(p *prekeyParts) { p.ekA = encX25519(lowOrder) }),
		s1.respondCase("pqxdh_respond_tampered_kem_ciphertext", "One bit of CT flipped: ML-KEM decapsulation rejects "+
			"implicitly, SK differs, and the enclosed ratchet message fails to decrypt.", []string{"binding"},
			[]string{"PQX-005", "PQX-008", "PRIM-004"}, errDecryptFailed, func(p *prekeyParts) { p.ct = flipBit(p.ct, 100, 0x04) }),
		s1.respondCase("pqxdh_respond_substituted_alice_identity", "IK_A replaced by another valid X25519 key: DH1, TH "+
			"and AD differ.", []string{"binding"}, []string{"PQX-005", "PQX-008", "PRIM-004"}, errDecryptFailed,
			func(p *prekeyParts) { p.ikA = encX25519(otherIK) }),
		s1.respondCase("pqxdh_respond_substituted_ephemeral", "EK_A replaced by another valid X25519 key: DH2 to DH4 "+
			"and TH differ.", []string{"binding"}, []string{"PQX-005", "PQX-008", "PRIM-004"}, errDecryptFailed,
			func(p *prekeyParts) { p.ekA = encX25519(otherEK) }),
		s1.respondCase("pqxdh_respond_one_time_prekey_id_removed", "Field 7 removed: Bob derives SK without DH4 and "+
			"without Enc(OPK_B) in TH, and the enclosed ratchet message fails to decrypt.", []string{"binding"},
			[]string{"PQX-005", "PQX-008", "PRIM-004"}, errDecryptFailed, func(p *prekeyParts) { p.hasOPK = false }),
		s1.respondCase("pqxdh_respond_kem_ciphertext_too_short", "CT truncated to 1567 bytes (bstr .size 1568).",
			[]string{"cbor"}, []string{"CBOR-004", "PQX-008"}, errTooShort, func(p *prekeyParts) { p.ct = p.ct[:1567] }),
	)
	// Changes inside the enclosed ratchet message.
	inner, err := parseRatchetMessage(s1.result.parts.ratchet)
	if err != nil {
		return nil, err
	}
	rsp = append(rsp,
		s1.respondCase("pqxdh_respond_tampered_ratchet_ciphertext", "One bit of the enclosed ratchet message's "+
			"ciphertext flipped.", nil, []string{"PQX-008", "PRIM-004", "RAT-009"}, errDecryptFailed,
			func(p *prekeyParts) { p.ratchet = ratchetMessage(ratVersion, inner.header, flipBit(inner.ct, 0, 0x01)) }),
		s1.respondCase("pqxdh_respond_ratchet_unsupported_version", "The enclosed ratchet message with version 2. "+
			"Field 8 is a byte string, which the CBOR profile accepts whatever it holds; Bob decodes its bytes as a "+
			"ratchet message of their own, version first, at step 6 of section 4.6, after the Diffie-Hellman steps.",
			nil, []string{"VER-002", "PQX-008", "RAT-009"}, errUnsupportedVersion,
			func(p *prekeyParts) { p.ratchet = ratchetMessage(2, inner.header, inner.ct) }),
		s1.respondCase("pqxdh_respond_ratchet_message_not_bstr", "Field 8 carries the ratchet message as an embedded "+
			"map, not as the byte string of its encoding (bstr .cbor ratchet-message): the CBOR schema fails "+
			"(stage 3a) before any key is decoded.", []string{"cbor"}, []string{"CBOR-004", "CONV-006", "PQX-008"},
			errWrongType, func(p *prekeyParts) { p.embedRatchet = true }),
		s1.respondCase("pqxdh_respond_ratchet_message_trailing_bytes", "The bytes of field 8 are the ratchet message "+
			"followed by one zero byte. The prekey message itself is well formed; the enclosed bytes, decoded as a "+
			"top-level item of their own at step 6, have trailing bytes.", []string{"cbor"},
			[]string{"CBOR-004", "CBOR-005", "PQX-008", "RAT-009"}, errTrailingBytes,
			func(p *prekeyParts) { p.ratchet = append(cloneBytes(p.ratchet), 0x00) }),
	)
	cases = append(cases, rsp...)

	// Check every case with the generator's implementation.
	for i := range cases {
		if cases[i].Expect == "invalid" {
			cases[i].Requirements = withErr001(cases[i].Requirements)
		}
		if err := checkPQXDHCase(&cases[i]); err != nil {
			return nil, err
		}
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("pqxdh", pqxdhNotes, heads); err != nil {
		return nil, err
	}
	return newFile("pqxdh", "PQXDH (chapter 4): Alice's processing of a prekey bundle and her prekey message, and "+
		"Bob's processing of the prekey message, with the first ratchet message it carries (field 8, the bytes of "+
		"its encoding). Valid cases have operation \"both\" and test both sides. In an \"initiate\" case Alice fails "+
		"and produces no prekey message: prekey_message is absent. In a \"respond\" case bundle is the bundle that "+
		"Alice processed, and Bob, who holds no session yet, fails. bob_ratchet_private is the key Bob draws in the "+
		"DH ratchet step of his first decryption (section 5.8); every case lists it, also where Bob does not reach "+
		"that step.", pqxdhNotes, cases), nil
}

// bundleMap returns the map of a bundle, optionally with the signed-prekey id
// or the last-resort flag replaced by another value.
func bundleMap(b *bundleParts, spkID, lastResort cval) cMap {
	if spkID == nil {
		spkID = cUint(b.spkID)
	}
	if lastResort == nil {
		lastResort = cBool(b.lastResort)
	}
	m := cMap{
		{1, cUint(b.version)},
		{2, cBytes(b.ik)},
		{3, cMap{{1, spkID}, {2, cBytes(b.spk)}, {3, cBytes(b.spkSig)}}},
		{4, cMap{{1, cUint(b.kemID)}, {2, cBytes(b.kem)}, {3, cBytes(b.kemSig)}, {4, lastResort}}},
	}
	if b.hasOPK {
		m = append(m, cPair{5, cMap{{1, cUint(b.opkID)}, {2, cBytes(b.opk)}}})
	}
	return m
}

// checkPQXDHCase runs a case through the generator's implementation.
func checkPQXDHCase(c *pqxdhCase) error {
	keys := &bobKeys{ikPriv: c.BobIdentityPrivate, spkID: c.BobSignedPrekeyID, spkPriv: c.BobSignedPrekeyPrivate,
		kemID: c.BobKEMPrekeyID, kemSeed: c.BobKEMPrekeySeed, lastResort: c.BobKEMPrekeyLastResort}
	if c.BobOneTimePrekeyID != nil {
		keys.hasOPK, keys.opkID, keys.opkPriv = true, *c.BobOneTimePrekeyID, c.BobOneTimePrekeyPrivate
	}
	rnd := bytes.NewReader(concat(c.AliceEphemeralPrivate, c.KEMEncapsRandom, c.AliceRatchetPrivate))
	bobRand := bytes.NewReader(c.BobRatchetPrivate)
	switch {
	case c.Expect == "valid" && c.Operation != "both", c.Expect == "invalid" && c.Operation == "both":
		return fmt.Errorf("%s: operation %q in a case that is %s", c.ID, c.Operation, c.Expect)
	case (c.PrekeyMessage == nil) != (c.Operation == "initiate"):
		return fmt.Errorf("%s: prekey_message must be absent exactly in initiate cases", c.ID)
	case len(c.BobRatchetPrivate) != 32:
		return fmt.Errorf("%s: no bob_ratchet_private", c.ID)
	}
	if c.Expect == "valid" || c.Operation == "initiate" {
		r, err := initiate(c.Bundle, c.AliceIdentityPrivate, c.Plaintext, rnd)
		got, gerr := errName(err)
		if gerr != nil {
			return fmt.Errorf("%s: initiate: %v", c.ID, gerr)
		}
		if got != c.Error {
			return fmt.Errorf("%s: initiate: got error %q, want %q", c.ID, got, c.Error)
		}
		if err == nil && (!bytes.Equal(r.sk, c.SK) || !bytes.Equal(r.ad, c.AD) || !bytes.Equal(r.prekeyMessage, c.PrekeyMessage)) {
			return fmt.Errorf("%s: initiate: outputs differ", c.ID)
		}
		if rnd.Len() != 0 && err == nil {
			return fmt.Errorf("%s: initiate left %d random bytes unused", c.ID, rnd.Len())
		}
	}
	if c.Expect == "valid" || c.Operation == "respond" {
		r, err := respond(c.PrekeyMessage, keys, bobRand)
		got, gerr := errName(err)
		if gerr != nil {
			return fmt.Errorf("%s: respond: %v", c.ID, gerr)
		}
		if got != c.Error {
			return fmt.Errorf("%s: respond: got error %q, want %q", c.ID, got, c.Error)
		}
		if err == nil && (!bytes.Equal(r.sk, c.SK) || !bytes.Equal(r.ad, c.AD) || !bytes.Equal(r.plaintext, c.Plaintext)) {
			return fmt.Errorf("%s: respond: outputs differ", c.ID)
		}
		if err == nil && bobRand.Len() != 0 {
			return fmt.Errorf("%s: respond left bob_ratchet_private unused", c.ID)
		}
	}
	if c.Expect == "invalid" && (c.SK != nil || c.AD != nil) {
		return fmt.Errorf("%s: an invalid case has sk or ad", c.ID)
	}
	return nil
}
