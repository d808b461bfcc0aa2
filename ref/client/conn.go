package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventMessage  EventKind = iota + 1 // a new incoming message
	EventStatus                        // the status of a sent message changed
	EventPresence                      // a followed account's presence changed
	EventTyping                        // a device started or stopped typing
	EventNotice                        // the server sent a notice
	EventError                         // a delivery could not be processed
)

// Event is something that happened on a connection, for the user.
type Event struct {
	Kind     EventKind
	Message  *Message             // EventMessage, EventStatus
	Presence *wire.PresenceUpdate // EventPresence
	Typing   *wire.TypingNotice   // EventTyping
	Notice   *wire.Notice         // EventNotice
	Err      error                // EventError
}

// Conn is a device's connection to its server.
type Conn struct {
	d  *Device
	tc *transport.Conn

	// Events receives what happens; it is closed when the connection ends.
	// A caller that does not read it must not leave it full: events are
	// dropped rather than block the connection.
	Events chan Event

	mu      sync.Mutex
	nextID  uint64
	waiting map[uint64]chan *wire.Frame

	emu          sync.Mutex
	eventsClosed bool

	deliveries chan *wire.Delivery
	links      chan *wire.LinkNotice
	closed     chan struct{}
	once       sync.Once
	err        error
	lastWrite  time.Time
	wg         sync.WaitGroup
	onRequest  atomic.Pointer[func(uint64, wire.Message)] // OnRequest's
	keptOwed   map[string]bool                            // outbox keys kept on this connection (sendOwedLocked), under Device.outMu
}

// OnRequest makes the connection call f with the frame type and the body
// of each request it writes, once the frame is written and before its
// answer; nil stops it. The conformance adapter uses it to crash a device
// once a send has left it (message.send_crash).
func (c *Conn) OnRequest(f func(typ uint64, body wire.Message)) {
	if f == nil {
		c.onRequest.Store(nil)
		return
	}
	c.onRequest.Store(&f)
}

// ErrServerKeyChanged is returned by Connect when the server presents
// another static key than the one pinned at the first connection (TRN-005).
var ErrServerKeyChanged = errors.New("client: the server's key is not the one it had at the first connection; if the server was reinstalled, remove server-key from the device and connect again")

// serverKeyChanged finds out, after an IK handshake with the pinned key
// failed, whether the server now has another static key: a server that
// cannot read an IK message for a key it does not hold closes the
// connection, which looks like any other failure. An XX handshake learns
// the key the server has; the connection goes no further than that, and
// the key is not pinned (TRN-005: no silent fallback).
func (d *Device) serverKeyChanged(ctx context.Context, pinned []byte) bool {
	nc, err := transport.Dialer().DialContext(ctx, "tcp", d.Server)
	if err != nil {
		return false
	}
	defer nc.Close()
	tc, err := transport.Client(nc, &transport.ClientConfig{Static: d.transport, Expect: pinned, Rand: d.rand, Timeouts: d.tout})
	if err != nil {
		return errors.Is(err, transport.ErrServerKey)
	}
	tc.Close()
	return false
}

