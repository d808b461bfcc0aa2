// Package server is the reference Missive server (spec/13-server.md): it
// authenticates devices over the transport of chapter 12, stores prekeys
// and hands them out once, accepts envelopes only after storing them
// durably, delivers and redelivers queued entries until they are
// acknowledged or expire, and relays presence and typing under each
// account's privacy settings. It keeps the chain of each group's signed
// states and fans a group message out to every group device
// (spec/16-groups.md), and keeps the blob store of encrypted attachments
// (spec/17-media.md). It never sees plaintext.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/time/rate"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 13.1.
const (
	PrekeyLow        = 10
	QueueQuota       = 10000
	QueueBytesQuota  = 64 << 20
	MaxInflight      = 64
	RedeliveryBase   = 5 * time.Second
	RedeliveryMax    = 300 * time.Second
	AckDelay         = 50 * time.Millisecond
	SendRate         = 50
	SendBurst        = 100
	RequestRate      = 20
	RequestBurst     = 40
	TypingRate       = 2
	TypingBurst      = 5
	RegisterEvery    = 10 * time.Second // REGISTER_RATE: one registration per this interval
	RegisterBurst    = 1000
	MaxPendingPushes = 256
	ShutdownGrace    = 5 * time.Second
	MaxSentAhead     = 24 * time.Hour
	AcceptMemory     = 30 * 24 * time.Hour
	expiryInterval   = time.Second
	protocolVersion  = 1
	shutdownRetryMin = time.Second
)

// Constants of spec section 16.1: the rate limits of groups.
const (
	FanoutRate      = 5120 // FANOUT_RATE: group devices per second
	FanoutBurst     = 10240
	GroupStateEvery = 300 * time.Second // GROUP_STATE_RATE: one group state per this interval
	GroupStateBurst = 64
)

// MaxOneTimePrekeys is MAX_ONE_TIME_PREKEYS, per kind and device (SRV-025).
const MaxOneTimePrekeys = 1000

// ONE_TIME_HANDOUT_RATE and ONE_TIME_HANDOUT_BURST (SRV-027): the bundles
// that hand out a device's one-time prekeys.
const (
	HandoutEvery = 36 * time.Second
	HandoutBurst = 100
)

