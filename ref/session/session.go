// Package session joins PQXDH and the Double Ratchet into a pairwise
// session between two devices (spec/04-pqxdh.md section 4.5 and
// spec/05-ratchet.md): the initiator sends prekey messages until the
// responder answers, the responder creates its session from the first
// prekey message, and both then exchange ratchet messages.
//
// A Session is not safe for concurrent use. Store it (MarshalBinary) after
// every successful Encrypt and Decrypt (spec/06-session-state.md).
package session

import (
	"bytes"
	"fmt"
	"io"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/ratchet"
	"github.com/missive-protocol/missive/ref/wire"
)

// Kind says how a message is encoded.
type Kind uint8

// Message kinds.
const (
	KindRatchet Kind = 1 // a ratchet-message
	KindPreKey  Kind = 2 // a prekey-message
)

// String returns "ratchet" or "prekey".
func (k Kind) String() string {
	switch k {
	case KindRatchet:
		return "ratchet"
	case KindPreKey:
		return "prekey"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Session is one side of a pairwise session.
type Session struct {
	ratchet *ratchet.State
	pending *wire.PendingPreKey // set on the initiator until it hears back
	base    []byte              // on the responder: Enc(EK_A) of the prekey message
}

// Initiate verifies a prekey bundle and starts a session with identity key
// ik. It draws, in order, EK_A, the KEM randomness and the first ratchet
// key (32 bytes each) from rand; nil means the system generator.
func Initiate(rand io.Reader, ik *keys.PrivateKey, bundle []byte) (*Session, error) {
	b, err := pqxdh.ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	return InitiateVerified(rand, ik, b)
}

// InitiateVerified is Initiate with a bundle already returned by
// pqxdh.ParseBundle.
func InitiateVerified(rand io.Reader, ik *keys.PrivateKey, b *pqxdh.Bundle) (*Session, error) {
	in, err := pqxdh.Initiate(rand, ik, b)
	if err != nil {
		return nil, err
	}
	r, err := ratchet.NewInitiator(in.SK, in.AD, in.RemoteSignedPreKey, rand)
	if err != nil {
		return nil, err
	}
	p := &wire.PendingPreKey{
		IdentityKey:    in.IdentityKey.Encode(),
		EphemeralKey:   in.EphemeralKey.Encode(),
		SignedPreKeyID: uint64(in.SignedPreKeyID),
		KEMPreKeyID:    uint64(in.KEMPreKeyID),
		KEMCiphertext:  in.KEMCiphertext,
	}
	if in.OneTimePreKeyID != nil {
		id := uint64(*in.OneTimePreKeyID)
		p.OneTimePreKeyID = &id
	}
	return &Session{ratchet: r, pending: p}, nil
}

// Used names the prekeys a prekey message used. After Respond succeeds,
// the responder must delete the one-time keys among them before it
// acknowledges the message (PQX-010).
type Used struct {
	SignedPreKeyID  uint32
	KEMPreKeyID     uint32
	OneTimePreKeyID *uint32
}

// Respond processes a prekey message with identity key ik and prekeys pk
// (spec section 4.6). It returns the new session, the plaintext of the
// enclosed message and the prekeys used. On any error nothing is created
// and pk is not consulted for deletion.
func Respond(rand io.Reader, ik *keys.PrivateKey, pk pqxdh.PreKeys, message []byte) (*Session, []byte, *Used, error) {
	var m wire.PreKeyMessage
	if err := wire.Unmarshal(message, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("session: prekey message: %w", err)
	}
	res, err := pqxdh.Respond(ik, pk, &m)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := ratchet.NewResponder(res.SK, res.AD, res.SignedPreKey)
	if err != nil {
		return nil, nil, nil, err
	}
	pt, err := r.Decrypt(rand, m.Message)
	if err != nil {
		return nil, nil, nil, err
	}
	used := &Used{SignedPreKeyID: uint32(m.SignedPreKeyID), KEMPreKeyID: uint32(m.KEMPreKeyID)}
	if m.OneTimePreKeyID != nil {
		id := uint32(*m.OneTimePreKeyID)
		used.OneTimePreKeyID = &id
	}
	base := append(append([]byte(nil), m.IdentityKey...), m.EphemeralKey...)
	return &Session{ratchet: r, base: base}, pt, used, nil
}

// DecryptPreKey decrypts a prekey message that belongs to this responder
// session: one that the initiator sent before it heard back, arriving after
// another created the session. A prekey message with another identity or
// ephemeral key starts a new session: DecryptPreKey fails with
// errcode.StateNoSession and the caller uses Respond.
func (s *Session) DecryptPreKey(rand io.Reader, message []byte) ([]byte, error) {
	var m wire.PreKeyMessage
	if err := wire.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("session: prekey message: %w", err)
	}
	if !s.SamePreKey(&m) {
		return nil, fmt.Errorf("session: prekey message of another session: %w", errcode.StateNoSession)
	}
	return s.ratchet.Decrypt(rand, m.Message)
}

// SamePreKey reports whether the decoded prekey message m belongs to this
// responder session: whether it has the same Enc(IK_A) and Enc(EK_A) as the
// prekey message that created it (PQX-011).
func (s *Session) SamePreKey(m *wire.PreKeyMessage) bool {
	return len(s.base) == 2*keys.X25519EncodedSize &&
		bytes.Equal(s.base[:keys.X25519EncodedSize], m.IdentityKey) &&
		bytes.Equal(s.base[keys.X25519EncodedSize:], m.EphemeralKey)
}

// Encrypt returns the message that carries plaintext: a prekey message
// while the initiator has not yet heard from the responder, a ratchet
// message otherwise.
func (s *Session) Encrypt(plaintext []byte) (Kind, []byte, error) {
	m, err := s.ratchet.Encrypt(plaintext)
	if err != nil {
		return 0, nil, err
	}
	if s.pending == nil {
		return KindRatchet, m, nil
	}
	p := s.pending
	b, err := wire.Marshal(&wire.PreKeyMessage{
		Version:         wire.ProtocolVersion,
		IdentityKey:     p.IdentityKey,
		EphemeralKey:    p.EphemeralKey,
		SignedPreKeyID:  p.SignedPreKeyID,
		KEMPreKeyID:     p.KEMPreKeyID,
		KEMCiphertext:   p.KEMCiphertext,
		OneTimePreKeyID: p.OneTimePreKeyID,
		Message:         m,
	})
	return KindPreKey, b, err
}

// Decrypt authenticates and decrypts a ratchet message. The first success
// on the initiator's side ends its prekey messages (PQX-007). On any error
// the session is unchanged.
func (s *Session) Decrypt(rand io.Reader, message []byte) ([]byte, error) {
	pt, err := s.ratchet.Decrypt(rand, message)
	if err != nil {
		return nil, err
	}
	s.pending = nil
	return pt, nil
}

// MarshalBinary returns the stored form of the session.
func (s *Session) MarshalBinary() ([]byte, error) {
	r, err := s.ratchet.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := &wire.StoredSession{Version: 1, Ratchet: r, Pending: s.pending}
	if s.base != nil {
		w.Base = &s.base
	}
	return wire.Marshal(w)
}

// UnmarshalBinary restores a session stored by MarshalBinary.
func (s *Session) UnmarshalBinary(data []byte) error {
	var w wire.StoredSession
	if err := wire.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	r := new(ratchet.State)
	if err := r.UnmarshalBinary(w.Ratchet); err != nil {
		return err
	}
	s.ratchet, s.pending, s.base = r, w.Pending, nil
	if w.Base != nil {
		s.base = *w.Base
	}
	return nil
}
