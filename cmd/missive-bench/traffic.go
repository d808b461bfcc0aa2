package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// counts are what happened to the messages of a phase. They add up:
// sent = accepted + refused + unanswered, and, once the recipients have
// drained their queues, delivered = accepted.
type counts struct {
	Sent       uint64            `json:"sent"`
	Accepted   uint64            `json:"accepted"`   // send-result: stored durably
	Refused    uint64            `json:"refused"`    // an error frame
	Unanswered uint64            `json:"unanswered"` // neither when the phase ended
	Delivered  uint64            `json:"delivered"`  // distinct queue entries received
	Duplicates uint64            `json:"duplicates"` // redeliveries of entries already received
	Acked      uint64            `json:"acked"`      // queue ids acknowledged
	Errors     map[string]uint64 `json:"errors,omitempty"`
}

// traffic is the state shared by the devices of a messaging phase.
type traffic struct {
	size int // ciphertext bytes

	sent, accepted, refused, delivered, dups, acked atomic.Uint64

	emu    sync.Mutex
	errors map[string]uint64

	// Latencies of messages meant to be sent at or after from (ns since
	// epoch): end to end (intended send to delivery) and acceptance
	// (intended send to send-result).
	from      atomic.Int64
	endToEnd  atomic.Pointer[histogram]
	acceptLat atomic.Pointer[histogram]
	// sendLag is how late the tool itself sent those messages: from the
	// time a message was meant to go to the moment its send began. A lag
	// near the latencies says that they are the tool's, not the server's.
	sendLag atomic.Pointer[histogram]

	// With fanout set (the group scenario), a sender's window counts its
	// messages until every recipient has received them, not until their
	// send-result: delivered calls fanout with each new delivery's
	// ciphertext, and fanout frees the window when the last one comes.
	fanout func(ciphertext []byte)
	// perMessage is the number of deliveries of each accepted message: 1,
	// or the group devices of the sender in the group scenario.
	perMessage int
}

func newTraffic(size int) *traffic {
	tr := &traffic{size: size, errors: map[string]uint64{}}
	tr.measureFrom(0)
	return tr
}

// measureFrom starts the histograms afresh for messages meant to be sent
// at or after at (ns since epoch).
func (tr *traffic) measureFrom(at int64) {
	tr.endToEnd.Store(new(histogram))
	tr.acceptLat.Store(new(histogram))
	tr.sendLag.Store(new(histogram))
	tr.from.Store(at)
}

func (tr *traffic) counts() counts {
	c := counts{
		Sent: tr.sent.Load(), Accepted: tr.accepted.Load(), Refused: tr.refused.Load(),
		Delivered: tr.delivered.Load(), Duplicates: tr.dups.Load(), Acked: tr.acked.Load(),
	}
	c.Unanswered = c.Sent - c.Accepted - c.Refused
	tr.emu.Lock()
	if len(tr.errors) > 0 {
		c.Errors = map[string]uint64{}
		for k, v := range tr.errors {
			c.Errors[k] = v
		}
	}
	tr.emu.Unlock()
	return c
}

func (tr *traffic) fail(code string) {
	tr.emu.Lock()
	tr.errors[code]++
	tr.emu.Unlock()
}

// inflightRing is the size of a device's ring of send times, and so the
// most sends it has unanswered at once.
const inflightRing = 256

// peer is a device taking part in a messaging phase: it reads every frame
// the server sends it, acknowledges deliveries, and counts answers.
type peer struct {
	d    *device
	tr   *traffic
	acks *ackBatcher
	seen seenSet

	window      atomic.Int32 // most sends unanswered at once (at most inflightRing)
	outstanding atomic.Int32
	answered    chan struct{} // a signal after each answer
	ct          []byte        // the ciphertext of the next send: one sending goroutine per peer, and a send encodes it before it returns
	env         wire.Envelope // the envelope of the next send, likewise
	sentAt      [inflightRing]atomic.Int64
	readErr     error
	done        chan struct{} // closed when the reader ends
	stop        chan struct{} // closes the acker
}

// start starts the device's reader and acker.
func (tr *traffic) start(d *device, window int) *peer {
	p := &peer{d: d, tr: tr, acks: newAckBatcher(), answered: make(chan struct{}, 1),
		done: make(chan struct{}), stop: make(chan struct{})}
	p.setWindow(window)
	go p.read()
	go p.acks.run(d.tc, p.stop, func(n int) { tr.acked.Add(uint64(n)) })
	return p
}

