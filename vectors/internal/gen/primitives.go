package gen

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/chacha20poly1305"
)

// Labels (section 1.5).
const (
	labelSigSignedPrekey = "Missive v1 signed EC prekey"
	labelSigKEMPrekey    = "Missive v1 signed KEM prekey"
	labelPQXDH           = "Missive v1 PQXDH"
	labelRoot            = "Missive v1 root chain"
	labelMessageKeys     = "Missive v1 message keys"
)

// Key type bytes and encoding lengths (section 1.3).
const (
	typeX25519Public  = 0x05
	typeMLKEMPublic   = 0x0a
	typeX25519Private = 0x85
	typeMLKEMPrivate  = 0x8a

	lenX25519Public = 33
	lenMLKEMPublic  = 1569
	lenMLKEMCT      = 1568
)

// stream is the deterministic source of every key and random value of the
// vectors: the SHAKE-128 output of a label.
type stream struct {
	h *sha3.SHAKE
}

func newStream(label string) *stream {
	h := sha3.NewSHAKE128()
	h.Write([]byte(label))
	return &stream{h}
}

// read returns the next n bytes.
func (s *stream) read(n int) []byte {
	b := make([]byte, n)
	s.h.Read(b)
	return b
}

// Read implements io.Reader.
func (s *stream) Read(b []byte) (int, error) {
	return s.h.Read(b)
}

// recorder is an io.Reader that takes bytes from src and remembers them.
type recorder struct {
	src io.Reader
	got []byte
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := io.ReadFull(r.src, b)
	r.got = append(r.got, b[:n]...)
	return n, err
}

// emptyReader fails every read: operations that must draw no randomness use it.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, errors.New("no randomness available") }

// x25519Public returns X25519(k, 9).
func x25519Public(k []byte) ([]byte, error) {
	priv, err := ecdh.X25519().NewPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return priv.PublicKey().Bytes(), nil
}

// x25519 is X25519(k, u) with the all-zero check of PRIM-001.
func x25519(k, u []byte) ([]byte, error) {
	priv, err := ecdh.X25519().NewPrivateKey(k)
	if err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return nil, err
	}
	out, err := priv.ECDH(pub)
	if err != nil {
		// crypto/ecdh refuses the all-zero output itself.
		return nil, errLowOrderKey
	}
	zero := true
	for _, c := range out {
		if c != 0 {
			zero = false
		}
	}
	if zero {
		return nil, errLowOrderKey
	}
	return out, nil
}

// encX25519 returns Enc of an X25519 public key body.
func encX25519(u []byte) []byte { return append([]byte{typeX25519Public}, u...) }

// encMLKEM returns Enc of an ML-KEM-1024 encapsulation key.
func encMLKEM(ek []byte) []byte { return append([]byte{typeMLKEMPublic}, ek...) }

// decodeX25519 decodes an X25519 public key slot (CONV-003) and returns the body.
func decodeX25519(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != typeX25519Public {
		return nil, errKeyType
	}
	if len(b) != lenX25519Public {
		return nil, errKeyLength
	}
	if le(b[1:]).Cmp(bigP) >= 0 {
		return nil, errKeyNoncanonical
	}
	return b[1:], nil
}

// mlkemModulusOK is the modulus check of FIPS 203 section 7.2 for ML-KEM-1024:
// every 12-bit coefficient of the 1536 encoded bytes is below 3329.
func mlkemModulusOK(ek []byte) bool {
	if len(ek) != 1568 {
		return false
	}
	for i := 0; i+3 <= 1536; i += 3 {
		c0 := uint16(ek[i]) | uint16(ek[i+1]&0x0f)<<8
		c1 := uint16(ek[i+1]>>4) | uint16(ek[i+2])<<4
		if c0 >= 3329 || c1 >= 3329 {
			return false
		}
	}
	return true
}

