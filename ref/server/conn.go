package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// conn is one device connection.
type conn struct {
	s  *Server
	tc *transport.Conn

	addr        store.Address
	authed      bool
	errorLogged bool // an error frame of the device was logged at Info; the reader's own

	sendLimit, reqLimit, typingLimit *rate.Limiter
	fanoutLimit                      *rate.Limiter // GRP-014
	revoked                          atomic.Bool   // removed from its account's list: serve nothing more

	closed chan struct{}
	saved  chan struct{} // closed once the connection has ended and stored its attempts
	prev   *conn         // the connection this one replaced, when this one ended before that one stored its attempts
	once   sync.Once
	busy   sync.WaitGroup // requests being processed
	work   sync.WaitGroup // the request and delivery goroutines running
	room   chan struct{}  // a signal to the reader: the request queue has room

	// The connection's goroutines run only while they have work, so that
	// an idle connection holds one goroutine, its reader: the requests
	// goroutine while requests wait, the delivery goroutine while passes
	// are due. wmu guards what starts them.
	wmu         sync.Mutex
	requests    []*wire.Frame // waiting, in the order they came; its array is kept while the connection lives (at most maxQueued)
	queuedBytes int           // the bodies' bytes of requests
	waiting     bool          // the reader waits for room in requests
	serving     bool          // the requests goroutine runs
	taken       []*wire.Frame // the requests goroutine's own: the requests it serves together
	delivering  bool          // the delivery goroutine runs
	again       bool          // woken during a pass: run another
	offered     []store.Entry // entries just accepted for the device, handed over by the send path
	overflow    bool          // offers were dropped: read the queue
	ended       bool          // the connection is closed: start nothing
	timer       *time.Timer   // the next redelivery
	pushes      [][]byte      // frames sent unasked, for the push goroutine, encoded
	pushing     bool          // the push goroutine runs
	welcomed    bool          // the welcome is written: the push goroutine may start
	ready       bool          // and the older connection of the device has stored its attempts: the delivery goroutine may start

	dmu      sync.Mutex
	inflight map[uint64]*flight
	backlog  bool   // the queue may hold entries not delivered yet: read it
	seen     uint64 // the highest queue id a read of the queue returned

	smu  sync.Mutex
	subs map[string]bool // accounts whose presence this connection follows

	pings atomic.Int64 // pings not answered yet; the pong goroutine runs while it is above zero

	unanswered map[uint64]int // request ids read and not answered, only with Config.ReusedRequest; guarded by wmu
	readErr    error          // what ended the reader; the reader's own
	helloRead  bool           // the hello passed its checks: Config.ReadEnded must be told of the end

	links []*link // the links this primary opened, oldest first, some perhaps ended; guarded by s.links.mu
}

// flight is an entry delivered and not yet acknowledged.
type flight struct {
	state   entryState
	entry   store.Entry
	attempt uint32
	due     time.Time // real time of the next redelivery
}

