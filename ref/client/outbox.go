package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// The outbox holds the content this device owes others on its own, once
// it has recorded the change the content reports (DEV-022): the delivered
// receipt of a message stored (section 14.1, step 5), the sent transcript
// of a message the server accepted (DEV-018), the read receipts and read
// content of messages marked read (DEV-012), the opened content and played
// receipt of view-once media opened (MED-007), the deleted content of a
// message deleted here. An entry is written in the transaction that
// records the change, and
// deleted once the server has accepted the content; a connection that
// ends first leaves it for the next one, which sends it with the same
// message id and sent-at: a resend, stored once (SRV-008) and shown once
// (CLI-001). A history for a new companion is sent at once, not owed.
var bucketOutbox = []byte("outbox") // u64be sequence -> outboxEntry (CBOR)

func init() { allBuckets = append(allBuckets, bucketOutbox) }

// outboxEntry is content owed to an account, in an envelope of a type.
type outboxEntry struct {
	Account string        `cbor:"1,keyasint"`
	Type    uint64        `cbor:"2,keyasint"` // the envelope type
	Content *wire.Content `cbor:"3,keyasint"`
}

// stamped returns the entry that sends content to account in an envelope of
// type typ, the content stamped with a message id and the time now.
func (d *Device) stamped(account string, typ uint64, content *wire.Content) (outboxEntry, error) {
	id, err := d.newID()
	if err != nil {
		return outboxEntry{}, err
	}
	content.Version, content.MessageID, content.SentAt = wire.ProtocolVersion, id, uint64(d.now().UnixMilli())
	return outboxEntry{Account: account, Type: typ, Content: content}, nil
}

// hasOtherOwn reports whether this account's latest device list names a
// device besides this one, to tell of what this one does.
func (d *Device) hasOtherOwn() bool {
	own := d.DeviceList(d.Account)
	return own != nil && len(own.Devices) > 1
}

// stampedOwn is stamped for content to this account's other devices; it
// returns no entry when the account has no other device to tell.
func (c *Conn) stampedOwn(content *wire.Content) ([]outboxEntry, error) {
	if !c.d.hasOtherOwn() {
		return nil, nil
	}
	e, err := c.d.stamped(c.d.Account, wire.EnvelopeSync, content)
	if err != nil {
		return nil, err
	}
	return []outboxEntry{e}, nil
}

// emptyOutbox deletes every entry of the outbox.
func emptyOutbox(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketOutbox); err != nil {
		return err
	}
	_, err := tx.CreateBucket(bucketOutbox)
	return err
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

// recordOwing runs change and adds owed to the outbox in one transaction,
// then sends what is owed: the change is recorded, and what reports it
// goes now or at a later connection.
func (c *Conn) recordOwing(ctx context.Context, owed []outboxEntry, change func(tx *bolt.Tx) error) error {
	err := c.d.db.Update(func(tx *bolt.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		return putOwed(tx, owed...)
	})
	if err != nil {
		return err
	}
	c.sendOwedNow(ctx)
	return nil
}

// sendOwed sends what the outbox holds, oldest first, deleting each entry
// once the server has accepted it. It stops at the end of the connection
// or of ctx, and at a server that asks to be tried later
// (policy.shutting_down, policy.rate_limited), leaving the rest for the
// next call. An entry that fails otherwise does not hold up the others
// (their order does not matter: each reports a change that applies in any
// order, section 15.7): it is kept for the next call when the failure may
// pass (this device's own, such as a peer's identity not yet trusted,
// DEV-014; a full queue; a device list that kept changing), and dropped
// when the server refused it for good, or when it cannot be read, or once
// MAX_TTL has passed since its sent-at (the server may have forgotten a
// first acceptance by then, SRV-008). It returns an error when it left
// entries behind. It waits for another call under way to end, within
// ctx; that call sends what this one would have (Device.owedMore).
func (c *Conn) sendOwed(ctx context.Context) error {
	c.d.owedMore.Store(true)
	for !c.d.outMu.TryLock() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	c.d.owedMore.Store(false)
	err := c.sendOwedLocked(ctx)
	c.d.outMu.Unlock()
	if err == nil && c.d.owedMore.Load() {
		err = c.sendOwedIfFree(ctx) // what a call that did not wait added
	}
	return err
}

