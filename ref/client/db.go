package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/history"
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
)

var allBuckets = [][]byte{bucketConfig, bucketSPK, bucketKEM, bucketOPK, bucketSessions, bucketProcessed,
	bucketMessages, bucketSent, bucketIdentity}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("client: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
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
}

// Overall returns the status of an outgoing message as a whole: the
// highest of its recipient devices' (spec section 14.3).
func (m *Message) Overall() Status { return history.Overall(m.Statuses) }

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
	if m.Outgoing {
		if err := tx.Bucket(bucketSent).Put(m.ID, u64(m.Seq)); err != nil {
			return err
		}
	}
	return b.Put(u64(m.Seq), enc)
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
