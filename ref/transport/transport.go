// Package transport implements the transport of spec/12-transport.md:
// Noise (XX on first contact, IK once the server's static key is known;
// 25519, ChaChaPoly, SHA256) over a stream connection, with length-prefixed
// segments that carry a stream of length-prefixed frames, deadlines on
// every read and write, and the binding of a device's transport key to its
// identity key.
package transport

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/prim"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 12.1.
const (
	Magic             = "MSV"
	Version           = 1
	PatternXX         = 1
	PatternIK         = 2
	MaxSegment        = 65535
	MaxFirstFrame     = 4096
	HandshakeTimeout  = 10 * time.Second
	KeepaliveInterval = 30 * time.Second
	IdleTimeout       = 90 * time.Second
	WriteTimeout      = 10 * time.Second
	LabelBinding      = "Missive v1 transport key"

	// timeoutSlack divides a timeout into TIMEOUT_SLACK, 1 % of it.
	timeoutSlack = 100

	tagSize         = 16
	maxSegmentPlain = MaxSegment - tagSize
	preambleSize    = 5
)

// Suite is the Noise cipher suite: 25519, ChaChaPoly, SHA256.
var Suite = noise.NewCipherSuite((*dh25519)(nil), chachaPoly{}, noise.HashSHA256)

// handshakeSuite returns Suite with a DH function of its own, for one
// handshake, which knows the static key and its public key (from the static
// key cache). The caller sets the DH function's peer once the handshake
// state exists, and calls forget on it once the handshake is over: the
// cipher states of the connection keep the suite.
func handshakeSuite(static []byte) (noise.CipherSuite, *dh25519) {
	d := new(dh25519)
	if pub, ok := statics.get(static); ok {
		d.static, d.local = static, pub[:]
	}
	return noise.NewCipherSuite(d, chachaPoly{}, noise.HashSHA256), d
}

// generations is a cache of two generations: a value found in the older
// moves to the younger, and when the younger holds size values the older
// is dropped. A value in use stays however many others pass through.
type generations[K comparable, V any] struct {
	mu         sync.Mutex
	size       int
	young, old map[K]V
}

func (g *generations[K, V]) get(k K) (V, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.young[k]
	if !ok {
		if v, ok = g.old[k]; ok {
			g.putLocked(k, v)
		}
	}
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) {
	g.mu.Lock()
	g.putLocked(k, v)
	g.mu.Unlock()
}

func (g *generations[K, V]) putLocked(k K, v V) {
	if g.young == nil || len(g.young) >= g.size {
		g.old, g.young = g.young, make(map[K]V)
	}
	g.young[k] = v
}

// staticCache holds the public keys of the static keys used lately in
// handshakes: a server uses its one static key in every handshake, and
// computing its public key anew each time would be one more scalar
// multiplication per handshake. A process that runs many devices (the load
// tool, the conformance runner) uses many keys, each in turn, so the cache
// holds thousands, in two generations. The multiplication of a new key runs
// outside the lock.
type staticCache struct {
	keys generations[[32]byte, [32]byte]
}

// staticGeneration is the most keys of one generation of the cache: it
// keeps at most twice that many.
const staticGeneration = 2048

var statics = staticCache{keys: generations[[32]byte, [32]byte]{size: staticGeneration}}

// get returns the public key of priv, computing and keeping it when it is
// not kept yet; false when priv is not a key.
func (c *staticCache) get(priv []byte) ([32]byte, bool) {
	if len(priv) != 32 {
		return [32]byte{}, false
	}
	id := [32]byte(priv)
	if pub, ok := c.keys.get(id); ok {
		return pub, true
	}
	pub, err := prim.X25519Public(priv)
	if err != nil {
		return [32]byte{}, false
	}
	c.keys.put(id, [32]byte(pub))
	return [32]byte(pub), true
}