// Config configures a Server. Store and Static are required.
type Config struct {
	// Store holds everything the server persists.
	Store store.Store
	// Static is the server's Noise static key pair, its identity; it must
	// stay the same across restarts (TRN-006).
	Static noise.DHKey
	// Clock gives the time used for acceptance, expiry and presence;
	// nil means time.Now. Tests and the conformance runner set it.
	Clock func() time.Time
	// Rand supplies the Noise ephemeral keys and the blob ids; nil means
	// the system generator. The server serializes its reads.
	Rand io.Reader
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Timeouts of the transport; zero values take the specification's.
	Timeouts transport.Timeouts
	// RedeliveryBase and RedeliveryMax override the specification's
	// redelivery backoff (for tests); zero keeps them.
	RedeliveryBase, RedeliveryMax time.Duration
	// AckDelay overrides ACK_DELAY, the longest time the server holds
	// acknowledged entries before it deletes them (for tests); zero keeps
	// it.
	AckDelay time.Duration
	// ExpiryInterval is how often expired entries are swept; zero means
	// every second.
	ExpiryInterval time.Duration
	// Quota overrides the per-device queue quota; zero keeps the
	// specification's.
	Quota store.Quota
	// RegisterBurst overrides REGISTER_BURST, the new accounts one source
	// may register at once (SRV-026); zero keeps it, and a negative value
	// lifts the limit: for a deployment whose accounts come from
	// elsewhere, a benchmark, or the conformance runner's own server.
	RegisterBurst int
	// GroupStateBurst overrides GROUP_STATE_BURST, the group states one
	// account may author at once (GRP-015); zero keeps it, and a negative
	// value lifts the limit (for tests).
	GroupStateBurst int
	// HandoutBurst overrides ONE_TIME_HANDOUT_BURST, the bundles with a
	// device's one-time prekeys handed out at once (SRV-027); zero keeps it,
	// and a negative value lifts the limit (for tests and benchmarks).
	HandoutBurst int
	// DuplicateDeliveries makes the server deliver every entry twice, as a
	// network that duplicates would: the conformance runner uses it to check
	// that clients show a message once (CLI-001). Never set it otherwise.
	DuplicateDeliveries bool
	// ForgetAccepted makes the server store an envelope again when its
	// sender resends it, as a server without SRV-008 would: the conformance
	// runner uses it to check that clients show a message once (CLI-001).
	// Never set it otherwise.
	ForgetAccepted bool
	// WelcomeDelay and EarlyFrame are for the conformance runner's check
	// of TRN-013 (a device sends nothing but its hello before it has the
	// welcome): after a hello passes its checks, the server waits
	// WelcomeDelay before it builds the welcome, and just before it sends
	// it calls EarlyFrame with the device's address if the device has sent
	// a frame since its hello (transport.Conn.Waiting); the frame is then
	// served as usual. Never set them otherwise.
	WelcomeDelay time.Duration
	EarlyFrame   func(store.Address)
	// FrameRead, when set, is told the type of every frame the server
	// reads from a device, from its hello once it passed the checks, as it
	// reads it: the conformance runner's check of TRN-014 (a device that
	// has sent nothing for KEEPALIVE_INTERVAL sends ping). Never set it
	// otherwise.
	FrameRead func(store.Address, uint64)
	// ReusedRequest and AnswerDelay are for the conformance runner's check
	// of MSG-005 (a device uses a request id at most once on a connection
	// while its request is unanswered): when ReusedRequest is set, the
	// server counts the request ids of each connection that it has read
	// and not yet begun to answer, and calls ReusedRequest with the
	// device's address and the id when a request comes with an id so
	// counted (the request is then served as usual); with ReusedRequest
	// set, every answer to a request waits AnswerDelay first, so that a
	// device has requests unanswered for that long (a connection's
	// requests are served in turn: the k-th of k queued waits k times
	// as long). Never set them otherwise.
	ReusedRequest func(store.Address, uint64)
	AnswerDelay   time.Duration
	// HandOut, when set, may replace each bundle the server hands out: it
	// is given the device and the keys just taken for it, and returns the
	// keys to hand out instead. The conformance runner uses it to hand
	// out one-time prekeys again, as a server without SRV-003 would, to
	// check that a device deletes those a prekey message used (PQX-010).
	// Never set it otherwise.
	HandOut func(store.Address, *store.BundleKeys) *store.BundleKeys
	// ForgedList, when set, may give a signed device list to serve for an
	// account instead of its own: in the answers to fetch-device-list and
	// fetch-prekeys, and in a fan-out mismatch that refuses every send to
	// the account that leaves out a device the forged list names. The
	// conformance runner uses it to lie about an account's list, as a
	// server that forges one would, to check that a device refuses a list
	// whose primary key changed (DEV-014). Never set it otherwise.
	ForgedList func(account string) []byte
	// Mute, Wrote and ReadEnded are for the conformance runner's check of
	// TRN-015 on devices (a device closes a connection on which it has
	// received nothing for IDLE_TIMEOUT): the server answers no ping of a
	// device for which Mute returns true; it calls Wrote after each write
	// to a device's connection, from the welcome on; and it tells
	// ReadEnded, once for each connection whose hello it read, the error
	// that ended its reader (nil when the server stopped reading) and
	// whether the server had begun to close the connection itself first
	// (a refusal, a failed write, a removal), so that the runner sees who
	// ended it: the device (end of file, reset), or the server (a timeout
	// of its read deadline, or its own close). Never set them otherwise.
	Mute      func(store.Address) bool
	Wrote     func(store.Address)
	ReadEnded func(a store.Address, err error, byServer bool)
	// Uploaded, when set, is told of every prekey upload whose keys and
	// signatures passed their checks, before the store takes it: the
	// conformance runner's check of PQX-002 (a device never gives an id
	// of one kind to a second key of that kind), which sees every id a
	// device uploads, those the store then refuses included. Never set
	// it otherwise.
	Uploaded func(store.Address, store.PrekeyUpdate)
	// DropRequest, when set, is asked about each request the server is
	// about to serve: when it returns true for one, the server closes the
	// connection instead of serving the requests it was about to serve,
	// unanswered and with nothing stored, as a connection lost before
	// they reached it. The conformance runner uses it to check that a
	// device sends again at a later connection what it owes (DEV-022).
	// Never set it otherwise.
	DropRequest func(store.Address, *wire.Frame) bool
	// LoseAnswer, when set, is asked about each request the server is
	// about to serve: when it returns true for one, the server serves the
	// requests it was about to serve (what they store stays stored), then
	// closes the connection instead of answering them, as a connection
	// lost before the answers reached the device. The conformance runner
	// uses it to check that a device sends again what it owes with the
	// same message id and sent-at (DEV-022, SRV-008). Never set it
	// otherwise.
	LoseAnswer func(store.Address, *wire.Frame) bool
}

// Server is a Missive server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	rand    io.Reader // cfg.Rand, or the system generator, safe for concurrent use

	mu         sync.Mutex
	listeners  map[net.Listener]bool
	conns      map[*conn]bool
	devices    map[store.Address]*conn // the authenticated connection of each device
	limits     map[store.Address]*limits
	idle       []idleLimits  // limits whose device's last connection ended, oldest first
	removals   atomic.Uint64 // device removals so far (listChanged), for hellos under way
	presence   *presence
	links      links
	acks       *acker     // deletes acknowledged entries in batches
	recipients recipients // the send path's account records
	closing    bool
	wg         sync.WaitGroup // connection goroutines
	stop       chan struct{}
	stopOnce   sync.Once
	sweepDone  chan struct{}

	registrations *registrations // the accounts each source registers lately (SRV-026)
}

