// Package transport implements the transport of spec/12-transport.md:
// Noise (XX on first contact, IK once the server's static key is known;
// 25519, ChaChaPoly, SHA256) over a stream connection, with length-prefixed
// segments that carry a stream of length-prefixed frames, deadlines on
// every read and write, and the binding of a device's transport key to its
// identity key.
package transport

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 12.1.
const (
	Magic             = "MSV"
	Version           = 1
	PatternXX         = 1
	PatternIK         = 2
	MaxSegment        = 65535
	HandshakeTimeout  = 10 * time.Second
	KeepaliveInterval = 30 * time.Second
	IdleTimeout       = 90 * time.Second
	WriteTimeout      = 10 * time.Second
	LabelBinding      = "Missive v1 transport key"

	tagSize         = 16
	maxSegmentPlain = MaxSegment - tagSize
	preambleSize    = 5
)

// Suite is the Noise cipher suite: 25519, ChaChaPoly, SHA256.
var Suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

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
	remote   []byte    // the peer's static key
	hash     []byte    // the handshake hash

	rmu  sync.Mutex
	recv *noise.CipherState
	seg  []byte // the segment being read
	dec  []byte // decrypted bytes; dec[off:] are not yet returned
	off  int

	wmu   sync.Mutex
	send  *noise.CipherState
	plain []byte // the stream bytes being written
	out   []byte // their segments
}

// RemoteStatic returns the static key the peer proved in the handshake.
func (c *Conn) RemoteStatic() []byte { return bytes.Clone(c.remote) }

// HandshakeHash returns the Noise handshake hash, which identifies the
// connection.
func (c *Conn) HandshakeHash() []byte { return bytes.Clone(c.hash) }

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

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
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: Suite, Random: cfg.Rand, Pattern: hp, Initiator: true,
		Prologue: pre, StaticKeypair: cfg.Static, PeerStatic: cfg.ServerKey,
	})
	if err != nil {
		return nil, err
	}
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
// that the hello exchange ends within the handshake timeout too (TRN-015).
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
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: Suite, Random: cfg.Rand, Pattern: hp, Initiator: false,
		Prologue: pre, StaticKeypair: cfg.Static,
	})
	if err != nil {
		return nil, err
	}
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

// fill decrypts the next segment onto the decrypted bytes.
func (c *Conn) fill() error {
	var l [2]byte
	if _, err := io.ReadFull(c.conn, l[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < tagSize {
		return ErrChannel
	}
	if cap(c.seg) < n {
		c.seg = make([]byte, MaxSegment)
	}
	c.seg = c.seg[:n]
	if _, err := io.ReadFull(c.conn, c.seg); err != nil {
		return err
	}
	if c.off == len(c.dec) { // all returned: reuse the space
		c.dec, c.off = c.dec[:0], 0
	}
	out, err := c.recv.Decrypt(c.dec, nil, c.seg)
	if err != nil {
		return ErrChannel // TRN-007: no detail, and the caller closes
	}
	c.dec = out
	return nil
}

// readFull appends the next n bytes of the decrypted stream to dst.
func (c *Conn) readFull(dst []byte, n int) ([]byte, error) {
	for len(c.dec)-c.off < n {
		if c.off > 0 && c.off == len(c.dec) {
			c.dec, c.off = c.dec[:0], 0
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	dst = append(dst, c.dec[c.off:c.off+n]...)
	c.off += n
	return dst, nil
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
// with an error frame before ReadFrame returns (TRN-008). After an error
// the connection must be closed.
func (c *Conn) ReadFrame() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	d := time.Now().Add(c.timeouts.Idle)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	c.conn.SetReadDeadline(d)
	var hb [4]byte
	h, err := c.readFull(hb[:0], 4)
	if err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h)
	if n > wire.MaxFrameSize {
		err := &FrameTooLargeError{n}
		c.SendError(0, err)
		return nil, err
	}
	// Grow with what arrives: a length alone must not make the reader
	// reserve the whole frame.
	return c.readFull(make([]byte, 0, min(n, 4096)), int(n))
}

// WriteFrame sends one frame encoding, split into as few segments as it
// takes. A write that blocks beyond the write timeout fails (TRN-016).
func (c *Conn) WriteFrame(frame []byte) error {
	if len(frame) > wire.MaxFrameSize {
		return &FrameTooLargeError{uint32(len(frame))}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.plain = binary.BigEndian.AppendUint32(c.plain[:0], uint32(len(frame)))
	c.plain = append(c.plain, frame...)
	return c.writeStream(c.plain)
}

// writeStream encrypts plain into segments and writes them in one call.
func (c *Conn) writeStream(plain []byte) error {
	c.out = c.out[:0]
	for len(plain) > 0 {
		n := min(len(plain), maxSegmentPlain)
		start := len(c.out)
		c.out = append(c.out, 0, 0)
		var err error
		c.out, err = c.send.Encrypt(c.out, nil, plain[:n])
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint16(c.out[start:], uint16(len(c.out)-start-2))
		plain = plain[n:]
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.timeouts.Write))
	_, err := c.conn.Write(c.out)
	return err
}

// WriteRaw writes bytes to the underlying connection as they are, for
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
