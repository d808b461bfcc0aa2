package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
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

// Status of a message a device sent, per recipient device (spec section
// 14.3), in increasing order.
type Status uint8

// Statuses.
const (
	StatusPending Status = iota
	StatusSent
	StatusDelivered
	StatusRead
	StatusPlayed
)

var statusNames = [...]string{"pending", "sent", "delivered", "read", "played"}

// String returns the status name.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

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
func (m *Message) Overall() Status {
	s := StatusPending
	for _, v := range m.Statuses {
		s = max(s, v)
	}
	return s
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

// statusTransitions is the transition table of the message status (the
// diagram of spec section 14.3, which a test checks against it). A status
// only moves along it: it never goes down (CLI-004).
var statusTransitions = map[[2]Status]bool{
	{StatusPending, StatusSent}:      true,
	{StatusSent, StatusDelivered}:    true,
	{StatusSent, StatusRead}:         true,
	{StatusDelivered, StatusRead}:    true,
	{StatusRead, StatusPlayed}:       true,
	{StatusDelivered, StatusPlayed}:  true,
	{StatusSent, StatusPlayed}:       true,
	{StatusPending, StatusDelivered}: true,
	{StatusPending, StatusRead}:      true,
	{StatusPending, StatusPlayed}:    true,
}

// raise returns the status after an event that calls for to: to when the
// table allows the move, cur otherwise.
func raise(cur, to Status) Status {
	if statusTransitions[[2]Status{cur, to}] {
		return to
	}
	return cur
}
