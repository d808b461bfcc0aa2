package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flynn/noise"
	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// Buckets for multi-device state.
var (
	bucketLists   = []byte("lists")   // account -> the latest signed device list accepted
	bucketPending = []byte("pending") // u64be sequence -> a receipt kept for an unknown message (DEV-015)
	bucketDeleted = []byte("deleted") // account || 0 || message id -> u64be ms of the mark (putMark): deleted here (DEV-023)
	bucketRead    = []byte("read")    // account || 0 || message id -> u64be ms of the mark: read on some device of this account
	bucketOpened  = []byte("opened")  // account || 0 || message id -> u64be ms of the mark: view-once media opened on some device of this account
	bucketTrusted = []byte("trusted") // account -> the signed list accepted before its new key was trusted (DEV-014)
)

func init() {
	allBuckets = append(allBuckets, bucketLists, bucketPending, bucketDeleted, bucketRead, bucketOpened, bucketTrusted)
}

func convKey(account string, id []byte) []byte { return append([]byte(account+"\x00"), id...) }

// markKeep is how long a mark (read, opened, deleted, expired) is kept
// after it is made (section 15.7): a message it names can still come
// 2 * MAX_TTL after its sent-at (a resend within MAX_TTL, queued for up to
// MAX_TTL), and a sent-at may be MAX_SENT_AHEAD (1 day, section 13.1)
// ahead of the clock.
const markKeep = 2*time.Duration(wire.MaxTTL)*time.Second + maxSentAhead

// maxSentAhead is MAX_SENT_AHEAD (section 13.1): how far ahead of the
// server's clock a sent-at may be.
const maxSentAhead = 24 * time.Hour

// markBuckets are the buckets of marks that forgetMarks forgets.
var markBuckets = [][]byte{bucketRead, bucketOpened, bucketDeleted, bucketExpired}

// putMark records in bucket the mark of a message of the conversation with
// account, with the time it is made: forgetMarks forgets it markKeep after.
func putMark(tx *bolt.Tx, bucket []byte, account string, id []byte, now time.Time) error {
	return tx.Bucket(bucket).Put(convKey(account, id), u64(uint64(now.UnixMilli())))
}

