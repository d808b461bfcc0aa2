// Package ratchet implements the Double Ratchet of spec/05-ratchet.md:
// HKDF-SHA-256 root chain, HMAC-SHA-256 message chains, ChaCha20-Poly1305
// with a key and nonce derived per message, skipped message keys with
// MAX_SKIP and MAX_STORED_SKIPPED, and Padmé padding.
//
// Decryption is a transaction: a State changes only when a message has been
// authenticated and decoded in full, so a forged or damaged message leaves
// it byte for byte as it was (RAT-010).
package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/padding"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 5.1.
const (
	Version          = 1
	MaxSkip          = 1000
	MaxStoredSkipped = wire.MaxStoredSkipped
	MaxPlaintext     = 65536
	MaxCiphertext    = wire.MaxCiphertext
	ckMessage        = 0x01 // CK_MESSAGE
	ckNext           = 0x02 // CK_NEXT
	maxMessageNumber = 1<<32 - 1
)

// Labels of spec section 1.5 used by the ratchet.
const (
	LabelRoot        = "Missive v1 root chain"
	LabelMessageKeys = "Missive v1 message keys"
)

type key32 = [32]byte

// chains holds the fixed-size part of the state: everything a decryption
// may change besides the skipped keys. Copying it is the transaction.
type chains struct {
	dhs    *keys.PrivateKey
	dhsEnc []byte // Enc(DHs public), cached
	dhr    keys.PublicKey
	dhrEnc []byte // Enc(DHr), nil when none
	rk     key32
	cks    *key32
	ckr    *key32
	ns, nr uint32
	pn     uint32
}

// State is one side of a Double Ratchet session.
type State struct {
	chains
	skipped skippedKeys
	ad      []byte
}

// NewInitiator returns the initiator's state after PQXDH (spec section 5.4)
// with secret sk, associated data ad and the responder's signed prekey. It
// draws the first ratchet key (32 bytes) from rand.
func NewInitiator(sk, ad []byte, spk keys.PublicKey, rand io.Reader) (*State, error) {
	if len(sk) != 32 {
		return nil, fmt.Errorf("ratchet: secret of %d bytes", len(sk))
	}
	dhs, err := keys.GeneratePrivateKey(rand)
	if err != nil {
		return nil, err
	}
	s := &State{ad: append([]byte(nil), ad...)}
	s.dhs, s.dhsEnc = dhs, dhs.Public().Encode()
	s.dhr, s.dhrEnc = spk, spk.Encode()
	out, err := dhs.ECDH(spk)
	if err != nil {
		return nil, fmt.Errorf("ratchet: %w", err)
	}
	var ck key32
	s.rk, ck = kdfRK(key32(sk), out)
	s.cks = &ck
	return s, nil
}

// NewResponder returns the responder's state after PQXDH: its first ratchet
// key pair is its signed prekey spk.
func NewResponder(sk, ad []byte, spk *keys.PrivateKey) (*State, error) {
	if len(sk) != 32 {
		return nil, fmt.Errorf("ratchet: secret of %d bytes", len(sk))
	}
	s := &State{ad: append([]byte(nil), ad...)}
	s.dhs, s.dhsEnc = spk, spk.Public().Encode()
	s.rk = key32(sk)
	return s, nil
}

// kdfRK is KDF_RK of spec section 5.3.
func kdfRK(rk key32, dhOut []byte) (root, chain key32) {
	label := LabelRoot
	if faults.Has(faults.WrongKDFLabel) {
		label = "Missive v1 root chian"
	}
	out, err := hkdf.Key(sha256.New, dhOut, rk[:], label, 64)
	if err != nil {
		panic(err) // unreachable: the output length is fixed and valid
	}
	return key32(out[:32]), key32(out[32:])
}

// kdfCK is KDF_CK: the next chain key and the message key.
func kdfCK(ck *key32) (next, mk key32) {
	m := hmac.New(sha256.New, ck[:])
	m.Write([]byte{ckNext})
	m.Sum(next[:0])
	m.Reset()
	m.Write([]byte{ckMessage})
	m.Sum(mk[:0])
	return next, mk
}

// seal encrypts padded under the keys derived from mk.
func seal(mk *key32, padded, ad []byte) []byte {
	key, nonce := messageKeys(mk)
	a, _ := chacha20poly1305.New(key)
	return a.Seal(padded[:0], nonce, padded, ad)
}

// open authenticates and decrypts ct under the keys derived from mk, then
// removes the padding.
func open(mk *key32, ct, ad []byte) ([]byte, error) {
	key, nonce := messageKeys(mk)
	a, _ := chacha20poly1305.New(key)
	padded, err := a.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, errcode.AuthDecryptFailed
	}
	if faults.Has(faults.SkipPaddingCheck) {
		if i := bytes.LastIndexByte(padded, 0x80); i >= 0 {
			return padded[:i], nil
		}
		return padded, nil
	}
	return padding.Unpad(padded)
}

var zeroSalt [32]byte

