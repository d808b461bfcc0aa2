// Package bolt is the embedded store.Store: one file, written through
// go.etcd.io/bbolt, each method one transaction that is synced to disk before
// the method returns. Every write goes through the store's group commit:
// writes that come while a commit runs share the next commit and its fsync,
// so that concurrent callers pay for one sync between them and a lone caller
// waits for nothing but its own. The freelist is not written at each commit
// (bbolt's NoFreelistSync; it is rebuilt when the file is opened), which
// saves the pages it would take in every commit.
//
// It implements the semantics package store documents, as the shared suite
// (package storetest) pins them down.
//
// # Layout
//
// Every bucket is top-level. An address (account, device) is encoded as
// A = uvarint(len(account)) || account || be32(device), which is prefix-free,
// so "every key of a device" is "every key that starts with A". A time is
// T = be64(Unix seconds with the sign bit flipped) || be32(nanoseconds),
// which sorts as the times do. Other integers in keys are big-endian.
//
//	meta      "version" -> be32 schema version (7)
//	          "next"    -> be64 the queue id of the next entry (1 when
//	          absent): one counter for every device, so that a device's
//	          ids increase and the entries of one commit have neighbouring
//	          keys
//	accounts  name -> the account's devices in increasing id order, removed
//	          ones included: uvarint count, then per device be32 id,
//	          flags byte (1 = removed), T created, uvarint len || identity key
//	devices   A -> a live device (existing, not removed): identity key,
//	          current signed and last-resort prekeys, one-time EC and KEM
//	          counts, the upload sequence number of the next one-time prekey
//	onetime   A || 'e'|'k' || be64 upload seq -> one-time EC or KEM prekey:
//	          be32 id, uvarint len || key, uvarint len || signature; the
//	          first key under A || kind is the oldest
//	usedids   A || 's'|'e'|'k' || be32 id -> 0x01: every id ever stored in
//	          the signed, one-time EC and KEM (one-time and last-resort) id
//	          spaces of a device
//	messages  be64 queue id || A -> a queue entry: be32 attempt, priority,
//	          type, kind, uvarint sent-at, T accepted, T expires, sender A,
//	          uvarint len || message id, ciphertext (the rest). Keyed by
//	          queue id first, the entries a commit adds, whatever their
//	          devices, go into the last leaves of the bucket, and a message
//	          acknowledged soon after is deleted from the same few leaves
//	          (appendix A.6, eighth round). An acknowledgement names the
//	          device and the queue id: the entry's key. Each device's
//	          delivery order (priority, then queue id) and queue size are
//	          kept in memory (queueIndex), built from this bucket when the
//	          file is opened: an entry that does not decode then makes Open
//	          fail, rather than a server serve the rest and hide the loss
//	expiry    T expires || A || be64 queue id -> the entry's priority:
//	          Expire reads only the expired prefix
//	pairs     be64 sent-at || sender A || message id -> T accepted ||
//	          T forget: the envelopes accepted (SRV-008). Message ids are
//	          random, so a key led by them would send every enqueue to a
//	          random leaf of an index that holds ACCEPT_MEMORY of traffic;
//	          led by the sent-at, the keys of new envelopes fall near the
//	          index's end, into the few leaves that the last moments'
//	          envelopes share (appendix A.6, sixth round)
//	pairexpiry  T forget || pairs key -> 0x01
//	accepted, forget  (schema 2, in a file migrated from it, until the
//	          last of its pairs is forgotten) sender A || message id ->
//	          T accepted || T forget, and T forget || sender A || message
//	          id -> 0x01: the pairs accepted before the migration, which
//	          did not key them by sent-at
//	privacy   name -> last-seen visibility byte, online visibility byte
//	contacts  name -> uvarint count, then uvarint len || name each
//	lastseen  name -> T
//	devicelists  name -> be64 version || the current signed device list
//	listhistory  uvarint(len(name)) || name || be64 version -> every signed
//	          device list stored since this bucket exists
//	groups    uvarint(len(id)) || group id -> be64 current version
//	groupstates  uvarint(len(id)) || group id || be64 version -> signed
//	          group state, every version kept
//	blobs     blob id -> the record: uvarint len || account, be64 size,
//	          uvarint len || digest, be64 received, T created, T expires,
//	          uvarint len || hash state
//	blobchunks  uvarint(len(id)) || blob id || be64 offset -> the bytes of
//	          one put, at that offset: a blob is its chunks in key order
//	blobexpiry  T expires || blob id -> 0x01
//	blobkeys  uvarint(len(account)) || account || be64 size || digest ->
//	          blob id: the account's blob of that size and digest
//	blobusage account -> be64 sum of the charges of the account's blobs
//	          (store.Blob.Charge: its size, at least MEDIA_CHUNK; schema 6)
//	groupbudget  account -> T the time at which the account's bucket of
//	          group states (store.Budget, GRP-015) is full again
//	handout   A -> T the time at which the device's bucket of bundles with
//	          one-time prekeys (store.Budget, SRV-027) is full again
//	groupnames  uvarint(len(id)) || group id || account -> be64 the first
//	          version of the group whose members named the account || be64
//	          the last (schema 7; built from the stored states when a file
//	          of an earlier schema is opened)
//
// Blob bytes live in this file, not in files of their own, so that a
// put-blob is one transaction: the chunk and the record that counts it are
// synced together, and a crash leaves both or neither. A chunk is at most
// BLOB_CHUNK (512 KiB) and a blob at most MAX_BLOB_SIZE (100 MiB, 200
// chunks); bbolt stores a large value in contiguous overflow pages and
// reuses the pages of deleted blobs, but never shrinks the file.
//
// Values are encoded with encoding/binary, so one value has one encoding.
// The devices record of a device exists exactly while the device exists
// and is not removed; RemoveDevice deletes every key under its A, and its
// entries.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/missive-protocol/missive/ref/store"
)

