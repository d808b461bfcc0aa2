package gen

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"math/big"
)

// This file is an independent, deliberately simple implementation of
// edwards25519 (RFC 8032) and XEdDSA (chapter 3) on math/big. It is slow and
// not constant time: it serves only to generate test vectors.

var (
	bigP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	bigQ = func() *big.Int {
		c, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
		return new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 252), c)
	}()
	// bigD is -121665/121666 mod p.
	bigD = func() *big.Int {
		n := new(big.Int).Sub(bigP, big.NewInt(121665))
		return n.Mul(n, new(big.Int).ModInverse(big.NewInt(121666), bigP)).Mod(n, bigP)
	}()
	bigD2 = new(big.Int).Mod(new(big.Int).Lsh(bigD, 1), bigP)
	// basePoint is B (RFC 8032 section 5.1): y = 4/5, x even.
	basePoint = func() *point {
		x, _ := new(big.Int).SetString("15112221349535400772501151409588531511454012693041857206046113283949847762202", 10)
		y, _ := new(big.Int).SetString("46316835694926478169428394003475163141307993866256225615783033603165251855960", 10)
		return affinePoint(x, y)
	}()
	two253 = new(big.Int).Lsh(big.NewInt(1), 253)
)

// point is a point of edwards25519 in extended coordinates (X:Y:Z:T), with
// x = X/Z, y = Y/Z, x*y = T/Z.
type point struct {
	x, y, z, t *big.Int
}

func fmod(a *big.Int) *big.Int { return a.Mod(a, bigP) }

func fmul(a, b *big.Int) *big.Int { return fmod(new(big.Int).Mul(a, b)) }

func fadd(a, b *big.Int) *big.Int { return fmod(new(big.Int).Add(a, b)) }

func fsub(a, b *big.Int) *big.Int { return fmod(new(big.Int).Sub(a, b)) }

// finv returns the inverse of a mod p, with inverse(0) = 0.
func finv(a *big.Int) *big.Int {
	return new(big.Int).Exp(a, new(big.Int).Sub(bigP, big.NewInt(2)), bigP)
}

func identity() *point {
	return &point{big.NewInt(0), big.NewInt(1), big.NewInt(1), big.NewInt(0)}
}

func affinePoint(x, y *big.Int) *point {
	return &point{new(big.Int).Set(x), new(big.Int).Set(y), big.NewInt(1), fmul(x, y)}
}

// add is the complete addition of "add-2008-hwcd-3" for a = -1.
func (p1 *point) add(p2 *point) *point {
	a := fmul(fsub(p1.y, p1.x), fsub(p2.y, p2.x))
	b := fmul(fadd(p1.y, p1.x), fadd(p2.y, p2.x))
	c := fmul(fmul(p1.t, bigD2), p2.t)
	d := fmul(fmul(p1.z, big.NewInt(2)), p2.z)
	e, f, g, h := fsub(b, a), fsub(d, c), fadd(d, c), fadd(b, a)
	return &point{fmul(e, f), fmul(g, h), fmul(f, g), fmul(e, h)}
}

func (p1 *point) neg() *point {
	return &point{fsub(big.NewInt(0), p1.x), new(big.Int).Set(p1.y), new(big.Int).Set(p1.z),
		fsub(big.NewInt(0), p1.t)}
}

// mul returns k*P for k >= 0 (double and add, most significant bit first).
func (p1 *point) mul(k *big.Int) *point {
	r := identity()
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = r.add(r)
		if k.Bit(i) == 1 {
			r = r.add(p1)
		}
	}
	return r
}

// affine returns x and y.
func (p1 *point) affine() (x, y *big.Int) {
	zi := finv(p1.z)
	return fmul(p1.x, zi), fmul(p1.y, zi)
}

// encode is the RFC 8032 encoding: y little-endian, sign of x in bit 255.
func (p1 *point) encode() []byte {
	x, y := p1.affine()
	b := leBytes(y, 32)
	b[31] |= byte(x.Bit(0)) << 7
	return b
}

// pointFromY returns the point with the given y and sign of x, if any.
func pointFromY(y *big.Int, sign uint) (*point, bool) {
	y2 := fmul(y, y)
	num := fsub(y2, big.NewInt(1))
	den := fadd(fmul(bigD, y2), big.NewInt(1))
	x2 := fmul(num, finv(den))
	x := new(big.Int).ModSqrt(x2, bigP)
	if x == nil {
		return nil, false
	}
	if x.Sign() == 0 && sign == 1 {
		return nil, false
	}
	if x.Bit(0) != sign {
		x = fsub(big.NewInt(0), x)
	}
	return affinePoint(x, y), true
}

