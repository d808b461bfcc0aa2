package group

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/padding"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// MaxPlaintext is the largest content a group message carries (section
// 5.1, MAX_PLAINTEXT).
const MaxPlaintext = 65536

// SenderKey is one sender key of a device for a group (section 16.3): the
// sender's own (with its private signing key) or one received in a
// distribution. Its fields are exported for storage; use the methods to
// change it.
type SenderKey struct {
	GroupID    []byte
	Epoch      uint64
	KeyID      uint32
	Iteration  uint32 // of ChainKey: the next message's iteration
	ChainKey   []byte
	SigningKey []byte       // the public signing key's encoding
	Private    []byte       `cbor:",omitempty"` // the private signing key's encoding, for the sender's own key
	Skipped    []SkippedKey `cbor:",omitempty"` // in insertion order
}

// SkippedKey is a message key kept for an iteration not yet received.
type SkippedKey struct {
	Iteration uint32
	Key       []byte
}

// New makes a sender key, drawing 32 bytes (the chain key) then 32 bytes
// (the signing key) from rand.
func New(groupID []byte, epoch uint64, keyID uint32, rand io.Reader) (*SenderKey, error) {
	ck := make([]byte, 32)
	if _, err := io.ReadFull(rand, ck); err != nil {
		return nil, fmt.Errorf("group: chain key: %w", err)
	}
	priv, err := keys.GeneratePrivateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("group: signing key: %w", err)
	}
	return &SenderKey{GroupID: bytes.Clone(groupID), Epoch: epoch, KeyID: keyID, ChainKey: ck,
		SigningKey: priv.Public().Encode(), Private: priv.Encode()}, nil
}

// Distribution returns the sender-key-distribution of the key at its
// current iteration.
func (k *SenderKey) Distribution() wire.SenderKeyDistribution {
	return wire.SenderKeyDistribution{GroupID: bytes.Clone(k.GroupID), Epoch: k.Epoch, KeyID: uint64(k.KeyID),
		Iteration: uint64(k.Iteration), ChainKey: bytes.Clone(k.ChainKey), SigningKey: bytes.Clone(k.SigningKey)}
}

// FromDistribution returns the receiving side of a distributed key. The
// signing key must be a valid X25519 public key encoding.
func FromDistribution(d *wire.SenderKeyDistribution) (*SenderKey, error) {
	if _, err := keys.DecodePublicKey(d.SigningKey); err != nil {
		return nil, fmt.Errorf("group: signing key: %w", err)
	}
	return &SenderKey{GroupID: bytes.Clone(d.GroupID), Epoch: d.Epoch, KeyID: uint32(d.KeyID),
		Iteration: uint32(d.Iteration), ChainKey: bytes.Clone(d.ChainKey), SigningKey: bytes.Clone(d.SigningKey)}, nil
}

// Clone returns a deep copy, so that a decryption can work on a copy and
// leave the key unchanged when it fails (GRP-008).
func (k *SenderKey) Clone() *SenderKey {
	c := *k
	c.GroupID, c.ChainKey = bytes.Clone(k.GroupID), bytes.Clone(k.ChainKey)
	c.SigningKey, c.Private = bytes.Clone(k.SigningKey), bytes.Clone(k.Private)
	c.Skipped = make([]SkippedKey, len(k.Skipped))
	for i, s := range k.Skipped {
		c.Skipped[i] = SkippedKey{s.Iteration, bytes.Clone(s.Key)}
	}
	return &c
}

// step returns the next chain key and the message key of ck (KDF_CK).
func step(ck []byte) (next, mk []byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{0x02})
	next = m.Sum(nil)
	m.Reset()
	m.Write([]byte{0x01})
	return next, m.Sum(nil)
}

var zeroSalt [32]byte