// forgetMarks forgets the marks made more than markKeep ago, and gives a
// mark of an older version, without its time, the time now, so that it is
// forgotten markKeep after. It returns how many it forgot.
func (d *Device) forgetMarks() (int, error) {
	now := d.now()
	limit := now.Add(-markKeep).UnixMilli()
	d.mu.Lock()
	defer d.mu.Unlock()
	type mark struct {
		bucket, key []byte
		old         bool // without its time
	}
	var marks []mark
	// A read first, so that a connection with nothing to forget costs no
	// write.
	err := d.db.View(func(tx *bolt.Tx) error {
		for _, name := range markBuckets {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				switch {
				case len(v) != 8:
					marks = append(marks, mark{name, bytes.Clone(k), true})
				case int64(binary.BigEndian.Uint64(v)) < limit:
					marks = append(marks, mark{name, bytes.Clone(k), false})
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(marks) == 0 {
		return 0, err
	}
	forgot := 0
	err = d.db.Update(func(tx *bolt.Tx) error {
		forgot = 0
		for _, m := range marks {
			b := tx.Bucket(m.bucket)
			// Made again since the look above (an operation that records
			// a mark does not take d.mu): kept.
			if v := b.Get(m.key); v == nil || (len(v) == 8) == m.old || (len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= limit) {
				continue
			}
			if m.old {
				if err := b.Put(m.key, u64(uint64(now.UnixMilli()))); err != nil {
					return err
				}
				continue
			}
			if err := b.Delete(m.key); err != nil {
				return err
			}
			forgot++
		}
		return nil
	})
	return forgot, err
}

// readMark reports whether a message from account was read on some device
// of this account, received here yet or not (DEV-015).
func readMark(tx *bolt.Tx, account string, id []byte) bool {
	return tx.Bucket(bucketRead).Get(convKey(account, id)) != nil
}

// MaxPendingReceipts is MAX_PENDING_RECEIPTS (spec section 15.1).
const MaxPendingReceipts = 4096

// list returns the latest accepted device list of an account, or nil.
func list(tx *bolt.Tx, account string) *devices.List { return listIn(tx.Bucket(bucketLists), account) }

// listIn returns the list of an account kept in b, or nil.
func listIn(b *bolt.Bucket, account string) *devices.List {
	v := b.Get([]byte(account))
	if v == nil {
		return nil
	}
	l, err := devices.Parse(bytes.Clone(v), account)
	if err != nil {
		return nil
	}
	return l
}

// trustedList returns the list accepted for an account before its new key
// was trusted, until the next list is accepted.
func trustedList(tx *bolt.Tx, account string) *devices.List {
	return listIn(tx.Bucket(bucketTrusted), account)
}

// recorded returns the device-1 identity key recorded for an account.
func recorded(tx *bolt.Tx, account string) *keys.PublicKey {
	v := tx.Bucket(bucketIdentity).Get([]byte(account))
	if v == nil {
		return nil
	}
	k, err := keys.DecodePublicKey(bytes.Clone(v))
	if err != nil {
		return nil
	}
	return &k
}

// accept runs DEV-001 on a signed list for account and stores it, deleting
// the sessions with devices it leaves out (DEV-011). It returns the list.
func accept(tx *bolt.Tx, account string, signed []byte) (*devices.List, error) {
	prev := list(tx, account)
	rec := recorded(tx, account)
	if faults.Has(faults.ForgetPrimaryKeys) {
		rec = nil
	}
	l, err := devices.Accept(signed, account, rec, prev)
	if err != nil {
		return nil, err
	}
	// A device gone, or listed again under another identity key (another
	// device under a reused id): its sessions and keys go (DEV-004). After
	// a Trust, the list before it is the one to compare with.
	gone := map[uint32]bool{}
	before := prev
	if before == nil {
		before = trustedList(tx, account)
	}
	if before != nil {
		for _, id := range before.IDs() {
			old, _ := before.Device(id)
			if k, ok := l.Device(id); !ok || !k.Equal(old) {
				gone[id] = true
				// GRP-011: a device of this account is gone; the groups
				// it is in get a new sender key from this device, and
				// what it gave is forgotten.
				if err := rekeyGroupsOf(tx, account); err != nil {
					return nil, err
				}
				if err := dropDeviceSenderKeys(tx, account, id); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := tx.Bucket(bucketLists).Put([]byte(account), l.Signed); err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketTrusted).Delete([]byte(account)); err != nil {
		return nil, err
	}
	if recorded(tx, account) == nil {
		if err := tx.Bucket(bucketIdentity).Put([]byte(account), l.Primary().Encode()); err != nil {
			return nil, err
		}
	}
	listed := map[uint32]bool{}
	for _, id := range l.IDs() {
		listed[id] = !gone[id]
	}
	return l, dropSessions(tx, account, func(id uint32) bool { return !listed[id] })
}

// dropSessions deletes the sessions with the devices of account whose id
// drop reports.
func dropSessions(tx *bolt.Tx, account string, drop func(uint32) bool) error {
	var keys [][]byte
	c := tx.Bucket(bucketSessions).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > 4 && string(k[4:]) == account && drop(binary.BigEndian.Uint32(k)) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := deleteSession(tx, k); err != nil {
			return err
		}
	}
	return nil
}

// DeviceList returns the latest device list this device accepted for an
// account, or nil.
func (d *Device) DeviceList(account string) *devices.List {
	var l *devices.List
	d.db.View(func(tx *bolt.Tx) error {
		l = list(tx, account)
		return nil
	})
	return l
}

// Fingerprint returns the fingerprint of an account from its recorded
// primary key (spec section 15.6), or "" when none is recorded.
func (d *Device) Fingerprint(account string) string {
	var k *keys.PublicKey
	d.db.View(func(tx *bolt.Tx) error {
		k = recorded(tx, account)
		return nil
	})
	if k == nil {
		return ""
	}
	return devices.Fingerprint(account, *k)
}

// SafetyNumber returns the safety number of this account and another.
func (d *Device) SafetyNumber(account string) string {
	mine, theirs := d.Fingerprint(d.Account), d.Fingerprint(account)
	if mine == "" || theirs == "" {
		return ""
	}
	return devices.SafetyNumber(mine, theirs)
}

// Trust forgets the recorded primary key of an account, so that its new
// key is accepted at the next contact (the user's explicit decision,
// DEV-014).
func (d *Device) Trust(account string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketIdentity).Delete([]byte(account)); err != nil {
			return err
		}
		// The list is kept aside: the next list accepted drops the sessions
		// of the devices it does not list with the same key (DEV-004).
		if l := tx.Bucket(bucketLists).Get([]byte(account)); l != nil {
			if err := tx.Bucket(bucketTrusted).Put([]byte(account), bytes.Clone(l)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketLists).Delete([]byte(account))
	})
}

// firstList signs and uploads the account's first device list, with the
// primary alone.
func (c *Conn) firstList(ctx context.Context) error {
	l, err := devices.Sign(c.d.identity, c.d.Account, 1,
		[]wire.ListedDevice{{Device: 1, IdentityKey: c.d.identity.Public().Encode()}}, uint64(c.d.now().UnixMilli()), c.d.rand)
	if err != nil {
		return err
	}
	if err := c.call(ctx, wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: l.Signed}, new(wire.Empty)); err != nil {
		return err
	}
	return c.d.db.Update(func(tx *bolt.Tx) error {
		_, err := accept(tx, c.d.Account, l.Signed)
		return err
	})
}

// ownList accepts a list of this device's own account, from welcome or a
// device-list push.
func (c *Conn) ownList(signed []byte) error {
	return c.d.db.Update(func(tx *bolt.Tx) error {
		_, err := accept(tx, c.d.Account, signed)
		return err
	})
}

// Link opens a link for a companion device (spec section 15.3) and returns
// the code the user carries to it. Complete then waits for the companion,
// checks its request and adds it to the device list.
func (c *Conn) Link(ctx context.Context) (code string, complete func(context.Context) (uint32, error), err error) {
	if c.d.ID != 1 {
		return "", nil, errors.New("client: only the primary device links companions")
	}
	secret := make([]byte, devices.LinkSecretSize)
	if _, err := io.ReadFull(c.d.rand, secret); err != nil {
		return "", nil, err
	}
	linkID, macKey, err := devices.LinkKeys(secret)
	if err != nil {
		return "", nil, err
	}
	if err := c.call(ctx, wire.FrameOpenLink, &wire.OpenLink{LinkID: linkID}, new(wire.Empty)); err != nil {
		return "", nil, err
	}
	code = devices.LinkCode(c.d.Account, secret, c.d.identity.Public())
	complete = func(ctx context.Context) (uint32, error) {
		var n *wire.LinkNotice
		select {
		case n = <-c.links:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-c.closed:
			return 0, errors.New("client: connection closed")
		}
		if !bytes.Equal(n.LinkID, linkID) {
			return 0, errcode.StateUnknownLink
		}
		ck, err := keys.DecodePublicKey(n.IdentityKey)
		if err != nil || !bytes.Equal(devices.LinkMAC(macKey, linkID, ck), n.MAC) && !faults.Has(faults.SkipLinkMAC) {
			c.call(ctx, wire.FrameAnswerLink, &wire.AnswerLink{LinkID: linkID}, new(wire.Empty))
			return 0, fmt.Errorf("client: the companion's request does not carry the code: %w", errcode.AuthLinkRefused)
		}
		cur := c.d.DeviceList(c.d.Account)
		if cur == nil {
			return 0, errors.New("client: no device list yet")
		}
		listed := append(slices.Clone(cur.Devices), wire.ListedDevice{Device: n.Device, IdentityKey: n.IdentityKey})
		l, err := devices.Sign(c.d.identity, c.d.Account, cur.Serial+1, listed, uint64(c.d.now().UnixMilli()), c.d.rand)
		if err != nil {
			return 0, err
		}
		if err := c.call(ctx, wire.FrameAnswerLink, &wire.AnswerLink{LinkID: linkID, DeviceList: &l.Signed}, new(wire.Empty)); err != nil {
			return 0, err
		}
		if err := c.ownList(l.Signed); err != nil {
			return 0, err
		}
		// The history is what this device holds now; what comes later
		// reaches the companion through transcripts.
		ms, err := c.d.Messages("")
		if err != nil {
			return 0, err
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.sendHistory(uint32(n.Device), ms); err != nil {
				c.emit(Event{Kind: EventError, Err: fmt.Errorf("history for device %d: %w", n.Device, err)})
			}
		}()
		return uint32(n.Device), nil
	}
	return code, complete, nil
}

// sendHistory waits until a new companion is reachable, then sends it the
// most recent messages, at most HISTORY_LIMIT (spec section 15.5), as
// history content to this account's devices.
func (c *Conn) sendHistory(device uint32, ms []*Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		err := c.fetch(ctx, c.d.Account, []uint32{device})
		if err == nil {
			break
		}
		if !errors.Is(err, errcode.AuthUnknownDevice) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// View-once media never leaves the device (MED-008), what was
	// deleted for everyone is gone, and a message with a timer would not
	// disappear on the companion: a history entry cannot carry one
	// (DEV-021).
	ms = slices.DeleteFunc(ms, func(m *Message) bool {
		return m.Deleted || (m.Media != nil && m.Media.ViewOnce != nil) || m.Expire > 0
	})
	// The deletions of the last MAX_TTL + MAX_SENT_AHEAD go first
	// (DEV-023): a message deleted here before the link, resent since
	// (DEV-022: for MAX_TTL after its sent-at, which may be a day ahead)
	// and fanned out to the new list, must find the companion knowing of
	// its deletion.
	var marks wire.DeletedSync
	c.d.db.View(func(tx *bolt.Tx) error {
		marks = recentDeletions(tx, c.d.now().Add(-time.Duration(wire.MaxTTL)*time.Second-maxSentAhead))
		return nil
	})
	for start := 0; start < len(marks); start += wire.MaxReceiptIDs {
		ds := marks[start:min(len(marks), start+wire.MaxReceiptIDs)]
		if err := c.sendOwn(ctx, &wire.Content{Type: wire.ContentDeleted, Deleted: &ds}); err != nil {
			return err
		}
	}
	ms = ms[max(0, len(ms)-wire.HistoryLimit):]
	for start := 0; start < len(ms); start += wire.MaxHistoryPerEntry {
		var h wire.History
		for _, m := range ms[start:min(len(ms), start+wire.MaxHistoryPerEntry)] {
			st := uint64(m.Overall())
			if !m.Outgoing {
				st = 0
				if m.Read {
					st = uint64(StatusRead)
				}
			}
			// The text as shown, its latest edit applied (DEV-021).
			h = append(h, wire.HistoryEntry{MessageID: m.ID, Account: m.Peer, Outgoing: m.Outgoing, Text: m.Shown(), SentAt: m.SentAt, Status: st})
		}
		// Sent now, not owed: the companion may not be reachable after
		// this connection.
		if err := c.sendOwn(ctx, &wire.Content{Type: wire.ContentHistory, History: &h}); err != nil {
			return err
		}
	}
	return nil
}

// sendOwn sends content to this account's other devices now, not owed.
func (c *Conn) sendOwn(ctx context.Context, content *wire.Content) error {
	own, err := c.stampedOwn(content)
	if err != nil {
		return err
	}
	for _, e := range own {
		if _, _, err := c.deliverContent(ctx, e.Account, e.Type, e.Content, DefaultTTL); err != nil {
			return err
		}
	}
	return nil
}

// Delete deletes a message of the conversation with peer on this device
// and, through deleted content, on the account's other devices.
func (c *Conn) Delete(ctx context.Context, peer string, id []byte) error {
	// The deleted content is owed from the deletion on (DEV-022).
	ds := wire.DeletedSync{{Account: peer, MessageID: id}}
	owed, err := c.stampedOwn(&wire.Content{Type: wire.ContentDeleted, Deleted: &ds})
	if err != nil {
		return err
	}
	if faults.Has(faults.DeleteUnsynced) {
		owed = nil
	}
	return c.recordOwing(ctx, owed, func(tx *bolt.Tx) error { return deleteMessage(tx, peer, id, c.d.now()) })
}

// Unlink removes a companion from the account (spec section 15.4).
func (c *Conn) Unlink(ctx context.Context, device uint32) error {
	if c.d.ID != 1 || device == 1 {
		return errors.New("client: only the primary unlinks, and not itself")
	}
	cur := c.d.DeviceList(c.d.Account)
	if cur == nil {
		return errors.New("client: no device list yet")
	}
	var kept []wire.ListedDevice
	for _, dev := range cur.Devices {
		if dev.Device != uint64(device) {
			kept = append(kept, dev)
		}
	}
	if len(kept) == len(cur.Devices) {
		return fmt.Errorf("client: device %d is not linked", device)
	}
	l, err := devices.Sign(c.d.identity, c.d.Account, cur.Serial+1, kept, uint64(c.d.now().UnixMilli()), c.d.rand)
	if err != nil {
		return err
	}
	if err := c.call(ctx, wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: l.Signed}, new(wire.Empty)); err != nil {
		return err
	}
	return c.ownList(l.Signed)
}

// LinkCompanion makes a new companion device in dir from a link code: it
// asks the server at addr to link it, waits for the primary, and checks
// the device list it gets (DEV-008). The user runs the primary's side at
// the same time.
func LinkCompanion(ctx context.Context, dir, code, addr string, cfg Config) (*Device, error) {
	cfg = cfg.orDefault()
	account, secret, fp, err := devices.ParseLinkCode(code)
	if err != nil {
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
	linkID, macKey, err := devices.LinkKeys(secret)
	if err != nil {
		return nil, err
	}
	nc, err := transport.Dialer().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	tc, err := transport.Client(nc, &transport.ClientConfig{Static: noise.DHKey{Private: tk.Private, Public: tk.Public}, Rand: cfg.Rand, Timeouts: transport.Timeouts{Idle: devicesLinkWait}})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	defer tc.Close()
	req := &wire.LinkRequest{LinkID: linkID, IdentityKey: ik.Public().Encode(), MAC: devices.LinkMAC(macKey, linkID, ik.Public())}
	var res wire.LinkResult
	if err := tc.Call(wire.FrameLinkRequest, 1, req, &res); err != nil {
		return nil, fmt.Errorf("client: link: %w", err)
	}
	l, err := devices.Parse(res.DeviceList, account)
	if err != nil {
		return nil, err
	}
	me, ok := l.Device(uint32(res.Device))
	if !bytes.Equal(devices.ShortFingerprint(l.Primary()), fp) || !ok || !me.Equal(ik.Public()) {
		return nil, fmt.Errorf("client: the device list is not from the code's primary, or does not list this device: %w", errcode.AuthDeviceListInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := openDB(filepath.Join(dir, dbFile))
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for k, v := range map[string][]byte{
			"account": []byte(account), "device": u32(uint32(res.Device)), "server": []byte(addr),
			"identity": ik.Encode(), "transport": tk.Private, "server-key": tc.RemoteStatic(),
		} {
			if err := putConfig(tx, k, v); err != nil {
				return err
			}
		}
		_, err := accept(tx, account, res.DeviceList)
		return err
	})
	db.Close()
	if err != nil {
		return nil, err
	}
	return Open(dir, cfg)
}

// devicesLinkWait is how long a companion waits for its primary.
const devicesLinkWait = 10 * time.Minute

// checkBundle checks that a bundle's identity key is the one the device
// list gives for the device (DEV-004), and starts a session with it.
func checkBundle(d *Device, l *devices.List, device uint32, bundle []byte) (*session.Session, error) {
	b, err := pqxdh.ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	listed, ok := l.Device(device)
	if !ok || !listed.Equal(b.IdentityKey) {
		return nil, fmt.Errorf("client: %s/%d: %w", l.Account, device, errcode.AuthDeviceNotListed)
	}
	return session.InitiateVerified(d.rand, d.identity, b)
}

// keepReceipt keeps a receipt for a message not known yet, dropping the
// oldest beyond MaxPendingReceipts (DEV-015).
func keepReceipt(tx *bolt.Tx, from wire.Address, kind uint64, id []byte) error {
	b := tx.Bucket(bucketPending)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v := append(append(append(u32(uint32(from.Device)), byte(kind)), id...), from.Account...)
	if err := b.Put(u64(seq), v); err != nil {
		return err
	}
	if b.Stats().KeyN >= MaxPendingReceipts {
		k, _ := b.Cursor().First()
		return b.Delete(k)
	}
	return nil
}

// applyPending applies the kept receipts for a message that became known.
func applyPending(tx *bolt.Tx, id []byte) ([]*Message, error) {
	b := tx.Bucket(bucketPending)
	var (
		changed []*Message
		done    [][]byte
	)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) < 5+len(id) || !bytes.Equal(v[5:5+len(id)], id) {
			continue
		}
		from := wire.Address{Account: string(v[5+len(id):]), Device: uint64(uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]))}
		ms, err := applyReceipt(tx, from, &wire.Receipt{Kind: uint64(v[4]), MessageIDs: [][]byte{bytes.Clone(id)}})
		if err != nil {
			return nil, err
		}
		changed = append(changed, ms...)
		done = append(done, bytes.Clone(k))
	}
	for _, k := range done {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return changed, nil
}