// staticDH holds the results of the static-static operation (ss) of the IK
// handshakes made lately, by the two static public keys: a device that
// connects again to its server, and the server it connects to, compute the
// same X25519(s, rs) in every handshake, as WireGuard computes its peers'
// once. Keeping it saves one of the five X25519 operations of each side of
// a repeated IK handshake. The handshake's bytes do not change: X25519 is a
// function of its inputs, and the cache is only consulted for the pair it
// was filled with. A hit is about one scalar multiplication faster than a
// miss, which tells a timing observer no more than that the pair has
// connected lately, as the connection itself does.
var staticDH = generations[[64]byte, [32]byte]{size: staticGeneration}

// dh25519 is Noise's 25519 DH function (X25519, RFC 7748) with one scalar
// multiplication per operation. flynn/noise's DH25519 goes through
// x/crypto/curve25519.X25519, which makes a crypto/ecdh private key, and so
// computes its public key, for every operation: two multiplications for
// each of the ten X25519 operations of an IK handshake. This one computes
// an operation with the ladder alone (prim.X25519) and a key pair's public
// key with edwards25519's fixed-base multiplication (prim.X25519Public,
// about 40 % of a ladder), and takes the static key's public key from the
// static key cache and the static-static result from staticDH: a side of a
// repeated IK handshake does three ladders and one fixed-base
// multiplication instead of ten ladders. The outputs are the same bytes. A
// nil *dh25519 keeps nothing.
type dh25519 struct {
	// static is the static private key and local its public key; peer
	// returns the handshake's peer static key, nil until it is known: an
	// operation of static with peer() is the static-static one (staticDH).
	static []byte
	local  []byte
	peer   func() []byte
}

func (*dh25519) DHName() string { return "25519" }
func (*dh25519) DHLen() int     { return 32 }

// GenerateKeypair reads 32 bytes from rng, as flynn/noise does, and makes
// the key pair with one fixed-base multiplication.
func (d *dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	if rng == nil {
		rng = rand.Reader
	}
	priv := make([]byte, 32)
	if _, err := io.ReadFull(rng, priv); err != nil {
		return noise.DHKey{}, err
	}
	pub, err := prim.X25519Public(priv)
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: priv, Public: pub}, nil
}

// DH returns X25519(priv, pub); it fails for a low-order pub, whose result
// is all zeros.
func (d *dh25519) DH(priv, pub []byte) ([]byte, error) {
	var id [64]byte
	ss := d != nil && d.peer != nil && len(pub) == 32 && len(priv) == len(d.static) &&
		subtle.ConstantTimeCompare(priv, d.static) == 1 && bytes.Equal(pub, d.peer())
	if ss {
		copy(id[:32], d.local)
		copy(id[32:], pub)
		if v, ok := staticDH.get(id); ok {
			return v[:], nil
		}
	}
	out, err := prim.X25519(priv, pub)
	if err == nil && ss {
		staticDH.put(id, [32]byte(out))
	}
	return out, err
}

// forget drops the handshake's keys, so that the connection, whose cipher
// states keep the suite, holds no reference to the static key.
func (d *dh25519) forget() {
	if d == nil {
		return
	}
	d.static, d.local, d.peer = nil, nil, nil
}

// Errors of the transport. Attacker-controlled failures of the channel are
// reported as ErrChannel with no detail.
var (
	ErrChannel         = errors.New("transport: channel failure")
	ErrServerKey       = errors.New("transport: the server's static key is not the one configured")
	ErrPreamble        = errors.New("transport: unsupported preamble")
	ErrHandshakeFailed = errors.New("transport: handshake failed")
)

// Timeouts are the deadlines of spec section 12.5; tests shorten them.
type Timeouts struct {
	Handshake time.Duration
	Idle      time.Duration
	Write     time.Duration
}

// DefaultTimeouts returns the values the specification names.
func DefaultTimeouts() Timeouts {
	return Timeouts{Handshake: HandshakeTimeout, Idle: IdleTimeout, Write: WriteTimeout}
}

func (t Timeouts) orDefault() Timeouts {
	d := DefaultTimeouts()
	if t.Handshake == 0 {
		t.Handshake = d.Handshake
	}
	if t.Idle == 0 {
		t.Idle = d.Idle
	}
	if t.Write == 0 {
		t.Write = d.Write
	}
	return t
}

