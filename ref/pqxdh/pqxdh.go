// Package pqxdh implements the PQXDH key agreement of spec/04-pqxdh.md with
// X25519 and ML-KEM-1024: prekey bundles (creation, encoding, signature
// verification), the initiator, and the responder.
//
// Randomness is injected: every function that needs it takes an io.Reader
// and draws exactly the bytes spec section 2.2 lists, in order; a nil
// reader means the system generator.
package pqxdh

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// Labels of spec section 1.5 used by PQXDH.
const (
	LabelSignedPreKey = "Missive v1 signed EC prekey"
	LabelKEMPreKey    = "Missive v1 signed KEM prekey"
	LabelPQXDH        = "Missive v1 PQXDH"
)

// SKSize is PQX_SK_SIZE, the size of the shared secret.
const SKSize = 32

// SignedPreKey is a signed EC prekey with its id and signature.
type SignedPreKey struct {
	ID        uint32
	Key       keys.PublicKey
	Signature []byte
}

// KEMPreKey is a signed ML-KEM-1024 prekey, one-time or last-resort.
type KEMPreKey struct {
	ID         uint32
	Key        keys.KEMPublicKey
	Signature  []byte
	LastResort bool
}

// OneTimePreKey is an unsigned one-time EC prekey.
type OneTimePreKey struct {
	ID  uint32
	Key keys.PublicKey
}

// Bundle is a prekey bundle: what a server hands an initiator for one of
// the responder's devices.
type Bundle struct {
	IdentityKey   keys.PublicKey
	SignedPreKey  SignedPreKey
	KEMPreKey     KEMPreKey
	OneTimePreKey *OneTimePreKey // nil when none remains
}

// SignSignedPreKey returns the signature of a signed EC prekey by the
// identity key ik, drawing 64 bytes from rand.
func SignSignedPreKey(ik *keys.PrivateKey, spk keys.PublicKey, rand io.Reader) ([]byte, error) {
	return ik.Sign(append([]byte(LabelSignedPreKey), spk.Encode()...), rand)
}

// SignKEMPreKey returns the signature of a KEM prekey by the identity key
// ik, drawing 64 bytes from rand.
func SignKEMPreKey(ik *keys.PrivateKey, pk keys.KEMPublicKey, rand io.Reader) ([]byte, error) {
	return ik.Sign(append([]byte(LabelKEMPreKey), pk.Encode()...), rand)
}

// Marshal returns the CBOR encoding of b.
func (b *Bundle) Marshal() ([]byte, error) {
	w := &wire.Bundle{
		Version:     wire.ProtocolVersion,
		IdentityKey: b.IdentityKey.Encode(),
		SignedPreKey: wire.SignedPreKey{
			ID:        uint64(b.SignedPreKey.ID),
			Key:       b.SignedPreKey.Key.Encode(),
			Signature: b.SignedPreKey.Signature,
		},
		KEMPreKey: wire.KEMPreKey{
			ID:         uint64(b.KEMPreKey.ID),
			Key:        b.KEMPreKey.Key.Encode(),
			Signature:  b.KEMPreKey.Signature,
			LastResort: b.KEMPreKey.LastResort,
		},
	}
	if o := b.OneTimePreKey; o != nil {
		w.OneTimePreKey = &wire.OneTimePreKey{ID: uint64(o.ID), Key: o.Key.Encode()}
	}
	return wire.Marshal(w)
}

