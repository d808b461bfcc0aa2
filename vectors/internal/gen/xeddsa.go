package gen

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/big"
)

// xeddsaCase is one case of xeddsa.json (section 9.2).
type xeddsaCase struct {
	caseHead
	Private   hexBytes `json:"private,omitempty"`
	Public    hexBytes `json:"public"`
	Message   hexBytes `json:"message"`
	Z         hexBytes `json:"z,omitempty"`
	Signature hexBytes `json:"signature"`
	Expect    string   `json:"expect"`
	Error     string   `json:"error,omitempty"`
}

var xeddsaNotes = notes{
	{"edwards_sign_0", "the Edwards point E = clamp(private) * B has sign bit 0: calculate_key_pair keeps a = clamp(private) mod q"},
	{"edwards_sign_1", "the Edwards point E = clamp(private) * B has sign bit 1: calculate_key_pair negates a = -clamp(private) mod q"},
	{"labelled", "the message is a Missive signed message: a label of section 1.5 followed by a key encoding"},
	{"constructed", "the signature is not an output of xeddsa_sign: it is built directly from the verification equation (with a chosen r, or for a public key that no private key yields); private and z are absent"},
	{"signal_accepts", "an input that Signal's XEdDSA accepts, by the weaker checks that section 3.4 attributes to it (s < 2^253 instead of s < q; the high bit of u masked; no small-order check); Missive rejects it"},
	{"noncanonical", "an input is a non-canonical encoding of a value under which the signature would verify if the verifier reduced it"},
	{"low_order_public", "the public key has small order (8 * A is the identity) and the signature is a forgery that verifies under it when the check of XED-009 is left out; XED-009 rejects it"},
	{"torsion_public", "the public key's point A = A' + T has a component T of order 8 beside its prime-order component A', so A is not of small order; Rcheck = h * (-A) + s * B (XED-010) and ((q - h) mod q) * A + s * B differ by q * T = 5 * T"},
	{"length", "the signature is not 64 bytes (XED-004)"},
}

// xeddsaGen builds the family.
type xeddsaGen struct {
	st    *stream
	cases []xeddsaCase
	// baseSig remembers, for a case with a private key, the signature that
	// xeddsa_sign produces, which an invalid case then alters.
	baseSig map[string][]byte
	// acceptUnder and rejectUnder name, for a case that is about one rule,
	// a deviation from section 3.4 under which its result flips: the case
	// then depends on that rule.
	acceptUnder, rejectUnder map[string]verifyMode
}

func (g *xeddsaGen) add(c xeddsaCase, base []byte) {
	if c.Flags == nil {
		c.Flags = []string{}
	}
	if c.Expect == "" {
		c.Expect = "valid"
	}
	if c.Expect == "invalid" {
		c.Requirements = withErr001(c.Requirements)
	}
	g.cases = append(g.cases, c)
	if base != nil {
		g.baseSig[c.ID] = base
	}
}

// keyWithSign draws private keys until E = clamp(k)*B has the given sign bit.
func (g *xeddsaGen) keyWithSign(sign uint) ([]byte, []byte, error) {
	for i := 0; i < 256; i++ {
		k := g.st.read(32)
		if _, _, s := calculateKeyPair(k); s == sign {
			u, err := x25519Public(k)
			return k, u, err
		}
	}
	return nil, nil, fmt.Errorf("no key with sign bit %d", sign)
}

func signFlag(k []byte) string {
	if _, _, s := calculateKeyPair(k); s == 1 {
		return "edwards_sign_1"
	}
	return "edwards_sign_0"
}