func (s *Server) handle(nc net.Conn) {
	tc, err := transport.Server(nc, &transport.ServerConfig{Static: s.cfg.Static, Rand: s.cfg.Rand, Timeouts: s.cfg.Timeouts})
	if err != nil {
		s.metrics.handshakeFailures.Add(1)
		s.log.Debug("handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	if faults.Has(faults.NoIdleTimeout) {
		tc.SetIdleTimeout(24 * time.Hour)
	}
	if !faults.Has(faults.NoFirstFrameLimit) {
		// Until the hello has passed: a frame of a device not yet
		// authenticated holds the server's memory (TRN-020).
		tc.SetFrameLimit(transport.MaxFirstFrame)
	}
	l := newLimits() // the device's own once the hello names it (attach)
	c := &conn{
		s: s, tc: tc,
		sendLimit:   l.send,
		reqLimit:    l.req,
		typingLimit: l.typing,
		closed:      make(chan struct{}),
		saved:       make(chan struct{}),
		room:        make(chan struct{}, 1),
		inflight:    map[uint64]*flight{},
		backlog:     true,
	}
	if !s.register(c) {
		tc.Close()
		return
	}
	old, err := c.hello()
	if err != nil {
		if err != errLinked {
			s.log.Info("hello refused", "remote", nc.RemoteAddr().String(), "err", err)
		}
		if ended := s.cfg.ReadEnded; ended != nil && c.helloRead {
			ended(c.addr, nil, true) // the welcome was not sent: the server ends it
		}
		c.close()
		// It may have been attached, and a newer connection of the device
		// may wait for it to end: it ends here, with nothing in flight,
		// once the one it replaced has stored its attempts.
		if old != nil {
			<-old.saved
		}
		close(c.saved)
		s.unregister(c)
		return
	}
	s.log.Info("device connected", "account", c.addr.Account, "device", c.addr.Device)
	if old != nil {
		// The older connection stores the attempts of what it had in
		// flight as it ends: the first pass reads them, so that an
		// attempt count only grows (SRV-010).
		select {
		case <-old.saved:
		case <-c.closed:
			c.prev = old // this one ends first: its saved waits for old's
		}
	}
	c.wmu.Lock()
	c.ready = true
	c.wmu.Unlock()
	c.wakeUp()
	// The reader gets a goroutine of its own, with a new stack: the
	// handshake and the hello grew this goroutine's stack, and an idle
	// connection keeps its reader's stack for as long as it is connected.
	s.wg.Add(1) // under this goroutine's own count, so Shutdown waits for it
	go c.run()
}

// run reads the connection's frames until it ends, then cleans up.
func (c *conn) run() {
	defer c.s.wg.Done()
	c.readLoop()
	if ended := c.s.cfg.ReadEnded; ended != nil {
		ended(c.addr, c.readErr, c.closing())
	}
	c.close()
	c.work.Wait()
	c.saveAttempts()
	if c.prev != nil {
		// A newer connection that waits for this one waits for the one
		// this one replaced too: it may have ended before it stored its
		// attempts, if this one was replaced while it waited.
		<-c.prev.saved
		c.prev = nil
	}
	close(c.saved)
	c.s.unregister(c)
	c.s.log.Info("device disconnected", "account", c.addr.Account, "device", c.addr.Device)
}

// closing reports whether the connection has begun to close.
func (c *conn) closing() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		c.wmu.Lock()
		c.ended = true
		if c.timer != nil {
			c.timer.Stop()
		}
		c.wmu.Unlock()
		close(c.closed)
		c.tc.Close()
	})
}

// wakeUp makes the delivery goroutine run a pass, starting it when it is
// not running.
func (c *conn) wakeUp() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended || !c.ready { // handle wakes it once it is ready
		return
	}
	if !c.claim(&c.delivering) {
		c.again = true
		return
	}
	go c.deliverLoop()
}

// push queues a frame the server sends unasked (presence, typing-notice,
// notice, device-list) for the connection, written by a goroutine of its
// own, so that the goroutine of another connection that pushes it never
// waits for this connection's writes (TRN-011, SRV-020): a follower that
// reads nothing cannot hold up the device whose presence it follows, nor
// a typist's reader, nor another account's prekey fetch.
func (c *conn) push(typ uint64, body wire.Message) {
	enc, err := transport.EncodeFrame(typ, 0, body)
	if err != nil {
		c.s.log.Error("push", "account", c.addr.Account, "device", c.addr.Device, "err", err)
		return
	}
	c.wmu.Lock()
	if c.ended {
		c.wmu.Unlock()
		return
	}
	if len(c.pushes) >= MaxPendingPushes {
		// It reads nothing: closed (SRV-020), as a write blocked for
		// WRITE_TIMEOUT would close it (TRN-016).
		c.wmu.Unlock()
		c.s.log.Info("closing a connection that reads nothing", "account", c.addr.Account, "device", c.addr.Device)
		c.close()
		return
	}
	c.pushes = append(c.pushes, enc)
	if c.welcomed && c.claim(&c.pushing) {
		go c.writePushes()
	}
	c.wmu.Unlock()
}

// claim reports whether one of the connection's goroutines, which
// *running says runs, is to start: it was not running. It then sets
// *running and counts the goroutine in work, which the goroutine marks
// done as it ends. The caller holds wmu.
func (c *conn) claim(running *bool) bool {
	if *running {
		return false
	}
	*running = true
	c.work.Add(1)
	return true
}

