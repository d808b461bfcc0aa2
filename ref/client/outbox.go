package client

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// The outbox holds the content this device owes others on its own, once
// it has recorded the change the content reports (DEV-022): the sent
// transcript of a message the server accepted (DEV-018), the read receipts
// and read content of messages marked read (DEV-012), the opened content
// and played receipt of view-once media opened (MED-007), the deleted
// content of a message deleted here, a history for a new companion. An
// entry is written in the transaction that records the change, and
// deleted once the server has accepted the content; a connection that
// ends first leaves it for the next one, which sends it with the same
// message id and sent-at: a resend, stored once (SRV-008) and shown once
// (CLI-001).
var bucketOutbox = []byte("outbox") // u64be sequence -> outboxEntry (CBOR)

func init() { allBuckets = append(allBuckets, bucketOutbox) }

// outboxEntry is content owed to an account, in an envelope of a type.
type outboxEntry struct {
	Account string        `cbor:"1,keyasint"`
	Type    uint64        `cbor:"2,keyasint"` // the envelope type
	Content *wire.Content `cbor:"3,keyasint"`
}

// owe returns the entry that sends content to account in an envelope of
// type typ, the content stamped with a message id and the time now.
func (c *Conn) owe(account string, typ uint64, content *wire.Content) (outboxEntry, error) {
	id, err := c.newID()
	if err != nil {
		return outboxEntry{}, err
	}
	content.Version, content.MessageID, content.SentAt = wire.ProtocolVersion, id, uint64(c.d.now().UnixMilli())
	return outboxEntry{Account: account, Type: typ, Content: content}, nil
}

// oweOwn is owe for content to this account's other devices; it returns
// no entry when the account has no other device to tell.
func (c *Conn) oweOwn(content *wire.Content) ([]outboxEntry, error) {
	if own := c.d.DeviceList(c.d.Account); own == nil || len(own.Devices) < 2 {
		return nil, nil
	}
	e, err := c.owe(c.d.Account, wire.EnvelopeSync, content)
	if err != nil {
		return nil, err
	}
	return []outboxEntry{e}, nil
}

// putOwed adds entries to the outbox, in order.
func putOwed(tx *bolt.Tx, es ...outboxEntry) error {
	b := tx.Bucket(bucketOutbox)
	for _, e := range es {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		enc, err := cborEnc.Marshal(&e)
		if err != nil {
			return err
		}
		if err := b.Put(u64(seq), enc); err != nil {
			return err
		}
	}
	return nil
}

// owed records entries in a transaction of their own, for content whose
// change was recorded before.
func (c *Conn) owed(es ...outboxEntry) error {
	if len(es) == 0 {
		return nil
	}
	return c.d.db.Update(func(tx *bolt.Tx) error { return putOwed(tx, es...) })
}

// sendOwed sends what the outbox holds, oldest first, deleting each entry
// once the server has accepted it. It stops at the first failure of the
// connection, or of the server that asks to try later
// (policy.shutting_down, policy.rate_limited), leaving the rest for the
// next call; an entry the server refuses otherwise is dropped, reported as
// an EventError, since sending it again would be refused again.
func (c *Conn) sendOwed(ctx context.Context) error {
	c.d.outMu.Lock()
	defer c.d.outMu.Unlock()
	for {
		var (
			key []byte
			e   outboxEntry
		)
		err := c.d.db.View(func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketOutbox).Cursor().First()
			if k == nil {
				return nil
			}
			key = k
			return cborDec.Unmarshal(v, &e)
		})
		if err != nil || key == nil {
			return err
		}
		if e.Account == c.d.Account {
			if own := c.d.DeviceList(c.d.Account); own == nil || len(own.Devices) < 2 {
				e.Content = nil // no other device to tell any more
			}
		}
		if e.Content != nil {
			_, _, err = c.deliverContent(ctx, e.Account, e.Type, e.Content, DefaultTTL)
		}
		var re *transport.RemoteError
		switch {
		case err == nil:
		case faults.Has(faults.ForgetOwed):
			// The mutant: dropped, whatever the failure.
		case !errors.As(err, &re), errcode.Code(re.Body.Code) == errcode.PolicyShuttingDown, errcode.Code(re.Body.Code) == errcode.PolicyRateLimited:
			return err
		default:
			c.emit(Event{Kind: EventError, Err: fmt.Errorf("content %x for %s, dropped: %w", e.Content.MessageID, e.Account, err)})
		}
		err = c.d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(key) })
		if err != nil {
			return err
		}
	}
}

// sendOwedNow is sendOwed for an operation that recorded its change: the
// operation has succeeded whatever the outcome, which a failure only
// reports, as an EventError; what is left goes at the next connection.
func (c *Conn) sendOwedNow(ctx context.Context) {
	if err := c.sendOwed(ctx); err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("telling others, left for the next connection: %w", err)})
	}
}

// Owed returns the number of contents the outbox holds, not yet accepted
// by the server.
func (d *Device) Owed() (int, error) {
	n := 0
	err := d.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n, err
}