func (p *peer) read() {
	defer close(p.done)
	tr := p.tr
	for {
		f, err := p.d.tc.Receive()
		if err != nil {
			p.readErr = err
			return
		}
		switch f.Type {
		case wire.FrameDeliver:
			var del wire.Delivery
			if err := transport.DecodeBody(f, &del); err != nil {
				p.readErr = err
				return
			}
			if !p.seen.add(del.QueueID) {
				tr.dups.Add(1)
			} else {
				tr.delivered.Add(1)
				if at, ok := payloadTime(del.Ciphertext); ok && at >= tr.from.Load() {
					tr.endToEnd.Load().Record(time.Duration(since() - at))
				}
				if tr.fanout != nil {
					tr.fanout(del.Ciphertext)
				}
			}
			p.acks.add(del.QueueID)
		case wire.FrameResult, wire.FrameError:
			id := transport.RequestID(f)
			if f.Type == wire.FrameResult {
				tr.accepted.Add(1)
				if at := p.sentAt[id%inflightRing].Load(); at >= tr.from.Load() {
					tr.acceptLat.Load().Record(time.Duration(since() - at))
				}
			} else {
				tr.refused.Add(1)
				var b wire.ErrorBody
				transport.DecodeBody(f, &b)
				tr.fail(errcode.Code(b.Code).String())
			}
			if tr.fanout == nil || f.Type == wire.FrameError {
				p.release()
			}
		case wire.FramePing:
			p.d.tc.Send(wire.FramePong, 0, nil)
		}
	}
}

// release frees one place of the window.
func (p *peer) release() {
	p.outstanding.Add(-1)
	select {
	case p.answered <- struct{}{}:
	default:
	}
}

// send sends one message to the account of to, meant to be sent at at (ns
// since epoch; -1 for when it goes), once fewer than the window are
// unanswered.
func (p *peer) send(ctx context.Context, to *device, at int64) error {
	return p.sendWith(ctx, at, func(id uint64, ct []byte) (uint64, wire.Message) {
		p.d.fillEnvelope(&p.env, to, id, ct)
		return wire.FrameSend, &p.env
	})
}

// sendWith sends the request that build makes of a request id and the
// ciphertext with the payload header, as send does.
func (p *peer) sendWith(ctx context.Context, at int64, build func(id uint64, ct []byte) (uint64, wire.Message)) error {
	// The lag is taken before any wait for the window: that wait is the
	// server's, not the tool's.
	if at >= 0 && at >= p.tr.from.Load() {
		p.tr.sendLag.Load().Record(time.Duration(since() - at))
	}
	for p.outstanding.Load() >= p.window.Load() {
		select {
		case <-p.answered:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return p.readErr
		}
	}
	if at < 0 {
		at = since()
	}
	d := p.d
	id := d.nextID
	d.nextID++
	p.sentAt[id%inflightRing].Store(at)
	p.outstanding.Add(1)
	if len(p.ct) != p.tr.size {
		p.ct = make([]byte, p.tr.size)
	}
	ct := p.ct
	putPayload(ct, at, d.i)
	typ, body := build(id, ct)
	if err := d.tc.Send(typ, id, body); err != nil {
		return err
	}
	p.tr.sent.Add(1)
	return nil
}

// setWindow sets the most sends the device leaves unanswered at once.
func (p *peer) setWindow(n int) { p.window.Store(int32(min(max(n, 1), inflightRing))) }

// finish stops the acker after the last ack has gone.
func (p *peer) finish() {
	close(p.stop)
	<-p.acks.stopped
}

// pace sends with send (a message from one device) every period, starting
// after phase, until ctx ends or after limit messages when limit > 0. Open loop (the latency
// phases), each message is stamped with the time it was meant to go, so
// that a sender held back by its window still counts the wait in the
// latency (no coordinated omission). Closed loop (full speed), a sender
// held back starts its schedule afresh and stamps the time it sends.
func pace(ctx context.Context, send func(ctx context.Context, at int64) error, period, phase time.Duration, limit int, open bool) {
	next := since() + int64(phase)
	var t *time.Timer // one for every wait: a timer per message costs the tool's share of the cores
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for n := 0; limit <= 0 || n < limit; n++ {
		if wait := time.Duration(next - since()); wait > 0 {
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		at := next
		if !open {
			at = -1
		}
		if err := send(ctx, at); err != nil {
			return
		}
		next += int64(period)
		if !open {
			next = max(next, since())
		}
	}
}

// settle waits until every send has an answer and every accepted message
// has been delivered and acknowledged, or until timeout; it reports whether
// they were.
func (tr *traffic) settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c := tr.counts()
		if c.Unanswered == 0 && c.Delivered >= c.Accepted*uint64(max(tr.perMessage, 1)) && c.Acked >= c.Delivered {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
