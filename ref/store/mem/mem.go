// Package mem is an in-memory store.Store: maps behind one mutex. It keeps
// nothing across a restart, so it serves tests; and it is the reference for
// the shared suite (package storetest), whose package comment lists the
// points package store leaves open and how every backend settles them.
package mem

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// Store is an in-memory store.Store. Its zero value is not usable; call New.
type Store struct {
	mu       sync.Mutex
	closed   bool
	accounts map[string]*account
	devices  map[store.Address]*device
	accepted map[pairKey]remembered
	total    int
	nextID   uint64              // the queue id of the next entry, of any device
	expiry   timeHeap[queued]    // queue entries by expiry time (expiry.go)
	forgets  timeHeap[pairKey]   // accepted pairs by forget time
	groups   map[string][][]byte // group id -> signed states, version i+1 at i
	// groupBudgets is when each account's group-state bucket is full again
	// (store.Budget, GRP-015).
	groupBudgets map[string]time.Time
	// groupNames holds, per group and account, the first and the last
	// version that named the account (GroupSpan).
	groupNames map[string]map[string][2]uint64
	blobs      map[string]*blob
}

type account struct {
	list        []byte // the current signed device list
	listVersion uint64
	lists       map[uint64][]byte // every signed device list stored, by version
	devices     []store.Device
	privacy     *store.Privacy
	contacts    []string
	lastSeen    time.Time
}

type device struct {
	signed, lastResort *store.Prekey
	ec, kem            []store.Prekey // oldest first
	used               [3]map[uint32]bool
	queue              map[uint64]*store.Entry
	bytes              int
	handout            time.Time // when the bucket of hand-outs is full again (SRV-027)
}

// Prekey id spaces.
const (
	spaceSigned = iota
	spaceEC
	spaceKEM
)

type pairKey struct {
	sender    store.Address
	messageID string
	sentAt    uint64
}

type remembered struct {
	accepted, forget time.Time
}

var _ store.Store = (*Store)(nil)

// errMixedEnvelope reports entries of one Enqueue call that do not share a
// sender, message id and sent-at.
var errMixedEnvelope = errors.New("mem: entries of one envelope differ in sender, message id or sent-at")

// New returns an empty store.
func New() *Store {
	return &Store{
		accounts:     make(map[string]*account),
		devices:      make(map[store.Address]*device),
		accepted:     make(map[pairKey]remembered),
		groups:       make(map[string][][]byte),
		groupBudgets: make(map[string]time.Time),
		groupNames:   make(map[string]map[string][2]uint64),
		blobs:        make(map[string]*blob),
	}
}

// lock takes the mutex unless the store is closed or ctx is done; on nil the
// caller must unlock.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, name string, primary store.Device) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.accounts[name]; ok {
		return fmt.Errorf("mem: create account %q: %w", name, store.ErrExists)
	}
	s.accounts[name] = &account{devices: []store.Device{copyDevice(primary)}, lists: map[uint64][]byte{}}
	s.devices[store.Address{Account: name, Device: primary.ID}] = newDevice()
	return nil
}

func newDevice() *device {
	return &device{
		used:  [3]map[uint32]bool{{}, {}, {}},
		queue: make(map[uint64]*store.Entry),
	}
}

// Account implements store.Store.
func (s *Store) Account(ctx context.Context, name string) (*store.Account, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return nil, fmt.Errorf("mem: account %q: %w", name, store.ErrNotFound)
	}
	out := &store.Account{Name: name, Devices: make([]store.Device, len(a.devices))}
	for i, d := range a.devices {
		out.Devices[i] = copyDevice(d)
	}
	return out, nil
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, name string, identityKey []byte, created time.Time) (uint32, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return 0, fmt.Errorf("mem: add device to %q: %w", name, store.ErrNotFound)
	}
	last := a.devices[len(a.devices)-1].ID
	if last == 1<<32-1 {
		return 0, fmt.Errorf("mem: add device to %q: device ids exhausted", name)
	}
	id := last + 1
	a.devices = append(a.devices, store.Device{ID: id, IdentityKey: bytes.Clone(identityKey), Created: created})
	s.devices[store.Address{Account: name, Device: id}] = newDevice()
	return id, nil
}