func genXEdDSA() (any, error) {
	g := &xeddsaGen{st: newStream("Missive v1 test vectors: xeddsa"), baseSig: map[string][]byte{},
		acceptUnder: map[string]verifyMode{}, rejectUnder: map[string]verifyMode{}}
	k0, u0, err := g.keyWithSign(0)
	if err != nil {
		return nil, err
	}
	k1, u1, err := g.keyWithSign(1)
	if err != nil {
		return nil, err
	}
	k2, u2, err := g.keyWithSign(0)
	if err != nil {
		return nil, err
	}
	k3, u3, err := g.keyWithSign(1)
	if err != nil {
		return nil, err
	}
	valid := []string{"XED-002", "XED-003", "XED-007", "PRIM-005"}
	sign := func(id, comment string, k, u, msg, z []byte, flags ...string) ([]byte, error) {
		sig, err := xeddsaSign(k, msg, z)
		if err != nil {
			return nil, err
		}
		g.add(xeddsaCase{caseHead: caseHead{ID: id, Comment: comment, Flags: append([]string{signFlag(k)}, flags...),
			Requirements: valid}, Private: k, Public: u, Message: msg, Z: z, Signature: sig}, sig)
		return sig, nil
	}
	if _, err := sign("xeddsa_message_0_bytes", "A signature of the empty message.", k0, u0, []byte{}, g.st.read(64)); err != nil {
		return nil, err
	}
	if _, err := sign("xeddsa_message_1_byte", "A signature of a 1-byte message.", k1, u1, g.st.read(1), g.st.read(64)); err != nil {
		return nil, err
	}
	// The 32-byte case is the base of the negative cases on s: its z is drawn
	// until s + q < 2^253, so that (R, s + q) passes Signal's weaker bound.
	msg32 := g.st.read(32)
	var z32, sig32 []byte
	limit := new(big.Int).Sub(two253, bigQ)
	for i := 0; ; i++ {
		if i == 256 {
			return nil, fmt.Errorf("no z with s + q < 2^253")
		}
		z32 = g.st.read(64)
		if sig32, err = xeddsaSign(k2, msg32, z32); err != nil {
			return nil, err
		}
		if le(sig32[32:]).Cmp(limit) < 0 {
			break
		}
	}
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_message_32_bytes",
		Comment: "A signature of a 32-byte message. Its s is below 2^253 - q, so s + q still fits Signal's bound " +
			"(see xeddsa_s_plus_q); most negative cases alter this signature.",
		Flags: []string{signFlag(k2)}, Requirements: valid},
		Private: k2, Public: u2, Message: msg32, Z: z32, Signature: sig32}, sig32)
	if _, err := sign("xeddsa_message_1000_bytes", "A signature of a 1000-byte message.", k3, u3, g.st.read(1000), g.st.read(64)); err != nil {
		return nil, err
	}
	// Missive's own signed messages.
	spk, err := x25519Public(g.st.read(32))
	if err != nil {
		return nil, err
	}
	spkMsg := append([]byte(labelSigSignedPrekey), encX25519(spk)...)
	_, err = sign("xeddsa_signed_prekey_message", "A signature of LABEL_SIG_SIGNED_PREKEY || Enc(SPK), as in a prekey bundle.",
		k1, u1, spkMsg, g.st.read(64), "labelled")
	if err != nil {
		return nil, err
	}
	kemPub, err := kemPublic(g.st.read(64))
	if err != nil {
		return nil, err
	}
	if _, err := sign("xeddsa_kem_prekey_message", "A signature of LABEL_SIG_KEM_PREKEY || Enc(PQPK), as in a prekey bundle.",
		k0, u0, append([]byte(labelSigKEMPrekey), encMLKEM(kemPub)...), g.st.read(64), "labelled"); err != nil {
		return nil, err
	}

	// Constructed valid signatures.
	mr := g.st.read(32)
	A2, a2, _ := calculateKeyPair(k2)
	rIdentity := signWith(A2, a2, big.NewInt(0), mr)
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_r_identity",
		Comment: "A signature with r = 0, so R is the identity point (encoded 01 00 .. 00) and s = h * a mod q. " +
			"It verifies; xeddsa_r_noncanonical_y encodes the same R non-canonically.",
		Flags: []string{"constructed"}, Requirements: []string{"XED-003", "XED-007"}},
		Public: u2, Message: mr, Signature: rIdentity}, nil)
	nine := make([]byte, 32)
	nine[0] = 9
	mb := g.st.read(32)
	rb := new(big.Int).Mod(le(g.st.read(64)), bigQ)
	sigB := signWith(basePoint, big.NewInt(1), rb, mb)
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_base_point_key",
		Comment: "A signature under the public key u = 9 (the base point, A = B, a = 1), which no clamped private key " +
			"yields; xeddsa_public_p_plus_9 gives the same key non-canonically.",
		Flags: []string{"constructed"}, Requirements: []string{"XED-003"}},
		Public: nine, Message: mb, Signature: sigB}, nil)
	zero := make([]byte, 32)
	ml := g.st.read(32)
	sigL, err := forgeLowOrder(g.st, zero, ml)
	if err != nil {
		return nil, err
	}
	lowOrderReqs := []string{"XED-003", "XED-009"}
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_low_order_public_key",
		Comment: "A forgery under the public key u = 0, whose Edwards point A = (0, -1) has order 2: R = s*B - t*A with " +
			"t = h mod 2, so that h * (-A) + s * B = R. It verifies when the small-order check is left out (as in Signal's " +
			"XEdDSA); XED-009 rejects the key. A bundle with this identity key fails at its first signature check " +
			"(pqxdh_low_order_identity_key).",
		Flags: []string{"constructed", "low_order_public", "signal_accepts"}, Requirements: lowOrderReqs},
		Public: zero, Message: ml, Signature: sigL, Expect: "invalid", Error: errBadSignature.name}, nil)
	g.acceptUnder["xeddsa_low_order_public_key"] = verifyNoSmallOrderCheck
	for _, lo := range []struct {
		id, comment string
		u           []byte
	}{
		{"xeddsa_low_order_public_key_order_4", "A forgery under the public key u = 1, whose Edwards point A has y = 0 " +
			"and order 4: R = s*B - t*A with t = h mod 4.", lowOrderPoints[1]},
		{"xeddsa_low_order_public_key_order_8", "A forgery under a public key whose Edwards point has order 8: " +
			"R = s*B - t*A with t = h mod 8.", lowOrderPoints[2]},
		{"xeddsa_low_order_public_key_minus_one", "A forgery under the public key u = p - 1: u + 1 = 0, so " +
			"u_to_y(u) = (u - 1) * inverse(0) = 0 (section 3.1) and A is the point of order 4 of " +
			"xeddsa_low_order_public_key_order_4: R = s*B - t*A with t = h mod 4.", lowOrderPoints[4]},
	} {
		lst := newStream("Missive v1 test vectors: xeddsa: " + lo.id)
		msg := lst.read(32)
		sig, err := forgeLowOrder(lst, lo.u, msg)
		if err != nil {
			return nil, err
		}
		g.add(xeddsaCase{caseHead: caseHead{ID: lo.id, Comment: lo.comment + " It verifies when the small-order " +
			"check is left out; XED-009 rejects the key.",
			Flags: []string{"constructed", "low_order_public", "signal_accepts"}, Requirements: lowOrderReqs},
			Public: lo.u, Message: msg, Signature: sig, Expect: "invalid", Error: errBadSignature.name}, nil)
		g.acceptUnder[lo.id] = verifyNoSmallOrderCheck
	}

	// XED-010: a public key with a torsion component.
	if err := g.torsionCases(); err != nil {
		return nil, err
	}

	// Negative cases.
	bad := func(id, comment string, base *xeddsaCase, flags []string, reqs []string, pub, msg, sig []byte) {
		c := xeddsaCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs},
			Private: base.Private, Public: base.Public, Message: base.Message, Z: base.Z, Signature: base.Signature,
			Expect: "invalid", Error: errBadSignature.name}
		if pub != nil {
			c.Public = pub
		}
		if msg != nil {
			// private and z would sign the altered message, not reproduce
			// the signature: leave them out.
			c.Message, c.Private, c.Z = msg, nil, nil
		}
		if sig != nil {
			c.Signature = sig
		}
		if c.Private != nil {
			c.Flags = append([]string{signFlag(c.Private)}, c.Flags...)
		}
		g.add(c, g.baseSig[base.ID])
	}
	find := func(id string) *xeddsaCase {
		for i := range g.cases {
			if g.cases[i].ID == id {
				c := g.cases[i]
				return &c
			}
		}
		return nil
	}
	b32 := find("xeddsa_message_32_bytes")
	highU := cloneBytes(u2)
	highU[31] |= 0x80
	bad("xeddsa_public_high_bit_set", "The public key u + 2^255 of xeddsa_message_32_bytes: a second encoding of the key "+
		"if the high bit were masked. u >= p is rejected.", b32, []string{"signal_accepts", "noncanonical"},
		[]string{"XED-003", "XED-006", "CONV-004"}, highU, nil, nil)
	pPlus9 := leBytes(new(big.Int).Add(bigP, big.NewInt(9)), 32)
	bad("xeddsa_public_p_plus_9", "The public key of xeddsa_base_point_key encoded as u = p + 9 (below 2^255, high bit clear). "+
		"A verifier that reduced u mod p would accept; u >= p is rejected.", find("xeddsa_base_point_key"),
		[]string{"constructed", "noncanonical"}, []string{"XED-003", "XED-006", "CONV-004"}, pPlus9, nil, nil)
	twist, err := twistU(g.st)
	if err != nil {
		return nil, err
	}
	bad("xeddsa_public_not_on_curve", "The signature of xeddsa_message_32_bytes verified under a u below p for which "+
		"u_to_y(u) is the y of no point of edwards25519 (u is on the twist): rejected by the on-curve check.", b32, nil,
		[]string{"XED-003"}, twist, nil, nil)
	rNC := cloneBytes(find("xeddsa_r_identity").Signature)
	copy(rNC[:32], leBytes(new(big.Int).Add(bigP, big.NewInt(1)), 32))
	hNC := hashModQ(rNC[:32], A2.encode(), mr)
	copy(rNC[32:], leBytes(new(big.Int).Mod(new(big.Int).Mul(hNC, a2), bigQ), 32))
	bad("xeddsa_r_noncanonical_y", "xeddsa_r_identity with R encoded as y = p + 1 (the identity, non-canonically) and s = h * a "+
		"recomputed for these R bytes: a verifier that decoded R and compared points would accept; R.y >= p is rejected.",
		find("xeddsa_r_identity"), []string{"constructed", "noncanonical"}, []string{"XED-003", "XED-007"}, nil, nil, rNC)
	rFlip := cloneBytes(sig32)
	rFlip[31] ^= 0x80
	bad("xeddsa_r_sign_flipped", "The signature of xeddsa_message_32_bytes with the sign bit of R flipped.", b32, nil,
		[]string{"XED-003", "XED-007"}, nil, nil, rFlip)
	sPlusQ := cloneBytes(sig32)
	copy(sPlusQ[32:], leBytes(new(big.Int).Add(le(sig32[32:]), bigQ), 32))
	bad("xeddsa_s_plus_q", "The signature of xeddsa_message_32_bytes with s replaced by s + q, which is below 2^253: "+
		"the same point equation holds (signature malleability); s >= q is rejected.", b32, []string{"signal_accepts"},
		[]string{"XED-003", "XED-005"}, nil, nil, sPlusQ)
	sTop := cloneBytes(sig32)
	sTop[63] |= 0xe0
	bad("xeddsa_s_top_bits_set", "The signature of xeddsa_message_32_bytes with the three top bits of s set (s >= 2^253).",
		b32, nil, []string{"XED-003", "XED-005"}, nil, nil, sTop)
	wrongMsg := cloneBytes(msg32)
	wrongMsg[0] ^= 0x01
	bad("xeddsa_wrong_message", "The signature of xeddsa_message_32_bytes verified with one bit of the message flipped.",
		b32, nil, []string{"XED-003"}, nil, wrongMsg, nil)
	bad("xeddsa_wrong_public_key", "The signature of xeddsa_message_32_bytes verified under the public key of another "+
		"private key.", b32, nil, []string{"XED-003"}, u3, nil, nil)
	bspk := find("xeddsa_signed_prekey_message")
	bad("xeddsa_label_stripped", "The signature of xeddsa_signed_prekey_message verified over Enc(SPK) without the label.",
		bspk, []string{"labelled"}, []string{"XED-003", "XED-008"}, nil, encX25519(spk), nil)
	bad("xeddsa_wrong_label", "The signature of xeddsa_signed_prekey_message verified over LABEL_SIG_KEM_PREKEY || Enc(SPK): "+
		"a signature made for one purpose is not accepted for another.", bspk, []string{"labelled"},
		[]string{"XED-003", "XED-008"}, nil, append([]byte(labelSigKEMPrekey), encX25519(spk)...), nil)
	bad("xeddsa_signature_63_bytes", "The signature of xeddsa_message_32_bytes without its last byte (63 bytes).",
		b32, []string{"length"}, []string{"XED-003", "XED-004"}, nil, nil, cloneBytes(sig32[:63]))
	bad("xeddsa_signature_65_bytes", "The signature of xeddsa_message_32_bytes followed by one zero byte (65 bytes): "+
		"its first 64 bytes are the valid signature.", b32, []string{"length"}, []string{"XED-003", "XED-004"}, nil, nil,
		append(cloneBytes(sig32), 0x00))

	if err := checkXEdDSA(g); err != nil {
		return nil, err
	}
	heads := make([]caseHead, len(g.cases))
	for i, c := range g.cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("xeddsa", xeddsaNotes, heads); err != nil {
		return nil, err
	}
	return newFile("xeddsa", "XEdDSA signing and verification (chapter 3): valid signatures with both signs of "+
		"the Edwards key, and every rejection rule of section 3.4, including the stricter checks that make "+
		"signatures and public keys non-malleable, the rejection of small-order public keys, and the computation of "+
		"Rcheck with the integer h for a public key with a torsion component. Signatures are 64 bytes except in the "+
		"cases flagged length. When private and z are present, xeddsa_sign(private, message, z) is the signature "+
		"that the case altered to get signature (for a case that alters the public key, signature itself).",
		xeddsaNotes, g.cases), nil
}

