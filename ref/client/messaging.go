package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// maxFanoutRetries is how many times a send is corrected after the server
// reports a fan-out mismatch.
const maxFanoutRetries = 3

func sortedAccounts(a []string) []string {
	a = slices.Clone(a)
	slices.Sort(a)
	return slices.Compact(a)
}

// sessionDevices returns the devices of account this device has sessions
// with.
func (d *Device) sessionDevices(tx *bolt.Tx, account string) []uint32 {
	var out []uint32
	c := tx.Bucket(bucketSessions).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > 4 && string(k[4:]) == account && !d.initiatedLongAgo(tx, k) {
			out = append(out, binary.BigEndian.Uint32(k))
		}
	}
	slices.Sort(out)
	return out
}

// bucketInitiated holds when this device fetched the bundle of each
// session it initiated and has decrypted nothing in yet (PQX-014):
// session key -> u64be time (ms).
var bucketInitiated = []byte("initiated")

func init() { allBuckets = append(allBuckets, bucketInitiated) }

// initiatedLongAgo reports whether the session stored under key was
// initiated from a bundle fetched PREKEY_SESSION_AGE ago or more and has
// decrypted nothing since: the device uses it no more, as if it had none,
// and fetches a new bundle (PQX-014).
func (d *Device) initiatedLongAgo(tx *bolt.Tx, key []byte) bool {
	v := tx.Bucket(bucketInitiated).Get(key)
	if len(v) != 8 || faults.Has(faults.KeepPendingSession) {
		return false
	}
	// A fetch at a time the clock has since gone back before counts as
	// long ago: the clock ran ahead then, and its age says nothing.
	age := d.now().UnixMilli() - int64(binary.BigEndian.Uint64(v))
	return age >= wire.PrekeySessionAge*1000 || age < 0
}

// bucketPrevious holds the session a fetch (PQX-014) or a prekey message
// replaced, for decrypting, until a time (PQX-016): session key -> u64be
// time (ms) || stored session. The peer may have answered in it before it
// took the new session's first message, or initiated the new one while
// this device initiated the old one; a message that decrypts in it makes
// it the current session again.
var bucketPrevious = []byte("previous")

func init() { allBuckets = append(allBuckets, bucketPrevious) }

// previousKept is how long a replaced session decrypts: the life of a
// message the peer made in it before it took the new one.
const previousKept = time.Duration(wire.MaxTTL)*time.Second + maxSentAhead

// keepPrevious keeps the session stored under key, about to be replaced,
// for decrypting until previousKept from now.
func (d *Device) keepPrevious(tx *bolt.Tx, key []byte) error {
	old := tx.Bucket(bucketSessions).Get(key)
	if old == nil {
		return nil
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(d.now().Add(previousKept).UnixMilli()))
	if err := tx.Bucket(bucketPrevious).Put(key, append(v, old...)); err != nil {
		return err
	}
	return d.setHeard(tx, bucketHeardKept, key, d.lastHeard(tx, bucketHeard, key)) // its latest goes with it
}

// previous returns the replaced session kept under key, if it is still
// kept at now.
func (d *Device) previous(tx *bolt.Tx, key []byte) *session.Session {
	v := tx.Bucket(bucketPrevious).Get(key)
	if len(v) < 8 || d.now().UnixMilli() >= int64(binary.BigEndian.Uint64(v)) {
		return nil
	}
	s := new(session.Session)
	if s.UnmarshalBinary(bytes.Clone(v[8:])) != nil {
		return nil
	}
	return s
}

// putPrevious stores s, which decrypted a message sent at sentAt, as the
// session kept under key: a session that was kept keeps its time; a new
// one is kept previousKept from now, in place of the kept one unless that
// one decrypted a message sent after sentAt (then s is dropped: its
// message was sent before any the device holds a session for).
func (d *Device) putPrevious(tx *bolt.Tx, key []byte, s *session.Session, isNew bool, sentAt uint64) error {
	kept := d.lastHeard(tx, bucketHeardKept, key)
	old := tx.Bucket(bucketPrevious).Get(key)
	if isNew && len(old) >= 8 && kept > sentAt && d.previous(tx, key) != nil {
		return nil
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(d.now().Add(previousKept).UnixMilli()))
	if !isNew && len(old) >= 8 {
		v = bytes.Clone(old[:8])
	}
	if isNew {
		kept = 0
	}
	if err := tx.Bucket(bucketPrevious).Put(key, append(v, b...)); err != nil {
		return err
	}
	return d.setHeard(tx, bucketHeardKept, key, max(kept, sentAt))
}

// bucketHeard holds, for the current session with each peer device, and
// bucketHeardKept for the session kept beside it, the latest sent-at (ms)
// of a message it decrypted: session key -> u64be. A message of the other
// session sent before the current one's latest does not make that session
// the current one (PQX-016).
var (
	bucketHeard     = []byte("heard")
	bucketHeardKept = []byte("heardkept")
)

func init() { allBuckets = append(allBuckets, bucketHeard, bucketHeardKept) }

// lastHeard returns the latest sent-at stored under key in bucket b (a
// bucketHeard), 0 when none, and no later than MAX_SENT_AHEAD from now: a
// sent-at further ahead (which only a server whose clock runs ahead lets
// through, SRV-023) would keep every later session of the peer from
// becoming current.
func (d *Device) lastHeard(tx *bolt.Tx, b, key []byte) uint64 {
	v := tx.Bucket(b).Get(key)
	if len(v) != 8 {
		return 0
	}
	return min(binary.BigEndian.Uint64(v), uint64(d.now().Add(maxSentAhead).UnixMilli()))
}

// setHeard stores sentAt under key in bucket b, no later than
// MAX_SENT_AHEAD from now (lastHeard).
func (d *Device) setHeard(tx *bolt.Tx, b, key []byte, sentAt uint64) error {
	return tx.Bucket(b).Put(key, u64(min(sentAt, uint64(d.now().Add(maxSentAhead).UnixMilli()))))
}

