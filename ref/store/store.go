// Package store defines what the Missive server persists (spec/13-server.md,
// and the group states and blob store of spec/16-groups.md and
// spec/17-media.md) as one interface, Store, that every backend implements: the embedded
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
	"fmt"
	"math"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
)

// Errors a Store returns. Backends wrap them; callers use errors.Is.
var (
	ErrNotFound        = errors.New("store: not found")
	ErrExists          = errors.New("store: already exists")
	ErrDuplicatePrekey = errors.New("store: prekey id already held or used")
	ErrQuota           = errors.New("store: quota exceeded")
	ErrClosed          = errors.New("store: closed")
	ErrConflict        = errors.New("store: not the next version")
	ErrSetAside        = errors.New("store: unreadable records set aside")
)

// Budget is a token bucket of an account, or of a device, that the store
// keeps with what it counts (GRP-015, SRV-027), so that it survives
// restarts: a token comes back
// every Every, and the bucket holds at most Burst. It is kept as the time
// at which the bucket is full again (a generic cell rate algorithm), which
// a bucket of an account the store has no record of is at any time before
// Now. A Burst of 0 lifts the limit.
type Budget struct {
	Account string
	Now     time.Time // the server's clock
	Every   time.Duration
	Burst   int
}

// Take takes a token of a bucket full again at full: it returns the new
// full time, or ok false and how long until a token comes back, at most
// Every, with the full time to keep all the same. A full time more than
// Burst intervals after Now can only have been stored under a clock that
// has gone back since: it says nothing of this one, and the bucket counts
// as spent now, its full time Now plus Burst intervals, which the caller
// keeps even with a refusal: a token comes back after Every, neither a
// whole burst at once for a clock stepped back a millisecond after the
// bucket was spent, nor none for a year for a clock that ran a year ahead.
func (b Budget) Take(full time.Time) (next time.Time, wait time.Duration, ok bool) {
	if b.Burst <= 0 {
		return full, 0, true
	}
	every := max(b.Every, 0)
	window := time.Duration(math.MaxInt64) // Burst intervals, without wrapping
	if every <= window/time.Duration(b.Burst) {
		window = time.Duration(b.Burst) * every
	}
	ahead := full.Sub(b.Now) // at most the window, unless the clock went back
	switch {
	case ahead < 0:
		ahead = 0
	case ahead > window:
		ahead, full = window, b.Now.Add(window)
	}
	if over := ahead - (window - every); over > 0 {
		return full, over, false
	}
	return b.Now.Add(ahead + every), 0, true
}

// SpentError is the failure of a call whose Budget held no token: a token
// comes back After. It wraps ErrQuota.
type SpentError struct{ After time.Duration }

func (e *SpentError) Error() string {
	return fmt.Sprintf("store: budget spent, a token back in %v", e.After)
}

// Unwrap returns ErrQuota.
func (e *SpentError) Unwrap() error { return ErrQuota }

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
	// Most is the most one-time prekeys of each kind that the device may
	// hold once the update is stored (MAX_ONE_TIME_PREKEYS, SRV-025); zero
	// or less: no limit.
	Most int
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

// Blob is the record of a blob of the blob store (spec chapter 17): what
// the uploader announced, and how far its upload has come.
type Blob struct {
	ID        string
	Account   string // the account that created it
	Size      uint64 // the size announced at creation
	Digest    []byte // the SHA-256 announced at creation
	Received  uint64 // bytes held: the blob is complete when it equals Size
	HashState []byte // the caller's running hash state over the bytes held; opaque to the store
	Created   time.Time
	ExpiresAt time.Time // set by the caller at creation, and again at completion
}

// Complete reports whether every byte of the blob is held.
func (b *Blob) Complete() bool { return b.Received == b.Size }

// MinBlobCharge is the least a blob counts against its account's quota:
// MEDIA_CHUNK (spec section 17.1, MED-009).
const MinBlobCharge = 65536

// Charge is what the blob counts against its account's quota: its size,
// at least MinBlobCharge (MED-009).
func (b *Blob) Charge() uint64 {
	if faults.Has(faults.BlobsBySize) {
		return b.Size
	}
	return max(b.Size, MinBlobCharge)
}

// BlobAppend is one chunk of a blob's upload.
type BlobAppend struct {
	Offset    uint64    // must be the bytes the blob holds
	Data      []byte    // the next bytes
	HashState []byte    // the hash state over the bytes held once Data is appended
	Now       time.Time // a blob that expires at or before Now is gone
	Expires   time.Time // the blob's expiry time if Data completes it
}

