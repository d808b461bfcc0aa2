package gen

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/missive-protocol/missive/spec"
)

// selfTest checks the generator's own primitives against independent
// implementations and against constants of the specification before any
// vector is written.
func selfTest() error {
	// The base point is on the curve: -x^2 + y^2 = 1 + d x^2 y^2.
	x, y := basePoint.affine()
	x2, y2 := fmul(x, x), fmul(y, y)
	if fsub(y2, x2).Cmp(fadd(big.NewInt(1), fmul(bigD, fmul(x2, y2)))) != 0 {
		return fmt.Errorf("base point not on the curve")
	}
	// q*B is the identity.
	if !bytes.Equal(basePoint.mul(bigQ).encode(), identity().encode()) {
		return fmt.Errorf("q*B is not the identity")
	}
	// Scalar multiplication and encoding agree with crypto/ed25519.
	st := newStream("Missive v1 test vectors: self-test")
	for i := 0; i < 4; i++ {
		seed := st.read(32)
		h := sha512.Sum512(seed)
		want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if got := basePoint.mul(clampScalar(h[:32])).encode(); !bytes.Equal(got, want) {
			return fmt.Errorf("edwards25519 scalar multiplication: got %x, want %x", got, want)
		}
	}
	// calculate_key_pair agrees with X25519: A.y = u_to_y(u), and signatures
	// verify with crypto/ed25519 under enc(A).
	for i := 0; i < 4; i++ {
		k, msg, z := st.read(32), st.read(i*7), st.read(64)
		u, err := x25519Public(k)
		if err != nil {
			return err
		}
		A, _, _ := calculateKeyPair(k)
		_, ay := A.affine()
		if uToY(le(u)).Cmp(ay) != 0 || yToU(ay).Cmp(le(u)) != 0 {
			return fmt.Errorf("calculate_key_pair does not match X25519(k, 9)")
		}
		sig, err := xeddsaSign(k, msg, z)
		if err != nil {
			return err
		}
		if !ed25519.Verify(A.encode(), msg, sig) {
			return fmt.Errorf("an XEdDSA signature does not verify with crypto/ed25519")
		}
		if err := xeddsaVerify(u, msg, sig); err != nil {
			return fmt.Errorf("an XEdDSA signature does not verify: %v", err)
		}
	}
	// The labels of the generator are those of the table of section 1.5,
	// and no label of that table is a prefix of another (CONV-005).
	conv, err := spec.FS.ReadFile("01-conventions.md")
	if err != nil {
		return err
	}
	table := map[string]string{}
	var labels []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(LABEL_[A-Z_]+)` \\| `([^`]+)` \\|").FindAllStringSubmatch(string(conv), -1) {
		table[m[1]] = m[2]
		labels = append(labels, m[2])
	}
	for name, v := range map[string]string{"LABEL_SIG_SIGNED_PREKEY": labelSigSignedPrekey,
		"LABEL_SIG_KEM_PREKEY": labelSigKEMPrekey, "LABEL_PQXDH": labelPQXDH, "LABEL_ROOT": labelRoot,
		"LABEL_MESSAGE_KEYS": labelMessageKeys, "LABEL_TRANSPORT_BINDING": labelTransportBinding,
		"LABEL_DEVICE_LIST": labelDeviceList, "LABEL_LINK": labelLink, "LABEL_LINK_MAC": labelLinkMAC,
		"LABEL_GROUP_STATE": labelGroupState, "LABEL_GROUP_MESSAGE": labelGroupMessage, "LABEL_SENDER_KEY": labelSenderKey,
		"LABEL_GROUP_DEVICES": labelGroupDevices, "LABEL_MEDIA_KEYS": labelMediaKeys} {
		if table[name] != v {
			return fmt.Errorf("label %s: section 1.5 has %q, the generator %q", name, table[name], v)
		}
	}
	for i, a := range labels {
		for j, b := range labels {
			if i != j && strings.HasPrefix(b, a) {
				return fmt.Errorf("label %q is a prefix of %q", a, b)
			}
		}
	}
	// The constants of section 5.1.
	if padLen(maxPlaintext+1)+16 != maxCiphertext {
		return fmt.Errorf("MAX_CIPHERTEXT is not pad_len(MAX_PLAINTEXT + 1) + 16")
	}
	for _, c := range []struct{ l, want int }{{0, 32}, {32, 32}, {33, 36}, {100, 104}, {1000, 1024}, {65537, 67584}} {
		if got := padLen(c.l); got != c.want {
			return fmt.Errorf("pad_len(%d): got %d, want %d", c.l, got, c.want)
		}
	}
	if err := cborSelfTest(); err != nil {
		return err
	}
	if err := noiseSelfTest(); err != nil {
		return err
	}
	if err := receiptsSelfTest(); err != nil {
		return err
	}
	// Every low-order point of the vectors gives the all-zero output.
	for _, u := range lowOrderPoints {
		if _, err := x25519(st.read(32), u); err != errLowOrderKey {
			return fmt.Errorf("X25519 with low-order point %x: got %v, want %v", u, err, errLowOrderKey)
		}
	}
	return nil
}

// cborTestSchema is a versioned structure for the self-test of section 10.2:
// {1: version, 2: bstr .size (2..3), 3: {1: uint .le 5}, ? 4: bool}.
var cborTestSchema = schema{
	{key: 1, kind: kindUint, required: true, max: ^uint64(0)},
	{key: 2, kind: kindBytes, required: true, minLen: 2, maxLen: 3},
	{key: 3, kind: kindMap, required: true, sub: schema{{key: 1, kind: kindUint, required: true, max: 5}}},
	{key: 4, kind: kindBool},
}

// cborSelfTest checks that the decoder reports, for inputs with several
// faults, the one that the stages and passes of section 10.2 put first.
func cborSelfTest() error {
	for _, c := range []struct {
		in   string
		want *codeError
	}{
		// Stage 1, within one initial byte and its argument.
		{"", errTruncated},
		{"1c", errMalformed},
		{"3f", errMalformed}, // major 1, additional information 31
		{"df", errMalformed}, // major 6, additional information 31
		{"5f", errIndefiniteLength},
		{"38", errWrongType}, // a negative integer, before its missing argument byte
		{"d8", errTag},       // a tag, before its missing argument byte
		{"f9", errFloat},     // a float, before its missing argument bytes
		{"f8", errWrongType}, // a simple value in one extra byte
		{"f6", errWrongType}, // null
		{"19 00", errTruncated},
		{"18 05", errNonShortest},
		{"ba 00 00 10 01", errNonShortest}, // 4097 pairs in a non-shortest count: the shortest form comes first
		{"b9 10 01", errTooMany},
		{"a2 01 01 01 01", errDuplicateKey},
		{"a2 02 01 01 01", errUnsortedMap},
		{"a1 01 01 00", errTrailingBytes},
		{"a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a0", errTooDeep},
		{"a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 a1 01 b8", errTooDeep}, // certain at the initial byte
		// Stage 2, before any other field is interpreted.
		{"01", errWrongType},
		{"a1 02 00", errMissingField},
		{"a1 01 40", errWrongType},
		{"a2 01 02 18 63 00", errUnsupportedVersion},
		// Stage 3: 3a (unknown key, wrong type) over the whole item, then
		// 3b (absent keys), then 3c (sizes, ranges), each in input order.
		{"a4 01 01 02 44 aabbccdd 03 a1 01 01 09 00", errUnknownField},
		{"a3 01 01 02 44 aabbccdd 03 00", errWrongType},
		{"a3 01 01 02 42 aabb 03 a1 01 40", errWrongType},
		{"a4 01 01 02 42 aabb 03 a1 01 40 09 00", errWrongType},    // nested before a later key
		{"a4 01 01 02 42 aabb 03 a1 02 00 04 00", errUnknownField}, // nested unknown key before a later wrong type
		{"a2 01 01 02 44 aabbccdd", errMissingField},
		{"a3 01 01 02 44 aabbccdd 03 a0", errMissingField},
		{"a3 01 01 02 42 aabb 03 a1 01 06", errValueOutOfRange},
		{"a3 01 01 02 41 aa 03 a1 01 06", errTooShort},
		{"a3 01 01 02 44 aabbccdd 03 a1 01 06", errTooLong},
		{"a4 01 01 02 42 aabb 03 a1 01 05 04 f5", nil},
	} {
		in := mustHex(strings.ReplaceAll(c.in, " ", ""))
		err := func() error {
			it, err := decodeCBOR(in)
			if err != nil {
				return err
			}
			if err := checkVersion(it, 1); err != nil {
				return err
			}
			return checkSchema(it, cborTestSchema)
		}()
		if (c.want == nil && err != nil) || (c.want != nil && err != error(c.want)) {
			return fmt.Errorf("CBOR profile: %s: got %v, want %v", c.in, err, c.want)
		}
	}
	return nil
}