// Connect connects to the server, registers the device at the first
// connection, and starts receiving.
func (d *Device) Connect(ctx context.Context) (*Conn, error) {
	dialer := transport.Dialer()
	nc, err := dialer.DialContext(ctx, "tcp", d.Server)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	pinned := d.serverKey()
	tc, err := transport.Client(nc, &transport.ClientConfig{Static: d.transport, ServerKey: pinned, Rand: d.rand, Timeouts: d.tout})
	if err != nil && pinned != nil && faults.Has(faults.IKFallback) {
		// The mutant: start again with XX, taking whatever key comes.
		if nc, err = dialer.DialContext(ctx, "tcp", d.Server); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		pinned = nil
		tc, err = transport.Client(nc, &transport.ClientConfig{Static: d.transport, Rand: d.rand, Timeouts: d.tout})
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, transport.ErrServerKey) || pinned != nil && d.serverKeyChanged(ctx, pinned) {
			return nil, ErrServerKeyChanged
		}
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	if faults.Has(faults.NoIdleClose) {
		tc.SetIdleTimeout(24 * time.Hour)
	}
	binding, err := transport.Bind(d.identity, d.transport.Public, d.ID, d.Account, d.rand)
	if err != nil {
		tc.Close()
		return nil, err
	}
	first := !d.registered()
	h := &wire.Hello{Versions: []uint64{wire.ProtocolVersion}, Account: d.Account, Device: uint64(d.ID),
		IdentityKey: d.identity.Public().Encode(), Binding: binding}
	if first && d.ID == 1 {
		h.Register = wire.Ptr(true)
	}
	var w wire.Welcome
	helloAt := time.Now() // the keepalive counts from the hello, the device's last frame
	call := tc.Call
	if faults.Has(faults.PingBeforeWelcome) {
		call = pingBehind(tc)
	}
	if err := call(wire.FrameHello, 1, h, &w); err != nil {
		tc.Close()
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	if pinned == nil {
		d.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "server-key", tc.RemoteStatic()) })
	}
	c := &Conn{
		d: d, tc: tc, Events: make(chan Event, 256), nextID: 1, waiting: map[uint64]chan *wire.Frame{},
		deliveries: make(chan *wire.Delivery, wire.MaxReceiptIDs), closed: make(chan struct{}), lastWrite: helloAt,
		links: make(chan *wire.LinkNotice, 4),
	}
	if w.DeviceList != nil {
		if err := c.ownList(*w.DeviceList); err != nil {
			tc.Close()
			return nil, fmt.Errorf("client: own device list: %w", err)
		}
	}
	// Once per connection, before any delivery: the pairs whose envelopes
	// can come no more, and the marks whose messages can come no more
	// (best effort: one kept longer does no harm).
	d.forgetProcessed()
	d.forgetMarks()
	d.forgetReplaced()
	d.forgetPrevious()
	// PQX-015: the counts tell the one-time prekeys handed out since.
	d.db.Update(func(tx *bolt.Tx) error { return d.noteHeld(tx, w.OneTimeEC, w.OneTimeKEM) })
	d.forgetHandedOut()
	c.wg.Add(3)
	go c.readLoop()
	go c.deliveryLoop()
	go c.keepalive()
	if first {
		var err error
		if d.ID == 1 && w.DeviceList == nil {
			err = c.firstList(ctx)
		}
		// One upload of one-time prekeys at a time (replenish): a batch
		// uploaded on a notice before this one's answer was taken would
		// be counted against this answer's older counts (PQX-015).
		d.replenishing.Store(true)
		up, err2 := d.newPrekeys(true, PrekeyBatch)
		if err == nil {
			err = err2
		}
		var res wire.UploadResult
		if err == nil {
			err = c.call(ctx, wire.FrameUploadPrekeys, up, &res)
		}
		if err == nil {
			err = d.acceptedOneTime(up, &res, false)
		}
		d.replenishing.Store(false)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("client: registering prekeys: %w", err)
		}
		// The pair's time first: registered, the device would find a
		// pair with none due (rotate, from the keepalive already running).
		if err := d.accepted(up); err != nil {
			c.Close()
			return nil, fmt.Errorf("client: registering prekeys: %w", err)
		}
		d.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "registered", []byte{1}) })
	} else {
		if w.OneTimeEC < PrekeyBatch/2 || w.OneTimeKEM < PrekeyBatch/2 || d.replenishPending() {
			go c.replenish()
		}
		go c.rotate() // PQX-012, when due
	}
	// What an earlier connection left owed goes first (DEV-022).
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c.sendOwedNow(ctx)
	}()
	return c, nil
}

