package wire

import "github.com/missive-protocol/missive/ref/errcode"

// Sizes of the fixed-size fields of chapters 4 and 5.
const (
	X25519PublicSize  = 33   // x25519-public: type byte and 32-byte body
	MLKEMPublicSize   = 1569 // mlkem-public: type byte and 1568-byte body
	SignatureSize     = 64   // signature
	KEMCiphertextSize = 1568 // ML-KEM-1024 ciphertext
	MinCiphertext     = 16   // the AEAD tag alone
	MaxCiphertext     = 67600
)

// Bundle is a prekey-bundle (spec/04-pqxdh.md section 4.2).
type Bundle struct {
	Version       uint64         `cbor:"1,keyasint"`
	IdentityKey   []byte         `cbor:"2,keyasint"`
	SignedPreKey  SignedPreKey   `cbor:"3,keyasint"`
	KEMPreKey     KEMPreKey      `cbor:"4,keyasint"`
	OneTimePreKey *OneTimePreKey `cbor:"5,keyasint,omitempty"`
}

// SignedPreKey is a signed-prekey.
type SignedPreKey struct {
	ID        uint64 `cbor:"1,keyasint"`
	Key       []byte `cbor:"2,keyasint"`
	Signature []byte `cbor:"3,keyasint"`
}

// KEMPreKey is a kem-prekey.
type KEMPreKey struct {
	ID         uint64 `cbor:"1,keyasint"`
	Key        []byte `cbor:"2,keyasint"`
	Signature  []byte `cbor:"3,keyasint"`
	LastResort bool   `cbor:"4,keyasint"`
}

// OneTimePreKey is a one-time-prekey.
type OneTimePreKey struct {
	ID  uint64 `cbor:"1,keyasint"`
	Key []byte `cbor:"2,keyasint"`
}

// PreKeyMessage is a prekey-message (spec/04-pqxdh.md section 4.5).
type PreKeyMessage struct {
	Version         uint64  `cbor:"1,keyasint"`
	IdentityKey     []byte  `cbor:"2,keyasint"`
	EphemeralKey    []byte  `cbor:"3,keyasint"`
	SignedPreKeyID  uint64  `cbor:"4,keyasint"`
	KEMPreKeyID     uint64  `cbor:"5,keyasint"`
	KEMCiphertext   []byte  `cbor:"6,keyasint"`
	OneTimePreKeyID *uint64 `cbor:"7,keyasint,omitempty"`
	Message         []byte  `cbor:"8,keyasint"` // a RatchetMessage
}

// RatchetMessage is a ratchet-message (spec/05-ratchet.md section 5.6).
// Header holds the encoding of a RatchetHeader.
type RatchetMessage struct {
	Version    uint64 `cbor:"1,keyasint"`
	Header     []byte `cbor:"2,keyasint"`
	Ciphertext []byte `cbor:"3,keyasint"`
}

// RatchetHeader is a ratchet-header.
type RatchetHeader struct {
	RatchetKey []byte `cbor:"1,keyasint"`
	PN         uint64 `cbor:"2,keyasint"`
	N          uint64 `cbor:"3,keyasint"`
}

func (*Bundle) isVersioned()         {}
func (*PreKeyMessage) isVersioned()  {}
func (*RatchetMessage) isVersioned() {}

func (b *Bundle) check() error {
	err := firstErr(
		checkSize(b.IdentityKey, X25519PublicSize),
		b.SignedPreKey.check(),
		b.KEMPreKey.check(),
	)
	if err == nil && b.OneTimePreKey != nil {
		err = b.OneTimePreKey.check()
	}
	return err
}

func (k *SignedPreKey) check() error {
	return firstErr(checkUint32(k.ID), checkSize(k.Key, X25519PublicSize), checkSize(k.Signature, SignatureSize))
}

func (k *KEMPreKey) check() error {
	return firstErr(checkUint32(k.ID), checkSize(k.Key, MLKEMPublicSize), checkSize(k.Signature, SignatureSize))
}

func (k *OneTimePreKey) check() error {
	return firstErr(checkUint32(k.ID), checkSize(k.Key, X25519PublicSize))
}

func (m *PreKeyMessage) check() error {
	err := firstErr(
		checkSize(m.IdentityKey, X25519PublicSize),
		checkSize(m.EphemeralKey, X25519PublicSize),
		checkUint32(m.SignedPreKeyID),
		checkUint32(m.KEMPreKeyID),
		checkSize(m.KEMCiphertext, KEMCiphertextSize),
	)
	if err == nil && m.OneTimePreKeyID != nil {
		err = checkUint32(*m.OneTimePreKeyID)
	}
	return err
}

func (m *RatchetMessage) check() error {
	return checkRange(m.Ciphertext, MinCiphertext, MaxCiphertext)
}

func (h *RatchetHeader) check() error {
	return firstErr(checkSize(h.RatchetKey, X25519PublicSize), checkUint32(h.PN), checkUint32(h.N))
}