func messageKeys(mk []byte) (key, nonce []byte) {
	label := LabelSenderKey
	if faults.Has(faults.WrongKDFLabel) {
		label = "Missive v1 sender key message kyes"
	}
	out, err := hkdf.Key(sha256.New, mk, zeroSalt[:], label, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	if err != nil {
		panic(err) // unreachable
	}
	return out[:chacha20poly1305.KeySize], out[chacha20poly1305.KeySize:]
}

func associated(groupID []byte, epoch uint64, keyID, iteration uint32) []byte {
	ad := append(bytes.Clone(groupID), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(ad[len(groupID):], uint32(epoch))
	binary.BigEndian.PutUint32(ad[len(groupID)+4:], keyID)
	binary.BigEndian.PutUint32(ad[len(groupID)+8:], iteration)
	return ad
}

// Encrypt returns the group-message encoding that carries content under
// the device's own key, for the group version serial, and advances the
// key. It draws 64 bytes from rand (the signature). The caller must store
// the key durably before it sends the message.
func (k *SenderKey) Encrypt(serial uint64, content []byte, rand io.Reader) ([]byte, error) {
	switch {
	case len(content) > MaxPlaintext:
		return nil, fmt.Errorf("group: content of %d bytes: %w", len(content), errcode.PolicyTooLarge)
	case k.Private == nil:
		return nil, fmt.Errorf("group: not the device's own sender key")
	case k.Iteration == 1<<32-1:
		return nil, fmt.Errorf("group: %w", errcode.StateChainExhausted)
	}
	priv, err := keys.DecodePrivateKey(k.Private)
	if err != nil {
		return nil, err
	}
	next, mk := step(k.ChainKey)
	key, nonce := messageKeys(mk)
	aead, _ := chacha20poly1305.New(key)
	padded := padding.Pad(make([]byte, 0, padding.Len(len(content)+1)+aead.Overhead()), content)
	ct := aead.Seal(padded[:0], nonce, padded, associated(k.GroupID, k.Epoch, k.KeyID, k.Iteration))
	body, err := wire.Marshal(&wire.GroupMessageBody{Version: wire.ProtocolVersion, GroupID: k.GroupID, Serial: serial,
		KeyID: uint64(k.KeyID), Iteration: uint64(k.Iteration), Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	sig, err := priv.Sign(append([]byte(LabelGroupMessage), body...), rand)
	if err != nil {
		return nil, err
	}
	msg, err := wire.Marshal(&wire.GroupMessage{Body: body, Signature: sig})
	if err != nil {
		return nil, err
	}
	k.ChainKey, k.Iteration = next, k.Iteration+1
	return msg, nil
}

// Message is a decoded group message.
type Message struct {
	wire.GroupMessageBody
	Body      []byte // the body's encoding: what was signed
	Signature []byte
}

// ParseMessage decodes a group message and its body (step 1 of GRP-007).
func ParseMessage(data []byte) (*Message, error) {
	var m wire.GroupMessage
	if err := wire.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("group: message: %w", err)
	}
	var b wire.GroupMessageBody
	if err := wire.Unmarshal(m.Body, &b); err != nil {
		return nil, fmt.Errorf("group: message body: %w", err)
	}
	return &Message{GroupMessageBody: b, Body: m.Body, Signature: m.Signature}, nil
}

// Decrypt runs steps 6 to 8 of GRP-007 on a message whose key k the
// caller has found (steps 2 to 5): it returns the content and the key as
// it is after the message. k itself is never changed (GRP-008): the
// caller stores the returned key once it has stored what the message
// changed.
func Decrypt(k *SenderKey, m *Message) ([]byte, *SenderKey, error) {
	pub, err := keys.DecodePublicKey(k.SigningKey)
	if err != nil {
		return nil, nil, err
	}
	if err := pub.Verify(append([]byte(LabelGroupMessage), m.Body...), m.Signature); err != nil {
		return nil, nil, fmt.Errorf("group: message signature: %w", err)
	}
	it := uint32(m.Iteration)
	n := k.Clone()
	var mk []byte
	switch {
	case it < k.Iteration:
		i := -1
		for j, s := range n.Skipped {
			if s.Iteration == it {
				i = j
			}
		}
		if i < 0 {
			return nil, nil, fmt.Errorf("group: iteration %d below %d: %w", it, k.Iteration, errcode.StateDuplicateMessage)
		}
		mk = n.Skipped[i].Key
		n.Skipped = append(n.Skipped[:i], n.Skipped[i+1:]...)
	case uint64(it) > uint64(k.Iteration)+MaxSkip || it == 1<<32-1:
		return nil, nil, fmt.Errorf("group: iteration %d from %d: %w", it, k.Iteration, errcode.StateTooManySkipped)
	default:
		ck := n.ChainKey
		for n.Iteration < it {
			var skipped []byte
			ck, skipped = step(ck)
			n.Skipped = append(n.Skipped, SkippedKey{n.Iteration, skipped})
			n.Iteration++
		}
		n.ChainKey, mk = step(ck)
		n.Iteration++
		if len(n.Skipped) > MaxSkipped {
			n.Skipped = n.Skipped[len(n.Skipped)-MaxSkipped:]
		}
	}
	key, nonce := messageKeys(mk)
	aead, _ := chacha20poly1305.New(key)
	padded, err := aead.Open(nil, nonce, m.Ciphertext, associated(k.GroupID, k.Epoch, k.KeyID, it))
	if err != nil {
		return nil, nil, fmt.Errorf("group: %w", errcode.AuthDecryptFailed)
	}
	pt, err := padding.Unpad(padded)
	if err != nil {
		return nil, nil, fmt.Errorf("group: %w", err)
	}
	return pt, n, nil
}