// pingBehind is the mutant's Call for the hello: it sends a ping right
// behind the request, before the answer comes (TRN-013 forbids any frame
// but hello before welcome), then waits for the answer as Call does.
func pingBehind(tc *transport.Conn) func(typ, id uint64, body, result wire.Message) error {
	return func(typ, id uint64, body, result wire.Message) error {
		if err := tc.Send(typ, id, body); err != nil {
			return err
		}
		if err := tc.Send(wire.FramePing, 0, nil); err != nil {
			return err
		}
		f, err := tc.Receive()
		if err != nil {
			return err
		}
		if f.Type != wire.FrameResult || transport.RequestID(f) != id {
			return fmt.Errorf("client: frame type %d in answer to the hello", f.Type)
		}
		return transport.DecodeBody(f, result)
	}
}

// Close closes the connection and waits for its goroutines.
func (c *Conn) Close() error {
	c.shutdown(nil)
	c.wg.Wait()
	return nil
}

func (c *Conn) shutdown(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.closed)
		c.tc.Close()
	})
}

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err returns why the connection ended, once Done is closed.
func (c *Conn) Err() error { return c.err }

func (c *Conn) emit(e Event) {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.eventsClosed {
		return
	}
	select {
	case c.Events <- e:
	default:
	}
}

func (c *Conn) closeEvents() {
	c.emu.Lock()
	defer c.emu.Unlock()
	c.eventsClosed = true
	close(c.Events)
}

// Call sends one request as it is given and waits for its result, or the
// server's error as a *transport.RemoteError. It is for tools, such as the
// conformance runner, that send what a correct device would not, to see
// the server refuse it; a device's own requests go through its methods.
func (c *Conn) Call(ctx context.Context, typ uint64, body, result wire.Message) error {
	return c.call(ctx, typ, body, result)
}

// call sends a request and waits for its result or error.
func (c *Conn) call(ctx context.Context, typ uint64, body, result wire.Message) error {
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	ch := make(chan *wire.Frame, 1)
	c.waiting[id] = ch
	c.lastWrite = time.Now()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}()
	wid := id
	if faults.Has(faults.OneRequestID) {
		wid = 1
	}
	if err := c.tc.Send(typ, wid, body); err != nil {
		return err
	}
	if f := c.onRequest.Load(); f != nil {
		(*f)(typ, body)
	}
	var end error
	select {
	case f := <-ch:
		return answerOf(f, result)
	case <-c.closed:
		end = endedError(c.err)
	case <-ctx.Done():
		end = ctx.Err()
	}
	// An answer that came as the wait ended is the request's outcome, not
	// the end: the reader puts an answer in ch before it ends the
	// connection (an error frame the server closes it after, SRV-017).
	select {
	case f := <-ch:
		return answerOf(f, result)
	default:
		return end
	}
}

// endedError is what a request in flight learns when the connection ends
// before its answer: that the connection ended, not whether the server
// processed the request. An error frame that named no waiting request (the
// connection's error, request id 0: section 12.3) ended the connection; it
// is not the request's answer, so it does not come back as a
// *transport.RemoteError, which a caller would take for a refusal of the
// request (callNeeded would record a delivery as failed instead of leaving
// it to come again). Conn.Err still returns it.
func endedError(cause error) error {
	var re *transport.RemoteError
	switch {
	case cause == nil:
		return errors.New("client: connection closed")
	case errors.As(cause, &re):
		return fmt.Errorf("client: the server ended the connection: %v", cause)
	}
	return cause
}