// New returns a server for cfg and starts its expiry sweeper.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if len(cfg.Static.Private) != 32 || len(cfg.Static.Public) != 32 {
		return nil, errors.New("server: no static key")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RedeliveryBase == 0 {
		cfg.RedeliveryBase = RedeliveryBase
	}
	if cfg.RedeliveryMax == 0 {
		cfg.RedeliveryMax = RedeliveryMax
	}
	if cfg.AckDelay == 0 {
		cfg.AckDelay = AckDelay
	}
	if cfg.ExpiryInterval == 0 {
		cfg.ExpiryInterval = expiryInterval
	}
	if cfg.Quota == (store.Quota{}) {
		cfg.Quota = store.Quota{Entries: QueueQuota, Bytes: QueueBytesQuota}
	}
	random := io.Reader(rand.Reader)
	if cfg.Rand != nil {
		cfg.Rand = &lockedReader{r: cfg.Rand} // handshakes run concurrently
		random = cfg.Rand
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		metrics:   newMetrics(),
		rand:      random,
		listeners: map[net.Listener]bool{},
		conns:     map[*conn]bool{},
		devices:   map[store.Address]*conn{},
		limits:    map[store.Address]*limits{},
		stop:      make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	s.presence = newPresence(s)
	s.registrations = newRegistrations(cfg.RegisterBurst)
	s.acks = newAcker(cfg.Store, cfg.AckDelay, s.log.Error)
	go s.sweep()
	return s, nil
}

// PublicKey returns the server's static public key, which devices pin.
func (s *Server) PublicKey() []byte { return append([]byte(nil), s.cfg.Static.Public...) }

func (s *Server) now() time.Time { return s.cfg.Clock() }

// Serve accepts connections on ln until Shutdown or an error of ln, and
// closes ln when it returns: a listener handed to a server that is shut
// down already, or shut down before Serve started, is closed too, and its
// port free.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.listeners[ln] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	s.log.Info("listening", "addr", ln.Addr().String())
	var wait time.Duration // after a passing failure of Accept
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if !passing(err) {
				return err
			}
			// Out of file descriptors or memory for a while: a client
			// that opens connections without end gets there, and must
			// not stop the server for good (TRN-011). Wait, and accept
			// again once connections have ended.
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", "err", err, "retry", wait)
			select {
			case <-time.After(wait):
			case <-s.stop:
			}
			continue
		}
		wait = 0
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return ErrClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// passing reports whether a failure of Accept passes once connections end
// or memory frees: the process or the system is out of file descriptors
// (EMFILE, ENFILE) or of buffers (ENOBUFS, ENOMEM), or a connection was
// reset before it was accepted.
func passing(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("server: closed")

// Shutdown stops the server gracefully (SRV-018): it stops accepting, sends
// notice(shutting-down) to every device, lets started requests finish for
// up to ShutdownGrace or until ctx ends, then closes every connection. It
// does not close the store, which belongs to the caller.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.sweepDone
	grace, cancel := context.WithTimeout(ctx, ShutdownGrace)
	defer cancel()
	// The notices are written together, each by a goroutine of its own: a
	// device that reads nothing holds its write for up to WRITE_TIMEOUT,
	// and n of them written in turn held the stop for n times that. They
	// are given the grace; the close below ends those still waiting.
	var notified sync.WaitGroup
	for _, c := range conns {
		notified.Go(func() { c.notifyShutdown(shutdownRetryMin) })
	}
	for _, c := range conns {
		c.drain(grace)
	}
	wait(grace, &notified)
	for _, c := range conns {
		c.close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("server: shutdown: %w", ctx.Err())
	}
	s.acks.close(true) // every acknowledged entry deleted (SRV-011)
	if !faults.Has(faults.NoStopFlush) {
		s.presence.flushSeen(context.Background())
	}
	return err
}

// wait waits for wg, or until ctx ends.
func wait(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Close stops the server at once, as a crash would: it closes the
// listeners and every connection without notices or grace. Nothing the
// server accepted is lost (SRV-006): it is in the store, which belongs to
// the caller. The conformance runner uses it to kill a server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.sweepDone
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	s.acks.close(false) // as a crash: what was held is delivered again
}

// sweep deletes expired entries periodically (SRV-012).
func (s *Server) sweep() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep(context.Background())
			s.presence.flushSeen(context.Background())
			s.dropLimits(time.Now())
		}
	}
}

