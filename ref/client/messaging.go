package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
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
		if len(k) > 4 && string(k[4:]) == account {
			out = append(out, binary.BigEndian.Uint32(k))
		}
	}
	slices.Sort(out)
	return out
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
			if err := storeSession(tx, addrKey(account, uint32(b.Device)), s); err != nil {
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
		return nil
	})
	return out, err
}

// dropSessions deletes the sessions with devices the server says are gone.
func (c *Conn) dropSessions(account string, devices []uint64) error {
	return c.d.db.Update(func(tx *bolt.Tx) error {
		for _, dev := range devices {
			if err := tx.Bucket(bucketSessions).Delete(addrKey(account, uint32(dev))); err != nil {
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
		devs := make([]uint32, len(msgs))
		for i, m := range msgs {
			devs[i] = uint32(m.Device)
		}
		return res.AcceptedAt, devs, nil
	}
}

func (c *Conn) newID() ([]byte, error) {
	id := make([]byte, wire.MessageIDSize)
	_, err := io.ReadFull(c.d.rand, id)
	return id, err
}

// Send sends a text message to account and returns it once the server has
// accepted it (its status is then sent).
func (c *Conn) Send(ctx context.Context, account, text string) (*Message, error) {
	id, err := c.newID()
	if err != nil {
		return nil, err
	}
	now := uint64(c.d.now().UnixMilli())
	content := &wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentText, MessageID: id, SentAt: now, Text: &text}
	m := &Message{ID: id, Outgoing: true, Peer: account, Text: text, SentAt: now, TTL: DefaultTTL, Statuses: map[uint32]Status{}}
	if err := c.d.db.Update(func(tx *bolt.Tx) error { return putMessage(tx, m) }); err != nil {
		return nil, err
	}
	accepted, devs, err := c.deliverContent(ctx, account, wire.EnvelopeChat, content, DefaultTTL)
	if err != nil {
		return m, err
	}
	if err := c.syncSent(ctx, account, content); err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("telling the other devices: %w", err)})
	}
	err = c.d.db.Update(func(tx *bolt.Tx) error {
		cur, err := getMessage(tx, m.Seq)
		if err != nil || cur == nil {
			return err
		}
		cur.Accepted = accepted
		for _, dev := range devs {
			cur.Statuses[dev] = raise(cur.Statuses[dev], StatusSent)
		}
		*m = *cur
		return putMessage(tx, cur)
	})
	return m, err
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
	_, _, err = c.deliverContent(ctx, m.Peer, wire.EnvelopeChat, content, DefaultTTL)
	return err
}

// syncSent tells this account's other devices about content sent to
// account (a sent transcript, spec section 15.5).
func (c *Conn) syncSent(ctx context.Context, account string, content *wire.Content) error {
	if faults.Has(faults.NoOwnFanout) {
		return nil
	}
	inner, err := wire.Marshal(content)
	if err != nil {
		return err
	}
	return c.syncOwn(ctx, &wire.Content{Type: wire.ContentSent, Transcript: &wire.SentTranscript{Recipient: account, Content: inner}})
}

// syncOwn sends content to this account's other devices, when it has any.
func (c *Conn) syncOwn(ctx context.Context, content *wire.Content) error {
	own := c.d.DeviceList(c.d.Account)
	if own == nil || len(own.Devices) < 2 {
		return nil
	}
	id, err := c.newID()
	if err != nil {
		return err
	}
	content.Version, content.MessageID, content.SentAt = wire.ProtocolVersion, id, uint64(c.d.now().UnixMilli())
	_, _, err = c.deliverContent(ctx, c.d.Account, wire.EnvelopeSync, content, DefaultTTL)
	return err
}

// sendReceipt sends a receipt of the given kind for ids to account.
func (c *Conn) sendReceipt(ctx context.Context, account string, kind uint64, ids [][]byte) error {
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxReceiptIDs)
		batch := slices.Clone(ids[:n])
		ids = ids[n:]
		slices.SortFunc(batch, bytes.Compare)
		batch = slices.CompactFunc(batch, bytes.Equal)
		id, err := c.newID()
		if err != nil {
			return err
		}
		content := &wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentReceipt, MessageID: id,
			SentAt: uint64(c.d.now().UnixMilli()), Receipt: &wire.Receipt{Kind: kind, MessageIDs: batch}}
		if _, _, err := c.deliverContent(ctx, account, wire.EnvelopeReceipt, content, DefaultTTL); err != nil {
			return err
		}
	}
	return nil
}