// Bucket names.
var (
	bucketMeta       = []byte("meta")
	bucketAccounts   = []byte("accounts")
	bucketDevices    = []byte("devices")
	bucketOneTime    = []byte("onetime")
	bucketUsedIDs    = []byte("usedids")
	bucketMessages   = []byte("messages")
	bucketExpiry     = []byte("expiry")
	bucketPairs      = []byte("pairs")
	bucketPairsExp   = []byte("pairexpiry")
	bucketPrivacy    = []byte("privacy")
	bucketContacts   = []byte("contacts")
	bucketLastSeen   = []byte("lastseen")
	bucketLists      = []byte("devicelists") // account -> be64 version || signed device list
	bucketHistory    = []byte("listhistory")
	bucketGroups     = []byte("groups")
	bucketStates     = []byte("groupstates")
	bucketBlobs      = []byte("blobs")
	bucketChunks     = []byte("blobchunks")
	bucketBlobExp    = []byte("blobexpiry")
	bucketBlobKeys   = []byte("blobkeys")
	bucketBlobUse    = []byte("blobusage")
	bucketGroupNames = []byte("groupnames")
	// bucketGroupBudget came after schema 6 was set, and is made when a
	// file is opened, as every bucket is: a file without it holds no
	// bucket that is not full.
	bucketGroupBudget = []byte("groupbudget")
	// bucketHandout came after schema 6 too, the same way.
	bucketHandout = []byte("handout")
	// bucketSetAside holds the records Expire could not read, each under
	// its bucket's name, a zero byte and its key, with its value, as found:
	// kept for inspection, out of the way of the sweeps.
	bucketSetAside = []byte("setaside")

	allBuckets = [][]byte{
		bucketMeta, bucketAccounts, bucketDevices, bucketOneTime, bucketUsedIDs,
		bucketMessages, bucketExpiry, bucketPairs,
		bucketPairsExp, bucketPrivacy, bucketContacts, bucketLastSeen, bucketLists,
		bucketHistory, bucketGroups, bucketStates, bucketBlobs, bucketChunks,
		bucketBlobExp, bucketBlobKeys, bucketBlobUse, bucketGroupBudget, bucketHandout, bucketGroupNames, bucketSetAside,
	}

	// marker is the value of index keys. It is not empty because bbolt's Get
	// does not tell an empty value from a missing key within a transaction.
	marker = []byte{1}

	keyVersion = []byte("version")
	keyNext    = []byte("next")
)