// Preamble returns the five bytes a device sends first; they are also the
// Noise prologue.
func Preamble(pattern byte) []byte {
	return []byte{Magic[0], Magic[1], Magic[2], Version, pattern}
}

// Conn is an established transport connection.
type Conn struct {
	conn     net.Conn
	timeouts Timeouts
	deadline time.Time // until hello is done: the end of the handshake timeout
	rdl, wdl time.Time // the read and write deadlines last set on conn
	remote   []byte    // the peer's static key
	hash     []byte    // the handshake hash

	frameLimit atomic.Uint32 // the longest frame ReadFrame reads; 0: MAX_FRAME_SIZE

	rmu  sync.Mutex
	recv *noise.CipherState
	hdr  [2]byte // the length of the segment being read
	dec  []byte  // decrypted bytes, a pooled buffer or nil; dec[off:] are not yet returned
	off  int
	raw  []byte // bytes read past the last segment, a pooled buffer, lead or nil; raw[roff:] are not yet used
	roff int
	lead [leadBuf]byte // where a segment's length is read, with what arrived with it

	wmu   sync.Mutex
	send  *noise.CipherState
	out   []byte // for tests: the segments of the last WriteStream
	wrote func() // OnWrite's
}

// OnWrite makes the connection call f after each write to the peer that
// succeeded, under the write lock: for conformance runners that time what
// a peer has received. It must be set before the writes it should see.
func (c *Conn) OnWrite(f func()) {
	c.wmu.Lock()
	c.wrote = f
	c.wmu.Unlock()
}

// RemoteStatic returns the static key the peer proved in the handshake.
func (c *Conn) RemoteStatic() []byte { return bytes.Clone(c.remote) }

// HandshakeHash returns the Noise handshake hash, which identifies the
// connection.
func (c *Conn) HandshakeHash() []byte { return bytes.Clone(c.hash) }

// Waiting reports whether the peer has sent frame bytes that no Receive
// has returned yet: decrypted ones, or a segment with a plaintext (one
// longer than its tag) among the bytes read ahead of the last segment and,
// on the systems that allow it, the bytes in the socket's receive queue
// (looked at without being read). An empty segment carries no frame and
// does not count. The reference server uses it, when told to, for the
// conformance runner's check that a device sends no frame after its hello
// before the welcome (TRN-013). It takes the read lock: do not call it
// while a Receive waits.
func (c *Conn) Waiting() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.off < len(c.dec) {
		return true
	}
	var ahead []byte
	if c.raw != nil {
		ahead = bytes.Clone(c.raw[c.roff:])
	}
	return carriesPlaintext(append(ahead, peek(c.conn, waitingPeek)...))
}

// waitingPeek is how many bytes of the socket's queue Waiting looks at:
// enough for many empty segments before one that is not.
const waitingPeek = 1024

// carriesPlaintext reports whether the stream bytes b, which begin with a
// segment's length, name a segment longer than its tag, one that carries
// plaintext.
func carriesPlaintext(b []byte) bool {
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if n > tagSize {
			return true
		}
		b = b[min(len(b), 2+n):]
	}
	return false
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// SetFrameLimit lowers the longest frame ReadFrame reads to n bytes; 0
// restores MAX_FRAME_SIZE. The server reads at most MAX_FIRST_FRAME until a
// device's hello has passed its checks (TRN-020).
func (c *Conn) SetFrameLimit(n uint32) { c.frameLimit.Store(n) }

// SetIdleTimeout changes the read deadline applied to each read.
func (c *Conn) SetIdleTimeout(d time.Duration) { c.timeouts.Idle = d }

