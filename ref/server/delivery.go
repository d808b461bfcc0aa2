package server

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// backoff returns the wait before redelivering an entry delivered attempt
// times (SRV-010).
func (s *Server) backoff(attempt uint32) time.Duration {
	d := s.cfg.RedeliveryBase
	for i := uint32(1); i < attempt && d < s.cfg.RedeliveryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.RedeliveryMax)
}

// deliverLoop is the delivery goroutine: it runs passes while it is woken
// (new entries, acks) and ends when nothing more is due; the timer of the
// next redelivery wakes it again (SRV-009, SRV-010).
func (c *conn) deliverLoop() {
	defer c.work.Done()
	for {
		c.wmu.Lock()
		c.again = false
		offered, overflow := c.offered, c.overflow
		c.offered, c.overflow = nil, false
		c.wmu.Unlock()
		next, err := c.deliver(context.Background(), offered, overflow)
		c.wmu.Lock()
		if err != nil {
			c.delivering = false
			c.wmu.Unlock()
			c.s.log.Error("delivery", "account", c.addr.Account, "device", c.addr.Device, "err", err)
			c.close()
			return
		}
		switch {
		case c.ended:
		case next < 0 && c.timer != nil:
			c.timer.Stop()
		case next < 0:
		case c.timer == nil:
			c.timer = time.AfterFunc(next, c.wakeUp)
		default:
			c.timer.Reset(next)
		}
		if !c.again || c.ended {
			c.delivering = false
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
	}
}

// deliver sends what is due and returns how long to wait before the next
// redelivery, or -1 when nothing is in flight. New entries come from
// offered, the entries the send path has just accepted for the device,
// while the connection has delivered everything its queue held before
// them; otherwise from a read of the queue.
func (c *conn) deliver(ctx context.Context, offered []store.Entry, overflow bool) (time.Duration, error) {
	now, real := c.s.now(), time.Now()
	if faults.Has(faults.IgnoreTTL) {
		now = time.Time{}
	}
	var out []*flight // to send, in order
	c.dmu.Lock()
	// Redeliver what is due, dropping what has expired.
	for id, f := range c.inflight {
		if !f.entry.ExpiresAt.After(now) {
			if err := f.move(entryNone); err != nil {
				c.dmu.Unlock()
				return 0, err
			}
			delete(c.inflight, id)
			continue
		}
		if !f.due.After(real) {
			if err := f.move(entryInFlight); err != nil {
				c.dmu.Unlock()
				return 0, err
			}
			f.attempt++
			out = append(out, f)
			f.due = real.Add(c.s.backoff(f.attempt))
			c.s.metrics.redeliveries.Add(1)
		}
	}
	// Deliver new entries up to the in-flight window.
	room := MaxInflight - len(c.inflight)
	if overflow {
		c.backlog = true
	}
	var fresh []store.Entry
	if c.backlog {
		// The queue holds entries not delivered yet: read it. The entries
		// offered are in what it reads, since they were stored before they
		// were offered.
		if room > 0 {
			skip := make(map[uint64]bool, len(c.inflight))
			for id := range c.inflight {
				skip[id] = true
			}
			c.s.acks.held(c.addr, skip)
			entries, err := c.s.cfg.Store.Pending(ctx, c.addr, now, skip, room)
			if err != nil {
				c.dmu.Unlock()
				return 0, err
			}
			c.backlog = len(entries) == room
			for _, e := range entries {
				c.seen = max(c.seen, e.QueueID)
			}
			fresh = entries
		}
	} else {
		// Everything the queue held at the last read was delivered: what is
		// new is what was offered since, less what that read returned
		// (queue ids grow in the order entries are stored).
		slices.SortFunc(offered, func(a, b store.Entry) int {
			return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.QueueID, b.QueueID))
		})
		fresh = make([]store.Entry, 0, min(len(offered), max(room, 0)))
		for _, e := range offered {
			if e.QueueID <= c.seen || c.inflight[e.QueueID] != nil || !e.ExpiresAt.After(now) {
				continue
			}
			if len(fresh) == room {
				c.backlog = true // the rest waits in the queue
				break
			}
			fresh = append(fresh, e)
		}
	}
	for _, e := range fresh {
		f := &flight{state: entryQueued, entry: e, attempt: e.Attempt + 1}
		if err := f.move(entryInFlight); err != nil {
			c.dmu.Unlock()
			return 0, err
		}
		if c.s.cfg.DuplicateDeliveries {
			first := *f
			out = append(out, &first)
			f.attempt++
		}
		out = append(out, f)
		f.due = real.Add(c.s.backoff(f.attempt))
		c.inflight[e.QueueID] = f
		c.s.metrics.deliveries.Add(1)
	}
	next := time.Duration(-1)
	for _, f := range c.inflight {
		d := max(f.due.Sub(real), time.Millisecond)
		if next < 0 || d < next {
			next = d
		}
	}
	// Encode under the lock (attempts change with redeliveries), write
	// after it, in one write.
	frames := make([][]byte, 0, len(out))
	for _, f := range out {
		enc, err := deliveryFrame(f)
		if err != nil {
			c.dmu.Unlock()
			return 0, err
		}
		frames = append(frames, enc)
	}
	c.dmu.Unlock()
	if len(frames) > 0 {
		if err := c.tc.WriteFrames(frames); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// deliveryFrame encodes the deliver frame of a flight.
func deliveryFrame(f *flight) ([]byte, error) {
	e := &f.entry
	return transport.EncodeFrame(wire.FrameDeliver, 0, &wire.Delivery{
		Version:    wire.ProtocolVersion,
		QueueID:    e.QueueID,
		MessageID:  e.MessageID,
		Sender:     wire.Address{Account: e.Sender.Account, Device: uint64(e.Sender.Device)},
		Type:       uint64(e.Type),
		Priority:   uint64(e.Priority),
		Kind:       uint64(e.Kind),
		Ciphertext: e.Ciphertext,
		SentAt:     e.SentAt,
		AcceptedAt: uint64(e.AcceptedAt.UnixMilli()),
		ExpiresAt:  uint64(e.ExpiresAt.UnixMilli()),
		Attempt:    uint64(f.attempt),
	})
}

// saveAttempts stores the attempt counts of the entries still in flight
// when the connection ends, so that the next delivery counts on from them.
func (c *conn) saveAttempts() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for id, f := range c.inflight {
		if f.move(entryQueued) == nil {
			c.s.cfg.Store.SetAttempt(context.Background(), c.addr, id, f.attempt)
		}
	}
}
