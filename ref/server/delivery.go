package server

import (
	"context"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
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

// deliverLoop pushes the device's queue to it: new entries when woken, and
// redeliveries when their backoff ends (SRV-009, SRV-010).
func (c *conn) deliverLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-c.wake:
		case <-timer.C:
		}
		next, err := c.deliver(context.Background())
		if err != nil {
			c.s.log.Error("delivery", "account", c.addr.Account, "device", c.addr.Device, "err", err)
			c.close()
			return
		}
		timer.Reset(next)
	}
}

// deliver sends what is due and returns how long to wait before the next
// redelivery.
func (c *conn) deliver(ctx context.Context) (time.Duration, error) {
	now, real := c.s.now(), time.Now()
	if faults.Has(faults.IgnoreTTL) {
		now = time.Time{}
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	// Redeliver what is due, dropping what has expired.
	for id, f := range c.inflight {
		if !f.entry.ExpiresAt.After(now) {
			if err := f.move(entryNone); err != nil {
				return 0, err
			}
			delete(c.inflight, id)
			continue
		}
		if !f.due.After(real) {
			if err := f.move(entryInFlight); err != nil {
				return 0, err
			}
			f.attempt++
			if err := c.push(f); err != nil {
				return 0, err
			}
			f.due = real.Add(c.s.backoff(f.attempt))
			c.s.metrics.redeliveries.Add(1)
		}
	}
	// Deliver new entries up to the in-flight window.
	if room := MaxInflight - len(c.inflight); room > 0 {
		skip := make(map[uint64]bool, len(c.inflight))
		for id := range c.inflight {
			skip[id] = true
		}
		entries, err := c.s.cfg.Store.Pending(ctx, c.addr, now, skip, room)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			f := &flight{state: entryQueued, entry: e, attempt: e.Attempt + 1}
			if err := f.move(entryInFlight); err != nil {
				return 0, err
			}
			if err := c.push(f); err != nil {
				return 0, err
			}
			if c.s.cfg.DuplicateDeliveries {
				f.attempt++
				if err := c.push(f); err != nil {
					return 0, err
				}
			}
			f.due = real.Add(c.s.backoff(f.attempt))
			c.inflight[e.QueueID] = f
			c.s.metrics.deliveries.Add(1)
		}
	}
	next := time.Hour
	for _, f := range c.inflight {
		next = min(next, max(f.due.Sub(real), time.Millisecond))
	}
	return next, nil
}

// push sends one delivery.
func (c *conn) push(f *flight) error {
	e := &f.entry
	return c.tc.Send(wire.FrameDeliver, 0, &wire.Delivery{
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
