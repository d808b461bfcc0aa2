// XEdDSA on Curve25519 with SHA-512, with Missive's stricter verification
// (spec chapter 3). The curve arithmetic (edwards25519 points, X25519) is
// @noble/curves; SHA-512 is @noble/hashes. Everything else is written out
// here, step by step, in the order of the specification.
//
// This is example code for conformance testing. Signing uses the
// library's constant-time scalar multiplication, but the BigInt scalar
// arithmetic around it (mod q) is not constant time: do not use this code
// to protect real keys.

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';

const Point = ed25519.Point;

// Section 1.2.
export const p = 2n ** 255n - 19n;
export const q = 2n ** 252n + 27742317777372353535851937790883648493n;
if (Point.Fp.ORDER !== p || Point.Fn.ORDER !== q) throw new Error('@noble/curves: unexpected edwards25519 parameters');

const B = Point.BASE;

/** le(b): the unsigned integer whose little-endian encoding is b (section 1.2). */
export function le(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** The 32-byte little-endian encoding of 0 <= n < 2^256. */
function enc32(n) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

const mod = (a, m) => ((a % m) + m) % m;

/** a^e mod p. */
function powModP(a, e) {
  let result = 1n;
  a = mod(a, p);
  while (e > 0n) {
    if (e & 1n) result = (result * a) % p;
    a = (a * a) % p;
    e >>= 1n;
  }
  return result;
}

/** inverse(x) mod p, with inverse(0) = 0 (section 3.1): x^(p-2). */
const invModP = (x) => powModP(x, p - 2n);

/** hash(X) = SHA-512(X), read as a little-endian integer, reduced mod q. */
const hashModQ = (...parts) => mod(le(sha512(concatBytes(parts))), q);

/** hash1(X) = SHA-512(0xFE || 0xFF^31 || X), read as above, mod q. */
const HASH1_PREFIX = Uint8Array.from([0xfe, ...new Array(31).fill(0xff)]);
const hash1ModQ = (...parts) => hashModQ(HASH1_PREFIX, ...parts);

function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** clamp(k): RFC 7748 decodeScalar25519 (section 3.1). */
function clamp(k) {
  const c = Uint8Array.from(k);
  c[0] &= 0xf8; // clear bits 0, 1, 2
  c[31] &= 0x7f; // clear bit 255
  c[31] |= 0x40; // set bit 254
  return le(c);
}

/** u_to_y(u) = (u - 1) * inverse(u + 1) mod p (section 3.1). */
const uToY = (u) => mod((u - 1n) * invModP(u + 1n), p);

/** k * P for a secret scalar, with the library's constant-time ladder. */
function mulSecret(P, k) {
  k = mod(k, q); // P is in the prime-order subgroup (P = B here)
  return k === 0n ? Point.ZERO : P.multiply(k);
}

/**
 * n * P for a public integer n >= 0, as the n-fold sum of P: plain
 * double-and-add, so that it is the integer multiple even when P has a
 * torsion component (XED-010). Not constant time; used in verification.
 */
function mulInteger(P, n) {
  let acc = Point.ZERO;
  for (let i = BigInt(n.toString(2).length) - 1n; i >= 0n; i--) {
    acc = acc.double();
    if ((n >> i) & 1n) acc = acc.add(P);
  }
  return acc;
}

/**
 * calculate_key_pair(k) (section 3.2): the Edwards public key A, which
 * always has sign bit 0, as its 32-byte encoding, and the scalar a.
 */
function calculateKeyPair(k) {
  const a0 = clamp(k);
  const E = mulSecret(B, a0);
  const encE = E.toBytes();
  const sign = encE[31] >> 7; // E.s
  const encA = Uint8Array.from(encE);
  encA[31] &= 0x7f; // A.y = E.y, A.s = 0
  const a = sign === 1 ? mod(-a0, q) : mod(a0, q);
  return { encA, a };
}

/**
 * xeddsa_sign(k, M, Z) (section 3.3).
 * @param {Uint8Array} k  the 32-byte X25519 private key
 * @param {Uint8Array} M  the message
 * @param {Uint8Array} Z  64 bytes of randomness (given by the runner)
 * @returns {{signature: Uint8Array, publicKey: Uint8Array}} the signature and
 *   the X25519 public key u = X25519(k, 9)
 */
export function xeddsaSign(k, M, Z) {
  if (k.length !== 32) throw new Error(`the private key has ${k.length} bytes, not 32`);
  if (Z.length !== 64) throw new Error(`z has ${Z.length} bytes, not 64`);
  const { encA, a } = calculateKeyPair(k);
  const r = hash1ModQ(enc32(a), M, Z);
  const encR = mulSecret(B, r).toBytes();
  const h = hashModQ(encR, encA, M);
  const s = mod(r + h * a, q); // XED-002: s reduced mod q
  return {
    signature: concatBytes([encR, enc32(s)]),
    publicKey: x25519.getPublicKey(k), // X25519(k, 9)
  };
}

/**
 * xeddsa_verify(u, M, sig) (section 3.4): true when the signature is
 * accepted. Every check runs in the order of the specification; any
 * rejection is auth.bad_signature for the caller (XED-003).
 * @param {Uint8Array} uBytes  the 32-byte u-coordinate (no type byte)
 * @param {Uint8Array} M  the message
 * @param {Uint8Array} sig  the signature
 */
export function xeddsaVerify(uBytes, M, sig) {
  if (sig.length !== 64) return false; // XED-004
  // Assumption: a public key that is not 32 bytes is rejected as well (the
  // specification defines u only as the 32-byte body).
  if (uBytes.length !== 32) return false;
  const RBytes = sig.subarray(0, 32);
  const sBytes = sig.subarray(32, 64);

  const u = le(uBytes);
  if (u >= p) return false; // XED-006: non-canonical u, including a set high bit
  if (le(RBytes) % 2n ** 255n >= p) return false; // non-canonical R.y
  const s = le(sBytes);
  if (s >= q) return false; // XED-005: non-canonical s

  // A.y = u_to_y(u), A.s = 0. Decoding the encoding (y, sign 0) solves the
  // curve equation for x; it fails when no x exists: A is not on the curve.
  const encA = enc32(uToY(u)); // y < p, so bit 255 (the sign) is 0
  let A;
  try {
    A = Point.fromBytes(encA);
  } catch {
    return false; // A is not on the curve
  }
  if (A.double().double().double().is0()) return false; // XED-009: 8 * A is the identity

  const h = hashModQ(RBytes, encA, M); // the integer h in [0, q)
  const Rcheck = mulInteger(A.negate(), h).add(mulInteger(B, s)); // XED-010: h * (-A) + s * B
  const encRcheck = Rcheck.toBytes();
  // XED-007: compare encodings, not points.
  return encRcheck.every((byte, i) => byte === RBytes[i]);
}