// deleted reports whether a message was deleted here.
func deleted(tx *bolt.Tx, account string, id []byte) bool {
	return tx.Bucket(bucketDeleted).Get(convKey(account, id)) != nil
}

// applySync applies content from another device of this account (spec
// section 15.5), as joins (DEV-016).
func (d *Device) applySync(tx *bolt.Tx, c *wire.Content) ([]*Message, error) {
	var changed []*Message
	switch c.Type {
	case wire.ContentSent:
		var inner wire.Content
		if err := wire.Unmarshal(c.Transcript.Content, &inner); err != nil {
			return nil, nil
		}
		to := c.Transcript.Recipient
		conv := Conv{Peer: to}
		switch inner.Type {
		case wire.ContentEdit, wire.ContentDelete:
			m, err := d.applyChange(tx, conv, d.Account, &inner)
			if err != nil || m == nil {
				return nil, nil // a dropped change changes nothing
			}
			return []*Message{m}, nil
		case wire.ContentTimer:
			return nil, setTimer(tx, conv, history.Register{SentAt: inner.SentAt, ID: inner.MessageID, Value: *inner.Timer})
		case wire.ContentText, wire.ContentMedia:
		default:
			return nil, nil
		}
		if m, _ := sentMessage(tx, inner.MessageID); m != nil || deleted(tx, to, inner.MessageID) {
			return nil, nil
		}
		m := &Message{ID: inner.MessageID, Outgoing: true, Peer: to, SentAt: inner.SentAt,
			TTL: DefaultTTL, Statuses: map[uint32]Status{}, Type: inner.Type, Media: inner.Media}
		if inner.Text != nil {
			m.Text = *inner.Text
		}
		if inner.Media != nil && inner.Media.Caption != nil {
			m.Text = *inner.Media.Caption
		}
		if inner.Expire != nil {
			m.Expire = *inner.Expire
		}
		if l := list(tx, to); l != nil {
			for _, id := range l.IDs() {
				m.Statuses[id] = StatusSent
			}
		}
		if err := putMessage(tx, m); err != nil {
			return nil, err
		}
		// The kept changes apply first, so that what is shown is the
		// message as they left it (LIF-004, LIF-005).
		m, err := d.applyKept(tx, m)
		if err != nil {
			return nil, err
		}
		more, err := applyPending(tx, m.ID)
		if err != nil {
			return nil, err
		}
		if len(more) > 0 {
			return more, nil
		}
		return []*Message{m}, nil
	case wire.ContentOpened:
		for _, cm := range *c.Opened {
			if err := markOpened(tx, cm.Account, cm.MessageID, d.now()); err != nil {
				return nil, err
			}
		}
	case wire.ContentRead:
		for _, cm := range *c.Read {
			if err := putMark(tx, bucketRead, cm.Account, cm.MessageID, d.now()); err != nil {
				return nil, err
			}
			m, err := incoming(tx, cm.Account, cm.MessageID)
			if err != nil || m == nil || m.Read {
				continue
			}
			m.Read = true
			if err := putMessage(tx, m); err != nil {
				return nil, err
			}
		}
	case wire.ContentDeleted:
		if faults.Has(faults.IgnoreDeletedSync) {
			break
		}
		for _, cm := range *c.Deleted {
			if err := deleteMessage(tx, cm.Account, cm.MessageID, d.now()); err != nil {
				return nil, err
			}
		}
	case wire.ContentHistory:
		for _, e := range *c.History {
			if deleted(tx, e.Account, e.MessageID) {
				continue
			}
			if e.Outgoing {
				if m, _ := sentMessage(tx, e.MessageID); m != nil {
					continue
				}
				m := &Message{ID: e.MessageID, Outgoing: true, Peer: e.Account, Text: e.Text, SentAt: e.SentAt,
					Statuses: map[uint32]Status{0: Status(e.Status)}}
				if err := d.putHistory(tx, m); err != nil {
					return nil, err
				}
				continue
			}
			if m, _ := incoming(tx, e.Account, e.MessageID); m != nil {
				continue
			}
			m := &Message{ID: e.MessageID, Peer: e.Account, Text: e.Text, SentAt: e.SentAt,
				Read: Status(e.Status) >= StatusRead || readMark(tx, e.Account, e.MessageID), FromHistory: true}
			if err := d.putHistory(tx, m); err != nil {
				return nil, err
			}
		}
	}
	return changed, nil
}

