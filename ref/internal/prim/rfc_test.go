package prim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// This file checks each primitive against the known-answer vectors printed in
// the RFC that defines it. The vectors are written out by hand from the RFC
// text; each table cites the section it comes from.

// mustHex decodes a hex string from a table, failing the test on a typo.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q in table: %v", s, err)
	}
	return b
}

// mustHexLen decodes a hex string that must hold exactly n bytes, so that a
// vector truncated or extended while copying it from the RFC is caught.
func mustHexLen(t testing.TB, s string, n int) []byte {
	t.Helper()
	b := mustHex(t, s)
	if len(b) != n {
		t.Fatalf("hex %q in table holds %d bytes, want %d", s, len(b), n)
	}
	return b
}

// seq returns the bytes lo, lo+1, ..., hi (inclusive), as the RFCs write
// inputs such as "0x000102...4f".
func seq(lo, hi int) []byte {
	b := make([]byte, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		b = append(b, byte(i))
	}
	return b
}

// rep returns n copies of the byte c, as the RFCs write "0x0b (22 octets)".
func rep(c byte, n int) []byte {
	return bytes.Repeat([]byte{c}, n)
}

// x25519Base is the u-coordinate 9 of the Curve25519 base point.
var x25519Base = append([]byte{9}, make([]byte, 31)...)

// RFC 7748, section 5.2: the two X25519 test vectors.
var rfc7748Section52 = []struct {
	name, scalar, u, out string
}{
	{
		name:   "vector 1",
		scalar: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		u:      "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		out:    "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
	},
	{
		// The u-coordinate has its top bit set; RFC 7748 section 5 masks it.
		name:   "vector 2",
		scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
		u:      "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
		out:    "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
	},
}