// DeviceList implements store.Store.
func (s *Store) DeviceList(ctx context.Context, name string) ([]byte, uint64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return nil, 0, fmt.Errorf("mem: device list of %q: %w", name, store.ErrNotFound)
	}
	return bytes.Clone(a.list), a.listVersion, nil
}

// PutDeviceList implements store.Store.
func (s *Store) PutDeviceList(ctx context.Context, name string, signed []byte, version uint64, add []store.Device, remove []uint32) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return fmt.Errorf("mem: put device list of %q: %w", name, store.ErrNotFound)
	}
	if version != a.listVersion+1 {
		return fmt.Errorf("mem: device list %d of %q after %d: %w", version, name, a.listVersion, store.ErrConflict)
	}
	last := a.devices[len(a.devices)-1].ID
	for _, d := range add {
		if d.ID <= last {
			return fmt.Errorf("mem: device list of %q adds id %d: %w", name, d.ID, store.ErrConflict)
		}
		last = d.ID
	}
	for _, id := range remove {
		if _, ok := s.findDevice(store.Address{Account: name, Device: id}); !ok {
			return fmt.Errorf("mem: device list of %q removes %d: %w", name, id, store.ErrNotFound)
		}
	}
	for _, d := range add {
		d.IdentityKey = bytes.Clone(d.IdentityKey)
		d.Removed = false
		a.devices = append(a.devices, d)
		s.devices[store.Address{Account: name, Device: d.ID}] = newDevice()
	}
	for _, id := range remove {
		addr := store.Address{Account: name, Device: id}
		d, _ := s.findDevice(addr)
		if d.Removed {
			continue
		}
		d.Removed = true
		if dev := s.devices[addr]; dev != nil {
			s.total -= len(dev.queue)
			delete(s.devices, addr)
		}
	}
	a.list, a.listVersion = bytes.Clone(signed), version
	a.lists[version] = a.list
	return nil
}

// DeviceListAt implements store.Store.
func (s *Store) DeviceListAt(ctx context.Context, name string, version uint64) ([]byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		return nil, fmt.Errorf("mem: device list of %q: %w", name, store.ErrNotFound)
	}
	return bytes.Clone(a.lists[version]), nil
}