// forgeLowOrder returns a signature of msg that verifies under the
// small-order public key u when the check of XED-009 is left out: with A of
// order n, h * (-A) = -(h mod n) * A, so R = s*B - t*A verifies when
// h mod n = t.
func forgeLowOrder(st *stream, u, msg []byte) ([]byte, error) {
	A, ok := pointFromY(uToY(le(u)), 0)
	if !ok {
		return nil, fmt.Errorf("u = %x is not on the curve", u)
	}
	n := int64(0)
	for _, o := range []int64{2, 4, 8} {
		if bytes.Equal(A.mul(big.NewInt(o)).encode(), identity().encode()) {
			n = o
			break
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("u = %x is not of small order", u)
	}
	encA := A.encode()
	for i := 0; i < 256; i++ {
		s := new(big.Int).Mod(le(st.read(64)), bigQ)
		R := basePoint.mul(s)
		for t := int64(0); t < n; t++ {
			rb := R.encode()
			if new(big.Int).Mod(hashModQ(rb, encA, msg), big.NewInt(n)).Int64() == t {
				return append(rb, leBytes(s, 32)...), nil
			}
			R = R.add(A.neg())
		}
	}
	return nil, fmt.Errorf("no low-order forgery found")
}

// torsionCases adds the cases of XED-010. The public key is A = A' + T with
// A' = a' * B and T of order 8 (negated together when A' + T has sign bit 1,
// since A.s = 0). With R = r*B + t*T and s = r + h*a' mod q:
//
//	h * (-A) + s * B                = r*B - (h mod 8) * T
//	((q - h) mod q) * A + s * B     = r*B + ((q - h) mod 8) * T
//
// and q = 5 mod 8, so the two differ by 5 * T. The valid case takes
// t = -h mod 8, the invalid one t = (q - h) mod 8.
func (g *xeddsaGen) torsionCases() error {
	st := newStream("Missive v1 test vectors: xeddsa: torsion public key")
	T, ok := pointFromY(uToY(le(lowOrderPoints[2])), 0)
	if !ok || !isSmallOrder(T) || bytes.Equal(T.mul(big.NewInt(4)).encode(), identity().encode()) {
		return fmt.Errorf("the torsion point is not of order 8")
	}
	Ap, ap, _ := calculateKeyPair(st.read(32))
	A, a, tor := Ap.add(T), ap, T
	if A.encode()[31]&0x80 != 0 {
		A, a, tor = A.neg(), new(big.Int).Mod(new(big.Int).Neg(ap), bigQ), T.neg()
	}
	_, ay := A.affine()
	u := leBytes(yToU(ay), 32)
	if chk, ok := pointFromY(uToY(le(u)), 0); !ok || !bytes.Equal(chk.encode(), A.encode()) || isSmallOrder(A) {
		return fmt.Errorf("torsion public key does not decode to A")
	}
	if new(big.Int).Mod(bigQ, big.NewInt(8)).Int64() != 5 {
		return fmt.Errorf("q mod 8 is not 5")
	}
	encA := A.encode()
	// sign searches r for a signature whose R = r*B + t*T satisfies
	// t = want(h) mod 8.
	sign := func(msg []byte, want func(h *big.Int) int64) ([]byte, error) {
		for i := 0; i < 256; i++ {
			r := new(big.Int).Mod(le(st.read(64)), bigQ)
			R := basePoint.mul(r)
			for t := int64(0); t < 8; t++ {
				rb := R.encode()
				h := hashModQ(rb, encA, msg)
				if h.Sign() != 0 && want(h) == t {
					sv := new(big.Int).Mul(h, a)
					sv.Add(sv, r).Mod(sv, bigQ)
					return append(rb, leBytes(sv, 32)...), nil
				}
				R = R.add(tor)
			}
		}
		return nil, fmt.Errorf("no torsion signature found")
	}
	mod8 := func(x *big.Int) int64 { return new(big.Int).Mod(x, big.NewInt(8)).Int64() }
	msgV := st.read(32)
	sigV, err := sign(msgV, func(h *big.Int) int64 { return mod8(new(big.Int).Neg(h)) })
	if err != nil {
		return err
	}
	reqs := []string{"XED-003", "XED-007", "XED-009", "XED-010"}
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_torsion_public_key",
		Comment: "A signature under a public key A = A' + T, A' in the prime-order subgroup and T of order 8 (A is " +
			"not of small order, so XED-009 accepts it), built with R = r*B + t*T and t = -h mod 8: " +
			"h * (-A) + s * B = R with the integer h (XED-010). A verifier that negates h as a scalar, " +
			"((q - h) mod q) * A + s * B, gets R + 5*T and rejects it.",
		Flags: []string{"constructed", "torsion_public"}, Requirements: reqs},
		Public: u, Message: msgV, Signature: sigV}, nil)
	g.rejectUnder["xeddsa_torsion_public_key"] = verifyScalarNegation
	msgI := st.read(32)
	sigI, err := sign(msgI, func(h *big.Int) int64 { return mod8(new(big.Int).Sub(bigQ, h)) })
	if err != nil {
		return err
	}
	g.add(xeddsaCase{caseHead: caseHead{ID: "xeddsa_torsion_public_key_scalar_negation",
		Comment: "The public key of xeddsa_torsion_public_key and a signature built with R = r*B + t*T and " +
			"t = (q - h) mod 8, so that ((q - h) mod q) * A + s * B = R: only a verifier that negates h as a scalar " +
			"accepts it. h * (-A) + s * B = R - 5*T (XED-010), and a cofactored check (8 * R = 8 * Rcheck) would " +
			"wrongly accept it too.",
		Flags: []string{"constructed", "torsion_public"}, Requirements: reqs},
		Public: u, Message: msgI, Signature: sigI, Expect: "invalid", Error: errBadSignature.name}, nil)
	g.acceptUnder["xeddsa_torsion_public_key_scalar_negation"] = verifyScalarNegation
	return nil
}