// EnqueueCall is the arguments of one Enqueue, for EnqueueMany.
type EnqueueCall struct {
	Entries []Entry
	Quota   Quota
	Forget  time.Time
}

// EnqueueResult is what one Enqueue returns, for EnqueueMany.
type EnqueueResult struct {
	Accepted time.Time
	Dup      bool
	Err      error
}

// ManyEnqueuer is a Store that can make several Enqueue calls in one write,
// so that a device's sends that wait together share one commit. The
// server uses it when its store has it.
type ManyEnqueuer interface {
	// EnqueueMany makes the calls in order, each with the result and the
	// effects it would have alone, made one after the other: a device's
	// queue ids grow in the order of the calls, a call whose pair an
	// earlier call of the same batch stored is a duplicate, and a call
	// refused (ErrQuota, ErrNotFound) does not undo the others. The
	// entries of the accepted calls get their queue ids. The results are
	// durable when it returns; an error of the store itself is every
	// call's result.
	EnqueueMany(ctx context.Context, calls []EnqueueCall) []EnqueueResult
}

// ManyAcker is a Store that can delete the acknowledged entries of many
// devices in one write. The server uses it, when its store has it, for the
// acknowledgements it deletes together (SRV-011).
type ManyAcker interface {
	// AckMany does what Ack does for every device of acks, in one write:
	// ids that name nothing are ignored.
	AckMany(ctx context.Context, acks map[Address][]uint64) error
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
	// DeviceListAt returns the signed device list of one version of an
	// account, as PutDeviceList stored it, or nil when the store does not
	// hold that version (it never existed, or was stored before the store
	// kept every version); ErrNotFound for no account.
	DeviceListAt(ctx context.Context, account string, version uint64) ([]byte, error)

	// PutPrekeys stores an upload for a reachable or new device. It fails
	// with ErrDuplicatePrekey, storing nothing, when a one-time or signed
	// prekey id was ever stored for the device's key of that kind; else
	// with ErrQuota, storing nothing, when u.Most is positive and the
	// device would then hold more than u.Most one-time prekeys of a kind.
	PutPrekeys(ctx context.Context, a Address, u PrekeyUpdate) (Counts, error)
	// TakeBundle returns the keys of one bundle for a device, removing the
	// oldest one-time KEM and EC prekeys it hands out in the same atomic
	// step, so that no one-time key is ever handed out twice. A bundle that
	// hands out one-time prekeys takes a token of the device's bucket of
	// hand-outs (SRV-027; handout's Account is not used, the bucket is the
	// device's; a Burst of 0 is no bound): with none left, the bundle has
	// the last-resort key and no one-time key, and removes nothing. It
	// fails with ErrNotFound when the device has no signed prekey or no
	// last-resort key (it is not reachable). The counts are those left
	// after the take.
	TakeBundle(ctx context.Context, a Address, handout Budget) (*BundleKeys, Counts, error)
	// PrekeyCounts returns the one-time prekeys held for a device, and
	// whether it is reachable.
	PrekeyCounts(ctx context.Context, a Address) (Counts, bool, error)

	// Enqueue stores one entry per recipient device, all or none, assigns
	// their queue ids, and remembers the envelope's (sender, message id,
	// sent-at) with its acceptance time until forget (SRV-008). When that
	// was already remembered it stores nothing and returns the first
	// acceptance time and dup true; an envelope that differs in sent-at
	// alone is another envelope (a store may remember pairs it kept from
	// before it knew sent-ats, which match any sent-at until forgotten).
	// The entries share the three. It
	// fails with ErrQuota, storing nothing, when a recipient's queue would
	// exceed q. The entries' AcceptedAt and ExpiresAt are set by the caller.
	Enqueue(ctx context.Context, entries []Entry, q Quota, forget time.Time) (accepted time.Time, dup bool, err error)
	// Accepted returns the first acceptance time of the envelope of a
	// (sender, message id, sent-at) that the store remembers at now, and
	// true: Enqueue would answer it as a duplicate. It writes nothing.
	Accepted(ctx context.Context, sender Address, messageID []byte, sentAt uint64, now time.Time) (time.Time, bool, error)
	// Pending returns up to limit entries of a device's queue that are not
	// in skip, highest priority first, then by queue id, leaving out entries
	// that expire at or before now. It reads the queue as it was at one
	// moment (less what was deleted since): when it returns fewer than
	// limit, it has returned every entry of that moment, so every entry
	// it left out with a lower queue id than one it returned was skipped,
	// expired or deleted. The delivery path relies on this.
	Pending(ctx context.Context, a Address, now time.Time, skip map[uint64]bool, limit int) ([]Entry, error)
	// SetAttempt records a delivery attempt count for an entry; a missing
	// entry is not an error.
	SetAttempt(ctx context.Context, a Address, queueID uint64, attempt uint32) error
	// Ack deletes entries of a device; ids that name nothing are ignored.
	Ack(ctx context.Context, a Address, queueIDs []uint64) error
	// Queued returns those of queueIDs, in their order, that name entries
	// of a device's queue, expired or not; it writes nothing. The server
	// asks it before it holds an acknowledged id it did not deliver on
	// that connection (SRV-021).
	Queued(ctx context.Context, a Address, queueIDs []uint64) ([]uint64, error)
	// Expire deletes every entry, of every device, that expires at or
	// before now, and every remembered (sender, message id) pair whose
	// forget time has passed. It returns the number of entries deleted.
	// A record it cannot read does not stop it: it sets the record aside,
	// deletes the rest, and returns their number with an error wrapping
	// ErrSetAside.
	Expire(ctx context.Context, now time.Time) (int, error)
	// Stats returns a device's queue size.
	Stats(ctx context.Context, a Address) (QueueStats, error)
	// TotalEntries returns the number of entries of all queues.
	TotalEntries(ctx context.Context) (int, error)

	// PutGroupState stores the signed state of a version of a group (spec
	// section 16.2): version 1 creates the group, any other must be one more
	// than the group's current version. It fails with ErrConflict, storing
	// nothing, otherwise (a version 1 for a group that exists included), and
	// ErrNotFound for a version above 1 of a group it does not hold. Then it
	// takes a token of the author's budget (GRP-015), in the same
	// transaction, or fails with a *SpentError, storing nothing. Every
	// version stored is kept. members are the accounts the state's member
	// list names: for each, the store keeps the first and the last version
	// of the group that named it (GroupSpan), so that get-group (GRP-004)
	// reads no state it does not serve.
	PutGroupState(ctx context.Context, groupID []byte, version uint64, signed []byte, members []string, author Budget) error
	// GroupState returns a group's current signed state and its version, or
	// ErrNotFound.
	GroupState(ctx context.Context, groupID []byte) ([]byte, uint64, error)
	// GroupStates returns up to limit signed states of a group, of versions
	// from, from + 1, ..., and the group's current version; none when from
	// is above it. It fails with ErrNotFound for a group it does not hold.
	GroupStates(ctx context.Context, groupID []byte, from uint64, limit int) ([][]byte, uint64, error)
	// GroupSpan returns the first and the last version of a group whose
	// members (PutGroupState) named account, both 0 when none did, and the
	// group's current version. It fails with ErrNotFound for a group it
	// does not hold.
	GroupSpan(ctx context.Context, groupID []byte, account string) (first, last, current uint64, err error)

	// CreateBlob first deletes every blob that expires at or before
	// b.Created, as ExpireBlobs does. Then, when b.Account holds a blob of
	// b's Size and Digest, it returns that blob and true, storing nothing.
	// Else it fails with ErrQuota when the charges (Blob.Charge, of the
	// sizes announced) of b.Account's blobs, complete or not, plus b's
	// would exceed quota (zero or less: no limit), with ErrExists when b.ID
	// is taken, and otherwise stores b with nothing received and returns
	// it and false. The caller sets every field but Received.
	CreateBlob(ctx context.Context, b Blob, quota int64) (*Blob, bool, error)
	// Blob returns a blob's record, or ErrNotFound. A blob past its expiry
	// time is returned until ExpireBlobs or CreateBlob deletes it.
	Blob(ctx context.Context, id string) (*Blob, error)
	// AppendBlob appends a chunk to an incomplete blob, durably, storing
	// its hash state; when the blob is then complete its expiry time
	// becomes a.Expires. It fails with ErrNotFound for no blob of that id, a
	// complete one, or one that expires at or before a.Now; and with
	// ErrConflict, storing nothing, when a.Offset is not the bytes held or
	// the chunk would go past the blob's size. It returns the new record.
	AppendBlob(ctx context.Context, id string, a BlobAppend) (*Blob, error)
	// ReadBlob returns a blob's record and up to n of the bytes it holds
	// from offset (none at or past the bytes held), or ErrNotFound.
	ReadBlob(ctx context.Context, id string, offset uint64, n int) (*Blob, []byte, error)
	// DeleteBlob deletes a blob and its bytes; an unknown id is not an
	// error.
	DeleteBlob(ctx context.Context, id string) error
	// ExpireBlobs deletes every blob that expires at or before now and
	// returns how many it deleted and the bytes they held.
	ExpireBlobs(ctx context.Context, now time.Time) (int, int64, error)

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