// MarkRead sends read receipts for the incoming messages from peer that
// have none yet, and returns how many it marked.
func (c *Conn) MarkRead(ctx context.Context, peer string) (int, error) {
	var ids [][]byte
	var seqs []uint64
	c.d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if cborDec.Unmarshal(v, &m) == nil && !m.Outgoing && !m.Read && m.Peer == peer {
				ids = append(ids, m.ID)
				seqs = append(seqs, m.Seq)
			}
			return nil
		})
	})
	if len(ids) == 0 {
		return 0, nil
	}
	if err := c.sendReceipt(ctx, peer, wire.ReceiptRead, ids); err != nil {
		return 0, err
	}
	// One read receipt per message, from here; the other devices learn it
	// (DEV-012).
	for start := 0; start < len(ids); start += wire.MaxReceiptIDs {
		var rs wire.ReadSync
		for _, id := range ids[start:min(len(ids), start+wire.MaxReceiptIDs)] {
			rs = append(rs, wire.ConversationMessage{Account: peer, MessageID: id})
		}
		if err := c.syncOwn(ctx, &wire.Content{Type: wire.ContentRead, Read: &rs}); err != nil {
			c.emit(Event{Kind: EventError, Err: fmt.Errorf("telling the other devices: %w", err)})
		}
	}
	return len(ids), c.d.db.Update(func(tx *bolt.Tx) error {
		for _, seq := range seqs {
			m, err := getMessage(tx, seq)
			if err != nil || m == nil {
				return err
			}
			m.Read = true
			if err := putMessage(tx, m); err != nil {
				return err
			}
		}
		return nil
	})
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
			msg, receipt, err := c.d.receive(del)
			if err != nil {
				c.emit(Event{Kind: EventError, Err: fmt.Errorf("message %x from %s/%d: %w", del.MessageID, del.Sender.Account, del.Sender.Device, err)})
			}
			// Acknowledge after storing (MSG-014), failures included (MSG-015).
			ackErr := c.tc.Send(wire.FrameAck, 0, &wire.Ack{QueueIDs: []uint64{del.QueueID}})
			switch {
			case msg != nil:
				// The delivered receipt goes before the message is shown,
				// so that a caller that stops at the message (listen -n 1)
				// does not close the connection under the receipt.
				if ackErr == nil {
					ctx, cancel := context.WithTimeout(context.Background(), transport.HandshakeTimeout)
					if err := c.sendReceipt(ctx, msg.Peer, wire.ReceiptDelivered, [][]byte{msg.ID}); err != nil {
						c.emit(Event{Kind: EventError, Err: fmt.Errorf("delivered receipt: %w", err)})
					}
					cancel()
				}
				c.emit(Event{Kind: EventMessage, Message: msg})
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
		if processed.Get(processedKey) != nil && !faults.Has(faults.NoDedup) {
			return nil // a duplicate: already shown (CLI-001)
		}
		if err := processed.Put(processedKey, u64(del.ExpiresAt)); err != nil {
			return err
		}
		pt, err := d.decrypt(tx, sender, del)
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
		switch content.Type {
		case wire.ContentText:
			if del.Type != wire.EnvelopeChat {
				return errFailed{errcode.AuthContentMismatch}
			}
			if deleted(tx, del.Sender.Account, del.MessageID) {
				return nil
			}
			msg = &Message{ID: del.MessageID, Peer: del.Sender.Account, Device: uint32(del.Sender.Device),
				Text: *content.Text, SentAt: content.SentAt, Received: uint64(d.now().UnixMilli()),
				Read: readMark(tx, del.Sender.Account, del.MessageID)}
			return putMessage(tx, msg)
		case wire.ContentReceipt:
			if !listedSender(tx, del.Sender) {
				return nil // DEV-013
			}
			changed, err = applyReceipt(tx, del.Sender, content.Receipt)
			return err
		case wire.ContentSent, wire.ContentRead, wire.ContentDeleted, wire.ContentHistory:
			if del.Sender.Account != d.Account || del.Type != wire.EnvelopeSync || !listedSender(tx, del.Sender) {
				return nil // DEV-013: only from this account's devices
			}
			changed, err = d.applySync(tx, &content)
			return err
		}
		return nil // other content types: chapters to come
	})
	var f errFailed
	if errors.As(err, &f) {
		// Record the failure so that a redelivery is not processed again,
		// leaving the session untouched (RAT-010).
		d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketProcessed).Put(processedKey, u64(del.ExpiresAt)) })
		return nil, nil, f.err
	}
	return msg, changed, err
}

// errFailed marks a failure of the message itself, after which the
// transaction is rolled back and only the message's id is recorded.
type errFailed struct{ err error }

func (e errFailed) Error() string { return e.err.Error() }

// decrypt decrypts a delivery with the session of its sender, creating the
// session from a prekey message (sections 4.6, PQX-011).
func (d *Device) decrypt(tx *bolt.Tx, sender []byte, del *wire.Delivery) ([]byte, error) {
	s, err := loadSession(tx, sender)
	if err != nil {
		return nil, err
	}
	var pt []byte
	switch del.Kind {
	case wire.KindPrekey:
		var m wire.PreKeyMessage
		if err := wire.Unmarshal(del.Ciphertext, &m); err != nil {
			return nil, err
		}
		if s != nil && s.SamePreKey(&m) {
			pt, err = s.DecryptPreKey(d.rand, del.Ciphertext)
		} else {
			ps := prekeyStore{tx}
			var used *session.Used
			s, pt, used, err = session.Respond(d.rand, d.identity, ps, del.Ciphertext)
			if err == nil {
				err = ps.consume(used.KEMPreKeyID, used.OneTimePreKeyID)
			}
		}
	case wire.KindRatchet:
		if s == nil {
			return nil, errcode.StateNoSession
		}
		pt, err = s.Decrypt(d.rand, del.Ciphertext)
	}
	if err != nil {
		return nil, err
	}
	return pt, storeSession(tx, sender, s)
}

var receiptStatus = map[uint64]Status{wire.ReceiptDelivered: StatusDelivered, wire.ReceiptRead: StatusRead, wire.ReceiptPlayed: StatusPlayed}

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
			if err := keepReceipt(tx, from, r.Kind, id); err != nil {
				return nil, err
			}
			continue
		}
		if m.Peer != from.Account {
			continue // not sent to that account: ignored
		}
		dev := uint32(from.Device)
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