// twistU draws a canonical u whose Edwards y is on no point of the curve.
func twistU(st *stream) ([]byte, error) {
	for i := 0; i < 256; i++ {
		u := st.read(32)
		u[31] &= 0x7f
		if le(u).Cmp(bigP) >= 0 {
			continue
		}
		if _, ok := pointFromY(uToY(le(u)), 0); !ok {
			return u, nil
		}
	}
	return nil, fmt.Errorf("no twist point found")
}

// checkXEdDSA runs every case through the generator's implementation.
func checkXEdDSA(g *xeddsaGen) error {
	for _, c := range g.cases {
		err := xeddsaVerify(c.Public, c.Message, c.Signature)
		got, gerr := errName(err)
		if gerr != nil {
			return gerr
		}
		if got != c.Error {
			return fmt.Errorf("%s: verify: got %q, want %q", c.ID, got, c.Error)
		}
		hasFlag := func(f string) bool {
			for _, x := range c.Flags {
				if x == f {
					return true
				}
			}
			return false
		}
		if (len(c.Signature) != 64) != hasFlag("length") {
			return fmt.Errorf("%s: a signature of %d bytes, flagged length: %v", c.ID, len(c.Signature), hasFlag("length"))
		}
		// An XEdDSA signature is an Ed25519 signature under enc(A), and
		// crypto/ed25519 computes h * (-A) + s * B with the integer h, as
		// XED-010 requires, but has no small-order check (XED-009).
		if A, ok := pointFromY(uToY(le(c.Public)), 0); ok && len(c.Signature) == 64 {
			edOK := ed25519.Verify(A.encode(), c.Message, c.Signature)
			switch {
			case c.Expect == "valid" && !edOK:
				return fmt.Errorf("%s: crypto/ed25519 rejects the signature", c.ID)
			case hasFlag("low_order_public") && !edOK:
				return fmt.Errorf("%s: crypto/ed25519 rejects the low-order forgery", c.ID)
			case hasFlag("torsion_public") && c.Expect == "invalid" && edOK:
				return fmt.Errorf("%s: crypto/ed25519 accepts the signature", c.ID)
			}
		} else if c.Expect == "valid" {
			return fmt.Errorf("%s: a valid case with no point or a signature of %d bytes", c.ID, len(c.Signature))
		}
		if m, ok := g.acceptUnder[c.ID]; ok {
			if c.Expect != "invalid" || xeddsaVerifyMode(c.Public, c.Message, c.Signature, m) != nil {
				return fmt.Errorf("%s: the signature does not verify under deviation %d", c.ID, m)
			}
		}
		if m, ok := g.rejectUnder[c.ID]; ok {
			if c.Expect != "valid" || xeddsaVerifyMode(c.Public, c.Message, c.Signature, m) == nil {
				return fmt.Errorf("%s: the signature verifies under deviation %d", c.ID, m)
			}
		}
		if m, ok := g.acceptUnder[c.ID]; hasFlag("low_order_public") && (!ok || m != verifyNoSmallOrderCheck) {
			return fmt.Errorf("%s: a low-order case must verify without the small-order check", c.ID)
		}
		if (c.Private == nil) != (c.Z == nil) {
			return fmt.Errorf("%s: private and z must be present together", c.ID)
		}
		if c.Private != nil {
			sig, err := xeddsaSign(c.Private, c.Message, c.Z)
			if err != nil {
				return err
			}
			if c.Expect == "valid" {
				if !bytes.Equal(sig, c.Signature) {
					return fmt.Errorf("%s: sign: got %x, want %x", c.ID, sig, c.Signature)
				}
				u, err := x25519Public(c.Private)
				if err != nil {
					return err
				}
				if !bytes.Equal(u, c.Public) {
					return fmt.Errorf("%s: public key mismatch", c.ID)
				}
			} else {
				base := g.baseSig[c.ID]
				if base == nil {
					return fmt.Errorf("%s: no base signature recorded", c.ID)
				}
				if !bytes.Equal(sig, base) {
					return fmt.Errorf("%s: private and z do not reproduce the base signature", c.ID)
				}
			}
		}
	}
	return nil
}