// sendOwedIfFree is sendOwed for the delivery loop, which must not wait
// for another call under way (a slow server could hold it for minutes):
// that call, or the one that follows it, sends what was added meanwhile
// (Device.owedMore).
func (c *Conn) sendOwedIfFree(ctx context.Context) error {
	c.d.owedMore.Store(true)
	for c.d.owedMore.Load() {
		if !c.d.outMu.TryLock() {
			return nil
		}
		c.d.owedMore.Store(false)
		err := c.sendOwedLocked(ctx)
		c.d.outMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// sendOwedLocked is sendOwed's pass over the outbox, under outMu. An entry
// kept on this connection is not tried again on it (Conn.keptOwed): it
// waits for the next connection.
func (c *Conn) sendOwedLocked(ctx context.Context) error {
	var (
		after []byte // the key of the last entry tried
		kept  []error
	)
	for {
		var (
			key []byte
			e   outboxEntry
			bad error
		)
		err := c.d.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bucketOutbox).Cursor()
			k, v := cur.First()
			if after != nil {
				if k, v = cur.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = cur.Next()
				}
			}
			if k == nil {
				return nil
			}
			key = slices.Clone(k)
			if bad = cborDec.Unmarshal(v, &e); bad == nil && e.Content == nil {
				bad = errors.New("no content")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if key == nil {
			return errors.Join(kept...)
		}
		after = key
		if c.keptOwed[string(key)] {
			continue
		}
		drop, err := c.sendEntry(ctx, e, bad)
		switch {
		case drop:
			if err != nil {
				c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: owed content dropped: %w", err)})
			}
			if err := c.d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(key) }); err != nil {
				return err
			}
		case err != nil && (ctx.Err() != nil || c.ended() || retryLater(err)):
			return err
		default:
			if c.keptOwed == nil {
				c.keptOwed = map[string]bool{}
			}
			c.keptOwed[string(key)] = true
			kept = append(kept, err)
		}
	}
}

// sendEntry sends one entry of the outbox (bad when it could not be read)
// and reports whether to delete it: it was accepted, or must go no more.
func (c *Conn) sendEntry(ctx context.Context, e outboxEntry, bad error) (drop bool, err error) {
	switch {
	case bad != nil:
		return true, fmt.Errorf("an entry that cannot be read: %w", bad)
	case c.d.now().After(time.UnixMilli(int64(e.Content.SentAt)).Add(wire.MaxTTL * time.Second)):
		return true, fmt.Errorf("content %x for %s, owed for longer than MAX_TTL", e.Content.MessageID, e.Account)
	case e.Account == c.d.Account && !c.d.hasOtherOwn():
		return true, nil // no other device to tell any more
	}
	if faults.Has(faults.RestampOwed) {
		// The mutant: each try is a new message, not a resend.
		if e, err = c.d.stamped(e.Account, e.Type, e.Content); err != nil {
			return false, err
		}
	}
	_, _, err = c.deliverContent(ctx, e.Account, e.Type, e.Content, DefaultTTL)
	var re *transport.RemoteError
	switch {
	case err == nil:
		return true, nil
	case faults.Has(faults.ForgetOwed):
		return true, err // the mutant: dropped, whatever the failure
	case errors.As(err, &re) && !retryLater(err) && re.Body.Fanout == nil &&
		errcode.Code(re.Body.Code) != errcode.PolicyQuotaExceeded && ctx.Err() == nil && !c.ended():
		return true, fmt.Errorf("content %x for %s, refused: %w", e.Content.MessageID, e.Account, err)
	}
	return false, fmt.Errorf("content %x for %s: %w", e.Content.MessageID, e.Account, err)
}

// retryLater reports whether err is the server's answer to try later.
func retryLater(err error) bool {
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		return false
	}
	code := errcode.Code(re.Body.Code)
	return code == errcode.PolicyShuttingDown || code == errcode.PolicyRateLimited
}

// ended reports whether the connection has ended.
func (c *Conn) ended() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// sendOwedSoon is sendOwedIfFree whose failure is reported as an
// EventError: what is left goes later.
func (c *Conn) sendOwedSoon(ctx context.Context) {
	if err := c.sendOwedIfFree(ctx); err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: owed content left for later: %w", err)})
	}
}

// sendOwedNow is sendOwed for an operation that recorded its change: the
// operation has succeeded whatever the outcome, which a failure only
// reports, as an EventError; what is left goes at the next connection.
func (c *Conn) sendOwedNow(ctx context.Context) {
	if err := c.sendOwed(ctx); err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: owed content left for the next connection: %w", err)})
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