// LocalAddr and RemoteAddr return the network addresses.
func (c *Conn) LocalAddr() net.Addr  { return c.conn.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// ClientConfig configures the device's side.
type ClientConfig struct {
	// Static is the device's transport key pair.
	Static noise.DHKey
	// ServerKey is the server's static public key. With it the client runs
	// IK; without it, XX, and the caller stores the key it learns
	// (RemoteStatic) for next time (TRN-004).
	ServerKey []byte
	// Expect, with XX, is a key the server must present; nil accepts any.
	Expect []byte
	// Rand supplies the ephemeral key; nil means the system generator.
	Rand     io.Reader
	Timeouts Timeouts
}

// ServerConfig configures the server's side.
type ServerConfig struct {
	Static   noise.DHKey
	Rand     io.Reader
	Timeouts Timeouts
}

func writeMsg(c net.Conn, m []byte) error {
	if len(m) > MaxSegment {
		return ErrHandshakeFailed
	}
	b := make([]byte, 2, 2+len(m))
	binary.BigEndian.PutUint16(b, uint16(len(m)))
	_, err := c.Write(append(b, m...))
	return err
}

func readMsg(c net.Conn) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Client runs the device's side of the handshake on c (spec section 12.2).
func Client(c net.Conn, cfg *ClientConfig) (*Conn, error) {
	t := cfg.Timeouts.orDefault()
	pattern, hp := byte(PatternXX), noise.HandshakeXX
	if cfg.ServerKey != nil {
		pattern, hp = PatternIK, noise.HandshakeIK
	}
	pre := Preamble(pattern)
	suite, dh := handshakeSuite(cfg.Static.Private)
	defer dh.forget()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Random: cfg.Rand, Pattern: hp, Initiator: true,
		Prologue: pre, StaticKeypair: cfg.Static, PeerStatic: cfg.ServerKey,
	})
	if err != nil {
		return nil, err
	}
	dh.peer = hs.PeerStatic
	c.SetDeadline(time.Now().Add(t.Handshake))
	if _, err := c.Write(pre); err != nil {
		return nil, err
	}
	conn, err := run(c, hs, true)
	if err != nil {
		return nil, err
	}
	if cfg.ServerKey == nil && cfg.Expect != nil && subtle.ConstantTimeCompare(conn.remote, cfg.Expect) != 1 {
		return nil, ErrServerKey
	}
	conn.timeouts = t
	c.SetDeadline(time.Time{})
	return conn, nil
}

// Server runs the server's side of the handshake on c. Reads of the
// connection keep the handshake's deadline until ReadHello has succeeded, so
// that the hello exchange ends within the handshake timeout too (TRN-019).
func Server(c net.Conn, cfg *ServerConfig) (*Conn, error) {
	t := cfg.Timeouts.orDefault()
	deadline := time.Now().Add(t.Handshake)
	c.SetDeadline(deadline)
	pre := make([]byte, preambleSize)
	if _, err := io.ReadFull(c, pre); err != nil {
		return nil, err
	}
	var hp noise.HandshakePattern
	switch {
	case string(pre[:3]) != Magic || pre[3] != Version:
		return nil, ErrPreamble
	case pre[4] == PatternXX:
		hp = noise.HandshakeXX
	case pre[4] == PatternIK:
		hp = noise.HandshakeIK
	default:
		return nil, ErrPreamble
	}
	suite, dh := handshakeSuite(cfg.Static.Private)
	defer dh.forget()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Random: cfg.Rand, Pattern: hp, Initiator: false,
		Prologue: pre, StaticKeypair: cfg.Static,
	})
	if err != nil {
		return nil, err
	}
	dh.peer = hs.PeerStatic
	conn, err := run(c, hs, false)
	if err != nil {
		return nil, err
	}
	conn.timeouts = t
	conn.deadline = deadline
	c.SetWriteDeadline(time.Time{})
	return conn, nil
}

// run drives the handshake to completion. Payloads must be empty (TRN-003).
func run(c net.Conn, hs *noise.HandshakeState, initiator bool) (*Conn, error) {
	write := initiator
	for {
		var cs1, cs2 *noise.CipherState
		if write {
			m, a, b, err := hs.WriteMessage(nil, nil)
			if err != nil {
				return nil, ErrHandshakeFailed
			}
			if err := writeMsg(c, m); err != nil {
				return nil, err
			}
			cs1, cs2 = a, b
		} else {
			m, err := readMsg(c)
			if err != nil {
				return nil, err
			}
			payload, a, b, err := hs.ReadMessage(nil, m)
			if err != nil || len(payload) != 0 {
				return nil, ErrHandshakeFailed
			}
			cs1, cs2 = a, b
		}
		if cs1 != nil {
			conn := &Conn{conn: c, remote: hs.PeerStatic(), hash: hs.ChannelBinding()}
			if initiator {
				conn.send, conn.recv = cs1, cs2
			} else {
				conn.send, conn.recv = cs2, cs1
			}
			return conn, nil
		}
		write = !write
	}
}