// findDevice returns the device record of a, or nil when the account or the
// device does not exist.
func (s *Store) findDevice(a store.Address) (*store.Device, bool) {
	acc, ok := s.accounts[a.Account]
	if !ok {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(acc.devices, a.Device, func(d store.Device, id uint32) int { return cmp.Compare(d.ID, id) })
	if !ok {
		return nil, false
	}
	return &acc.devices[i], true
}

// RemoveDevice implements store.Store.
func (s *Store) RemoveDevice(ctx context.Context, a store.Address) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	d, ok := s.findDevice(a)
	if !ok {
		return fmt.Errorf("mem: remove device %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
	}
	if d.Removed {
		return nil
	}
	d.Removed = true
	if dev := s.devices[a]; dev != nil {
		s.total -= len(dev.queue)
		delete(s.devices, a)
	}
	return nil
}

// PutPrekeys implements store.Store.
func (s *Store) PutPrekeys(ctx context.Context, a store.Address, u store.PrekeyUpdate) (store.Counts, error) {
	if err := s.lock(ctx); err != nil {
		return store.Counts{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.findDevice(a)
	if !ok || d.Removed {
		return store.Counts{}, fmt.Errorf("mem: put prekeys for %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
	}
	dev := s.devices[a]
	// Check every id against the ids ever stored and against the upload.
	seen := [3]map[uint32]bool{{}, {}, {}}
	check := func(space int, id uint32) error {
		if dev.used[space][id] || seen[space][id] {
			return fmt.Errorf("mem: put prekeys for %s/%d: id %d: %w", a.Account, a.Device, id, store.ErrDuplicatePrekey)
		}
		seen[space][id] = true
		return nil
	}
	if u.SignedPrekey != nil {
		if err := check(spaceSigned, u.SignedPrekey.ID); err != nil {
			return store.Counts{}, err
		}
	}
	if u.LastResort != nil {
		if err := check(spaceKEM, u.LastResort.ID); err != nil {
			return store.Counts{}, err
		}
	}
	for _, k := range u.OneTimeEC {
		if err := check(spaceEC, k.ID); err != nil {
			return store.Counts{}, err
		}
	}
	for _, k := range u.OneTimeKEM {
		if err := check(spaceKEM, k.ID); err != nil {
			return store.Counts{}, err
		}
	}
	if u.Most > 0 && (len(dev.ec)+len(u.OneTimeEC) > u.Most || len(dev.kem)+len(u.OneTimeKEM) > u.Most) {
		return store.Counts{}, fmt.Errorf("mem: put prekeys for %s/%d: %d EC and %d KEM held, %d and %d more, at most %d of a kind: %w",
			a.Account, a.Device, len(dev.ec), len(dev.kem), len(u.OneTimeEC), len(u.OneTimeKEM), u.Most, store.ErrQuota)
	}
	for space, ids := range seen {
		for id := range ids {
			dev.used[space][id] = true
		}
	}
	if u.SignedPrekey != nil {
		k := copyPrekey(*u.SignedPrekey)
		dev.signed = &k
	}
	if u.LastResort != nil {
		k := copyPrekey(*u.LastResort)
		dev.lastResort = &k
	}
	for _, k := range u.OneTimeEC {
		dev.ec = append(dev.ec, copyPrekey(k))
	}
	for _, k := range u.OneTimeKEM {
		dev.kem = append(dev.kem, copyPrekey(k))
	}
	return store.Counts{EC: len(dev.ec), KEM: len(dev.kem)}, nil
}

// TakeBundle implements store.Store.
func (s *Store) TakeBundle(ctx context.Context, a store.Address, handout store.Budget) (*store.BundleKeys, store.Counts, error) {
	if err := s.lock(ctx); err != nil {
		return nil, store.Counts{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.findDevice(a)
	if !ok || d.Removed {
		return nil, store.Counts{}, fmt.Errorf("mem: take bundle of %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
	}
	dev := s.devices[a]
	if dev.signed == nil || dev.lastResort == nil {
		return nil, store.Counts{}, fmt.Errorf("mem: take bundle of %s/%d: not reachable: %w", a.Account, a.Device, store.ErrNotFound)
	}
	b := &store.BundleKeys{
		IdentityKey:  bytes.Clone(d.IdentityKey),
		SignedPrekey: copyPrekey(*dev.signed),
	}
	if len(dev.kem) > 0 || len(dev.ec) > 0 {
		next, _, ok := handout.Take(dev.handout)
		dev.handout = next // kept by a refusal too (Budget.Take)
		if !ok {
			// SRV-027: the last-resort key, and nothing removed.
			b.KEMPrekey, b.LastResort = copyPrekey(*dev.lastResort), true
			return b, store.Counts{EC: len(dev.ec), KEM: len(dev.kem)}, nil
		}
	}
	if len(dev.kem) > 0 {
		b.KEMPrekey = dev.kem[0]
		dev.kem = slices.Delete(dev.kem, 0, 1)
	} else {
		b.KEMPrekey = copyPrekey(*dev.lastResort)
		b.LastResort = true
	}
	if len(dev.ec) > 0 {
		k := dev.ec[0]
		b.OneTimeEC = &k
		dev.ec = slices.Delete(dev.ec, 0, 1)
	}
	return b, store.Counts{EC: len(dev.ec), KEM: len(dev.kem)}, nil
}

// PrekeyCounts implements store.Store.
func (s *Store) PrekeyCounts(ctx context.Context, a store.Address) (store.Counts, bool, error) {
	if err := s.lock(ctx); err != nil {
		return store.Counts{}, false, err
	}
	defer s.mu.Unlock()
	d, ok := s.findDevice(a)
	if !ok {
		return store.Counts{}, false, fmt.Errorf("mem: prekey counts of %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
	}
	if d.Removed {
		return store.Counts{}, false, nil
	}
	dev := s.devices[a]
	return store.Counts{EC: len(dev.ec), KEM: len(dev.kem)}, dev.signed != nil && dev.lastResort != nil, nil
}

// Accepted implements store.Store.
func (s *Store) Accepted(ctx context.Context, sender store.Address, messageID []byte, sentAt uint64, now time.Time) (time.Time, bool, error) {
	if err := s.lock(ctx); err != nil {
		return time.Time{}, false, err
	}
	defer s.mu.Unlock()
	r, ok := s.accepted[pairKey{sender: sender, messageID: string(messageID), sentAt: sentAt}]
	if !ok || !r.forget.After(now) {
		return time.Time{}, false, nil
	}
	return r.accepted, true, nil
}

// Enqueue implements store.Store.
func (s *Store) Enqueue(ctx context.Context, entries []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	if err := s.lock(ctx); err != nil {
		return time.Time{}, false, err
	}
	defer s.mu.Unlock()
	if len(entries) == 0 {
		return time.Time{}, false, nil
	}
	first := entries[0]
	for _, e := range entries[1:] {
		if e.Sender != first.Sender || !bytes.Equal(e.MessageID, first.MessageID) || e.SentAt != first.SentAt {
			return time.Time{}, false, errMixedEnvelope
		}
	}
	key := pairKey{sender: first.Sender, messageID: string(first.MessageID), sentAt: first.SentAt}
	if r, ok := s.accepted[key]; ok && r.forget.After(first.AcceptedAt) {
		return r.accepted, true, nil
	}
	type load struct{ entries, bytes int }
	add := make(map[store.Address]*load)
	for _, e := range entries {
		d, ok := s.findDevice(e.Recipient)
		if !ok || d.Removed {
			return time.Time{}, false, fmt.Errorf("mem: enqueue for %s/%d: %w", e.Recipient.Account, e.Recipient.Device, store.ErrNotFound)
		}
		l := add[e.Recipient]
		if l == nil {
			l = &load{}
			add[e.Recipient] = l
		}
		l.entries++
		l.bytes += len(e.Ciphertext)
	}
	for a, l := range add {
		dev := s.devices[a]
		if overQuota(len(dev.queue), dev.bytes, l.entries, l.bytes, q) {
			return time.Time{}, false, fmt.Errorf("mem: enqueue for %s/%d: %w", a.Account, a.Device, store.ErrQuota)
		}
	}
	for i, e := range entries {
		dev := s.devices[e.Recipient]
		c := copyEntry(e)
		s.nextID++ // from 1, as the bolt store's
		c.QueueID = s.nextID
		dev.queue[c.QueueID] = &c
		dev.bytes += len(c.Ciphertext)
		s.total++
		s.expiry.add(c.ExpiresAt, queued{e.Recipient, c.QueueID})
		entries[i].QueueID = c.QueueID
	}
	s.accepted[key] = remembered{accepted: first.AcceptedAt, forget: forget}
	s.forgets.add(forget, key)
	return first.AcceptedAt, false, nil
}

// AckMany implements store.ManyAcker, one device after the other.
func (s *Store) AckMany(ctx context.Context, acks map[store.Address][]uint64) error {
	for a, ids := range acks {
		if err := s.Ack(ctx, a, ids); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueMany implements store.ManyEnqueuer, one call after the other.
func (s *Store) EnqueueMany(ctx context.Context, calls []store.EnqueueCall) []store.EnqueueResult {
	out := make([]store.EnqueueResult, len(calls))
	for i, c := range calls {
		out[i].Accepted, out[i].Dup, out[i].Err = s.Enqueue(ctx, c.Entries, c.Quota, c.Forget)
	}
	return out
}

// overQuota reports whether adding n entries of b bytes to a queue holding
// entries and bytes would exceed q; a limit of zero or less is no limit.
func overQuota(entries, bytes, n, b int, q store.Quota) bool {
	return (q.Entries > 0 && entries+n > q.Entries) || (q.Bytes > 0 && bytes+b > q.Bytes)
}

// Pending implements store.Store.
func (s *Store) Pending(ctx context.Context, a store.Address, now time.Time, skip map[uint64]bool, limit int) ([]store.Entry, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	dev := s.devices[a]
	if dev == nil || limit <= 0 {
		return nil, nil
	}
	var out []store.Entry
	for id, e := range dev.queue {
		if skip[id] || !e.ExpiresAt.After(now) {
			continue
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(x, y store.Entry) int {
		if c := cmp.Compare(y.Priority, x.Priority); c != 0 {
			return c
		}
		return cmp.Compare(x.QueueID, y.QueueID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		out[i] = copyEntry(out[i])
	}
	return out, nil
}

// SetAttempt implements store.Store.
func (s *Store) SetAttempt(ctx context.Context, a store.Address, queueID uint64, attempt uint32) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if dev := s.devices[a]; dev != nil {
		if e := dev.queue[queueID]; e != nil {
			e.Attempt = attempt
		}
	}
	return nil
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, a store.Address, queueIDs []uint64) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	dev := s.devices[a]
	if dev == nil {
		return nil
	}
	for _, id := range queueIDs {
		if e := dev.queue[id]; e != nil {
			dev.bytes -= len(e.Ciphertext)
			delete(dev.queue, id)
			s.total--
		}
	}
	return nil
}

// Queued implements store.Store.
func (s *Store) Queued(ctx context.Context, a store.Address, queueIDs []uint64) ([]uint64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []uint64
	if dev := s.devices[a]; dev != nil {
		for _, id := range queueIDs {
			if dev.queue[id] != nil {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// Expire implements store.Store.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.expireLocked(now), nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context, a store.Address) (store.QueueStats, error) {
	if err := s.lock(ctx); err != nil {
		return store.QueueStats{}, err
	}
	defer s.mu.Unlock()
	dev := s.devices[a]
	if dev == nil {
		return store.QueueStats{}, nil
	}
	return store.QueueStats{Entries: len(dev.queue), Bytes: dev.bytes}, nil
}

// TotalEntries implements store.Store.
func (s *Store) TotalEntries(ctx context.Context) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.total, nil
}

// presence returns an existing account for the presence methods.
func (s *Store) presence(op, name string) (*account, error) {
	a, ok := s.accounts[name]
	if !ok {
		return nil, fmt.Errorf("mem: %s %q: %w", op, name, store.ErrNotFound)
	}
	return a, nil
}

// SetPrivacy implements store.Store.
func (s *Store) SetPrivacy(ctx context.Context, name string, p store.Privacy) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, err := s.presence("set privacy", name)
	if err != nil {
		return err
	}
	a.privacy = &p
	return nil
}

// defaultPrivacy is the privacy of an account that never set one: contacts
// for both visibilities (spec section 13.7; visibility values of section
// 11.4).
var defaultPrivacy = store.Privacy{LastSeen: 1, Online: 1}

// Privacy implements store.Store.
func (s *Store) Privacy(ctx context.Context, name string) (store.Privacy, error) {
	if err := s.lock(ctx); err != nil {
		return store.Privacy{}, err
	}
	defer s.mu.Unlock()
	a, err := s.presence("privacy", name)
	if err != nil {
		return store.Privacy{}, err
	}
	if a.privacy == nil {
		return defaultPrivacy, nil
	}
	return *a.privacy, nil
}

// SetContacts implements store.Store.
func (s *Store) SetContacts(ctx context.Context, name string, contacts []string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, err := s.presence("set contacts", name)
	if err != nil {
		return err
	}
	a.contacts = slices.Clone(contacts)
	return nil
}

// Contacts implements store.Store.
func (s *Store) Contacts(ctx context.Context, name string) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a, err := s.presence("contacts", name)
	if err != nil {
		return nil, err
	}
	if len(a.contacts) == 0 {
		return nil, nil
	}
	return slices.Clone(a.contacts), nil
}

// SetLastSeen implements store.Store.
func (s *Store) SetLastSeen(ctx context.Context, name string, t time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	a, err := s.presence("set last seen", name)
	if err != nil {
		return err
	}
	a.lastSeen = t
	return nil
}

// LastSeen implements store.Store.
func (s *Store) LastSeen(ctx context.Context, name string) (time.Time, error) {
	if err := s.lock(ctx); err != nil {
		return time.Time{}, err
	}
	defer s.mu.Unlock()
	a, err := s.presence("last seen", name)
	if err != nil {
		return time.Time{}, err
	}
	return a.lastSeen, nil
}

// Close implements store.Store. The data is dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.closed = true
	s.accounts, s.devices, s.accepted, s.groups, s.blobs = nil, nil, nil, nil, nil
	return nil
}

func copyDevice(d store.Device) store.Device {
	d.IdentityKey = bytes.Clone(d.IdentityKey)
	return d
}

func copyPrekey(k store.Prekey) store.Prekey {
	k.Key = bytes.Clone(k.Key)
	k.Signature = bytes.Clone(k.Signature)
	return k
}

func copyEntry(e store.Entry) store.Entry {
	e.MessageID = bytes.Clone(e.MessageID)
	e.Ciphertext = bytes.Clone(e.Ciphertext)
	return e
}