// forgetPrevious deletes the replaced sessions kept past their time, and
// brings a time more than previousKept ahead (set while the clock ran
// ahead) back to previousKept from now: a kept session is kept
// previousKept at most, counted from the present (PQX-016).
func (d *Device) forgetPrevious() error {
	now := d.now().UnixMilli()
	most := d.now().Add(previousKept).UnixMilli()
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrevious)
		var old, ahead [][]byte
		b.ForEach(func(k, v []byte) error {
			switch {
			case len(v) < 8 || now >= int64(binary.BigEndian.Uint64(v)):
				old = append(old, bytes.Clone(k))
			case int64(binary.BigEndian.Uint64(v)) > most:
				ahead = append(ahead, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(bucketHeardKept).Delete(k); err != nil {
				return err
			}
		}
		for _, k := range ahead {
			v := binary.BigEndian.AppendUint64(nil, uint64(most))
			if err := b.Put(k, append(v, b.Get(k)[8:]...)); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteSession deletes the session stored under key, with its time of
// initiation, the session it replaced and its latest sent-at.
func deleteSession(tx *bolt.Tx, key []byte) error {
	for _, b := range [][]byte{bucketInitiated, bucketPrevious, bucketHeard, bucketHeardKept} {
		if err := tx.Bucket(b).Delete(key); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketSessions).Delete(key)
}

func loadSession(tx *bolt.Tx, key []byte) (*session.Session, error) {
	v := tx.Bucket(bucketSessions).Get(key)
	if v == nil {
		return nil, nil
	}
	s := new(session.Session)
	if err := s.UnmarshalBinary(bytes.Clone(v)); err != nil {
		return nil, err
	}
	return s, nil
}

func storeSession(tx *bolt.Tx, key []byte, s *session.Session) error {
	b, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).Put(key, b)
}

// fetch creates sessions with the listed devices of account (every
// reachable device when devices is nil) from fresh prekey bundles.
func (c *Conn) fetch(ctx context.Context, account string, devices []uint32) error {
	req := &wire.PrekeyFetch{Account: account}
	if devices != nil {
		l := make([]uint64, len(devices))
		for i, d := range devices {
			l[i] = uint64(d)
		}
		req.Devices = &l
	}
	var res wire.FetchResult
	if err := c.call(ctx, wire.FrameFetchPrekeys, req, &res); err != nil {
		return err
	}
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.d.db.Update(func(tx *bolt.Tx) error {
		l, err := accept(tx, account, res.DeviceList)
		if err != nil {
			return err
		}
		for _, b := range res.Bundles {
			if account == c.d.Account && uint32(b.Device) == c.d.ID {
				continue
			}
			s, err := checkBundle(c.d, l, uint32(b.Device), b.Bundle)
			if err != nil {
				return fmt.Errorf("client: bundle of %s/%d: %w", account, b.Device, err)
			}
			key := addrKey(account, uint32(b.Device))
			if err := c.d.keepPrevious(tx, key); err != nil {
				return err
			}
			if err := storeSession(tx, key, s); err != nil {
				return err
			}
			// PQX-014: the session's age, until it decrypts something.
			if err := tx.Bucket(bucketInitiated).Put(key, u64(uint64(c.d.now().UnixMilli()))); err != nil {
				return err
			}
			if err := tx.Bucket(bucketHeard).Delete(key); err != nil { // it has decrypted nothing
				return err
			}
		}
		return nil
	})
}

// encryptFor encrypts plaintext for every device of account this device
// has a session with, leaving out skip, and stores the advanced sessions
// before returning (SES-002).
func (c *Conn) encryptFor(account string, skip uint32, plaintext []byte) ([]wire.DeviceMessage, error) {
	return c.encryptStoring(account, skip, plaintext, !faults.Has(faults.StoreSessionsLate))
}

// errNotStored rolls back the transaction of encryptStoring without store.
var errNotStored = errors.New("client: sessions not stored")

// encryptStoring is encryptFor, storing the advanced sessions only when
// store is set (the store-sessions-late fault stores them after the
// server's answer instead).
func (c *Conn) encryptStoring(account string, skip uint32, plaintext []byte, store bool) ([]wire.DeviceMessage, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	var out []wire.DeviceMessage
	err := c.d.db.Update(func(tx *bolt.Tx) error {
		for _, dev := range c.d.sessionDevices(tx, account) {
			if dev == skip {
				continue
			}
			key := addrKey(account, dev)
			s, err := loadSession(tx, key)
			if err != nil {
				return err
			}
			kind, msg, err := s.Encrypt(plaintext)
			if err != nil {
				return err
			}
			if err := storeSession(tx, key, s); err != nil {
				return err
			}
			k := uint64(wire.KindRatchet)
			if kind == session.KindPreKey {
				k = wire.KindPrekey
			}
			out = append(out, wire.DeviceMessage{Device: uint64(dev), Kind: k, Ciphertext: msg})
		}
		if !store {
			return errNotStored
		}
		return nil
	})
	if errors.Is(err, errNotStored) {
		err = nil
	}
	return out, err
}

// dropSessions deletes the sessions with devices the server says are gone.
func (c *Conn) dropSessions(account string, devices []uint64) error {
	return c.d.db.Update(func(tx *bolt.Tx) error {
		for _, dev := range devices {
			if err := deleteSession(tx, addrKey(account, uint32(dev))); err != nil {
				return err
			}
		}
		return nil
	})
}

// deliverContent encrypts content for every device of account and sends
// it, correcting the fan-out when the server reports a mismatch. It
// returns the acceptance time and the devices it reached.
func (c *Conn) deliverContent(ctx context.Context, account string, typ uint64, content *wire.Content, ttl uint64) (uint64, []uint32, error) {
	pt, err := wire.Marshal(content)
	if err != nil {
		return 0, nil, err
	}
	skip := uint32(0)
	if account == c.d.Account {
		skip = c.d.ID
	}
	var known []uint32
	var own *devices.List
	c.d.db.View(func(tx *bolt.Tx) error {
		known = c.d.sessionDevices(tx, account)
		own = list(tx, c.d.Account)
		return nil
	})
	switch {
	case len(known) == 0 && account != c.d.Account:
		if err := c.fetch(ctx, account, nil); err != nil {
			return 0, nil, err
		}
	case account == c.d.Account && own != nil:
		// Fetch the own devices without a session, if any.
		var missing []uint32
		for _, id := range own.IDs() {
			if id != c.d.ID && !slices.Contains(known, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			if err := c.fetch(ctx, account, missing); err != nil && !errors.Is(err, errcode.AuthUnknownDevice) {
				return 0, nil, err
			}
		}
	}
	for attempt := 0; ; attempt++ {
		msgs, err := c.encryptFor(account, skip, pt)
		if err != nil {
			return 0, nil, err
		}
		if len(msgs) == 0 && account != c.d.Account && attempt < maxFanoutRetries {
			// Every session with the account became too old to use
			// since the look before (PQX-014): new ones.
			if err := c.fetch(ctx, account, nil); err != nil {
				return 0, nil, err
			}
			continue
		}
		if len(msgs) == 0 {
			return 0, nil, nil // no other device to tell
		}
		env := &wire.Envelope{Version: wire.ProtocolVersion, MessageID: content.MessageID, Sender: c.d.Address(),
			Recipient: account, Messages: msgs, Type: typ, Priority: wire.PriorityNormal, TTL: ttl, SentAt: content.SentAt}
		var res wire.SendResult
		err = c.call(ctx, wire.FrameSend, env, &res)
		var re *transport.RemoteError
		if errors.As(err, &re) && re.Body.Fanout != nil && attempt < maxFanoutRetries {
			f := re.Body.Fanout
			if re.Body.DeviceList != nil {
				// The current list drops the sessions it leaves out (DEV-011).
				err := c.d.db.Update(func(tx *bolt.Tx) error {
					_, err := accept(tx, account, *re.Body.DeviceList)
					return err
				})
				if err != nil {
					return 0, nil, err
				}
			}
			if err := c.dropSessions(account, append(slices.Clone(f.Extra), f.Stale...)); err != nil {
				return 0, nil, err
			}
			if len(f.Missing) > 0 {
				missing := make([]uint32, len(f.Missing))
				for i, m := range f.Missing {
					missing[i] = uint32(m)
				}
				if err := c.fetch(ctx, account, missing); err != nil {
					return 0, nil, err
				}
			}
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if faults.Has(faults.StoreSessionsLate) {
			// The sessions advance in the store only now that the server
			// has answered (encryption is deterministic: the same step).
			if _, err := c.encryptStoring(account, skip, pt, true); err != nil {
				return 0, nil, err
			}
		}
		devs := make([]uint32, len(msgs))
		for i, m := range msgs {
			devs[i] = uint32(m.Device)
		}
		return res.AcceptedAt, devs, nil
	}
}

func (c *Conn) newID() ([]byte, error) { return c.d.newID() }

// newID returns a message id from the device's random source (MSG-002).
func (d *Device) newID() ([]byte, error) {
	id := make([]byte, wire.MessageIDSize)
	if faults.Has(faults.ClockMessageIDs) {
		binary.BigEndian.PutUint64(id, uint64(d.now().UnixMilli()))
		binary.BigEndian.PutUint64(id[8:], clockIDs.Add(1))
		return id, nil
	}
	_, err := io.ReadFull(d.rand, id)
	return id, err
}

// clockIDs counts the ids of the clock-message-ids fault.
var clockIDs atomic.Uint64

// Send sends a text message to account and returns it once the server has
// accepted it (its status is then sent).
func (c *Conn) Send(ctx context.Context, account, text string) (*Message, error) {
	return c.SendTo(ctx, Conv{Peer: account}, text)
}

// Resend sends again a text message this device sent, with the same
// message id, as a device does when it lost the server's answer to the
// first send. The server, which remembers accepted ids (SRV-008), stores
// it once; a recipient shows it once either way (CLI-001).
func (c *Conn) Resend(ctx context.Context, id []byte) error {
	m, err := c.d.Sent(id)
	if err != nil {
		return err
	}
	content := &wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentText, MessageID: m.ID, SentAt: m.SentAt, Text: &m.Text}
	accepted, devs, err := c.deliverContent(ctx, m.Peer, wire.EnvelopeChat, content, DefaultTTL)
	if err != nil {
		return err
	}
	// The first acceptance this device learns of owes the sent
	// transcript: the first send's answer may have been lost before it
	// was owed.
	return c.acceptedSent(ctx, m, m.Peer, content, accepted, devs)
}

// acceptedSent records the server's first acceptance of a message this
// device sent to account (m nil: content with no record of its own, such
// as an edit) and owes its sent transcript in the same transaction
// (DEV-018, DEV-022), then sends what is owed. A later acceptance of the
// same message (a resend's) records and owes nothing.
func (c *Conn) acceptedSent(ctx context.Context, m *Message, account string, content *wire.Content, accepted uint64, devs []uint32) error {
	owed, err := c.oweSent(account, content)
	if err != nil {
		return err
	}
	return c.recordOwing(ctx, nil, func(tx *bolt.Tx) error {
		if m == nil {
			return putOwed(tx, owed...)
		}
		cur, err := getMessage(tx, m.Seq)
		if err != nil || cur == nil || cur.Accepted != 0 {
			return err
		}
		cur.Accepted = accepted
		for _, dev := range devs {
			cur.Statuses[dev] = raise(cur.Statuses[dev], StatusSent)
		}
		if err := putMessage(tx, cur); err != nil {
			return err
		}
		*m = *cur
		return putOwed(tx, owed...)
	})
}

// oweSent returns the sent transcript of content sent to account, owed
// to this account's other devices (spec section 15.5).
func (c *Conn) oweSent(account string, content *wire.Content) ([]outboxEntry, error) {
	if faults.Has(faults.NoOwnFanout) {
		return nil, nil
	}
	inner, err := wire.Marshal(content)
	if err != nil {
		return nil, err
	}
	return c.stampedOwn(&wire.Content{Type: wire.ContentSent, Transcript: &wire.SentTranscript{Recipient: account, Content: inner}})
}

// receipts returns the receipt contents of a kind for ids, at most
// MAX_RECEIPT_IDS each, not yet stamped with a message id and sent-at.
func receipts(kind uint64, ids [][]byte) []*wire.Content {
	var out []*wire.Content
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxReceiptIDs)
		batch := slices.Clone(ids[:n])
		ids = ids[n:]
		slices.SortFunc(batch, bytes.Compare)
		batch = slices.CompactFunc(batch, bytes.Equal)
		out = append(out, &wire.Content{Type: wire.ContentReceipt, Receipt: &wire.Receipt{Kind: kind, MessageIDs: batch}})
	}
	return out
}

// sendReceipt sends a receipt of the given kind for ids to account, now.
func (c *Conn) sendReceipt(ctx context.Context, account string, kind uint64, ids [][]byte) error {
	for _, content := range receipts(kind, ids) {
		e, err := c.d.stamped(account, wire.EnvelopeReceipt, content)
		if err != nil {
			return err
		}
		if _, _, err := c.deliverContent(ctx, account, e.Type, e.Content, DefaultTTL); err != nil {
			return err
		}
	}
	return nil
}

// MarkRead sends read receipts for the incoming messages from peer that
// have none yet, and returns how many it marked.
func (c *Conn) MarkRead(ctx context.Context, peer string) (int, error) {
	var unread []*Message
	c.d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if cborDec.Unmarshal(v, &m) == nil && !m.Outgoing && !m.Read && m.Peer == peer && m.Group == nil {
				unread = append(unread, &m)
			}
			return nil
		})
	})
	return c.markRead(ctx, unread)
}