// answerOf decodes the answer to a request into result, or returns the
// server's error as a *transport.RemoteError.
func answerOf(f *wire.Frame, result wire.Message) error {
	if f.Type == wire.FrameError {
		var b wire.ErrorBody
		if err := transport.DecodeBody(f, &b); err != nil {
			return err
		}
		return &transport.RemoteError{Body: &b}
	}
	return transport.DecodeBody(f, result)
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	for {
		f, err := c.tc.Receive()
		if err != nil {
			c.shutdown(err)
			return
		}
		switch f.Type {
		case wire.FrameResult, wire.FrameError:
			id := transport.RequestID(f)
			c.mu.Lock()
			if faults.Has(faults.OneRequestID) && len(c.waiting) > 0 {
				id = slices.Min(slices.Collect(maps.Keys(c.waiting))) // the oldest request waiting
			}
			ch := c.waiting[id]
			c.mu.Unlock()
			if ch != nil {
				select {
				case ch <- f:
				default: // a second answer to one request: dropped, the reader goes on
				}
			} else if f.Type == wire.FrameError && id == 0 {
				// The connection's error (a frame that answers no
				// request); an error with a request id that no request
				// waits for is the late answer to one whose wait ended,
				// and is dropped as a late result is.
				var b wire.ErrorBody
				transport.DecodeBody(f, &b)
				c.shutdown(&transport.RemoteError{Body: &b})
				return
			}
		case wire.FrameDeliver:
			var del wire.Delivery
			if err := transport.DecodeBody(f, &del); err != nil {
				c.tc.SendError(0, err)
				c.shutdown(err)
				return
			}
			select {
			case c.deliveries <- &del:
			case <-c.closed:
				return
			}
		case wire.FramePing:
			c.tc.Send(wire.FramePong, 0, nil)
		case wire.FramePong:
		case wire.FramePresence:
			var u wire.PresenceUpdate
			if transport.DecodeBody(f, &u) == nil {
				c.emit(Event{Kind: EventPresence, Presence: &u})
			}
		case wire.FrameTyping:
			var t wire.TypingNotice
			if transport.DecodeBody(f, &t) == nil {
				c.emit(Event{Kind: EventTyping, Typing: &t})
			}
		case wire.FrameLink:
			var n wire.LinkNotice
			if transport.DecodeBody(f, &n) == nil {
				select {
				case c.links <- &n:
				default:
				}
			}
		case wire.FrameDeviceList:
			var s wire.SignedDeviceList
			if transport.DecodeBody(f, &s) == nil {
				if enc, err := wire.Marshal(&s); err == nil {
					if err := c.ownList(enc); err != nil {
						c.emit(Event{Kind: EventError, Err: fmt.Errorf("device list from the server: %w", err)})
					}
				}
			}
		case wire.FrameNotice:
			var n wire.Notice
			if transport.DecodeBody(f, &n) == nil {
				c.emit(Event{Kind: EventNotice, Notice: &n})
				if n.Type == wire.NoticePrekeysLow {
					go c.replenish()
				}
			}
		default:
			c.tc.SendError(0, errcode.PolicyUnexpectedFrame)
			c.shutdown(errcode.PolicyUnexpectedFrame)
			return
		}
	}
}

// keepalive sends ping when the device has sent no request (nor its hello)
// for the keepalive interval (TRN-014), at that moment: a timer set to the
// end of the interval from the last one, not a coarser ticker, which would
// let the device stay silent for up to a tick longer. Acks and pongs do not
// count, which only makes a ping come sooner than it must.
func (c *Conn) keepalive() {
	defer c.wg.Done()
	c.mu.Lock()
	t := time.NewTimer(time.Until(c.lastWrite.Add(c.d.keepalive)))
	c.mu.Unlock()
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		c.mu.Lock()
		wait := time.Until(c.lastWrite.Add(c.d.keepalive))
		ping := wait <= 0
		if ping {
			c.lastWrite, wait = time.Now(), c.d.keepalive
		}
		c.mu.Unlock()
		if ping && !faults.Has(faults.NoKeepalive) {
			c.tc.Send(wire.FramePing, 0, nil)
		}
		// PQX-012's SHOULD: a device that stays connected replaces its
		// signed and last-resort prekeys too, and drops replaced ones and
		// handed-out one-time ones (PQX-013, PQX-015).
		go c.rotate()
		c.d.forgetReplaced()
		c.d.forgetHandedOut() // PQX-015, for a device that stays connected
		t.Reset(wait)
	}
}