// writePushes writes the queued pushes, in order, until none waits.
func (c *conn) writePushes() {
	defer c.work.Done()
	for {
		c.wmu.Lock()
		frames := c.pushes
		c.pushes = nil
		if len(frames) == 0 || c.ended {
			c.pushing = false
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
		if c.tc.WriteFrames(frames) != nil {
			c.close() // the connection is failing: what waits goes with it
		}
	}
}

// maxOffered is the most accepted entries a connection holds for its next
// delivery pass; beyond them it reads its queue from the store instead.
const maxOffered = 4 * MaxInflight

// offer hands an entry just accepted for the device to its connection, so
// that the delivery pass need not read it back from the store.
func (c *conn) offer(e store.Entry) {
	c.wmu.Lock()
	if !c.ended {
		if len(c.offered) < maxOffered {
			c.offered = append(c.offered, e)
		} else {
			c.overflow = true
		}
	}
	c.wmu.Unlock()
	c.wakeUp()
}

// fail answers a frame with an error and closes the connection.
func (c *conn) fail(requestID uint64, err error) {
	c.tc.SendError(requestID, err)
	c.close()
}

// revoke ends the connection of a device that its account removed
// (DEV-009): nothing it sends counts from now on (readLoop, serveRequests:
// no request, ack or typing), and its error frame is written by a
// goroutine of its own, so that a device that reads nothing holds up
// neither the request that removed it nor its account's other devices
// (TRN-011, SRV-020) for up to WRITE_TIMEOUT.
func (c *conn) revoke() {
	c.revoked.Store(true)
	go c.fail(0, errcode.AuthUnknownDevice)
}

// errLinked ends a connection that served a link request.
var errLinked = errors.New("server: link request served")

// hello runs the checks of spec section 12.4 and answers welcome; or, for
// a first frame that is a link request, serves it (section 15.3).
func (c *conn) hello() (old *conn, err error) {
	f, err := c.tc.Receive()
	if err != nil {
		return nil, err
	}
	if f.Type == wire.FrameLinkRequest {
		c.linkRequest(f)
		return nil, errLinked
	}
	id, h, version, err := transport.CheckHello(c.tc, f, []uint64{protocolVersion})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	addr := store.Address{Account: h.Account, Device: uint32(h.Device)}
	removals := c.s.removals.Load()
	if err := c.authenticate(ctx, h, addr); err != nil {
		c.fail(id, err)
		return nil, err
	}
	c.tc.SetFrameLimit(0)
	// The connection becomes the device's before the welcome's figures
	// are read, so that a change made after the read is pushed to it
	// (DEV-010); what is pushed waits for the welcome, the first frame.
	c.addr, c.authed, c.helloRead = addr, true, true
	if read := c.s.cfg.FrameRead; read != nil {
		read(addr, wire.FrameHello)
	}
	if wrote := c.s.cfg.Wrote; wrote != nil {
		c.tc.OnWrite(func() { wrote(addr) })
	}
	old = c.s.attach(c)
	// A removal of devices since the check above found no connection of
	// this device to close (listChanged): look at the device again. A
	// removal after this finds the connection (DEV-009).
	if c.s.removals.Load() != removals {
		if err := c.stillListed(ctx, addr); err != nil {
			c.fail(id, err)
			return old, err
		}
	}
	// For the conformance runner (TRN-013): the welcome is held back, and
	// then built, and what the device sent meanwhile looked at just before
	// it goes.
	if d := c.s.cfg.WelcomeDelay; d > 0 {
		time.Sleep(d)
	}
	counts, _, err := c.s.cfg.Store.PrekeyCounts(ctx, addr)
	if err != nil {
		c.fail(id, internal(err))
		return old, err
	}
	list, _, err := c.s.cfg.Store.DeviceList(ctx, addr.Account)
	if err != nil {
		c.fail(id, internal(err))
		return old, err
	}
	w := &wire.Welcome{
		Version: version, Time: uint64(c.s.now().UnixMilli()),
		OneTimeEC: uint64(counts.EC), OneTimeKEM: uint64(counts.KEM),
	}
	if list != nil {
		w.DeviceList = &list
	}
	if c.s.cfg.EarlyFrame != nil && c.tc.Waiting() {
		c.s.cfg.EarlyFrame(addr)
	}
	if err := c.tc.Send(wire.FrameResult, id, w); err != nil {
		return old, err
	}
	c.wmu.Lock()
	c.welcomed = true
	if len(c.pushes) > 0 && c.claim(&c.pushing) {
		go c.writePushes()
	}
	c.wmu.Unlock()
	return old, nil
}

// stillListed reports, as authenticate does, a device that is gone.
func (c *conn) stillListed(ctx context.Context, addr store.Address) error {
	acct, err := c.s.cfg.Store.Account(ctx, addr.Account)
	if err != nil {
		return internal(err)
	}
	if d := findDevice(acct, addr.Device); d == nil || (d.Removed && !faults.Has(faults.AcceptRevokedDevice)) {
		return errcode.AuthUnknownDevice
	}
	return nil
}

// authenticate runs checks 4 and 5 of spec section 12.4.
func (c *conn) authenticate(ctx context.Context, h *wire.Hello, addr store.Address) error {
	st := c.s.cfg.Store
	acct, err := st.Account(ctx, h.Account)
	switch {
	case errors.Is(err, store.ErrNotFound):
		acct = nil
	case err != nil:
		return internal(err)
	}
	if h.Register != nil {
		if h.Device != 1 {
			return errcode.PolicyBadRecipient
		}
		if acct != nil {
			if d := findDevice(acct, 1); d == nil || !bytes.Equal(d.IdentityKey, h.IdentityKey) {
				return errcode.StateAccountExists
			}
			return nil
		}
		if wait, ok := c.s.registrations.take(sourcesOf(c.tc.RemoteAddr()), time.Now()); !ok {
			return &transport.RetryError{Code: errcode.PolicyRateLimited, After: max(wait, time.Millisecond)}
		}
		err := st.CreateAccount(ctx, h.Account, store.Device{ID: 1, IdentityKey: h.IdentityKey, Created: c.s.now()})
		c.s.recipients.drop(h.Account)
		if errors.Is(err, store.ErrExists) {
			return c.authenticate(ctx, h, addr) // a concurrent registration won
		}
		if err != nil {
			return internal(err)
		}
		c.s.log.Info("account registered", "account", h.Account)
		return nil
	}
	if acct == nil {
		return errcode.StateUnknownAccount
	}
	d := findDevice(acct, addr.Device)
	if d == nil || (d.Removed && !faults.Has(faults.AcceptRevokedDevice)) {
		return errcode.AuthUnknownDevice
	}
	if !bytes.Equal(d.IdentityKey, h.IdentityKey) {
		return errcode.AuthIdentityMismatch
	}
	return nil
}

func findDevice(a *store.Account, id uint32) *store.Device {
	for i := range a.Devices {
		if a.Devices[i].ID == id {
			return &a.Devices[i]
		}
	}
	return nil
}

// internal turns a failure of the server itself into the error a device
// sees: retry later (SRV-017).
func internal(err error) error {
	if errcode.Of(err) != 0 {
		return err
	}
	return &transport.RetryError{Code: errcode.PolicyShuttingDown, After: time.Second}
}

// deviceTypes are the frame types a device may send after hello.
var deviceTypes = map[uint64]bool{
	wire.FrameUploadPrekeys: true, wire.FrameFetchPrekeys: true, wire.FrameSend: true, wire.FrameAck: true,
	wire.FramePing: true, wire.FramePong: true, wire.FrameSubscribePresence: true, wire.FrameSetPrivacy: true,
	wire.FrameSetContacts: true, wire.FrameTyping: true, wire.FrameError: true,
	wire.FrameOpenLink: true, wire.FrameAnswerLink: true, wire.FrameSetDeviceList: true,
	wire.FrameSendGroup: true, wire.FrameSetGroup: true, wire.FrameGetGroup: true, wire.FrameCreateBlob: true,
	wire.FramePutBlob: true, wire.FrameGetBlob: true, wire.FrameFetchDeviceList: true,
}

// readLoop reads frames until the connection fails or closes.
func (c *conn) readLoop() {
	for {
		f, err := c.tc.Receive()
		if err != nil {
			c.readErr = err
			return
		}
		if read := c.s.cfg.FrameRead; read != nil {
			read(c.addr, f.Type)
		}
		if c.revoked.Load() {
			continue // removed from its account: revoke closes it; nothing it sends counts
		}
		if f.Version != protocolVersion {
			c.fail(transport.RequestID(f), errcode.DecodeUnsupportedVersion)
			return
		}
		if !deviceTypes[f.Type] {
			c.fail(transport.RequestID(f), errcode.PolicyUnexpectedFrame)
			return
		}
		switch f.Type {
		case wire.FramePing:
			c.pong()
		case wire.FramePong:
		case wire.FrameError:
			var b wire.ErrorBody
			transport.DecodeBody(f, &b)
			// The first at Info, the rest at Debug: a device that sends
			// error frames without end would otherwise fill the log.
			level := slog.LevelInfo
			if c.errorLogged {
				level = slog.LevelDebug
			}
			c.errorLogged = true
			c.s.log.Log(context.Background(), level, "device reported an error", "account", c.addr.Account, "device", c.addr.Device, "code", errcode.Code(b.Code).String())
		case wire.FrameAck:
			var a wire.Ack
			if err := transport.DecodeBody(f, &a); err != nil {
				c.fail(0, err)
				return
			}
			c.ack(a.QueueIDs)
		case wire.FrameTyping:
			var t wire.Typing
			if err := transport.DecodeBody(f, &t); err != nil {
				c.fail(0, err)
				return
			}
			if c.typingLimit.Allow() {
				c.s.presence.typing(c, &t)
			}
		default:
			c.noteRequest(f)
			if !c.queueRequest(f) {
				return
			}
		}
	}
}

// noteRequest counts a request read, for Config.ReusedRequest, and reports
// an id that a request not yet answered has.
func (c *conn) noteRequest(f *wire.Frame) {
	reused := c.s.cfg.ReusedRequest
	if reused == nil {
		return
	}
	id := transport.RequestID(f)
	c.wmu.Lock()
	if c.unanswered == nil {
		c.unanswered = map[uint64]int{}
	}
	n := c.unanswered[id]
	c.unanswered[id] = n + 1
	c.wmu.Unlock()
	if n > 0 {
		reused(c.addr, id)
	}
}

// answering is called before the answers to requests ids are written:
// it waits Config.AnswerDelay and uncounts them (noteRequest). The count
// goes down before the write, so that a device that reuses an id once it
// has the answer is never reported.
func (c *conn) answering(ids ...uint64) {
	if c.s.cfg.ReusedRequest == nil {
		return
	}
	if d := c.s.cfg.AnswerDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-c.closed:
		}
	}
	c.wmu.Lock()
	for _, id := range ids {
		if c.unanswered[id]--; c.unanswered[id] <= 0 {
			delete(c.unanswered, id)
		}
	}
	c.wmu.Unlock()
}