// fill decrypts the next segment onto the decrypted bytes. A connection
// holds no pooled buffer while it waits for a segment (only its own
// 512-byte lead): the segment is read into a pooled buffer and decrypted
// in place, and that buffer holds the stream until the frames in it have
// been returned (then it goes back to the pool).
func (c *Conn) fill() error {
	if err := c.readRaw(c.hdr[:], false); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(c.hdr[:]))
	if n < tagSize {
		return ErrChannel
	}
	seg := getBuf(n)
	if err := c.readRaw(seg, true); err != nil {
		putBuf(seg)
		return unexpectedEOF(err, true) // the length came: the segment must follow
	}
	if c.off == len(c.dec) {
		// Nothing pending: the segment's buffer becomes the stream.
		out, err := c.recv.Decrypt(seg[:0], nil, seg)
		if err != nil {
			putBuf(seg)
			return ErrChannel // TRN-007: no detail, and the caller closes
		}
		putBuf(c.dec)
		c.dec, c.off = out, 0
		return nil
	}
	// Part of a frame is pending: append to it.
	if c.off > 0 {
		c.dec = c.dec[:copy(c.dec, c.dec[c.off:])]
		c.off = 0
	}
	out, err := c.recv.Decrypt(c.dec, nil, seg)
	putBuf(seg)
	if err != nil {
		return ErrChannel
	}
	c.dec = out
	return nil
}

// readRaw fills p with the next bytes of the connection: first those read
// ahead before, then from the connection. It reads what the connection
// already holds past p too and keeps it for the next segments, so that
// segments that arrive together cost one read between them. A segment's
// length (ahead false) is read into the connection's own small buffer, so
// that a connection waiting for its next segment holds no pooled buffer,
// and a small segment that arrives whole costs one read with its length.
// Segment bytes (ahead) are read into a pooled buffer when they are few,
// or straight into p.
func (c *Conn) readRaw(p []byte, ahead bool) error {
	partial := false // p begins with bytes read ahead: its end must come
	if c.raw != nil {
		k := copy(p, c.raw[c.roff:])
		partial = k > 0
		c.roff += k
		p = p[k:]
		if c.roff == len(c.raw) {
			c.release(c.raw)
			c.raw, c.roff = nil, 0
		}
		if len(p) == 0 {
			return nil
		}
	}
	var buf []byte
	switch {
	case !ahead && len(p) <= leadBuf:
		buf = c.lead[:]
	case ahead && len(p) < smallBuf/2:
		buf = getBuf(smallBuf)
	default:
		_, err := io.ReadFull(c.conn, p)
		return unexpectedEOF(err, partial)
	}
	got, err := io.ReadAtLeast(c.conn, buf, len(p))
	if err != nil {
		c.release(buf)
		return unexpectedEOF(err, partial)
	}
	copy(p, buf[:len(p)])
	if got == len(p) {
		c.release(buf)
		return nil
	}
	c.raw, c.roff = buf[:got], len(p)
	return nil
}