// markRead sends one read receipt per message to its sender account, from
// here, tells this account's other devices (DEV-012), and records the
// messages as read.
func (c *Conn) markRead(ctx context.Context, ms []*Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	// The read receipts and the read content are owed from the moment the
	// messages are recorded as read (DEV-012, DEV-022), for those that
	// this transaction marks: not one that is gone, or that another call
	// or device marked read first (a read receipt goes once per message).
	tellOwn := c.d.hasOtherOwn() // read before the write: no read transaction inside it
	marked := 0
	err := c.recordOwing(ctx, nil, func(tx *bolt.Tx) error {
		marked = 0
		by := map[string][][]byte{}
		var (
			peers []string
			rs    wire.ReadSync
		)
		for _, seen := range ms {
			m, err := getMessage(tx, seen.Seq)
			if err != nil {
				return err
			}
			if m == nil || m.Read {
				continue
			}
			m.Read, marked = true, marked+1
			if err := putMessage(tx, m); err != nil {
				return err
			}
			if by[m.Peer] == nil {
				peers = append(peers, m.Peer)
			}
			by[m.Peer] = append(by[m.Peer], m.ID)
			rs = append(rs, wire.ConversationMessage{Account: m.Peer, MessageID: m.ID})
		}
		var owed []outboxEntry
		for _, peer := range peers {
			for _, content := range receipts(wire.ReceiptRead, by[peer]) {
				e, err := c.d.stamped(peer, wire.EnvelopeReceipt, content)
				if err != nil {
					return err
				}
				owed = append(owed, e)
			}
		}
		for start := 0; tellOwn && start < len(rs); start += wire.MaxReceiptIDs {
			batch := slices.Clone(rs[start:min(len(rs), start+wire.MaxReceiptIDs)])
			e, err := c.d.stamped(c.d.Account, wire.EnvelopeSync, &wire.Content{Type: wire.ContentRead, Read: &batch})
			if err != nil {
				return err
			}
			owed = append(owed, e)
		}
		return putOwed(tx, owed...)
	})
	if err != nil {
		return 0, err
	}
	return marked, nil
}