// pong answers a ping from a goroutine of its own: encoding, sealing and
// writing take a deeper stack than reading, and the reader of an idle
// connection would keep it between pings. One goroutine at a time: the
// pings that come while it writes are answered by its next pong, one for
// all of them (TRN-018), so that a device that sends pings and reads
// nothing makes the server write one pong at a time, not start a
// goroutine per ping.
func (c *conn) pong() {
	if mute := c.s.cfg.Mute; mute != nil && mute(c.addr) {
		return
	}
	if c.pings.Add(1) > 1 {
		return // the running goroutine answers it
	}
	go func() {
		for {
			n := c.pings.Load()
			if c.tc.Send(wire.FramePong, 0, nil) != nil {
				return // the connection is ending: the count no longer matters
			}
			if c.pings.Add(-n) == 0 {
				return
			}
		}
	}()
}

// maxQueued is the most requests of a device that wait to be processed,
// and maxQueuedBytes the most bytes of their bodies beyond the first: the
// reader waits for room beyond them. Without the second, 64 requests of
// MAX_FRAME_SIZE held 64 MiB per connection while a request waited (for a
// device that reads nothing, up to WRITE_TIMEOUT).
const (
	maxQueued      = 64
	maxQueuedBytes = 4 << 20
)

// bodySize is the size of a frame's body.
func bodySize(f *wire.Frame) int {
	if f.Body == nil {
		return 0
	}
	return len(*f.Body)
}