// unexpectedEOF turns the end of the connection into io.ErrUnexpectedEOF
// when it comes within a read that began with bytes read ahead.
func unexpectedEOF(err error, partial bool) error {
	if partial && err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// release returns a buffer of readRaw to its pool, unless it is lead.
func (c *Conn) release(b []byte) {
	if cap(b) > 0 && &b[:1][0] == &c.lead[0] {
		return
	}
	putBuf(b)
}

// readFull appends the next n bytes of the decrypted stream to dst.
func (c *Conn) readFull(dst []byte, n int) ([]byte, error) {
	for len(c.dec)-c.off < n {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	dst = append(dst, c.dec[c.off:c.off+n]...)
	c.off += n
	if c.off == len(c.dec) {
		putBuf(c.dec)
		c.dec, c.off = nil, 0
	}
	return dst, nil
}

// Buffers of segments, pooled so that connections share them. A buffer
// goes back to its pool only whole (from its first byte, at its full
// capacity); others are left to the collector.
const smallBuf = 2048

// leadBuf is the size of a connection's own read buffer (Conn.lead): a
// segment's length and the segment when it is small, such as a message of
// a few hundred bytes or an acknowledgement. It must be smaller than the
// pooled buffers, which putBuf tells apart by their capacity: lead never
// goes to a pool.
const leadBuf = 512

// A compile-time check: the constant overflows when leadBuf >= smallBuf.
const _ = uint(smallBuf - leadBuf - 1)

var (
	smallBufs = sync.Pool{New: func() any { return new([smallBuf]byte) }}
	largeBufs = sync.Pool{New: func() any { return new([MaxSegment + 2]byte) }}
)

// getBuf returns a buffer of n bytes.
func getBuf(n int) []byte {
	switch {
	case n <= smallBuf:
		return smallBufs.Get().(*[smallBuf]byte)[:n]
	case n <= MaxSegment+2:
		return largeBufs.Get().(*[MaxSegment + 2]byte)[:n]
	}
	return make([]byte, n)
}

// putBuf returns a buffer that getBuf gave.
func putBuf(b []byte) {
	switch cap(b) {
	case smallBuf:
		smallBufs.Put((*[smallBuf]byte)(b[:smallBuf]))
	case MaxSegment + 2:
		largeBufs.Put((*[MaxSegment + 2]byte)(b[:MaxSegment+2]))
	}
}

// FrameTooLargeError reports a frame length above MaxFrameSize (TRN-008).
type FrameTooLargeError struct{ Length uint32 }

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("transport: frame of %d bytes: %v", e.Length, errcode.PolicyFrameTooLarge)
}

// Unwrap returns the registered code.
func (e *FrameTooLargeError) Unwrap() error { return errcode.PolicyFrameTooLarge }

// ReadFrame returns the encoding of the next frame. Each read waits at most
// the idle timeout (TRN-015). A frame length above the limit is answered
// with an error frame before ReadFrame returns (TRN-008): MAX_FRAME_SIZE,
// or the lower limit of SetFrameLimit. After an error the connection must
// be closed.
func (c *Conn) ReadFrame() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	d := time.Now().Add(c.timeouts.Idle)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	if stale(c.rdl, d, c.timeouts.Idle) {
		c.conn.SetReadDeadline(d)
		c.rdl = d
	}
	var hb [4]byte
	h, err := c.readFull(hb[:0], 4)
	if err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h)
	limit := c.frameLimit.Load()
	if limit == 0 {
		limit = wire.MaxFrameSize
	}
	if n > limit {
		err := &FrameTooLargeError{n}
		c.SendError(0, err)
		return nil, err
	}
	// Grow with what arrives: a length alone must not make the reader
	// reserve the whole frame.
	return c.readFull(make([]byte, 0, min(n, 4096)), int(n))
}

// WriteFrame sends one frame encoding, split into as few segments as it
// takes, in one write. A write that blocks beyond the write timeout fails
// (TRN-016). The segments are sealed in place in a pooled buffer, which
// goes back to the pool once written.
func (c *Conn) WriteFrame(frame []byte) error {
	if len(frame) > wire.MaxFrameSize {
		return &FrameTooLargeError{uint32(len(frame))}
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(frame)))
	n := 4 + len(frame)
	segs := (n + maxSegmentPlain - 1) / maxSegmentPlain
	buf := getBuf(n + segs*(2+tagSize))
	defer putBuf(buf)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out, err := c.seal(buf[:0], h[:], frame)
	if err != nil {
		return err
	}
	return c.write(out)
}