// ParseBundle decodes a bundle and verifies it: the checks of spec section
// 4.2, in order. Only a bundle that ParseBundle returns may be used.
func ParseBundle(data []byte) (*Bundle, error) {
	var w wire.Bundle
	if err := wire.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("pqxdh: bundle: %w", err)
	}
	b := &Bundle{
		SignedPreKey: SignedPreKey{ID: uint32(w.SignedPreKey.ID), Signature: w.SignedPreKey.Signature},
		KEMPreKey:    KEMPreKey{ID: uint32(w.KEMPreKey.ID), Signature: w.KEMPreKey.Signature, LastResort: w.KEMPreKey.LastResort},
	}
	var err error
	if b.IdentityKey, err = keys.DecodePublicKey(w.IdentityKey); err != nil {
		return nil, fmt.Errorf("pqxdh: bundle identity key: %w", err)
	}
	if b.SignedPreKey.Key, err = keys.DecodePublicKey(w.SignedPreKey.Key); err != nil {
		return nil, fmt.Errorf("pqxdh: bundle signed prekey: %w", err)
	}
	if b.KEMPreKey.Key, err = keys.DecodeKEMPublicKey(w.KEMPreKey.Key); err != nil {
		return nil, fmt.Errorf("pqxdh: bundle KEM prekey: %w", err)
	}
	if o := w.OneTimePreKey; o != nil {
		k, err := keys.DecodePublicKey(o.Key)
		if err != nil {
			return nil, fmt.Errorf("pqxdh: bundle one-time prekey: %w", err)
		}
		b.OneTimePreKey = &OneTimePreKey{ID: uint32(o.ID), Key: k}
	}
	if faults.Has(faults.AcceptBadPrekeySignature) {
		return b, nil
	}
	if err := b.IdentityKey.Verify(append([]byte(LabelSignedPreKey), w.SignedPreKey.Key...), b.SignedPreKey.Signature); err != nil {
		return nil, fmt.Errorf("pqxdh: signed prekey signature: %w", err)
	}
	if err := b.IdentityKey.Verify(append([]byte(LabelKEMPreKey), w.KEMPreKey.Key...), b.KEMPreKey.Signature); err != nil {
		return nil, fmt.Errorf("pqxdh: KEM prekey signature: %w", err)
	}
	return b, nil
}

// Result is the outcome of a PQXDH run, on either side.
type Result struct {
	SK []byte // the 32-byte shared secret
	AD []byte // Enc(IK_A) || Enc(IK_B)
}

// Initiation is what the initiator learns and must send: the values of the
// prekey message (spec section 4.5) besides the ratchet message.
type Initiation struct {
	Result
	IdentityKey     keys.PublicKey // IK_A
	EphemeralKey    keys.PublicKey // EK_A
	SignedPreKeyID  uint32
	KEMPreKeyID     uint32
	KEMCiphertext   []byte
	OneTimePreKeyID *uint32
	// RemoteSignedPreKey is SPK_B, the responder's first ratchet key.
	RemoteSignedPreKey keys.PublicKey
}

// Initiate runs PQXDH as the initiator with identity key ik against a bundle
// returned by ParseBundle. It draws EK_A (32 bytes) then the KEM randomness
// (32 bytes) from rand.
func Initiate(rand io.Reader, ik *keys.PrivateKey, b *Bundle) (*Initiation, error) {
	ek, err := keys.GeneratePrivateKey(rand)
	if err != nil {
		return nil, err
	}
	steps := []dhStep{{ik, b.SignedPreKey.Key}, {ek, b.IdentityKey}, {ek, b.SignedPreKey.Key}}
	if b.OneTimePreKey != nil {
		steps = append(steps, dhStep{ek, b.OneTimePreKey.Key})
	}
	dh, err := agree(steps)
	if err != nil {
		return nil, err
	}
	ss, ct, err := b.KEMPreKey.Key.Encapsulate(rand)
	if err != nil {
		return nil, err
	}
	in := &Initiation{
		IdentityKey:        ik.Public(),
		EphemeralKey:       ek.Public(),
		SignedPreKeyID:     b.SignedPreKey.ID,
		KEMPreKeyID:        b.KEMPreKey.ID,
		KEMCiphertext:      ct,
		RemoteSignedPreKey: b.SignedPreKey.Key,
	}
	var opk *keys.PublicKey
	if b.OneTimePreKey != nil {
		id := b.OneTimePreKey.ID
		in.OneTimePreKeyID = &id
		opk = &b.OneTimePreKey.Key
	}
	in.Result, err = derive(append(dh, ss...), in.IdentityKey, b.IdentityKey, b.SignedPreKey.Key, opk, b.KEMPreKey.Key, in.EphemeralKey, ct)
	return in, err
}

// dhStep is one Diffie-Hellman operation of spec sections 4.3 and 4.6.
type dhStep struct {
	priv *keys.PrivateKey
	pub  keys.PublicKey
}

// agree concatenates the outputs of steps, DH1 first, failing on the first
// all-zero output.
func agree(steps []dhStep) ([]byte, error) {
	dh := make([]byte, 0, len(steps)*keys.X25519Size+32)
	for i, s := range steps {
		out, err := s.priv.ECDH(s.pub)
		if err != nil {
			return nil, fmt.Errorf("pqxdh: DH%d: %w", i+1, err)
		}
		dh = append(dh, out...)
	}
	return dh, nil
}