// putHistory stores a message from a history, and applies the changes
// kept for it: an edit or a delete that came first (LIF-004, LIF-005).
func (d *Device) putHistory(tx *bolt.Tx, m *Message) error {
	if err := putMessage(tx, m); err != nil {
		return err
	}
	_, err := d.applyKept(tx, m)
	return err
}

// incoming finds a received message by its sender account and id.
func incoming(tx *bolt.Tx, account string, id []byte) (*Message, error) {
	v := tx.Bucket(bucketReceived).Get(convKey(account, id))
	if len(v) != 8 {
		return nil, nil
	}
	m, err := getMessage(tx, binary.BigEndian.Uint64(v))
	if err != nil || m == nil || m.Outgoing || m.Peer != account || !bytes.Equal(m.ID, id) {
		return nil, err
	}
	return m, nil
}

// deleteMessage deletes here, at now, the messages of the one-to-one
// conversation with account that have id, and keeps a mark of the
// deletion with its time, so that nothing brings them back (DEV-023).
// Both directions: ids are chosen by their senders, so the peer may have
// given a message of hers the id of one she was sent.
func deleteMessage(tx *bolt.Tx, account string, id []byte, now time.Time) error {
	if !faults.Has(faults.DeletionUnmarked) {
		if err := putMark(tx, bucketDeleted, account, id, now); err != nil {
			return err
		}
	}
	if m, _ := sentMessage(tx, id); m != nil && m.Peer == account && m.Group == nil {
		if err := dropMessage(tx, m); err != nil {
			return err
		}
	}
	if m, _ := incoming(tx, account, id); m != nil && m.Group == nil {
		return dropMessage(tx, m)
	}
	return nil
}

// recentDeletions returns the marks of the deletions made or learned of
// here since since: a mark of an older version, without its time, is
// taken as recent.
func recentDeletions(tx *bolt.Tx, since time.Time) wire.DeletedSync {
	var marks wire.DeletedSync
	tx.Bucket(bucketDeleted).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i <= 0 || (len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < since.UnixMilli()) {
			return nil
		}
		marks = append(marks, wire.ConversationMessage{Account: string(k[:i]), MessageID: bytes.Clone(k[i+1:])})
		return nil
	})
	return marks
}