// SessionState is the reference implementation's stored session
// (spec/06-session-state.md, informative). It never crosses the wire; it
// lives here so that storage gets the same strict, canonical codec.
type SessionState struct {
	Version uint64       `cbor:"1,keyasint"`
	DHs     []byte       `cbor:"2,keyasint"`
	DHr     *[]byte      `cbor:"3,keyasint,omitempty"`
	RK      []byte       `cbor:"4,keyasint"`
	CKs     *[]byte      `cbor:"5,keyasint,omitempty"`
	CKr     *[]byte      `cbor:"6,keyasint,omitempty"`
	Ns      uint64       `cbor:"7,keyasint"`
	Nr      uint64       `cbor:"8,keyasint"`
	PN      uint64       `cbor:"9,keyasint"`
	Skipped []SkippedKey `cbor:"10,keyasint"`
	AD      []byte       `cbor:"11,keyasint"`
}

// SkippedKey is one entry of MKSKIPPED.
type SkippedKey struct {
	_          struct{} `cbor:",toarray"`
	RatchetKey []byte
	N          uint64
	MK         []byte
}

// MaxStoredSkipped is MAX_STORED_SKIPPED (spec/05-ratchet.md section 5.1).
const MaxStoredSkipped = 2000

func (*SessionState) isVersioned() {}

func (s *SessionState) check() error {
	err := firstErr(
		checkSize(s.DHs, X25519PublicSize),
		checkOptionalSize(s.DHr, X25519PublicSize),
		checkSize(s.RK, 32),
		checkOptionalSize(s.CKs, 32),
		checkOptionalSize(s.CKr, 32),
		checkUint32(s.Ns), checkUint32(s.Nr), checkUint32(s.PN),
	)
	if err == nil && len(s.Skipped) > MaxStoredSkipped {
		err = errcode.DecodeTooMany
	}
	// A receiving chain belongs to a remote ratchet key: CKr without DHr
	// is no state a session reaches.
	if err == nil && s.CKr != nil && s.DHr == nil {
		err = errcode.DecodeMissingField
	}
	// MKSKIPPED maps (ratchet key, N) to one key: an entry repeated would
	// be two keys for one message.
	type id struct {
		dh string
		n  uint64
	}
	seen := make(map[id]bool, len(s.Skipped))
	for i := 0; err == nil && i < len(s.Skipped); i++ {
		k := &s.Skipped[i]
		err = firstErr(checkSize(k.RatchetKey, X25519PublicSize), checkUint32(k.N), checkSize(k.MK, 32))
		if err == nil && seen[id{string(k.RatchetKey), k.N}] {
			err = errcode.DecodeDuplicateKey
		}
		seen[id{string(k.RatchetKey), k.N}] = true
	}
	return err
}

// checkOptionalSize checks an optional fixed-size field; nil is absent.
func checkOptionalSize(b *[]byte, n int) error {
	if b == nil {
		return nil
	}
	return checkSize(*b, n)
}

// Ptr returns a pointer to v, for the optional fields of this package.
func Ptr[T any](v T) *T { return &v }

// StoredSession is the reference implementation's stored session with the
// PQXDH values an initiator repeats until the responder answers
// (spec/06-session-state.md, informative).
type StoredSession struct {
	Version uint64         `cbor:"1,keyasint"`
	Ratchet []byte         `cbor:"2,keyasint"` // a SessionState
	Pending *PendingPreKey `cbor:"3,keyasint,omitempty"`
	Base    *[]byte        `cbor:"4,keyasint,omitempty"` // responder: Enc(IK_A) || Enc(EK_A)
}

// PendingPreKey holds the fields of a prekey message besides the ratchet
// message.
type PendingPreKey struct {
	IdentityKey     []byte  `cbor:"1,keyasint"`
	EphemeralKey    []byte  `cbor:"2,keyasint"`
	SignedPreKeyID  uint64  `cbor:"3,keyasint"`
	KEMPreKeyID     uint64  `cbor:"4,keyasint"`
	KEMCiphertext   []byte  `cbor:"5,keyasint"`
	OneTimePreKeyID *uint64 `cbor:"6,keyasint,omitempty"`
}

func (*StoredSession) isVersioned() {}

func (s *StoredSession) check() error {
	if err := checkOptionalSize(s.Base, 2*X25519PublicSize); err != nil {
		return err
	}
	if s.Pending == nil {
		return nil
	}
	p := s.Pending
	err := firstErr(
		checkSize(p.IdentityKey, X25519PublicSize),
		checkSize(p.EphemeralKey, X25519PublicSize),
		checkUint32(p.SignedPreKeyID),
		checkUint32(p.KEMPreKeyID),
		checkSize(p.KEMCiphertext, KEMCiphertextSize),
	)
	if err == nil && p.OneTimePreKeyID != nil {
		err = checkUint32(*p.OneTimePreKeyID)
	}
	return err
}