// queueRequest queues a request for the requests goroutine, starting it
// when it is not running, and waits while the queue is full. It reports
// false when the connection closed first.
func (c *conn) queueRequest(f *wire.Frame) bool {
	for {
		c.wmu.Lock()
		if c.ended {
			c.wmu.Unlock()
			return false
		}
		if len(c.requests) < maxQueued && (len(c.requests) == 0 || c.queuedBytes+bodySize(f) <= maxQueuedBytes) {
			c.busy.Add(1)
			c.requests = append(c.requests, f)
			c.queuedBytes += bodySize(f)
			if c.claim(&c.serving) {
				go c.serveRequests()
			}
			c.wmu.Unlock()
			return true
		}
		c.waiting = true
		c.wmu.Unlock()
		select {
		case <-c.room:
		case <-c.closed:
			return false
		}
		c.wmu.Lock()
		c.waiting = false
		c.wmu.Unlock()
	}
}

// serveRequests processes the queued requests one at a time, in order, so
// that a device's sends are queued in the order it sent them, and ends
// when none waits.
func (c *conn) serveRequests() {
	defer c.work.Done()
	for {
		c.wmu.Lock()
		if len(c.requests) == 0 || c.ended {
			for range c.requests {
				c.busy.Done() // not started: the connection is closed
			}
			clear(c.requests)
			c.requests, c.serving, c.queuedBytes = c.requests[:0], false, 0
			c.wmu.Unlock()
			return
		}
		// The sends (send, send-group) that wait together at the head of
		// the queue go together, in one store write; any other request
		// alone.
		n := 1
		if isSend(c.requests[0]) {
			for n < len(c.requests) && isSend(c.requests[n]) {
				n++
			}
		}
		frames := append(c.taken[:0], c.requests[:n]...)
		c.taken = frames
		left := copy(c.requests, c.requests[n:])
		clear(c.requests[left:])
		c.requests = c.requests[:left]
		for _, f := range frames {
			c.queuedBytes -= bodySize(f)
		}
		if c.waiting { // the reader waits for room, which there is now
			select {
			case c.room <- struct{}{}:
			default:
			}
		}
		c.wmu.Unlock()
		switch {
		case c.revoked.Load():
			// The device was removed: revoke writes its error and closes.
		case c.dropped(frames):
			c.close()
		case n == 1:
			c.request(frames[0])
		default:
			c.sendMany(frames)
		}
		for range frames {
			c.busy.Done()
		}
		clear(frames)
	}
}