// WriteFrames sends frame encodings in order, each starting a segment of
// its own (section 12.3), in one write: a server that has several frames for
// one device pays for one system call. It fails as WriteFrame does, before
// writing anything when a frame is too large.
func (c *Conn) WriteFrames(frames [][]byte) error {
	n := 0
	for _, f := range frames {
		if len(f) > wire.MaxFrameSize {
			return &FrameTooLargeError{uint32(len(f))}
		}
		segs := (4 + len(f) + maxSegmentPlain - 1) / maxSegmentPlain
		n += 4 + len(f) + segs*(2+tagSize)
	}
	if len(frames) == 1 {
		return c.WriteFrame(frames[0])
	}
	buf := getBuf(n)
	defer putBuf(buf)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := buf[:0]
	for _, f := range frames {
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(len(f)))
		var err error
		if out, err = c.seal(out, h[:], f); err != nil {
			return err
		}
	}
	return c.write(out)
}

// seal appends to out the segments of the stream bytes a || b, each
// encrypted in place.
func (c *Conn) seal(out, a, b []byte) ([]byte, error) {
	for len(a)+len(b) > 0 {
		start := len(out)
		out = append(out, 0, 0)
		p := len(out)
		room := maxSegmentPlain
		na := min(len(a), room)
		out, a = append(out, a[:na]...), a[na:]
		nb := min(len(b), room-na)
		out, b = append(out, b[:nb]...), b[nb:]
		out = slices.Grow(out, tagSize) // room for the tag: seal in place
		sealed, err := c.send.Encrypt(out[p:p], nil, out[p:])
		if err != nil {
			return nil, err
		}
		out = out[:p+len(sealed)]
		binary.BigEndian.PutUint16(out[start:], uint16(len(sealed)))
	}
	return out, nil
}

// write writes segments with the write deadline.
func (c *Conn) write(segments []byte) error {
	if d := time.Now().Add(c.timeouts.Write); stale(c.wdl, d, c.timeouts.Write) && !faults.Has(faults.NoWriteTimeout) {
		c.conn.SetWriteDeadline(d)
		c.wdl = d
	}
	_, err := c.conn.Write(segments)
	if err != nil {
		// A write that failed or blocked for the write timeout may have
		// sent part of a segment: the stream cannot go on (TRN-016).
		c.conn.Close()
	} else if c.wrote != nil {
		c.wrote()
	}
	return err
}

// stale reports whether a deadline last set to cur must be set to want:
// unless cur lies at most TIMEOUT_SLACK (1 % of the timeout) before want,
// the time it would be set to. A deadline that is already later than wanted
// is always set, so no read or write waits longer than its timeout; one a
// little early is kept (TRN-017), which spares setting the runtime's timer
// on every read and write of a busy connection.
func stale(cur, want time.Time, timeout time.Duration) bool {
	return cur.IsZero() || cur.After(want) || want.Sub(cur) > timeout/timeoutSlack
}

// WriteStream encrypts plain into segments and writes them in one call, as
// bytes of the stream of frames whatever they hold, for tests and
// conformance runners that send what a correct peer would not (a frame's
// length alone, a frame cut short). It keeps the segments in c.out.
func (c *Conn) WriteStream(plain []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out, err := c.seal(c.out[:0], plain, nil)
	if err != nil {
		return err
	}
	c.out = out
	return c.write(out)
}

// writeRaw writes bytes to the underlying connection as they are, for
// tests of what a misbehaving peer sends.
func (c *Conn) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// SealSegment encrypts plaintext as one segment (spec section 12.3) and
// returns the Noise transport message, without its length. It is the
// low-level half of WriteFrame, for tests and conformance adapters that
// check segments against vectors.
func (c *Conn) SealSegment(plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxSegmentPlain {
		return nil, ErrChannel
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.send.Encrypt(nil, nil, plaintext)
}

// OpenSegment decrypts one segment, the low-level half of ReadFrame. It
// returns ErrChannel when the segment does not decrypt, after which the
// connection must be closed.
func (c *Conn) OpenSegment(segment []byte) ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(segment) < tagSize {
		return nil, ErrChannel
	}
	out, err := c.recv.Decrypt(nil, nil, segment)
	if err != nil {
		return nil, ErrChannel
	}
	return out, nil
}