// messageKeys is MSG_KEYS: the AEAD key and nonce of a message key.
func messageKeys(mk *key32) (key, nonce []byte) {
	out, err := hkdf.Key(sha256.New, mk[:], zeroSalt[:], LabelMessageKeys, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	if err != nil {
		panic(err) // unreachable
	}
	return out[:chacha20poly1305.KeySize], out[chacha20poly1305.KeySize:]
}

// associated returns AD || header.
func (s *State) associated(header []byte) []byte {
	out := make([]byte, 0, len(s.ad)+len(header))
	return append(append(out, s.ad...), header...)
}

// Encrypt returns the ratchet message that carries plaintext (spec section
// 5.7). The caller must store the state durably before sending the message
// (SES-002).
func (s *State) Encrypt(plaintext []byte) ([]byte, error) {
	switch {
	case len(plaintext) > MaxPlaintext:
		return nil, fmt.Errorf("ratchet: plaintext of %d bytes: %w", len(plaintext), errcode.PolicyTooLarge)
	case s.cks == nil:
		return nil, fmt.Errorf("ratchet: %w", errcode.StateNoSendingChain)
	case s.ns == maxMessageNumber:
		return nil, fmt.Errorf("ratchet: %w", errcode.StateChainExhausted)
	}
	next, mk := kdfCK(s.cks)
	header, err := wire.Marshal(&wire.RatchetHeader{RatchetKey: s.dhsEnc, PN: uint64(s.pn), N: uint64(s.ns)})
	if err != nil {
		return nil, err
	}
	ct := seal(&mk, padding.Pad(make([]byte, 0, padding.Len(len(plaintext)+1)+chacha20poly1305.Overhead), plaintext), s.associated(header))
	msg, err := wire.Marshal(&wire.RatchetMessage{Version: Version, Header: header, Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	s.cks = &next
	s.ns++
	return msg, nil
}

// Decrypt authenticates and decrypts a ratchet message (spec section 5.8).
// When the message starts a new chain, Decrypt draws the next ratchet key
// (32 bytes) from rand. On any error the state is unchanged.
func (s *State) Decrypt(rand io.Reader, message []byte) ([]byte, error) {
	var m wire.RatchetMessage
	if err := wire.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("ratchet: message: %w", err)
	}
	var h wire.RatchetHeader
	if err := wire.Unmarshal(m.Header, &h); err != nil {
		return nil, fmt.Errorf("ratchet: header: %w", err)
	}
	if err := keys.CheckPublicKey(h.RatchetKey); err != nil {
		return nil, fmt.Errorf("ratchet: header key: %w", err)
	}
	n, pn := uint32(h.N), uint32(h.PN)
	if n == maxMessageNumber && !faults.Has(faults.TakeLastNumber) {
		// RAT-016: no sender sends it, and Nr after it would not fit.
		return nil, fmt.Errorf("ratchet: message %d: %w", n, errcode.StateChainExhausted)
	}
	ad := s.associated(m.Header)
	id := skipID{key32(h.RatchetKey[1:]), n}
	if mk, ok := s.skipped.get(id); ok {
		pt, err := open(&mk, m.Ciphertext, ad)
		if err != nil {
			return nil, fmt.Errorf("ratchet: skipped key: %w", err)
		}
		if !faults.Has(faults.NoReplayCheck) {
			s.skipped.remove(id)
		}
		return pt, nil
	}

	t := s.chains // the transaction: committed only on success
	var (
		pending []skippedEntry
		err     error
	)
	if !bytes.Equal(t.dhrEnc, h.RatchetKey) {
		if pending, err = t.skip(pn, pending); err != nil {
			return nil, err
		}
		if err := t.dhRatchet(h.RatchetKey, rand); err != nil {
			return nil, err
		}
	} else if n < t.nr {
		return nil, fmt.Errorf("ratchet: message %d: %w", n, errcode.StateDuplicateMessage)
	} else if t.ckr == nil {
		// RAT-015: the header names DHr and there is no receiving chain.
		// Only an initiator that has not heard back is in that state, and
		// its DHr is the responder's signed prekey, which never sends.
		return nil, fmt.Errorf("ratchet: no receiving chain: %w", errcode.AuthDecryptFailed)
	}
	if pending, err = t.skip(n, pending); err != nil {
		return nil, err
	}
	next, mk := kdfCK(t.ckr)
	t.ckr = &next
	t.nr++
	pt, err := open(&mk, m.Ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("ratchet: %w", err)
	}
	if faults.Has(faults.NoReplayCheck) {
		pending = append(pending, skippedEntry{id, mk}) // keeps the used key
	}
	s.chains = t
	s.skipped.add(pending)
	return pt, nil
}

// skip is SkipMessageKeys: it derives the keys of messages nr .. until-1
// of the receiving chain into pending.
func (t *chains) skip(until uint32, pending []skippedEntry) ([]skippedEntry, error) {
	if t.ckr == nil {
		return pending, nil
	}
	if uint64(until) > uint64(t.nr)+MaxSkip {
		return nil, fmt.Errorf("ratchet: skipping to %d from %d: %w", until, t.nr, errcode.StateTooManySkipped)
	}
	ck := *t.ckr
	for t.nr < until {
		var mk key32
		ck, mk = kdfCK(&ck)
		pending = append(pending, skippedEntry{skipID{key32(t.dhrEnc[1:]), t.nr}, mk})
		t.nr++
	}
	t.ckr = &ck
	return pending, nil
}

// dhRatchet is DHRatchet of spec section 5.8.
func (t *chains) dhRatchet(dhEnc []byte, rand io.Reader) error {
	dh, err := keys.DecodePublicKey(dhEnc)
	if err != nil {
		return fmt.Errorf("ratchet: header key: %w", err)
	}
	t.pn, t.ns, t.nr = t.ns, 0, 0
	t.dhr, t.dhrEnc = dh, append([]byte(nil), dhEnc...)
	out, err := t.dhs.ECDH(dh)
	if err != nil {
		return fmt.Errorf("ratchet: %w", err)
	}
	var ckr, cks key32
	t.rk, ckr = kdfRK(t.rk, out)
	t.ckr = &ckr
	dhs, err := keys.GeneratePrivateKey(rand)
	if err != nil {
		return err
	}
	t.dhs, t.dhsEnc = dhs, dhs.Public().Encode()
	if out, err = dhs.ECDH(dh); err != nil {
		return fmt.Errorf("ratchet: %w", err)
	}
	t.rk, cks = kdfRK(t.rk, out)
	t.cks = &cks
	return nil
}