// dropped reports whether Config.DropRequest asks to lose one of frames.
func (c *conn) dropped(frames []*wire.Frame) bool { return c.asks(c.s.cfg.DropRequest, frames) }

// answersLost reports whether Config.LoseAnswer asks to lose the answer
// to one of frames.
func (c *conn) answersLost(frames ...*wire.Frame) bool { return c.asks(c.s.cfg.LoseAnswer, frames) }

// asks reports whether hook, when set, returns true for one of frames; it
// asks about every frame, so that the hook sees each.
func (c *conn) asks(hook func(store.Address, *wire.Frame) bool, frames []*wire.Frame) bool {
	if hook == nil {
		return false
	}
	yes := false
	for _, f := range frames {
		yes = hook(c.addr, f) || yes
	}
	return yes
}

// handler serves a request whose body is decoded.
type handler func(context.Context) (wire.Message, error)

// decoded decodes f's body as a P and returns the handler that serves it
// with serve.
func decoded[T any, P interface {
	*T
	wire.Message
}](f *wire.Frame, serve func(context.Context, P) (wire.Message, error)) (handler, error) {
	b := P(new(T))
	if err := transport.DecodeBody(f, b); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (wire.Message, error) { return serve(ctx, b) }, nil
}

// decode decodes a request's body, check 1 of SRV-005 and GRP-009.
func (c *conn) decode(f *wire.Frame) (handler, error) {
	switch f.Type {
	case wire.FrameUploadPrekeys:
		return decoded(f, c.uploadPrekeys)
	case wire.FrameFetchPrekeys:
		return decoded(f, c.fetchPrekeys)
	case wire.FrameSend:
		return decoded(f, c.send)
	case wire.FrameSendGroup:
		return decoded(f, c.sendGroup)
	case wire.FrameSubscribePresence:
		return decoded(f, func(ctx context.Context, b *wire.PresenceSubscribe) (wire.Message, error) {
			return c.s.presence.subscribe(ctx, c, b)
		})
	case wire.FrameSetPrivacy:
		return decoded(f, c.setPrivacy)
	case wire.FrameSetContacts:
		return decoded(f, c.setContacts)
	case wire.FrameSetDeviceList:
		return decoded(f, c.setDeviceList)
	case wire.FrameOpenLink:
		return decoded(f, c.openLink)
	case wire.FrameAnswerLink:
		return decoded(f, c.answerLink)
	case wire.FrameSetGroup:
		return decoded(f, func(ctx context.Context, b *wire.SignedGroupState) (wire.Message, error) {
			return c.setGroup(ctx, b, *f.Body)
		})
	case wire.FrameGetGroup:
		return decoded(f, c.getGroup)
	case wire.FrameCreateBlob:
		return decoded(f, c.createBlob)
	case wire.FramePutBlob:
		return decoded(f, c.putBlob)
	case wire.FrameGetBlob:
		return decoded(f, c.getBlob)
	case wire.FrameFetchDeviceList:
		return decoded(f, c.fetchDeviceList)
	}
	return nil, errcode.PolicyUnexpectedFrame
}