// deliveryLoop processes deliveries one at a time (spec section 14.1).
func (c *Conn) deliveryLoop() {
	defer c.wg.Done()
	// Events closes after the last message this loop stored is shown: one
	// stored as the connection ends is shown all the same, since its
	// redelivery is a duplicate (CLI-001) and is not shown again.
	defer c.closeEvents()
	for {
		select {
		case <-c.closed:
			return
		case del := <-c.deliveries:
			if c.d.onDelivery != nil && !c.d.onDelivery(del) {
				continue // dropped unread and unacknowledged (Config.OnDelivery)
			}
			if del.Kind == wire.KindPrekey {
				if err := c.refreshList(del); err != nil {
					var cf connFailure
					if errors.As(err, &cf) {
						// The connection failed: the delivery, not
						// acknowledged, comes again on the next one.
						c.shutdown(cf.error)
						return
					}
					// The server's answer, or a list that fails DEV-001:
					// receive refuses the message (DEV-020).
					c.emit(Event{Kind: EventError, Err: err})
				}
			}
			msg, receipt, err := c.d.receive(del)
			if faults.Has(faults.ReceiptForReceipt) && err == nil && del.Type == wire.EnvelopeReceipt && del.Sender.Account != c.d.Account {
				ctx, cancel := context.WithTimeout(context.Background(), c.d.requestTimeout())
				c.sendReceipt(ctx, del.Sender.Account, wire.ReceiptDelivered, [][]byte{del.MessageID})
				cancel()
			}
			var gap errGroupGap
			if errors.As(err, &gap) && gap.update && c.d.updateThrottled(del.Sender.Account) {
				// GRP-017: group-update content, or a sender key, of an
				// account whose such content made the device fetch in vain
				// within GROUP_UPDATE_INTERVAL is done, unfetched.
				err = c.d.recordFailure(del, nil)
			} else if errors.As(err, &gap) {
				// GRP-003: fetch the missing group states, then again.
				update := gap.update
				ctx, cancel := context.WithTimeout(context.Background(), c.d.requestTimeout())
				synced := c.syncGroup(ctx, gap.gid, gap.from)
				switch err = synced; {
				case synced == nil:
					msg, receipt, err = c.d.receive(del)
				case localFailure(synced) == nil:
					// The server refused the fetch: the content fails
					// (MSG-015), and a resend of it fetches nothing.
					err = c.d.recordFailure(del, synced)
				}
				cancel()
				stillGap := errors.As(err, &gap)
				if stillGap {
					err = c.d.recordFailure(del, err)
				}
				short := synced != nil || stillGap
				// GRP-017: a fetch that did not reach the content's
				// version (a content refused once the states reached it
				// does not count).
				if update && short && localFailure(err) == nil {
					c.d.fetchedInVain(del.Sender.Account)
				}
			}
			if local := localFailure(err); local != nil {
				// Not a failure of the message (MSG-015) but of this
				// device's connection or store: acknowledged, the
				// message would be lost. It is not: the delivery comes
				// again on the next connection.
				c.emit(Event{Kind: EventError, Err: fmt.Errorf("message %x from %s/%d, not acknowledged: %w", del.MessageID, del.Sender.Account, del.Sender.Device, err)})
				c.shutdown(local)
				return
			}
			if err != nil {
				c.emit(Event{Kind: EventError, Err: fmt.Errorf("message %x from %s/%d: %w", del.MessageID, del.Sender.Account, del.Sender.Device, err)})
			}
			// Acknowledge after storing (MSG-014), failures included (MSG-015).
			ackErr := c.tc.Send(wire.FrameAck, 0, &wire.Ack{QueueIDs: []uint64{del.QueueID}})
			switch {
			case msg != nil && msg.Outgoing:
				c.emit(Event{Kind: EventMessage, Message: msg}) // sent by another device of this account
			case msg != nil:
				// The delivered receipt goes before the message is shown,
				// so that a caller that stops at the message (listen -n 1)
				// does not close the connection under the receipt.
				if ackErr == nil {
					ctx, cancel := context.WithTimeout(context.Background(), c.d.requestTimeout())
					c.sendOwedSoon(ctx) // the delivered receipt, owed with the message
					cancel()
				}
				if !history.Expired(msg.SentAt, msg.Expire, uint64(c.d.now().UnixMilli())) {
					c.emit(Event{Kind: EventMessage, Message: msg})
				}
			case receipt != nil:
				for _, m := range receipt {
					c.emit(Event{Kind: EventStatus, Message: m})
				}
			}
			if ackErr != nil {
				c.shutdown(ackErr)
				return
			}
		}
	}
}