// decodeMLKEM decodes an ML-KEM-1024 public key slot (CONV-003, PRIM-003).
func decodeMLKEM(b []byte) (*mlkem.EncapsulationKey1024, error) {
	if len(b) == 0 || b[0] != typeMLKEMPublic {
		return nil, errKeyType
	}
	if len(b) != lenMLKEMPublic {
		return nil, errKeyLength
	}
	ok := mlkemModulusOK(b[1:])
	ek, err := mlkem.NewEncapsulationKey1024(b[1:])
	if ok != (err == nil) {
		return nil, fmt.Errorf("modulus check disagrees with crypto/mlkem: %v", err)
	}
	if !ok {
		return nil, errKeyNoncanonical
	}
	return ek, nil
}

// kemPublic returns the encapsulation key of a 64-byte seed.
func kemPublic(seed []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, err
	}
	return dk.EncapsulationKey().Bytes(), nil
}

// kemEncaps is KEM-Encaps(ek, m).
func kemEncaps(ek *mlkem.EncapsulationKey1024, m []byte) (ct, ss []byte, err error) {
	ss, ct, err = mlkemtest.Encapsulate1024(ek, m)
	return ct, ss, err
}

// kemDecaps is KEM-Decaps(dk, ct) with dk given as its seed.
func kemDecaps(seed, ct []byte) ([]byte, error) {
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, err
	}
	return dk.Decapsulate(ct)
}

func hkdfSHA256(salt, ikm []byte, info string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, ikm, salt, info, n)
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// kdfRK is KDF_RK of section 5.3.
func kdfRK(rk, dh []byte) (newRK, ck []byte, err error) {
	out, err := hkdfSHA256(rk, dh, labelRoot, 64)
	if err != nil {
		return nil, nil, err
	}
	return out[:32], out[32:], nil
}

// kdfCK is KDF_CK of section 5.3.
func kdfCK(ck []byte) (next, mk []byte) {
	return hmacSHA256(ck, []byte{0x02}), hmacSHA256(ck, []byte{0x01})
}

// msgKeys is MSG_KEYS of section 5.3.
func msgKeys(mk []byte) (key, nonce []byte, err error) {
	out, err := hkdfSHA256(make([]byte, 32), mk, labelMessageKeys, 44)
	if err != nil {
		return nil, nil, err
	}
	return out[:32], out[32:], nil
}

func aeadSeal(key, nonce, pt, ad []byte) ([]byte, error) {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, nonce, pt, ad), nil
}

func aeadOpen(key, nonce, ct, ad []byte) ([]byte, error) {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, errDecryptFailed
	}
	return pt, nil
}

// Padding constants (section 5.1).
const (
	padMin        = 32
	maxPlaintext  = 65536
	maxCiphertext = 67600
	maxSkip       = 1000
	maxStored     = 2000
)

// padme is Padmé of section 5.5, for l >= 2.
func padme(l int) int {
	e := big.NewInt(int64(l)).BitLen() - 1
	s := big.NewInt(int64(e)).BitLen() // floor(log2(e)) + 1
	z := e - s
	mask := (1 << z) - 1
	return (l + mask) &^ mask
}

// padLen is pad_len of section 5.5.
func padLen(l int) int {
	if l <= padMin {
		return padMin
	}
	return padme(l)
}

// pad is pad of section 5.5.
func pad(m []byte) []byte {
	out := make([]byte, padLen(len(m)+1))
	copy(out, m)
	out[len(m)] = 0x80
	return out
}

// unpad is unpad of section 5.5.
func unpad(x []byte) ([]byte, error) {
	i := len(x) - 1
	for i >= 0 && x[i] == 0 {
		i--
	}
	if i < 0 || x[i] != 0x80 || len(x) != padLen(i+1) {
		return nil, errBadPadding
	}
	return x[:i], nil
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil // unreachable for the constants of this package; selfTest would fail
	}
	return b
}

// lowOrderPoints are canonical u-coordinates of points of small order.
var lowOrderPoints = [][]byte{
	mustHex("0000000000000000000000000000000000000000000000000000000000000000"), // order 2 on the Edwards curve ((0, -1))
	mustHex("0100000000000000000000000000000000000000000000000000000000000000"), // order 4
	mustHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), // order 8
	mustHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), // order 8
	mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p - 1
}