// limited is check 2 of SRV-005 and GRP-009: the send rate for send and
// send-group, the request rate for the others (SRV-016).
func (c *conn) limited(typ uint64) error {
	limit := c.reqLimit
	if typ == wire.FrameSend || typ == wire.FrameSendGroup {
		limit = c.sendLimit
	}
	if faults.Has(faults.NoRateLimit) {
		return nil
	}
	return take(limit, 1, time.Now())
}

// take takes n tokens of limit at now, or none and answers
// policy.rate_limited with the time until they will be there.
func take(limit *rate.Limiter, n int, now time.Time) error {
	if limit.AllowN(now, n) { // no Reservation to allocate for the common case
		return nil
	}
	// A reservation at the same time only prices the refusal: it is not
	// due now, and its cancellation gives its tokens back.
	r := limit.ReserveN(now, n)
	after := r.DelayFrom(now)
	r.CancelAt(now)
	return &transport.RetryError{Code: errcode.PolicyRateLimited, After: max(after, time.Millisecond)}
}

func (c *conn) request(f *wire.Frame) {
	id := transport.RequestID(f)
	lost := c.answersLost(f)
	serve, err := c.decode(f)
	if err == nil {
		err = c.limited(f.Type)
	}
	var result wire.Message
	if err == nil {
		result, err = serve(context.Background())
	}
	enc, closing := c.answer(id, result, err)
	c.answering(id)
	if lost {
		enc, closing = nil, true
	}
	if enc != nil {
		c.tc.WriteFrame(enc)
	}
	if closing {
		c.close()
	}
}

// isSend reports whether f is a request that queues entries.
func isSend(f *wire.Frame) bool { return f.Type == wire.FrameSend || f.Type == wire.FrameSendGroup }

// answer encodes the answer to request id: its result, or its error, and
// reports whether the connection must close after it (a malformed body or
// a failure of ours: TRN-009, SRV-017).
func (c *conn) answer(id uint64, result wire.Message, err error) ([]byte, bool) {
	typ, body, closing := uint64(wire.FrameResult), result, false
	if err != nil {
		err = internal(err)
		code := errcode.Of(err)
		c.s.metrics.refused.inc(code)
		typ, body = wire.FrameError, errorBody(err)
		closing = code.Layer() == "decode" || code == errcode.PolicyShuttingDown && !faults.Has(faults.StoreFailureOpen)
		level := slog.LevelInfo
		if code == errcode.PolicyRateLimited {
			level = slog.LevelDebug // a flood would fill the log
		}
		c.s.log.Log(context.Background(), level, "request refused", "account", c.addr.Account, "device", c.addr.Device, "code", code.String())
	}
	enc, eerr := transport.EncodeFrame(typ, id, body)
	if eerr != nil {
		c.s.log.Error("answer", "account", c.addr.Account, "device", c.addr.Device, "err", eerr)
		return nil, true
	}
	return enc, closing
}