// schemaVersion is the layout version this package reads and writes. Open
// migrates a file of version 1 (see migrateV1), 2 (see v2Accepted), 3
// (see migrateV3), 4 or 5 (see migrateV4), or 6 (see migrateV6). Version 6
// is version 5 with each blob charged at least MEDIA_CHUNK: version 5
// files (57f1a50) charged at least BLOB_CHUNK, and are counted again.
// Version 7 is version 6 with the bucket groupnames.
const schemaVersion = 7

// Kinds of one-time prekeys, and the prekey id spaces.
const (
	kindEC      = 'e'
	kindKEM     = 'k'
	spaceSigned = 's'
)

// Store is a store.Store in a bbolt file. Its methods are safe for
// concurrent use.
type Store struct {
	db     *bbolt.DB
	writes *committer
	idx    *queueIndex
	qtx    queueTx // the running write transaction's changes to idx; the committer's
	// unsynced is set while idx may not match the file: a commit failed
	// and building the index again failed too. Enqueues then read every
	// recipient's record (hasEntries). The committer's.
	unsynced bool
	// pendingStep, when set (by tests), runs after each step of Pending.
	pendingStep func()

	mu     sync.RWMutex // guards closed against Close
	closed bool
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	lockTimeout   time.Duration
	maxBatchSize  int
	maxBatchDelay time.Duration
}

// WithLockTimeout sets how long Open waits for the file lock that another
// process holds (default 5 s; zero waits forever).
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.lockTimeout = d } }

// WithMaxBatchSize sets the most calls one group commit holds (default, and
// when n is not positive: 1000).
func WithMaxBatchSize(n int) Option { return func(c *config) { c.maxBatchSize = n } }

// WithMaxBatchDelay sets how long a group commit waits for more calls before
// it starts (default, and when d is not positive: none). The calls that come
// while a commit runs always wait for the next one, so a delay is seldom
// useful: it makes every lone write that much slower.
func WithMaxBatchDelay(d time.Duration) Option { return func(c *config) { c.maxBatchDelay = d } }

// defaultMaxBatch is the most calls of one group commit by default.
const defaultMaxBatch = 1000

// maxBatchKeys bounds the queue entries (and acknowledged ids) of one group
// commit: a call may carry many (EnqueueMany of group envelopes: thousands),
// and a commit of hundreds of thousands of keys would stall every writer
// for seconds. A call over the bound commits alone.
const maxBatchKeys = 16384

// Open opens the store in the file at path, creating it (mode 0600) when it
// does not exist. Only one Store may have a file open at a time.
func Open(path string, opts ...Option) (*Store, error) {
	c := config{lockTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: c.lockTimeout,
		NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	w := &committer{db: db, maxBatch: defaultMaxBatch, delay: max(c.maxBatchDelay, 0)}
	if c.maxBatchSize > 0 {
		w.maxBatch = c.maxBatchSize
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keyVersion)
		if v == nil {
			return meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, schemaVersion))
		}
		if len(v) != 4 || binary.BigEndian.Uint32(v) == 0 || binary.BigEndian.Uint32(v) > schemaVersion {
			return fmt.Errorf("schema version %x, want %d", v, schemaVersion)
		}
		from := binary.BigEndian.Uint32(v)
		if from == schemaVersion {
			return nil
		}
		// Version 2's pairs stay where they are until they are forgotten
		// (the buckets of version 3 are created above); its queue, and
		// version 1's once migrateV1 has moved it there, is version 3's.
		if from == 1 {
			if _, err := tx.CreateBucketIfNotExists(v3Queue); err != nil {
				return err
			}
			if err := migrateV1(tx); err != nil {
				return fmt.Errorf("migrating from schema version 1: %w", err)
			}
		}
		if from <= 3 {
			if err := migrateV3(tx); err != nil {
				return fmt.Errorf("migrating from schema version %d: %w", from, err)
			}
		}
		if from <= 5 {
			if err := migrateV4(tx); err != nil {
				return fmt.Errorf("migrating from schema version %d: %w", from, err)
			}
		}
		if err := migrateV6(tx); err != nil {
			return fmt.Errorf("migrating from schema version %d: %w", from, err)
		}
		return meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, schemaVersion))
	})
	if err == nil {
		idx, ierr := loadIndex(db)
		s := &Store{db: db, writes: w, idx: idx}
		w.begin, w.publish, w.resync = s.qtx.reset, func() { s.idx.publish(&s.qtx) }, s.resyncIndex
		w.finish = s.qtx.finish
		if err = ierr; err == nil {
			return s, nil
		}
	}
	db.Close()
	return nil, fmt.Errorf("bolt: open %s: %w", path, err)
}

