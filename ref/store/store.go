// Package store defines what the Missive server persists (spec/13-server.md)
// as one interface, Store, that every backend implements: the embedded
// bbolt store (package bolt), an in-memory store for tests (package mem), and
// later a distributed engine. Every backend must pass the shared suite in
// package storetest.
//
// Each method is one atomic operation: it happens entirely or not at all,
// and a method that returns nil has made its effect durable when the
// backend is durable. No method exposes a transaction, so that a backend
// over a distributed log (NATS JetStream is planned) can implement each one
// with its own primitives: compare-and-set on a key-value bucket, a stream
// per device queue, a consumer for acknowledgements.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns. Backends wrap them; callers use errors.Is.
var (
	ErrNotFound        = errors.New("store: not found")
	ErrExists          = errors.New("store: already exists")
	ErrDuplicatePrekey = errors.New("store: prekey id already held or used")
	ErrQuota           = errors.New("store: queue quota exceeded")
	ErrClosed          = errors.New("store: closed")
	ErrConflict        = errors.New("store: not the next version")
)

// Address names a device of an account.
type Address struct {
	Account string
	Device  uint32
}

// Device is a device of an account.
type Device struct {
	ID          uint32
	IdentityKey []byte // the 33-byte encoding
	Removed     bool
	Created     time.Time
}

// Account is an account with every device it ever had.
type Account struct {
	Name    string
	Devices []Device // in increasing id order, removed ones included
}

// Prekey is a public prekey as the device uploaded it: an id, the key's
// encoding and, for signed kinds, the signature.
type Prekey struct {
	ID        uint32
	Key       []byte
	Signature []byte
}

// PrekeyUpdate is what one upload-prekeys request stores. Nil fields are
// left as they are.
type PrekeyUpdate struct {
	SignedPrekey *Prekey
	LastResort   *Prekey
	OneTimeEC    []Prekey
	OneTimeKEM   []Prekey
}

// Counts are the one-time prekeys held for a device.
type Counts struct {
	EC, KEM int
}

// BundleKeys is what a fetch hands out for one device: the current signed
// and last-resort keys, and one-time keys that TakeBundle has removed.
type BundleKeys struct {
	IdentityKey  []byte
	SignedPrekey Prekey
	KEMPrekey    Prekey
	LastResort   bool    // KEMPrekey is the last-resort key
	OneTimeEC    *Prekey // nil when none remained
}

// Entry is a queue entry (spec section 13.5).
type Entry struct {
	QueueID    uint64 // assigned by Enqueue, increasing per device
	Recipient  Address
	MessageID  []byte
	Sender     Address
	Type       uint8
	Priority   uint8
	Kind       uint8
	Ciphertext []byte
	SentAt     uint64 // milliseconds, as the sender gave it
	AcceptedAt time.Time
	ExpiresAt  time.Time
	Attempt    uint32
}

// Quota limits one device's queue.
type Quota struct {
	Entries int
	Bytes   int
}

// Privacy is an account's visibility settings (spec section 11.4).
type Privacy struct {
	LastSeen uint8
	Online   uint8
}

// QueueStats describes one device's queue.
type QueueStats struct {
	Entries int
	Bytes   int
}

// Store is everything the server persists.
type Store interface {
	// CreateAccount creates an account whose only device is primary. It
	// fails with ErrExists when the account exists.
	CreateAccount(ctx context.Context, name string, primary Device) error
	// Account returns an account with all its devices, or ErrNotFound.
	Account(ctx context.Context, name string) (*Account, error)
	// AddDevice adds a device with a new id (greater than every id the
	// account had) and returns it.
	AddDevice(ctx context.Context, account string, identityKey []byte, created time.Time) (uint32, error)
	// RemoveDevice marks a device removed and deletes its prekeys and
	// queue. Its id is never reused.
	RemoveDevice(ctx context.Context, a Address) error
	// DeviceList returns an account's current signed device list and its
	// version: nil and 0 before the first one, ErrNotFound for no account.
	DeviceList(ctx context.Context, account string) ([]byte, uint64, error)
	// PutDeviceList stores the next signed device list of an account and,
	// in the same atomic step, adds the devices of add (each with an id
	// greater than every id the account had, in increasing order) and
	// removes the devices of remove as RemoveDevice does. It fails with
	// ErrConflict, storing nothing, when version is not one more than the
	// current version, or an added id is not new.
	PutDeviceList(ctx context.Context, account string, signed []byte, version uint64, add []Device, remove []uint32) error

	// PutPrekeys stores an upload for a reachable or new device. It fails
	// with ErrDuplicatePrekey, storing nothing, when a one-time or signed
	// prekey id was ever stored for the device's key of that kind.
	PutPrekeys(ctx context.Context, a Address, u PrekeyUpdate) (Counts, error)
	// TakeBundle returns the keys of one bundle for a device, removing the
	// oldest one-time KEM and EC prekeys it hands out in the same atomic
	// step, so that no one-time key is ever handed out twice. It fails with
	// ErrNotFound when the device has no signed prekey or no last-resort
	// key (it is not reachable). The counts are those left after the take.
	TakeBundle(ctx context.Context, a Address) (*BundleKeys, Counts, error)
	// PrekeyCounts returns the one-time prekeys held for a device, and
	// whether it is reachable.
	PrekeyCounts(ctx context.Context, a Address) (Counts, bool, error)

	// Enqueue stores one entry per recipient device, all or none, assigns
	// their queue ids, and remembers (sender, message id) with its
	// acceptance time until forget. When the pair was already remembered it
	// stores nothing and returns the first acceptance time and dup true. It
	// fails with ErrQuota, storing nothing, when a recipient's queue would
	// exceed q. The entries' AcceptedAt and ExpiresAt are set by the caller.
	Enqueue(ctx context.Context, entries []Entry, q Quota, forget time.Time) (accepted time.Time, dup bool, err error)
	// Pending returns up to limit entries of a device's queue that are not
	// in skip, highest priority first, then by queue id, leaving out entries
	// that expire at or before now.
	Pending(ctx context.Context, a Address, now time.Time, skip map[uint64]bool, limit int) ([]Entry, error)
	// SetAttempt records a delivery attempt count for an entry; a missing
	// entry is not an error.
	SetAttempt(ctx context.Context, a Address, queueID uint64, attempt uint32) error
	// Ack deletes entries of a device; ids that name nothing are ignored.
	Ack(ctx context.Context, a Address, queueIDs []uint64) error
	// Expire deletes every entry, of every device, that expires at or
	// before now, and every remembered (sender, message id) pair whose
	// forget time has passed. It returns the number of entries deleted.
	Expire(ctx context.Context, now time.Time) (int, error)
	// Stats returns a device's queue size.
	Stats(ctx context.Context, a Address) (QueueStats, error)
	// TotalEntries returns the number of entries of all queues.
	TotalEntries(ctx context.Context) (int, error)

	// SetPrivacy, Privacy, SetContacts, Contacts, SetLastSeen and LastSeen
	// keep an account's presence settings. An account without settings has
	// the default privacy (contacts, contacts), no contacts and no last
	// seen time (zero).
	SetPrivacy(ctx context.Context, account string, p Privacy) error
	Privacy(ctx context.Context, account string) (Privacy, error)
	SetContacts(ctx context.Context, account string, contacts []string) error
	Contacts(ctx context.Context, account string) ([]string, error)
	SetLastSeen(ctx context.Context, account string, t time.Time) error
	LastSeen(ctx context.Context, account string) (time.Time, error)

	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}
