package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/wire"
)

// Buckets of the device database (one bbolt file in the device directory).
var (
	bucketConfig    = []byte("config")     // name -> value
	bucketSPK       = []byte("spk")        // u32be id -> X25519 private key
	bucketKEM       = []byte("kem")        // u32be id -> 1 byte last-resort flag || ML-KEM seed
	bucketOPK       = []byte("opk")        // u32be id -> X25519 private key
	bucketSessions  = []byte("sessions")   // address -> stored session
	bucketProcessed = []byte("processed")  // address || message id -> u64be expiry (ms)
	bucketMessages  = []byte("messages")   // u64be sequence -> message record (CBOR)
	bucketSent      = []byte("sent")       // message id -> u64be sequence of a sent message
	bucketIdentity  = []byte("identities") // account -> identity key of its primary device, as first seen
	bucketReceived  = []byte("received")   // account || 0 || message id -> u64be sequence of a received message
	// u64be signed prekey id || u64be KEM prekey id || Enc(EK_A) -> marker: a
	// prekey message with no one-time key made a session (section 4.6)
	bucketLastResort = []byte("last-resort")
	// conversation key || 0 || message id || u64be sequence -> nothing: the
	// messages of a conversation by id, whoever sent them (section 18.2)
	bucketConvMessages = []byte("conv-messages")
	// kind ('s' signed, 'k' last-resort) || u32be id -> u64be time (ms)
	// from which a replaced prekey is no longer used (section 4.6, PQX-013)
	bucketReplaced = []byte("replaced")
)

var allBuckets = [][]byte{bucketConfig, bucketSPK, bucketKEM, bucketOPK, bucketSessions, bucketProcessed,
	bucketMessages, bucketSent, bucketIdentity, bucketReceived, bucketLastResort, bucketConvMessages, bucketReplaced}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("client: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		indexed := tx.Bucket(bucketReceived) != nil
		convIndexed := tx.Bucket(bucketConvMessages) != nil
		keptIndexed := tx.Bucket(bucketLifeTarget) != nil
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if !keptIndexed {
			// A database made before the index of kept changes.
			err := tx.Bucket(bucketLifePending).ForEach(func(k, v []byte) error {
				return indexKept(tx, k, v, true)
			})
			if err != nil {
				return err
			}
		}
		if indexed && convIndexed {
			return nil
		}
		// A database made before the index of received messages, or
		// before that of the messages of each conversation.
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if cborDec.Unmarshal(v, &m) != nil {
				return nil
			}
			if !convIndexed {
				if err := tx.Bucket(bucketConvMessages).Put(convMessageKey(&m), nil); err != nil {
					return err
				}
			}
			if indexed || m.Outgoing {
				return nil
			}
			return tx.Bucket(bucketReceived).Put(convKey(m.Peer, m.ID), k)
		})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func addrKey(account string, device uint32) []byte {
	return append(u32(device), account...)
}

// Status is the status of a message a device sent, per recipient device
// (spec section 14.3).
type Status = history.Status

// Statuses.
const (
	StatusPending   = history.Pending
	StatusSent      = history.Sent
	StatusDelivered = history.Delivered
	StatusRead      = history.Read
	StatusPlayed    = history.Played
)

// Message is a message in the device's history.
type Message struct {
	Seq      uint64            `cbor:"1,keyasint"`
	ID       []byte            `cbor:"2,keyasint"`
	Outgoing bool              `cbor:"3,keyasint"`
	Peer     string            `cbor:"4,keyasint"` // the other account
	Device   uint32            `cbor:"5,keyasint"` // the sending device, for incoming messages
	Text     string            `cbor:"6,keyasint"`
	SentAt   uint64            `cbor:"7,keyasint"` // ms, sender's clock
	Received uint64            `cbor:"8,keyasint"` // ms, for incoming messages
	TTL      uint64            `cbor:"9,keyasint"` // seconds, for outgoing messages
	Statuses map[uint32]Status `cbor:"10,keyasint"`
	Read     bool              `cbor:"11,keyasint"` // incoming: a read receipt was sent
	Accepted uint64            `cbor:"12,keyasint"` // ms, server acceptance of an outgoing message

	// Groups (spec chapter 16).
	Group        []byte                       `cbor:"13,keyasint,omitempty"` // the group, for a group message
	GroupVersion uint64                       `cbor:"14,keyasint,omitempty"` // the group version it was sent at
	Members      map[string]map[uint32]Status `cbor:"15,keyasint,omitempty"` // outgoing group message: per member account and device

	// Media and the lifecycle (spec chapters 17 and 18).
	Type    uint64           `cbor:"16,keyasint,omitempty"` // content type: 0 or wire.ContentText, wire.ContentMedia
	Media   *wire.Media      `cbor:"17,keyasint,omitempty"` // the media, its key erased once a view-once item is opened
	Opened  bool             `cbor:"18,keyasint,omitempty"` // view-once media that was opened (on some device)
	Edit    history.Register `cbor:"19,keyasint,omitempty"` // the applied edit with the highest (sent-at, id)
	Deleted bool             `cbor:"20,keyasint,omitempty"` // deleted for everyone: nothing of it is kept
	Expire  uint64           `cbor:"21,keyasint,omitempty"` // expire-after, seconds

	// FromHistory: an incoming message known from a history (section 15.5)
	// only, whose text is all its entry carried, until its own delivery.
	FromHistory bool `cbor:"22,keyasint,omitempty"`
}