// replenish uploads a batch of one-time prekeys, one batch at a time (a
// batch whose answer was lost, first, as it was: replenishUpload):
// a notice(prekeys-low) that comes while a batch is uploaded asks for no
// second one. The device holds a little over PrekeyBatch of a kind, far
// below MAX_ONE_TIME_PREKEYS; notices of fetches that crossed an earlier
// upload may still ask for batches beyond it, which the server refuses
// with policy.quota_exceeded (SRV-025). The device then uploads each kind
// alone, and holds enough of a kind refused again: it deletes the private
// keys of that kind's part and reports nothing.
func (c *Conn) replenish() {
	if !c.d.replenishing.CompareAndSwap(false, true) {
		return
	}
	defer c.d.replenishing.Store(false)
	up, again, err := c.d.replenishUpload()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var res wire.UploadResult
		err = c.call(ctx, wire.FrameUploadPrekeys, up, &res)
		switch {
		case err == nil:
			err = c.d.acceptedOneTime(up, &res, true) // PQX-015
		case again && errcode.Of(err) == errcode.StateDuplicatePrekey:
			// Sent before, its answer lost: the server holds it (its ids
			// are this device's alone, PQX-002), with counts unknown.
			err = c.d.acceptedOneTime(up, nil, true)
		case errcode.Of(err) != 0:
			// Refused, the first sending state.duplicate_prekey too: the
			// server stored none of it, and it is not sent again (the
			// parts after a quota refusal go below; a part whose answer
			// is lost stays uncounted).
			if derr := c.d.db.Update(func(tx *bolt.Tx) error { return dropKept(tx, "replenish") }); derr != nil {
				err = cmp.Or(err, derr)
			}
		}
		if errcode.Of(err) == errcode.PolicyQuotaExceeded {
			// The server refuses the whole batch when either kind would
			// go over: the other kind may be the one that runs low (a
			// notice names no kind). Each kind alone, then; a kind
			// refused again is held enough of.
			err = nil
			for _, part := range []*wire.PrekeyUpload{{OneTime: up.OneTime}, {OneTimeKEM: up.OneTimeKEM}} {
				var res wire.UploadResult
				perr := c.call(ctx, wire.FrameUploadPrekeys, part, &res)
				switch {
				case perr == nil:
					perr = c.d.acceptedOneTime(part, &res, false)
				case errcode.Of(perr) == errcode.PolicyQuotaExceeded:
					perr = c.d.dropPrekeys(part)
				}
				err = cmp.Or(err, perr)
			}
		}
	}
	if err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: uploading prekeys: %w", err)})
	}
}

// Subscribe follows the presence of accounts and returns their current
// presence.
func (c *Conn) Subscribe(ctx context.Context, accounts ...string) ([]wire.PresenceUpdate, error) {
	s := &wire.PresenceSubscribe{Accounts: sortedAccounts(accounts)}
	var r wire.PresenceResult
	if err := c.call(ctx, wire.FrameSubscribePresence, s, &r); err != nil {
		return nil, err
	}
	return r.Updates, nil
}

// SetPrivacy sets who sees the account's last-seen time and online state.
func (c *Conn) SetPrivacy(ctx context.Context, lastSeen, online uint8) error {
	return c.call(ctx, wire.FrameSetPrivacy, &wire.Privacy{LastSeen: uint64(lastSeen), Online: uint64(online)}, new(wire.Empty))
}

// SetContacts sets the account's contact list on the server.
func (c *Conn) SetContacts(ctx context.Context, accounts ...string) error {
	return c.call(ctx, wire.FrameSetContacts, &wire.Contacts{Accounts: sortedAccounts(accounts)}, new(wire.Empty))
}

// Typing tells the server that the user is typing to account, or stopped.
func (c *Conn) Typing(account string, typing bool) error {
	return c.tc.Send(wire.FrameTyping, 0, &wire.Typing{Account: account, Typing: typing})
}

// Device returns the device of the connection.
func (c *Conn) Device() *Device { return c.d }