// Sweep deletes the entries and the blobs that have expired by the
// server's clock (SRV-012, MED-006), and forgets accepted message ids past
// their memory. The server calls it every second; a test that moves the
// clock can call it directly.
func (s *Server) Sweep(ctx context.Context) {
	if faults.Has(faults.IgnoreTTL) {
		return
	}
	now := s.now()
	// Each sweep goes on whatever befell the other: a store that cannot
	// sweep its queues still expires blobs, and one that set records aside
	// still counts what it deleted.
	n, err := s.cfg.Store.Expire(ctx, now)
	if err != nil {
		s.log.Error("expiry sweep", "err", err)
	}
	if n > 0 {
		s.metrics.expired.Add(uint64(n))
		s.log.Info("expired entries", "count", n)
	}
	n, size, err := s.cfg.Store.ExpireBlobs(ctx, now)
	if err != nil {
		s.log.Error("blob expiry sweep", "err", err)
		return
	}
	if n > 0 {
		s.metrics.blobsExpired.Add(uint64(n))
		s.log.Info("expired blobs", "count", n, "bytes", size)
	}
}

// lockedReader serializes the reads of a random source that is not safe
// for concurrent use (a seeded generator in tests).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = true
	s.metrics.connections.Add(1)
	return true
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	current := false
	if c.authed && s.devices[c.addr] == c {
		delete(s.devices, c.addr)
		current = true
		s.limitsIdle(c.addr, time.Now())
	}
	s.mu.Unlock()
	s.metrics.connections.Add(-1)
	s.links.dropConn(c)
	if c.authed {
		// A connection that a newer one of its device replaced is not
		// counted off: the newer one took its place in the count (attach).
		s.presence.disconnected(c, current)
	}
}

// attach makes c the connection of its device, closing an older one,
// which it returns.
func (s *Server) attach(c *conn) *conn {
	s.mu.Lock()
	old := s.devices[c.addr]
	s.devices[c.addr] = c
	l := s.limitsOf(c.addr)
	c.sendLimit, c.reqLimit, c.typingLimit, c.fanoutLimit = l.send, l.req, l.typing, l.fanout
	s.mu.Unlock()
	if old != nil {
		old.close()
	} else {
		s.presence.connected(c) // a replacement takes its predecessor's place in the count
	}
	return old
}

// limits are the rate limits of a device (SRV-016): they outlive its
// connections, so that a device that connects again gets no new burst.
type limits struct {
	send, req, typing *rate.Limiter
	fanout            *rate.Limiter // GRP-014
	idle              time.Time     // when the device's last connection ended; zero while one is open
}

func newLimits() *limits {
	return &limits{
		send:   rate.NewLimiter(SendRate, SendBurst),
		req:    rate.NewLimiter(RequestRate, RequestBurst),
		typing: rate.NewLimiter(TypingRate, TypingBurst),
		fanout: rate.NewLimiter(FanoutRate, FanoutBurst),
	}
}

// limitsKeep is how long the limits of a device without a connection are
// kept, in real time: longer than any of its buckets takes to fill again
// (at most 2.5 s), after which new limits are the same as the old. The
// fan-out bucket runs on the server's clock, which is the real one but in
// tests: there a device away for limitsKeep comes back with it full,
// however the test's clock has moved.
const limitsKeep = 10 * time.Second

// limitsOf returns a device's limits, making them on its first connection.
// Called with s.mu held.
func (s *Server) limitsOf(a store.Address) *limits {
	l := s.limits[a]
	if l == nil {
		l = newLimits()
		s.limits[a] = l
	}
	l.idle = time.Time{}
	return l
}

// limitsIdle marks the limits of a device whose last connection ended at
// now. Called with s.mu held.
func (s *Server) limitsIdle(a store.Address, now time.Time) {
	if l := s.limits[a]; l != nil {
		l.idle = now
		s.idle = append(s.idle, idleLimits{a, now})
	}
}

// idleLimits is a device whose last connection ended at a time.
type idleLimits struct {
	addr store.Address
	at   time.Time
}

// dropLimits forgets the limits of devices whose last connection ended
// more than limitsKeep before now (the real time, which the limiters use)
// and that have not connected since. It looks only at the devices that
// went idle, oldest first, not at every device.
func (s *Server) dropLimits(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ; n < len(s.idle) && now.Sub(s.idle[n].at) > limitsKeep; n++ {
		i := s.idle[n]
		if l := s.limits[i.addr]; l != nil && l.idle.Equal(i.at) {
			delete(s.limits, i.addr)
		}
	}
	s.idle = append(s.idle[:0], s.idle[n:]...)
}

// device returns the connection of a device, or nil.
func (s *Server) device(a store.Address) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devices[a]
}

// connectedDevices returns the connections of an account's devices.
func (s *Server) connectedDevices(account string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for a, c := range s.devices {
		if a.Account == account {
			out = append(out, c)
		}
	}
	return out
}