// setPrivacy is set-privacy.
func (c *conn) setPrivacy(ctx context.Context, b *wire.Privacy) (wire.Message, error) {
	err := c.s.cfg.Store.SetPrivacy(ctx, c.addr.Account, store.Privacy{LastSeen: uint8(b.LastSeen), Online: uint8(b.Online)})
	c.s.presence.changed(c.addr.Account)
	return &wire.Empty{}, err
}

// setContacts is set-contacts.
func (c *conn) setContacts(ctx context.Context, b *wire.Contacts) (wire.Message, error) {
	err := c.s.cfg.Store.SetContacts(ctx, c.addr.Account, b.Accounts)
	c.s.presence.changed(c.addr.Account)
	return &wire.Empty{}, err
}

// ack takes acknowledged entries out of flight. The server's acker
// deletes them from the store in its next batch (SRV-011); until then
// they are held, and no delivery pass reads them back. Ids that were not
// in flight on this connection are held only when they name an entry of
// the device's queue not held already: an entry delivered on the
// device's connection before this one. The rest, ids that name nothing
// and acks repeated, cost the store nothing and hold no memory (SRV-021).
// The ids are in increasing order (the ack frame's own check).
func (c *conn) ack(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	now := c.s.now()
	c.dmu.Lock()
	flying, stray := c.split(ids)
	if len(flying) > 0 {
		c.s.acks.add(c.addr, flying) // held before they leave the in-flight set
	}
	if stray != nil {
		queued, err := c.s.cfg.Store.Queued(context.Background(), c.addr, stray)
		if err != nil {
			// Held all the same: an ack is never lost to a failing look.
			c.s.log.Error("ack", "account", c.addr.Account, "device", c.addr.Device, "err", err)
			queued = stray
		}
		c.s.acks.addNew(c.addr, queued)
	}
	for _, id := range ids {
		if f, ok := c.inflight[id]; ok && f.move(entryNone) == nil {
			c.s.metrics.acked.Add(1)
			c.s.metrics.latency.observe(now.Sub(f.entry.AcceptedAt))
			delete(c.inflight, id)
		}
	}
	c.dmu.Unlock()
	c.wakeUp()
}

// split returns the ids that are in flight on the connection and those
// that are not: ids itself and nil, allocating nothing, when all are. The
// caller holds dmu.
func (c *conn) split(ids []uint64) (flying, stray []uint64) {
	for i, id := range ids {
		if _, ok := c.inflight[id]; ok {
			if stray != nil {
				flying = append(flying, id)
			}
			continue
		}
		if stray == nil {
			flying = slices.Clone(ids[:i])
		}
		stray = append(stray, id)
	}
	if stray == nil {
		return ids, nil
	}
	return flying, stray
}

// drain waits until the requests being processed are done, or ctx ends.
func (c *conn) drain(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		c.busy.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (c *conn) notifyShutdown(after time.Duration) {
	ms := uint64(after.Milliseconds())
	c.tc.Send(wire.FrameNotice, 0, &wire.Notice{Type: wire.NoticeShuttingDown, RetryAfter: &ms})
}

// identityKey decodes the device's identity key.
func (c *conn) identityKey(ctx context.Context) (keys.PublicKey, error) {
	acct, err := c.s.cfg.Store.Account(ctx, c.addr.Account)
	if err != nil {
		return keys.PublicKey{}, err
	}
	d := findDevice(acct, c.addr.Device)
	if d == nil {
		return keys.PublicKey{}, errcode.AuthUnknownDevice
	}
	return keys.DecodePublicKey(d.IdentityKey)
}
