// Package xeddsa implements XEdDSA signatures with X25519 keys on
// edwards25519 and SHA-512, as specified in spec/03-xeddsa.md: Signal's
// XEdDSA with Missive's stricter verification (canonical u, R and s).
//
// A device signs with the same X25519 private key that it uses for
// Diffie-Hellman; the verifier needs only the X25519 public key.
package xeddsa

import (
	"crypto/sha512"
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
)

// Sizes in bytes.
const (
	PrivateKeySize = 32 // an X25519 private key, before clamping
	PublicKeySize  = 32 // an X25519 public key (the u-coordinate)
	SignatureSize  = 64 // R || s
	RandomSize     = 64 // Z, the signing randomness
)

var errSize = errors.New("xeddsa: wrong input size")

// hash1Prefix is the 32-byte little-endian encoding of 2^256 - 2.
var hash1Prefix = [32]byte{0: 0xFE, 1: 0xFF, 2: 0xFF, 3: 0xFF, 4: 0xFF, 5: 0xFF, 6: 0xFF, 7: 0xFF,
	8: 0xFF, 9: 0xFF, 10: 0xFF, 11: 0xFF, 12: 0xFF, 13: 0xFF, 14: 0xFF, 15: 0xFF, 16: 0xFF, 17: 0xFF,
	18: 0xFF, 19: 0xFF, 20: 0xFF, 21: 0xFF, 22: 0xFF, 23: 0xFF, 24: 0xFF, 25: 0xFF, 26: 0xFF, 27: 0xFF,
	28: 0xFF, 29: 0xFF, 30: 0xFF, 31: 0xFF}

// calculateKeyPair returns the Edwards public key A (sign bit 0) and the
// scalar a of spec section 3.2.
func calculateKeyPair(k []byte) (A []byte, a *edwards25519.Scalar, err error) {
	a0, err := edwards25519.NewScalar().SetBytesWithClamping(k)
	if err != nil {
		return nil, nil, errSize
	}
	E := new(edwards25519.Point).ScalarBaseMult(a0).Bytes()
	if E[31]&0x80 != 0 {
		a0.Negate(a0)
		E[31] &= 0x7F
	}
	return E, a0, nil
}

// Sign returns the XEdDSA signature of msg under the X25519 private key
// priv, with the 64 bytes of randomness z (spec section 3.3). The same
// priv, msg and z always give the same signature.
func Sign(priv, msg, z []byte) ([]byte, error) {
	if len(priv) != PrivateKeySize || len(z) != RandomSize {
		return nil, errSize
	}
	A, a, err := calculateKeyPair(priv)
	if err != nil {
		return nil, err
	}
	h := sha512.New()
	h.Write(hash1Prefix[:])
	h.Write(a.Bytes())
	h.Write(msg)
	h.Write(z)
	r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	hs := challenge(R, A, msg)
	s := edwards25519.NewScalar().MultiplyAdd(hs, a, r)
	return append(R, s.Bytes()...), nil
}

func challenge(R, A, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(A)
	h.Write(msg)
	s, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return s
}

// below reports whether the 32-byte little-endian value v is less than
// p = 2^255 - 19.
func belowP(v []byte) bool {
	if v[31] < 0x7F {
		return true
	}
	if v[31] > 0x7F {
		return false
	}
	for i := 30; i >= 1; i-- {
		if v[i] != 0xFF {
			return true
		}
	}
	return v[0] < 0xED
}

// Verify checks the XEdDSA signature sig of msg under the X25519 public key
// pub (the 32-byte u-coordinate), applying every rejection rule of spec
// section 3.4. It returns nil or errcode.AuthBadSignature.
func Verify(pub, msg, sig []byte) error {
	err := verify(pub, msg, sig)
	if err != nil && faults.Has(faults.AcceptBadSignature) {
		return nil
	}
	return err
}

func verify(pub, msg, sig []byte) error {
	if len(pub) != PublicKeySize || len(sig) != SignatureSize {
		return errcode.AuthBadSignature
	}
	if faults.Has(faults.MaskU) {
		pub = append([]byte(nil), pub...)
		pub[31] &= 0x7F
	}
	R, sBytes := sig[:32], sig[32:]
	var Ry [32]byte
	copy(Ry[:], R)
	Ry[31] &= 0x7F
	if !belowP(pub) || !belowP(Ry[:]) {
		return errcode.AuthBadSignature
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sBytes)
	if err != nil && faults.Has(faults.WeakSCheck) && sBytes[31]&0xE0 == 0 {
		var wide [64]byte
		copy(wide[:], sBytes)
		s, err = edwards25519.NewScalar().SetUniformBytes(wide[:])
	}
	if err != nil {
		return errcode.AuthBadSignature
	}
	A, err := montgomeryToEdwards(pub)
	if err != nil {
		return errcode.AuthBadSignature
	}
	if new(edwards25519.Point).MultByCofactor(A).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errcode.AuthBadSignature // small order: XED-009
	}
	h := challenge(R, A.Bytes(), msg)
	// h * (-A) + s * B with the integer h (XED-010): negating the scalar
	// instead would change the result on a torsion component of A.
	minusA := new(edwards25519.Point).Negate(A)
	check := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(h, minusA, s)
	if [32]byte(check.Bytes()) != [32]byte(R) {
		return errcode.AuthBadSignature
	}
	return nil
}

// montgomeryToEdwards returns the point with y = (u - 1) / (u + 1) and sign
// bit 0, or an error when no such point is on the curve. u must be
// canonical.
func montgomeryToEdwards(u []byte) (*edwards25519.Point, error) {
	var fu, one, num, den, y field.Element
	if _, err := fu.SetBytes(u); err != nil {
		return nil, err
	}
	one.One()
	num.Subtract(&fu, &one)
	den.Add(&fu, &one)
	den.Invert(&den) // Invert(0) = 0, as the specification requires
	y.Multiply(&num, &den)
	return new(edwards25519.Point).SetBytes(y.Bytes())
}
