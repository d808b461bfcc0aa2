// Package client is the reference Missive client library (spec chapters
// 4 to 6 and 11 to 14): a device that keeps its keys, sessions and messages
// in one local directory, registers with a server, uploads prekeys, sends
// messages to every device of an account, receives and decrypts them once
// each, and keeps the status of what it sent from the receipts it gets.
package client

import (
	"bytes"

	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// Limits of this implementation.
const (
	// PrekeyBatch is how many one-time prekeys of each kind a device
	// uploads at registration and when the server says it runs low.
	PrekeyBatch = 100
	// DefaultTTL is the time-to-live of the messages a device sends.
	DefaultTTL = wire.MaxTTL
	dbFile     = "device.db"
)

var (
	cborEnc, _ = cbor.CoreDetEncOptions().EncMode()
	cborDec, _ = cbor.DecOptions{}.DecMode()
)

// Config configures a Device.
type Config struct {
	// Rand is the random source; nil means the system generator.
	Rand io.Reader
	// Clock gives the time; nil means time.Now.
	Clock func() time.Time
	// Timeouts of the transport; zero values take the specification's.
	Timeouts transport.Timeouts
	// Keepalive is how long the device sends nothing before it sends ping
	// (TRN-014); zero takes KEEPALIVE_INTERVAL. Tests shorten it.
	Keepalive time.Duration
	// OnDelivery, when set, sees every delivery as it comes, before the
	// device reads it; when it returns false, the device drops it, neither
	// storing nor acknowledging it, as a device that fails before it
	// stores it would. It is for the conformance runner, which counts what
	// a server delivers and checks that it delivers again and loses
	// nothing; nil for every device that means to work.
	OnDelivery func(*wire.Delivery) bool
}

// Device is one device of an account, with its local state.
type Device struct {
	dir        string
	db         *bolt.DB
	rand       io.Reader
	now        func() time.Time
	tout       transport.Timeouts
	keepalive  time.Duration             // Config.Keepalive
	onDelivery func(*wire.Delivery) bool // Config.OnDelivery

	Account string
	ID      uint32
	Server  string // the server's address

	identity  *keys.PrivateKey
	transport noise.DHKey

	mu       sync.Mutex  // serializes session use
	outMu    sync.Mutex  // serializes sending what the outbox holds (sendOwed)
	owedMore atomic.Bool // added to the outbox by a call that did not wait for outMu (sendOwedIfFree)
	// replenishing is set while a batch of one-time prekeys is uploaded
	// (Conn.replenish): one at a time.
	replenishing atomic.Bool
	// rotating is set while a new signed and last-resort prekey are
	// uploaded (Conn.rotate).
	rotating atomic.Bool
	// updateLiars holds when group-update content of each sending account
	// last made the device fetch group states in vain (GRP-017).
	updateMu    sync.Mutex
	updateLiars map[string]time.Time
}

// ErrExists is returned by Init for a directory that holds a device.
var ErrExists = errors.New("client: the directory already holds a device")

func (c Config) orDefault() Config {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Keepalive == 0 {
		c.Keepalive = transport.KeepaliveInterval
	}
	return c
}

// Init creates a new primary device for account in dir, to register with
// the server at addr: it generates the identity key and the transport key.
// Registration happens at the first Connect.
func Init(dir, account, addr string, cfg Config) (*Device, error) {
	cfg = cfg.orDefault()
	if !wire.ValidAccount(account) {
		return nil, fmt.Errorf("client: %q is not an account name (1 to 32 of a-z 0-9 . _ -, starting with a letter or digit)", account)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile)); err == nil {
		return nil, ErrExists
	}
	ik, err := keys.GeneratePrivateKey(cfg.Rand)
	if err != nil {
		return nil, err
	}
	tk, err := transport.Suite.GenerateKeypair(cfg.Rand)
	if err != nil {
		return nil, err
	}
	db, err := openDB(filepath.Join(dir, dbFile))
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for k, v := range map[string][]byte{
			"account":   []byte(account),
			"device":    u32(1),
			"server":    []byte(addr),
			"identity":  ik.Encode(),
			"transport": tk.Private,
		} {
			if err := putConfig(tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	db.Close()
	return Open(dir, cfg)
}

// Open opens the device in dir.
func Open(dir string, cfg Config) (*Device, error) {
	cfg = cfg.orDefault()
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: no device in %s (run init first)", errNoConfig, dir)
	}
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	d := &Device{dir: dir, db: db, rand: cfg.Rand, now: cfg.Clock, tout: cfg.Timeouts, keepalive: cfg.Keepalive, onDelivery: cfg.OnDelivery}
	err = db.View(func(tx *bolt.Tx) error {
		d.Account = string(getConfig(tx, "account"))
		d.Server = string(getConfig(tx, "server"))
		if v := getConfig(tx, "device"); len(v) == 4 {
			d.ID = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
		}
		ik, err := keys.DecodePrivateKey(getConfig(tx, "identity"))
		if err != nil {
			return fmt.Errorf("client: identity key: %w", err)
		}
		d.identity = ik
		priv := bytes.Clone(getConfig(tx, "transport"))
		tk, err := keys.NewPrivateKey(priv)
		if err != nil {
			return fmt.Errorf("client: transport key: %w", err)
		}
		d.transport = noise.DHKey{Private: priv, Public: tk.Public().Bytes()}
		return nil
	})
	if err == nil && faults.Has(faults.OwedInMemory) {
		// The mutant: what the outbox held is gone with the process.
		err = db.Update(emptyOutbox)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the device's database.
func (d *Device) Close() error { return d.db.Close() }

// IdentityKey returns the device's identity public key.
func (d *Device) IdentityKey() keys.PublicKey { return d.identity.Public() }

// Address returns the device's address.
func (d *Device) Address() wire.Address {
	return wire.Address{Account: d.Account, Device: uint64(d.ID)}
}

// serverKey returns the pinned server key, or nil before the first
// connection.
func (d *Device) serverKey() []byte {
	var k []byte
	d.db.View(func(tx *bolt.Tx) error {
		k = bytes.Clone(getConfig(tx, "server-key"))
		return nil
	})
	return k
}

// registered reports whether the server has accepted the device.
func (d *Device) registered() bool {
	var ok bool
	d.db.View(func(tx *bolt.Tx) error {
		ok = getConfig(tx, "registered") != nil
		return nil
	})
	return ok
}

// newPrekeys generates prekeys to upload: a signed prekey and a
// last-resort KEM prekey when first is set, and n one-time keys of each
// kind. The private keys are stored before the upload is sent, so that a
// message using them can always be read.
func (d *Device) newPrekeys(first bool, n int) (*wire.PrekeyUpload, error) {
	up := &wire.PrekeyUpload{}
	err := d.db.Update(func(tx *bolt.Tx) error {
		next := func(name string) uint32 {
			v := getConfig(tx, name)
			id := uint32(1)
			if len(v) == 4 {
				id = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
			}
			putConfig(tx, name, u32(id+1))
			return id
		}
		if !first && faults.Has(faults.RestartPrekeyIDs) {
			putConfig(tx, "next-opk", u32(1))
		}
		if first {
			spk, err := keys.GeneratePrivateKey(d.rand)
			if err != nil {
				return err
			}
			sig, err := pqxdh.SignSignedPreKey(d.identity, spk.Public(), d.rand)
			if err != nil {
				return err
			}
			id := next("next-spk")
			if err := tx.Bucket(bucketSPK).Put(u32(id), spk.Bytes()); err != nil {
				return err
			}
			up.SignedPreKey = &wire.SignedPreKey{ID: uint64(id), Key: spk.Public().Encode(), Signature: sig}
			kem, sig2, err := d.kemPrekey()
			if err != nil {
				return err
			}
			id = next("next-kem")
			if err := tx.Bucket(bucketKEM).Put(u32(id), append([]byte{1}, kem.Seed()...)); err != nil {
				return err
			}
			up.LastResort = &wire.KEMPreKey{ID: uint64(id), Key: kem.Public().Encode(), Signature: sig2, LastResort: true}
		}
		if n > 0 {
			ec, kemKeys := make([]wire.OneTimePreKey, 0, n), make([]wire.KEMPreKey, 0, n)
			for range n {
				opk, err := keys.GeneratePrivateKey(d.rand)
				if err != nil {
					return err
				}
				id := next("next-opk")
				if err := tx.Bucket(bucketOPK).Put(u32(id), opk.Bytes()); err != nil {
					return err
				}
				ec = append(ec, wire.OneTimePreKey{ID: uint64(id), Key: opk.Public().Encode()})
				kem, sig, err := d.kemPrekey()
				if err != nil {
					return err
				}
				id = next("next-kem")
				if err := tx.Bucket(bucketKEM).Put(u32(id), append([]byte{0}, kem.Seed()...)); err != nil {
					return err
				}
				kemKeys = append(kemKeys, wire.KEMPreKey{ID: uint64(id), Key: kem.Public().Encode(), Signature: sig})
			}
			up.OneTime, up.OneTimeKEM = &ec, &kemKeys
		}
		return nil
	})
	return up, err
}

// dropPrekeys deletes the private keys of the one-time prekeys of an
// upload that the server refused: it never holds them, so no message can
// use them. Their ids stay used (PQX-002).
func (d *Device) dropPrekeys(up *wire.PrekeyUpload) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if up.OneTime != nil {
			for _, k := range *up.OneTime {
				if err := tx.Bucket(bucketOPK).Delete(u32(uint32(k.ID))); err != nil {
					return err
				}
			}
		}
		if up.OneTimeKEM != nil {
			for _, k := range *up.OneTimeKEM {
				if err := tx.Bucket(bucketKEM).Delete(u32(uint32(k.ID))); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (d *Device) kemPrekey() (*keys.KEMPrivateKey, []byte, error) {
	kem, err := keys.GenerateKEMPrivateKey(d.rand)
	if err != nil {
		return nil, nil, err
	}
	sig, err := pqxdh.SignKEMPreKey(d.identity, kem.Public(), d.rand)
	return kem, sig, err
}

// prekeyStore gives PQXDH the device's private prekeys within a
// transaction (pqxdh.PreKeys), at a time: a replaced signed or last-resort
// prekey whose grace has ended then is not held (PQX-013), nor a one-time
// prekey handed out PREKEY_GRACE ago (PQX-015).
type prekeyStore struct {
	tx  *bolt.Tx
	now time.Time
}

func (p prekeyStore) SignedPreKey(id uint32) (*keys.PrivateKey, bool) {
	v := p.tx.Bucket(bucketSPK).Get(u32(id))
	if v == nil || retired(p.tx, replacedSigned, id, p.now) {
		return nil, false
	}
	k, err := keys.NewPrivateKey(bytes.Clone(v))
	return k, err == nil
}

func (p prekeyStore) KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool) {
	v := p.tx.Bucket(bucketKEM).Get(u32(id))
	if len(v) != 1+keys.MLKEMSeedSize || (v[0] == 1 && retired(p.tx, replacedLastResort, id, p.now)) ||
		(v[0] == 0 && handedLongAgo(p.tx, handedKEM, id, p.now)) {
		return nil, false
	}
	k, err := keys.NewKEMPrivateKey(bytes.Clone(v[1:]))
	return k, err == nil
}

func (p prekeyStore) OneTimePreKey(id uint32) (*keys.PrivateKey, bool) {
	v := p.tx.Bucket(bucketOPK).Get(u32(id))
	if v == nil || handedLongAgo(p.tx, handedEC, id, p.now) {
		return nil, false
	}
	k, err := keys.NewPrivateKey(bytes.Clone(v))
	return k, err == nil
}

// lastResortKey is the key in bucketLastResort of a prekey message: its
// signed prekey id, KEM prekey id and Enc(EK_A).
func lastResortKey(m *wire.PreKeyMessage) []byte {
	k := binary.BigEndian.AppendUint64(nil, m.SignedPreKeyID)
	k = binary.BigEndian.AppendUint64(k, m.KEMPreKeyID)
	return append(k, m.EphemeralKey...)
}

// usesLastResort reports whether a prekey message used no one-time key: no
// one-time EC prekey, and the last-resort KEM prekey.
func (p prekeyStore) usesLastResort(m *wire.PreKeyMessage) bool {
	if m.OneTimePreKeyID != nil || m.KEMPreKeyID > math.MaxUint32 {
		return false
	}
	v := p.tx.Bucket(bucketKEM).Get(u32(uint32(m.KEMPreKeyID)))
	return len(v) > 0 && v[0] == 1 && !retired(p.tx, replacedLastResort, uint32(m.KEMPreKeyID), p.now)
}

// replayed reports whether a prekey message that used no one-time key
// repeats the ephemeral key of one that created a session before (the
// SHOULD of section 4.6): its session may be gone, replaced by a newer one
// with the same device, and the message would make it again. A device
// also drops a delivery it processed already (CLI-001), but forgets that
// after MAX_TTL (forgetProcessed); the set is kept as long as the keys.
func (p prekeyStore) replayed(m *wire.PreKeyMessage) bool {
	return p.usesLastResort(m) && p.tx.Bucket(bucketLastResort).Get(lastResortKey(m)) != nil
}

// remember records the ephemeral key of a prekey message that created a
// session with no one-time key (replayed).
func (p prekeyStore) remember(m *wire.PreKeyMessage) error {
	if !p.usesLastResort(m) {
		return nil
	}
	return p.tx.Bucket(bucketLastResort).Put(lastResortKey(m), []byte{1})
}

// consume deletes the one-time prekeys a prekey message used (PQX-010).
func (p prekeyStore) consume(kemID uint32, opk *uint32) error {
	if v := p.tx.Bucket(bucketKEM).Get(u32(kemID)); len(v) > 0 && v[0] == 0 && !faults.Has(faults.KeepKEMPrekeys) {
		if err := p.tx.Bucket(bucketKEM).Delete(u32(kemID)); err != nil {
			return err
		}
	}
	if opk != nil && !faults.Has(faults.KeepECPrekeys) {
		return p.tx.Bucket(bucketOPK).Delete(u32(*opk))
	}
	return nil
}

// Messages returns the device's history with peer (every account when peer
// is empty), oldest first.
func (d *Device) Messages(peer string) ([]*Message, error) {
	if err := d.db.Update(d.sweep); err != nil {
		return nil, err
	}
	var out []*Message
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := cborDec.Unmarshal(v, &m); err != nil {
				return err
			}
			if m.Group == nil && (peer == "" || m.Peer == peer) {
				out = append(out, &m)
			}
			return nil
		})
	})
	return out, err
}

// AllMessages returns every message of the device's history, of every
// conversation, groups included, in the order they were stored.
func (d *Device) AllMessages() ([]*Message, error) {
	if err := d.db.Update(d.sweep); err != nil {
		return nil, err
	}
	var out []*Message
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := cborDec.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, &m)
			return nil
		})
	})
	return out, err
}

// Sent returns the message this device sent with the given id.
func (d *Device) Sent(id []byte) (*Message, error) {
	var m *Message
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = sentMessage(tx, id)
		return err
	})
	if err == nil && m == nil {
		return nil, fmt.Errorf("client: no sent message %x", id)
	}
	return m, err
}