// leBytes returns the n-byte little-endian encoding of a (a < 2^(8n)).
func leBytes(a *big.Int, n int) []byte {
	be := a.FillBytes(make([]byte, n))
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

// le reads a little-endian unsigned integer.
func le(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// clampScalar is decodeScalar25519 of RFC 7748.
func clampScalar(k []byte) *big.Int {
	c := make([]byte, 32)
	copy(c, k)
	c[0] &= 248
	c[31] &= 127
	c[31] |= 64
	return le(c)
}

// uToY is u_to_y(u) = (u - 1) * inverse(u + 1) mod p.
func uToY(u *big.Int) *big.Int {
	return fmul(fsub(u, big.NewInt(1)), finv(fadd(u, big.NewInt(1))))
}

// yToU is the inverse birational map, u = (1 + y) / (1 - y).
func yToU(y *big.Int) *big.Int {
	return fmul(fadd(big.NewInt(1), y), finv(fsub(big.NewInt(1), y)))
}

// calculateKeyPair is calculate_key_pair of section 3.2. It also returns the
// sign bit of E = clamp(k)*B.
func calculateKeyPair(k []byte) (A *point, a *big.Int, eSign uint) {
	a0 := clampScalar(k)
	E := basePoint.mul(a0)
	ex, ey := E.affine()
	eSign = ex.Bit(0)
	a = new(big.Int).Mod(a0, bigQ)
	if eSign == 1 {
		a.Sub(bigQ, a).Mod(a, bigQ)
	}
	A, _ = pointFromY(ey, 0)
	return A, a, eSign
}

func hashModQ(parts ...[]byte) *big.Int {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return new(big.Int).Mod(le(h.Sum(nil)), bigQ)
}

// hash1Prefix is 0xFE || 0xFF^31.
var hash1Prefix = func() []byte {
	b := make([]byte, 32)
	b[0] = 0xfe
	for i := 1; i < 32; i++ {
		b[i] = 0xff
	}
	return b
}()

// xeddsaSign is xeddsa_sign of section 3.3.
func xeddsaSign(k, msg, z []byte) ([]byte, error) {
	if len(k) != 32 || len(z) != 64 {
		return nil, errors.New("xeddsa: bad input length")
	}
	A, a, _ := calculateKeyPair(k)
	r := hashModQ(hash1Prefix, leBytes(a, 32), msg, z)
	return signWith(A, a, r, msg), nil
}

// signWith returns enc(r*B) || enc_scalar(r + h*a mod q).
func signWith(A *point, a, r *big.Int, msg []byte) []byte {
	R := basePoint.mul(r).encode()
	h := hashModQ(R, A.encode(), msg)
	s := new(big.Int).Mul(h, a)
	s.Add(s, r).Mod(s, bigQ)
	return append(R, leBytes(s, 32)...)
}

// verifyMode selects a deviation from section 3.4, which the generator uses
// only to show that a case depends on the rule it is about.
type verifyMode int

const (
	// verifyStrict is section 3.4 exactly.
	verifyStrict verifyMode = iota
	// verifyNoSmallOrderCheck omits the check of XED-009 (as Signal's
	// XEdDSA does).
	verifyNoSmallOrderCheck
	// verifyScalarNegation computes Rcheck = ((q - h) mod q) * A + s * B,
	// which XED-010 forbids.
	verifyScalarNegation
)

// isSmallOrder reports whether 8 * P is the identity.
func isSmallOrder(P *point) bool {
	return bytes.Equal(P.mul(big.NewInt(8)).encode(), identity().encode())
}

// xeddsaVerify is xeddsa_verify of section 3.4; it returns nil or
// auth.bad_signature.
func xeddsaVerify(u, msg, sig []byte) error {
	return xeddsaVerifyMode(u, msg, sig, verifyStrict)
}

func xeddsaVerifyMode(u, msg, sig []byte, mode verifyMode) error {
	// XED-004: a signature that is not exactly 64 bytes.
	if len(u) != 32 || len(sig) != 64 {
		return errBadSignature
	}
	rBytes, sBytes := sig[:32], sig[32:]
	if le(u).Cmp(bigP) >= 0 {
		return errBadSignature
	}
	ry := le(rBytes)
	ry.SetBit(ry, 255, 0)
	if ry.Cmp(bigP) >= 0 {
		return errBadSignature
	}
	s := le(sBytes)
	if s.Cmp(bigQ) >= 0 {
		return errBadSignature
	}
	A, ok := pointFromY(uToY(le(u)), 0)
	if !ok {
		return errBadSignature
	}
	if mode != verifyNoSmallOrderCheck && isSmallOrder(A) {
		return errBadSignature
	}
	h := hashModQ(rBytes, A.encode(), msg)
	var rc *point
	if mode == verifyScalarNegation {
		negH := new(big.Int).Sub(bigQ, h)
		negH.Mod(negH, bigQ)
		rc = A.mul(negH).add(basePoint.mul(s))
	} else {
		// h * (-A) + s * B, with the integer h in [0, q) (XED-010).
		rc = A.neg().mul(h).add(basePoint.mul(s))
	}
	if !bytes.Equal(rc.encode(), rBytes) {
		return errBadSignature
	}
	return nil
}