// oweDelivered owes account the delivered receipt of message id, in the
// transaction that stores the message (section 14.1, step 5; DEV-022): a
// receipt lost with the connection would never go, since the message's
// redelivery is a duplicate.
func (d *Device) oweDelivered(tx *bolt.Tx, account string, id []byte) error {
	for _, content := range receipts(wire.ReceiptDelivered, [][]byte{id}) {
		e, err := d.stamped(account, wire.EnvelopeReceipt, content)
		if err != nil {
			return err
		}
		if err := putOwed(tx, e); err != nil {
			return err
		}
	}
	return nil
}

// receive decrypts and stores one delivery in one transaction. It returns
// the new message, or the sent messages whose status a receipt changed, or
// nothing for a duplicate.
func (d *Device) receive(del *wire.Delivery) (*Message, []*Message, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var (
		msg     *Message
		changed []*Message
	)
	sender := addrKey(del.Sender.Account, uint32(del.Sender.Device))
	processedKey := append(slices.Clone(sender), del.MessageID...)
	err := d.db.Update(func(tx *bolt.Tx) error {
		processed := tx.Bucket(bucketProcessed)
		if old := processed.Get(processedKey); old != nil && !faults.Has(faults.NoDedup) {
			// A duplicate: already shown (CLI-001). One the server accepted
			// again (a resend after it forgot the first) keeps the pair
			// until MAX_TTL after its own expiry (forgetProcessed).
			if until := d.processedUntil(del); len(old) == 8 && binary.BigEndian.Uint64(old) < until {
				return processed.Put(processedKey, u64(until))
			}
			return nil
		}
		if err := processed.Put(processedKey, u64(d.processedUntil(del))); err != nil {
			return err
		}
		var (
			pt  []byte
			err error
			gm  *group.Message
		)
		if del.Kind == wire.KindGroup {
			pt, gm, err = d.decryptGroup(tx, del)
		} else {
			pt, err = d.decrypt(tx, sender, del)
		}
		var gap errGroupGap
		if errors.As(err, &gap) {
			return err
		}
		if err != nil {
			return errFailed{err}
		}
		var content wire.Content
		if err := wire.Unmarshal(pt, &content); err != nil {
			return errFailed{err}
		}
		if !bytes.Equal(content.MessageID, del.MessageID) || content.SentAt != del.SentAt {
			return errFailed{errcode.AuthContentMismatch}
		}
		// MSG-020, MSG-021: each type in its own envelope type, and keys
		// and group changes never in a group message.
		control := content.Type == wire.ContentSenderKey || content.Type == wire.ContentGroupUpdate
		if wire.EnvelopeOf(content.Type) != del.Type && !faults.Has(faults.AnyEnvelopeType) || (gm != nil && control) {
			return errFailed{errcode.PolicyBadRecipient}
		}
		conv := Conv{Peer: del.Sender.Account}
		if gm != nil {
			conv = Conv{Group: gm.GroupID}
		}
		switch content.Type {
		case wire.ContentText, wire.ContentMedia:
			if gm == nil && deleted(tx, del.Sender.Account, del.MessageID) {
				// Deleted here before it came (DEV-023): not shown, and
				// its delivered receipt owed all the same, as for a
				// message that arrives expired (LIF-008).
				return d.oweDelivered(tx, del.Sender.Account, del.MessageID)
			}
			if m, _ := incoming(tx, del.Sender.Account, del.MessageID); m != nil && !faults.Has(faults.NoDedup) {
				// Here already, from a history (CLI-001): shown once, and
				// given what the history could not carry (its media).
				if !m.FromHistory || m.Deleted {
					return nil
				}
				m.FromHistory, m.Device, m.Type, m.Media = false, uint32(del.Sender.Device), content.Type, content.Media
				return putMessage(tx, m)
			}
			msg = &Message{ID: del.MessageID, Peer: del.Sender.Account, Device: uint32(del.Sender.Device),
				SentAt: content.SentAt, Received: uint64(d.now().UnixMilli()),
				Read: readMark(tx, del.Sender.Account, del.MessageID), Type: content.Type, Media: content.Media}
			if content.Text != nil {
				msg.Text = *content.Text
			}
			if content.Media != nil && content.Media.Caption != nil {
				msg.Text = *content.Media.Caption
			}
			if content.Expire != nil {
				msg.Expire = *content.Expire
			}
			if msg.Media != nil && msg.Media.ViewOnce != nil && tx.Bucket(bucketOpened).Get(convKey(msg.Peer, msg.ID)) != nil {
				msg.Opened, msg.Media.Key = true, nil // opened on another device first (MED-007)
			}
			if gm != nil {
				msg.Group, msg.GroupVersion = gm.GroupID, gm.Serial
				if del.Sender.Account == d.Account {
					// Sent by another device of this account: it reads
					// the group message like every member (section 16.4).
					if m, _ := sentMessage(tx, del.MessageID); m != nil {
						msg = nil
						return nil
					}
					msg.Outgoing, msg.Peer, msg.Device, msg.Read = true, "", 0, false
					msg.Members = map[string]map[uint32]Status{}
				}
			}
			if err := putMessage(tx, msg); err != nil {
				return err
			}
			// The kept changes apply first, so that what is shown is the
			// message as they left it (LIF-004, LIF-005).
			if msg, err = d.applyKept(tx, msg); err != nil {
				return err
			}
			if msg.Outgoing {
				if changed, err = applyPending(tx, msg.ID); err != nil {
					return err
				}
				return nil
			}
			return d.oweDelivered(tx, msg.Peer, msg.ID)
		case wire.ContentEdit, wire.ContentDelete:
			m, err := d.applyChange(tx, conv, del.Sender.Account, &content)
			if isPolicy(err) {
				return errFailed{err}
			}
			if m != nil {
				changed = []*Message{m}
			}
			return err
		case wire.ContentTimer:
			return setTimer(tx, conv, history.Register{SentAt: content.SentAt, ID: content.MessageID, Value: *content.Timer})
		case wire.ContentSenderKey:
			err := d.acceptSenderKey(tx, del.Sender, content.SenderKey)
			if errors.As(err, &gap) {
				return err
			}
			if err != nil {
				return errFailed{err}
			}
			return nil
		case wire.ContentGroupUpdate:
			if fork := faults.Has(faults.AcceptPushedFork); fork || faults.Has(faults.AcceptPushedState) {
				_, err := d.acceptGroupStateTOFU(tx, *content.Group, nil, !fork)
				switch {
				case errors.As(err, &gap):
					return err
				case errors.Is(err, group.ErrDuplicate):
					return nil
				case err != nil:
					return errFailed{err}
				}
				return nil
			}
			return d.groupUpdated(tx, *content.Group)
		case wire.ContentReceipt:
			if !listedSender(tx, del.Sender) || del.Sender.Account == d.Account {
				// DEV-013; and this account's own devices tell each other
				// of reads with read content, never with receipts.
				return nil
			}
			changed, err = applyReceipt(tx, del.Sender, content.Receipt)
			return err
		case wire.ContentSent, wire.ContentRead, wire.ContentDeleted, wire.ContentHistory, wire.ContentOpened:
			if del.Sender.Account != d.Account || !listedSender(tx, del.Sender) {
				return nil // DEV-013: only from this account's devices
			}
			changed, err = d.applySync(tx, &content)
			return err
		}
		return nil
	})
	var f errFailed
	if errors.As(err, &f) {
		return nil, nil, d.recordFailure(del, f.err)
	}
	return msg, changed, err
}