// Overall returns the status of an outgoing message as a whole: the
// highest of its recipient devices' (spec section 14.3), or, for a group
// message, the lowest over the members of their highest (section 16.6).
func (m *Message) Overall() Status {
	if m.Group != nil {
		return history.GroupOverall(m.Members)
	}
	return history.Overall(m.Statuses)
}

// Shown returns the text a device shows for a message: its latest edit,
// or its text, or nothing once deleted.
func (m *Message) Shown() string {
	switch {
	case m.Deleted:
		return ""
	case m.Edit.ID != nil:
		return m.Edit.Text
	}
	return m.Text
}

// Author returns the account that wrote the message.
func (m *Message) Author(own string) string {
	if m.Outgoing {
		return own
	}
	return m.Peer
}

// target returns what the lifecycle rules need of the message.
func (m *Message) target(own string) history.Target {
	t := history.Target{Author: m.Author(own), SentAt: m.SentAt, Type: m.Type}
	if t.Type == 0 {
		t.Type = wire.ContentText
	}
	t.ViewOnce = m.Media != nil && m.Media.ViewOnce != nil
	return t
}

var errNoConfig = errors.New("client: not initialized")

func getConfig(tx *bolt.Tx, name string) []byte {
	return tx.Bucket(bucketConfig).Get([]byte(name))
}

func putConfig(tx *bolt.Tx, name string, v []byte) error {
	return tx.Bucket(bucketConfig).Put([]byte(name), v)
}

func putMessage(tx *bolt.Tx, m *Message) error {
	b := tx.Bucket(bucketMessages)
	if m.Seq == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		m.Seq = seq
	}
	enc, err := cborEnc.Marshal(m)
	if err != nil {
		return err
	}
	index, key := tx.Bucket(bucketSent), m.ID
	if !m.Outgoing {
		index, key = tx.Bucket(bucketReceived), convKey(m.Peer, m.ID)
	}
	if err := index.Put(key, u64(m.Seq)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketConvMessages).Put(convMessageKey(m), nil); err != nil {
		return err
	}
	return b.Put(u64(m.Seq), enc)
}

// convMessagesPrefix is the prefix of the keys of bucketConvMessages of the
// messages of a conversation with an id.
func convMessagesPrefix(conv Conv, id []byte) []byte {
	return append(append(conv.key(), 0), id...)
}

// convMessageKey is the key of a message in bucketConvMessages.
func convMessageKey(m *Message) []byte {
	return binary.BigEndian.AppendUint64(convMessagesPrefix(m.conv(), m.ID), m.Seq)
}

// convMessage returns the first message stored (by sequence) of a
// conversation with an id, preferring one sent by author, or nil.
func convMessage(tx *bolt.Tx, own string, conv Conv, id []byte, author string) (*Message, error) {
	prefix := convMessagesPrefix(conv, id)
	var first *Message
	c := tx.Bucket(bucketConvMessages).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		m, err := getMessage(tx, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		if m == nil || !bytes.Equal(m.ID, id) || !bytes.Equal(m.conv().key(), conv.key()) {
			continue
		}
		if m.Author(own) == author {
			return m, nil
		}
		if first == nil {
			first = m
		}
	}
	return first, nil
}

// dropMessage deletes a stored message and its index entry.
func dropMessage(tx *bolt.Tx, m *Message) error {
	index, key := tx.Bucket(bucketSent), m.ID
	if !m.Outgoing {
		index, key = tx.Bucket(bucketReceived), convKey(m.Peer, m.ID)
	}
	if v := index.Get(key); v != nil && bytes.Equal(v, u64(m.Seq)) {
		if err := index.Delete(key); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketConvMessages).Delete(convMessageKey(m)); err != nil {
		return err
	}
	return tx.Bucket(bucketMessages).Delete(u64(m.Seq))
}

func getMessage(tx *bolt.Tx, seq uint64) (*Message, error) {
	v := tx.Bucket(bucketMessages).Get(u64(seq))
	if v == nil {
		return nil, nil
	}
	var m Message
	if err := cborDec.Unmarshal(v, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func sentMessage(tx *bolt.Tx, id []byte) (*Message, error) {
	v := tx.Bucket(bucketSent).Get(id)
	if len(v) != 8 {
		return nil, nil
	}
	return getMessage(tx, binary.BigEndian.Uint64(v))
}

// raise is history.Raise: a status never goes down (CLI-004).
func raise(cur, to Status) Status { return history.Raise(cur, to) }