// resyncIndex builds the queue index again from the file, after a commit
// that failed (committer.resync). When even that fails, the index is left
// as it was: the file can then no longer be read, and every call will say
// so.
func (s *Store) resyncIndex() {
	x, err := loadIndex(s.db)
	s.unsynced = err != nil
	if err != nil {
		return
	}
	s.idx.mu.Lock()
	s.idx.devices, s.idx.total, s.idx.last = x.devices, x.total, max(s.idx.last, x.last)
	s.idx.mu.Unlock()
}

// loadIndex builds the queue index from the entries of db.
func loadIndex(db *bbolt.DB) (*queueIndex, error) {
	x := newQueueIndex()
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			if len(k) < 8+5 {
				return errCorrupt
			}
			h, err := decodeEntryHeader(v)
			if err != nil {
				return err
			}
			x.add(string(k[8:]), h.prio, binary.BigEndian.Uint64(k), h.ciphertextLen)
			return nil
		})
	})
	return x, err
}

// Path returns the file the store is in.
func (s *Store) Path() string { return s.db.Path() }

// Close implements store.Store: it waits for running transactions and
// closes the file. Calls pending in a group commit fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("bolt: close: %w", store.ErrClosed)
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// begin checks ctx and that the store is open before op.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("bolt: %s: %w", op, store.ErrClosed)
	}
	return nil
}

// wrap prefixes err with the package and op, and reports a database closed
// under a running call as ErrClosed.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bberrors.ErrDatabaseNotOpen):
		return fmt.Errorf("bolt: %s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("bolt: %s: %w", op, err)
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	// A record of a damaged file that a read does not expect fails the
	// read, as it fails a write (safeCall), and not the server.
	return wrap(op, s.db.View(func(tx *bbolt.Tx) error { return safeCall(fn, tx) }))
}

// update runs fn in a write transaction that the group commit may share
// with concurrent callers. fn may run more than once, so it must set its
// results afresh on each run. A refusal that fn returns as an error rolls
// back the shared transaction, which then runs again without fn: a refusal
// that is frequent on a hot path should be returned through the caller's
// variables with fn returning nil instead (Enqueue does).
func (s *Store) update(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return wrap(op, s.writes.run(fn))
}

// batch is update, for the methods on the hot path of every message, with
// the number of keys fn writes (at least 1): the group commit bounds the
// keys of one commit as well as its calls (maxBatchKeys).
func (s *Store) batch(ctx context.Context, op string, keys int, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return wrap(op, s.writes.runWeighted(fn, keys))
}

// getUint64 returns the be64 value of key k of b, or absent when there is
// none.
func getUint64(b *bbolt.Bucket, k []byte, absent uint64) (uint64, error) {
	v := b.Get(k)
	switch {
	case v == nil:
		return absent, nil
	case len(v) != 8:
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}

// deletePrefix deletes every key of bucket b that starts with prefix.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// key concatenates parts into a new slice.
func key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}