// derive computes SK and AD (spec section 4.4).
func derive(km []byte, ika, ikb, spk keys.PublicKey, opk *keys.PublicKey, pqpk keys.KEMPublicKey, ek keys.PublicKey, ct []byte) (Result, error) {
	th := sha256.New()
	th.Write(ika.Encode())
	th.Write(ikb.Encode())
	th.Write(spk.Encode())
	if opk != nil {
		th.Write(opk.Encode())
	}
	if faults.Has(faults.NoKEMBinding) {
		th.Write(ek.Encode())
	} else {
		th.Write(pqpk.Encode())
		th.Write(ek.Encode())
		th.Write(ct)
	}
	ikm := make([]byte, 0, 32+len(km))
	ikm = append(ikm, f[:]...)
	ikm = append(ikm, km...)
	var salt [32]byte
	sk, err := hkdf.Key(sha256.New, ikm, salt[:], LabelPQXDH+string(th.Sum(nil)), SKSize)
	if err != nil {
		return Result{}, err
	}
	return Result{SK: sk, AD: append(ika.Encode(), ikb.Encode()...)}, nil
}

// f is the 32 bytes 0xFF that precede the key material.
var f = [32]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// PreKeys gives the responder's private prekeys by id. Lookups must not
// consume anything: the responder deletes one-time keys only once the
// whole prekey message has been processed (PQX-010).
type PreKeys interface {
	SignedPreKey(id uint32) (*keys.PrivateKey, bool)
	KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool)
	OneTimePreKey(id uint32) (*keys.PrivateKey, bool)
}

// Response is what the responder derives from a prekey message.
type Response struct {
	Result
	IdentityKey  keys.PublicKey // IK_A
	EphemeralKey keys.PublicKey // EK_A
	// SignedPreKey is the responder's first ratchet key pair.
	SignedPreKey *keys.PrivateKey
}

// Respond runs steps 2 to 5 of spec section 4.6 on a decoded prekey message
// (step 1 is wire.Unmarshal), with identity key ik and the prekeys in pk.
// The caller then initializes the ratchet and decrypts the enclosed message
// (step 6), and only then deletes the one-time prekeys used.
func Respond(ik *keys.PrivateKey, pk PreKeys, m *wire.PreKeyMessage) (*Response, error) {
	ika, err := keys.DecodePublicKey(m.IdentityKey)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: prekey message identity key: %w", err)
	}
	eka, err := keys.DecodePublicKey(m.EphemeralKey)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: prekey message ephemeral key: %w", err)
	}
	spk, ok := pk.SignedPreKey(uint32(m.SignedPreKeyID))
	if !ok {
		return nil, fmt.Errorf("pqxdh: signed prekey %d: %w", m.SignedPreKeyID, errcode.StateUnknownPrekey)
	}
	kem, ok := pk.KEMPreKey(uint32(m.KEMPreKeyID))
	if !ok {
		return nil, fmt.Errorf("pqxdh: KEM prekey %d: %w", m.KEMPreKeyID, errcode.StateUnknownPrekey)
	}
	var opk *keys.PrivateKey
	if m.OneTimePreKeyID != nil {
		if opk, ok = pk.OneTimePreKey(uint32(*m.OneTimePreKeyID)); !ok {
			return nil, fmt.Errorf("pqxdh: one-time prekey %d: %w", *m.OneTimePreKeyID, errcode.StateUnknownPrekey)
		}
	}
	steps := []dhStep{{spk, ika}, {ik, eka}, {spk, eka}}
	if opk != nil {
		steps = append(steps, dhStep{opk, eka})
	}
	dh, err := agree(steps)
	if err != nil {
		return nil, err
	}
	ss, err := kem.Decapsulate(m.KEMCiphertext)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: KEM ciphertext: %w", err)
	}
	var opkPub *keys.PublicKey
	if opk != nil {
		p := opk.Public()
		opkPub = &p
	}
	res, err := derive(append(dh, ss...), ika, ik.Public(), spk.Public(), opkPub, kem.Public(), eka, m.KEMCiphertext)
	if err != nil {
		return nil, err
	}
	return &Response{Result: res, IdentityKey: ika, EphemeralKey: eka, SignedPreKey: spk}, nil
}