// recordFailure records a delivery that failed so that a redelivery is not
// processed again, leaving the sessions untouched (RAT-010, GRP-008), and
// returns err.
func (d *Device) recordFailure(del *wire.Delivery, err error) error {
	processedKey := append(addrKey(del.Sender.Account, uint32(del.Sender.Device)), del.MessageID...)
	d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProcessed).Put(processedKey, u64(d.processedUntil(del)))
	})
	return err
}

// processedUntil is the time kept with a delivery's processed pair: its
// expiry time (field 11), but no later than MAX_TTL + MAX_SENT_AHEAD after
// now. A server queues an envelope for at most MAX_TTL from its acceptance
// (SRV-012), and its clock is not a day ahead of this device's: a later
// expiry is a server's choice, which would keep the pair for good.
func (d *Device) processedUntil(del *wire.Delivery) uint64 {
	most := uint64(d.now().Add(time.Duration(wire.MaxTTL)*time.Second + maxSentAhead).UnixMilli())
	return min(del.ExpiresAt, most)
}

// forgetProcessed drops the processed pairs (CLI-001) whose envelope
// expired more than MAX_TTL ago. A pair is kept for at least MAX_TTL after
// its envelope's acceptance, as CLI-001 asks: the envelope's expiry is its
// acceptance plus its TTL, so at least its acceptance. By then the server
// delivers it no more (SRV-012), and a sender resends an envelope only when
// it lost the server's answer, long before (SRV-008); kept instead, the
// pairs of every message and receipt the device ever received would stay
// for good. It returns how many it dropped.
func (d *Device) forgetProcessed() (int, error) {
	now := d.now().UnixMilli()
	limit := now - wire.MaxTTL*1000
	if limit <= 0 {
		return 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A read first, so that a connection with nothing to forget costs no
	// write (and no sync); the lock keeps receive from changing the pairs
	// in between.
	var old [][]byte
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProcessed).ForEach(func(k, v []byte) error {
			if len(v) == 8 && binary.BigEndian.Uint64(v) < uint64(limit) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(old) == 0 {
		return 0, err
	}
	return len(old), d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProcessed)
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// errFailed marks a failure of the message itself, after which the
// transaction is rolled back and only the message's id is recorded.
type errFailed struct{ err error }

func (e errFailed) Error() string { return e.err.Error() }

// decrypt decrypts a delivery with the session of its sender, creating the
// session from a prekey message (sections 4.6, PQX-011). A message that
// decrypts in the session kept beside the current one, or that starts a
// new session, makes that session the current one unless it was sent
// before a message the current one decrypted, and is kept beside it then
// (PQX-016).
func (d *Device) decrypt(tx *bolt.Tx, sender []byte, del *wire.Delivery) ([]byte, error) {
	s, err := loadSession(tx, sender)
	if err != nil {
		return nil, err
	}
	var (
		pt    []byte
		other *session.Session // the session the message decrypted in, if not s
		fresh bool             // other is new, made from the message
		drop  = faults.Has(faults.DropReplacedSession)
	)
	switch del.Kind {
	case wire.KindPrekey:
		var m wire.PreKeyMessage
		if err := wire.Unmarshal(del.Ciphertext, &m); err != nil {
			return nil, err
		}
		// DEV-020: only from a device the sender's list gives this key;
		// else the server could add a device, or take one over, and read
		// the replies.
		if !listedWith(tx, del.Sender, m.IdentityKey) && !faults.Has(faults.AcceptUnlistedSender) {
			return nil, fmt.Errorf("client: prekey message from %s/%d: %w", del.Sender.Account, del.Sender.Device, errcode.AuthDeviceNotListed)
		}
		if s != nil && s.SamePreKey(&m) && !faults.Has(faults.PrekeysBeforeSession) {
			pt, err = s.DecryptPreKey(d.rand, del.Ciphertext)
		} else if prev := d.previous(tx, sender); prev != nil && prev.SamePreKey(&m) && !drop {
			// PQX-016: a prekey message of the kept session.
			if pt, err = prev.DecryptPreKey(d.rand, del.Ciphertext); err == nil {
				other = prev
			}
		} else {
			ps := prekeyStore{tx, d.now()}
			if ps.replayed(&m) {
				return nil, fmt.Errorf("client: a prekey message that created a session before: %w", errcode.StateDuplicateMessage)
			}
			var used *session.Used
			other, pt, used, err = session.Respond(d.rand, d.identity, ps, del.Ciphertext)
			if err == nil {
				err = ps.consume(used.KEMPreKeyID, used.OneTimePreKeyID)
			}
			if err == nil {
				err = ps.remember(&m)
			}
			fresh = true
		}
	case wire.KindRatchet:
		if s == nil {
			return nil, errcode.StateNoSession
		}
		pt, err = s.Decrypt(d.rand, del.Ciphertext)
		if err != nil && !drop {
			// PQX-016: a message of the kept session (an answer the peer
			// made before it took the current one's first message,
			// PQX-014, or its messages in the session it initiated while
			// this device initiated the current one). Failed there too,
			// both are as they were.
			if prev := d.previous(tx, sender); prev != nil {
				if ppt, perr := prev.Decrypt(d.rand, del.Ciphertext); perr == nil {
					pt, err, other = ppt, nil, prev
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	heard := d.lastHeard(tx, bucketHeard, sender)
	switch {
	case other == nil:
		heard = max(heard, del.SentAt)
	case s == nil || drop || del.SentAt >= heard:
		// The session the peer uses now: the current one, the other
		// kept in its place (PQX-016), unless the fault drops it.
		if !fresh {
			heard = max(del.SentAt, d.lastHeard(tx, bucketHeardKept, sender))
		} else {
			heard = del.SentAt
		}
		if s != nil && !drop {
			if err := d.keepPrevious(tx, sender); err != nil {
				return nil, err
			}
		}
		s = other
	default:
		// A message sent before the current session's latest (held
		// back, or late): its session stays beside the current one,
		// which stays as it is.
		return pt, d.putPrevious(tx, sender, other, fresh, del.SentAt)
	}
	// The session has heard back, or is Bob's: PQX-014 is done with it.
	if err := tx.Bucket(bucketInitiated).Delete(sender); err != nil {
		return nil, err
	}
	if err := d.setHeard(tx, bucketHeard, sender, heard); err != nil {
		return nil, err
	}
	return pt, storeSession(tx, sender, s)
}

var receiptStatus = map[uint64]Status{wire.ReceiptDelivered: StatusDelivered, wire.ReceiptRead: StatusRead, wire.ReceiptPlayed: StatusPlayed}

// listedWith reports whether a device is in the latest list accepted for
// its account with the identity key ik (an encoding); without a list for
// the account, no device is.
func listedWith(tx *bolt.Tx, a wire.Address, ik []byte) bool {
	l := list(tx, a.Account)
	if l == nil || a.Device > math.MaxUint32 {
		return false
	}
	listed, ok := l.Device(uint32(a.Device))
	if !ok {
		return false
	}
	k, err := keys.DecodePublicKey(ik)
	return err == nil && listed.Equal(k)
}

// refreshList fetches the latest device list of the sender of a prekey
// message when the list this device holds does not list the sender with
// the message's identity key: a first contact, or a device linked since
// (DEV-020). Receive then decides; a failure here leaves it to refuse.
func (c *Conn) refreshList(del *wire.Delivery) error {
	var m wire.PreKeyMessage
	if wire.Unmarshal(del.Ciphertext, &m) != nil {
		return nil // receive reports it
	}
	listed := false
	c.d.db.View(func(tx *bolt.Tx) error {
		listed = listedWith(tx, del.Sender, m.IdentityKey)
		return nil
	})
	if listed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.d.requestTimeout())
	defer cancel()
	var res wire.DeviceListResult
	if err := c.callNeeded(ctx, wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: del.Sender.Account}, &res); err != nil {
		if errors.As(err, new(connFailure)) {
			return err
		}
		return fmt.Errorf("device list of %s: %w", del.Sender.Account, err)
	}
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.d.db.Update(func(tx *bolt.Tx) error {
		_, err := accept(tx, del.Sender.Account, res.DeviceList)
		return err
	})
}

// connFailure is an error of the connection itself, as opposed to an
// answer of the server or a list this device refuses.
type connFailure struct{ error }

func (e connFailure) Unwrap() error { return e.error }

// callNeeded is call for a request that processing a delivery needs (a
// group's states, a sender's device list). An answer that the server
// cannot serve it now is not an answer about the request: it waits out
// policy.rate_limited for the retry time it gives and asks again, within
// ctx; policy.shutting_down, a failure of the connection, and a rate limit
// that outlasts ctx are connFailure, so that the delivery is not
// acknowledged (MSG-014) and comes again. A peer that sends messages which
// each need a request cannot make the device drop the ones after them.
func (c *Conn) callNeeded(ctx context.Context, typ uint64, body, result wire.Message) error {
	for {
		err := c.call(ctx, typ, body, result)
		var re *transport.RemoteError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &re) || errcode.Code(re.Body.Code) == errcode.PolicyShuttingDown:
			return connFailure{err}
		case errcode.Code(re.Body.Code) != errcode.PolicyRateLimited:
			return err
		}
		wait := time.Second
		if re.Body.RetryAfter != nil {
			wait = max(time.Duration(*re.Body.RetryAfter)*time.Millisecond, 10*time.Millisecond)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return connFailure{err}
		}
	}
}

// requestTimeout bounds a request the device makes on its own while it
// processes a delivery: the transport's handshake timeout.
func (d *Device) requestTimeout() time.Duration {
	if d.tout.Handshake > 0 {
		return d.tout.Handshake
	}
	return transport.HandshakeTimeout
}

// localFailure returns err when it is a failure of the device rather than
// of a delivery: the connection failed in a request the delivery needed
// (connFailure), or the device's own store could not be read or written
// (an error of the file system). Else nil.
func localFailure(err error) error {
	var (
		cf    connFailure
		errno syscall.Errno
		pe    *fs.PathError
	)
	if errors.As(err, &cf) || errors.As(err, &errno) || errors.As(err, &pe) || errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return err
	}
	return nil
}

// listedSender reports whether a device is in the latest list accepted for
// its account; without a list for the account, every device is.
func listedSender(tx *bolt.Tx, a wire.Address) bool {
	l := list(tx, a.Account)
	if l == nil {
		return true
	}
	_, ok := l.Device(uint32(a.Device))
	return ok
}

// applyReceipt raises the status of the sent messages a receipt names,
// never lowering one (CLI-003, CLI-004), and keeps the receipts for
// messages not known yet (DEV-015).
func applyReceipt(tx *bolt.Tx, from wire.Address, r *wire.Receipt) ([]*Message, error) {
	st := receiptStatus[r.Kind]
	var changed []*Message
	for _, id := range r.MessageIDs {
		m, err := sentMessage(tx, id)
		if err != nil {
			return nil, err
		}
		if m == nil {
			if deleted(tx, from.Account, id) {
				continue // deleted here: anything about it is ignored (DEV-023)
			}
			if err := keepReceipt(tx, from, r.Kind, id); err != nil {
				return nil, err
			}
			continue
		}
		dev := uint32(from.Device)
		if m.Group != nil {
			// GRP-013: from a member of the group when it was sent.
			gs := groupState(tx, m.Group, m.GroupVersion)
			if gs == nil || !gs.IsMember(from.Account) {
				continue
			}
			if m.Members == nil {
				m.Members = map[string]map[uint32]Status{}
			}
			if m.Members[from.Account] == nil {
				m.Members[from.Account] = map[uint32]Status{}
			}
			next := raise(m.Members[from.Account][dev], st)
			if next == m.Members[from.Account][dev] {
				continue
			}
			m.Members[from.Account][dev] = next
			if err := putMessage(tx, m); err != nil {
				return nil, err
			}
			changed = append(changed, m)
			continue
		}
		if m.Peer != from.Account {
			continue // not sent to that account: ignored
		}
		next := raise(m.Statuses[dev], st)
		if next == m.Statuses[dev] {
			continue
		}
		if m.Statuses == nil {
			m.Statuses = map[uint32]Status{}
		}
		m.Statuses[dev] = next
		if err := putMessage(tx, m); err != nil {
			return nil, err
		}
		changed = append(changed, m)
	}
	return changed, nil
}