func TestRFC7748Vectors(t *testing.T) {
	for _, tc := range rfc7748Section52 {
		t.Run(tc.name, func(t *testing.T) {
			k := mustHexLen(t, tc.scalar, X25519KeySize)
			u := mustHexLen(t, tc.u, X25519KeySize)
			want := mustHexLen(t, tc.out, X25519KeySize)
			got, err := X25519(k, u)
			if err != nil {
				t.Fatalf("X25519: got error %v, want nil", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("X25519: got %x, want %x", got, want)
			}
		})
	}
}

// RFC 7748, section 5.2: the iterated test. Start with k = u = 9; each
// iteration sets k = X25519(k, u) and u to the old k. The 1,000,000-iteration
// value is left out: it takes minutes and adds nothing the 1,000 one does not.
var rfc7748Iterated = []struct {
	iterations int
	k          string
}{
	{1, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"},
	{1000, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"},
}

func TestRFC7748Iterated(t *testing.T) {
	k := bytes.Clone(x25519Base)
	u := bytes.Clone(x25519Base)
	done := 0
	for _, tc := range rfc7748Iterated {
		want := mustHexLen(t, tc.k, X25519KeySize)
		for ; done < tc.iterations; done++ {
			next, err := X25519(k, u)
			if err != nil {
				t.Fatalf("iteration %d: X25519: got error %v, want nil", done+1, err)
			}
			k, u = next, k
		}
		if !bytes.Equal(k, want) {
			t.Errorf("after %d iterations: got %x, want %x", tc.iterations, k, want)
		}
	}
}

// RFC 7748, section 6.1: the Alice and Bob Diffie-Hellman example.
var rfc7748Section61 = struct {
	alicePriv, alicePub, bobPriv, bobPub, shared string
}{
	alicePriv: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
	alicePub:  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
	bobPriv:   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
	bobPub:    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
	shared:    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
}

func TestRFC7748DiffieHellman(t *testing.T) {
	v := rfc7748Section61
	alicePriv := mustHexLen(t, v.alicePriv, X25519KeySize)
	alicePub := mustHexLen(t, v.alicePub, X25519KeySize)
	bobPriv := mustHexLen(t, v.bobPriv, X25519KeySize)
	bobPub := mustHexLen(t, v.bobPub, X25519KeySize)
	shared := mustHexLen(t, v.shared, X25519KeySize)

	for _, c := range []struct {
		name      string
		priv, pub []byte
	}{
		{"Alice", alicePriv, alicePub},
		{"Bob", bobPriv, bobPub},
	} {
		got, err := X25519Public(c.priv)
		if err != nil {
			t.Fatalf("X25519Public(%s): got error %v, want nil", c.name, err)
		}
		if !bytes.Equal(got, c.pub) {
			t.Errorf("X25519Public(%s): got %x, want %x", c.name, got, c.pub)
		}
		got, err = X25519(c.priv, x25519Base)
		if err != nil {
			t.Fatalf("X25519(%s, 9): got error %v, want nil", c.name, err)
		}
		if !bytes.Equal(got, c.pub) {
			t.Errorf("X25519(%s, 9): got %x, want %x", c.name, got, c.pub)
		}
	}

	for _, c := range []struct {
		name      string
		priv, pub []byte
	}{
		{"X25519(a, K_B)", alicePriv, bobPub},
		{"X25519(b, K_A)", bobPriv, alicePub},
	} {
		got, err := X25519(c.priv, c.pub)
		if err != nil {
			t.Fatalf("%s: got error %v, want nil", c.name, err)
		}
		if !bytes.Equal(got, shared) {
			t.Errorf("%s: got %x, want %x", c.name, got, shared)
		}
	}
}

// Low-order public keys give the all-zero output that RFC 7748 section 6.1
// tells implementations to check for; spec/02-primitives.md [PRIM-001] makes
// the check mandatory. Wrong input sizes must fail before any computation.
func TestX25519Rejects(t *testing.T) {
	priv := mustHexLen(t, rfc7748Section61.alicePriv, X25519KeySize)
	pub := mustHexLen(t, rfc7748Section61.bobPub, X25519KeySize)
	one := append([]byte{1}, make([]byte, 31)...)

	tests := []struct {
		name      string
		priv, pub []byte
		want      error
	}{
		{"low order u=0", priv, make([]byte, 32), ErrLowOrder},
		{"low order u=1", priv, one, ErrLowOrder},
		{"private key 31 bytes", priv[:31], pub, ErrKeySize},
		{"private key 33 bytes", append(bytes.Clone(priv), 0), pub, ErrKeySize},
		{"private key empty", nil, pub, ErrKeySize},
		{"public key 31 bytes", priv, pub[:31], ErrKeySize},
		{"public key 33 bytes", priv, append(bytes.Clone(pub), 0), ErrKeySize},
		{"public key empty", priv, nil, ErrKeySize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := X25519(tc.priv, tc.pub)
			if !errors.Is(err, tc.want) {
				t.Errorf("X25519: got error %v, want %v", err, tc.want)
			}
			if out != nil {
				t.Errorf("X25519: got output %x, want nil", out)
			}
		})
	}

	for _, n := range []int{0, 31, 33} {
		if _, err := X25519Public(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("X25519Public(%d bytes): got error %v, want %v", n, err, ErrKeySize)
		}
	}
}

// RFC 5869, Appendix A: test cases 1 to 3 (the SHA-256 ones).
var rfc5869AppendixA = []struct {
	name            string
	ikm, salt, info []byte
	length          int
	okm             string
}{
	{
		name:   "A.1 basic",
		ikm:    rep(0x0b, 22),
		salt:   seq(0x00, 0x0c),
		info:   seq(0xf0, 0xf9),
		length: 42,
		okm:    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
	},
	{
		name:   "A.2 longer inputs and outputs",
		ikm:    seq(0x00, 0x4f),
		salt:   seq(0x60, 0xaf),
		info:   seq(0xb0, 0xff),
		length: 82,
		okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
			"59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
			"cc30c58179ec3e87c14c01d5c1f3434f1d87",
	},
	{
		name:   "A.3 zero-length salt and info",
		ikm:    rep(0x0b, 22),
		salt:   nil,
		info:   nil,
		length: 42,
		okm:    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
	},
}

func TestRFC5869(t *testing.T) {
	for _, tc := range rfc5869AppendixA {
		t.Run(tc.name, func(t *testing.T) {
			want := mustHexLen(t, tc.okm, tc.length)
			got, err := HKDF(tc.salt, tc.ikm, tc.info, tc.length)
			if err != nil {
				t.Fatalf("HKDF: got error %v, want nil", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("HKDF: got %x, want %x", got, want)
			}
		})
	}
}

// RFC 4231, section 4: HMAC-SHA-256 test cases 1 to 4, 6 and 7. Test case 5
// (4.6) is left out: it checks an output truncated to 128 bits, which
// prim.HMAC never produces.
var rfc4231Section4 = []struct {
	name      string
	key, data []byte
	mac       string
}{
	{
		name: "4.2 test case 1",
		key:  rep(0x0b, 20),
		data: []byte("Hi There"),
		mac:  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
	},
	{
		name: "4.3 test case 2 (key shorter than output)",
		key:  []byte("Jefe"),
		data: []byte("what do ya want for nothing?"),
		mac:  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	},
	{
		name: "4.4 test case 3 (combined length of key and data > 64)",
		key:  rep(0xaa, 20),
		data: rep(0xdd, 50),
		mac:  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
	},
	{
		name: "4.5 test case 4",
		key:  seq(0x01, 0x19),
		data: rep(0xcd, 50),
		mac:  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
	},
	{
		name: "4.7 test case 6 (key larger than block size)",
		key:  rep(0xaa, 131),
		data: []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
		mac:  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
	},
	{
		name: "4.8 test case 7 (key and data larger than block size)",
		key:  rep(0xaa, 131),
		data: []byte("This is a test using a larger than block-size key and a larger " +
			"than block-size data. The key needs to be hashed before being used by " +
			"the HMAC algorithm."),
		mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
	},
}

func TestRFC4231(t *testing.T) {
	for _, tc := range rfc4231Section4 {
		t.Run(tc.name, func(t *testing.T) {
			want := mustHexLen(t, tc.mac, HashSize)
			if got := HMAC(tc.key, tc.data); !bytes.Equal(got, want) {
				t.Errorf("HMAC: got %x, want %x", got, want)
			}
			// HMAC takes its data in pieces; any split must give the same MAC.
			half := len(tc.data) / 2
			if got := HMAC(tc.key, tc.data[:half], nil, tc.data[half:]); !bytes.Equal(got, want) {
				t.Errorf("HMAC over split data: got %x, want %x", got, want)
			}
		})
	}
}

// RFC 8439, section 2.8.2: the ChaCha20-Poly1305 AEAD example. The nonce is
// the 32-bit constant 07000000 followed by the IV 4041424344454647.
var rfc8439Section282 = struct {
	key, nonce, ad, plaintext, ciphertext, tag string
}{
	key:   "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
	nonce: "070000004041424344454647",
	ad:    "50515253c0c1c2c3c4c5c6c7",
	plaintext: "Ladies and Gentlemen of the class of '99: If I could offer you " +
		"only one tip for the future, sunscreen would be it.",
	ciphertext: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
		"3ff4def08e4b7a9de576d26586cec64b6116",
	tag: "1ae10b594f09e26a7e902ecbd0600691",
}

func TestRFC8439(t *testing.T) {
	v := rfc8439Section282
	key := mustHexLen(t, v.key, AEADKeySize)
	nonce := mustHexLen(t, v.nonce, AEADNonceSize)
	ad := mustHexLen(t, v.ad, 12)
	plaintext := []byte(v.plaintext)
	if len(plaintext) != 114 {
		t.Fatalf("plaintext: got %d bytes, want 114", len(plaintext))
	}
	ct := mustHexLen(t, v.ciphertext, len(plaintext))
	tag := mustHexLen(t, v.tag, AEADTagSize)
	want := append(bytes.Clone(ct), tag...)

	t.Run("seal", func(t *testing.T) {
		got, err := Seal(nil, key, nonce, plaintext, ad)
		if err != nil {
			t.Fatalf("Seal: got error %v, want nil", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Seal: got %x, want %x", got, want)
		}
		prefix := []byte("prefix")
		got, err = Seal(bytes.Clone(prefix), key, nonce, plaintext, ad)
		if err != nil {
			t.Fatalf("Seal with dst: got error %v, want nil", err)
		}
		if wantDst := append(bytes.Clone(prefix), want...); !bytes.Equal(got, wantDst) {
			t.Errorf("Seal with dst: got %x, want %x", got, wantDst)
		}
	})

	t.Run("open", func(t *testing.T) {
		got, err := Open(nil, key, nonce, want, ad)
		if err != nil {
			t.Fatalf("Open: got error %v, want nil", err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Errorf("Open: got %q, want %q", got, plaintext)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		flip := func(b []byte, i int) []byte {
			b = bytes.Clone(b)
			b[i] ^= 0x01
			return b
		}
		tests := []struct {
			name               string
			key, nonce, ct, ad []byte
		}{
			{"tag bit flipped", key, nonce, flip(want, len(want)-1), ad},
			{"first tag bit flipped", key, nonce, flip(want, len(ct)), ad},
			{"ciphertext bit flipped", key, nonce, flip(want, 0), ad},
			{"ad bit flipped", key, nonce, want, flip(ad, 0)},
			{"ad missing", key, nonce, want, nil},
			{"nonce bit flipped", key, flip(nonce, 11), want, ad},
			{"key bit flipped", flip(key, 0), nonce, want, ad},
			{"tag truncated", key, nonce, want[:len(want)-1], ad},
			{"shorter than a tag", key, nonce, want[:AEADTagSize-1], ad},
			{"empty", key, nonce, nil, ad},
		}
		for _, tc := range tests {
			got, err := Open(nil, tc.key, tc.nonce, tc.ct, tc.ad)
			// [PRIM-004]: exactly ErrOpen, not merely an error wrapping it.
			if err != ErrOpen {
				t.Errorf("%s: Open: got error %v, want %v", tc.name, err, ErrOpen)
			}
			if got != nil {
				t.Errorf("%s: Open: got plaintext %x, want nil", tc.name, got)
			}
		}
	})

	t.Run("sizes", func(t *testing.T) {
		tests := []struct {
			name       string
			key, nonce []byte
		}{
			{"key 31 bytes", key[:31], nonce},
			{"key 33 bytes", append(bytes.Clone(key), 0), nonce},
			{"key empty", nil, nonce},
			{"nonce 11 bytes", key, nonce[:11]},
			{"nonce 24 bytes", key, append(bytes.Clone(nonce), nonce...)},
			{"nonce empty", key, nil},
		}
		for _, tc := range tests {
			if _, err := Seal(nil, tc.key, tc.nonce, plaintext, ad); !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: Seal: got error %v, want %v", tc.name, err, ErrKeySize)
			}
			if _, err := Open(nil, tc.key, tc.nonce, want, ad); !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: Open: got error %v, want %v", tc.name, err, ErrKeySize)
			}
		}
	})
}
