package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

func keyPair(t testing.TB, seed byte) noise.DHKey {
	t.Helper()
	k, err := Suite.GenerateKeypair(testRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fastTimeouts keep the timeout tests short.
var fastTimeouts = Timeouts{Handshake: 300 * time.Millisecond, Idle: 300 * time.Millisecond, Write: time.Second}

// testServer accepts connections on a loopback port and runs serve on
// each established one. It returns the address, the server's static key and
// a channel with the error of each connection.
func testServer(t *testing.T, serve func(*Conn) error) (addr string, static noise.DHKey, errs chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	static = keyPair(t, 100)
	errs = make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				conn, err := Server(c, &ServerConfig{Static: static, Timeouts: fastTimeouts})
				if err != nil {
					errs <- err
					return
				}
				errs <- serve(conn)
			}()
		}
	}()
	return ln.Addr().String(), static, errs
}

// helloServer answers a hello whose binding verifies with a welcome, then
// echoes every frame it receives until an error.
func helloServer(c *Conn) error { return echoAfterHello(0)(c) }

// echoAfterHello returns a server that reads at most first bytes of a
// frame until the hello (no limit of its own for 0), welcomes it, and then
// echoes every frame.
func echoAfterHello(first uint32) func(*Conn) error {
	return func(c *Conn) error {
		c.SetFrameLimit(first)
		id, _, v, err := ReadHello(c, []uint64{1})
		if err != nil {
			return err
		}
		c.SetFrameLimit(0)
		if err := c.Send(wire.FrameResult, id, &wire.Welcome{Version: v, Time: 1}); err != nil {
			return err
		}
		return echo(c)
	}
}

// echo writes back every frame it reads.
func echo(c *Conn) error {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return err
		}
		if err := c.WriteFrame(f); err != nil {
			return err
		}
	}
}

type device struct {
	ik     *keys.PrivateKey
	static noise.DHKey
}

func newDevice(t testing.TB, seed byte) device {
	t.Helper()
	ik, err := keys.GeneratePrivateKey(testRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return device{ik, keyPair(t, seed+1)}
}

func (d device) hello(t testing.TB, bindKey []byte, signer *keys.PrivateKey) *wire.Hello {
	t.Helper()
	sig, err := Bind(signer, bindKey, 1, "alice", testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Hello{Versions: []uint64{1}, Account: "alice", Device: 1, IdentityKey: d.ik.Public().Encode(), Binding: sig}
}

func dial(t *testing.T, addr string, cfg *ClientConfig) (*Conn, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = fastTimeouts
	}
	return Client(c, cfg)
}

func TestHandshakeAndFrames(t *testing.T) {
	addr, static, _ := testServer(t, helloServer)
	d := newDevice(t, 1)
	for _, serverKey := range [][]byte{nil, static.Public} { // XX, then IK
		c, err := dial(t, addr, &ClientConfig{Static: d.static, ServerKey: serverKey, Expect: static.Public})
		if err != nil {
			t.Fatalf("handshake (server key %v): %v", serverKey != nil, err)
		}
		if !bytes.Equal(c.RemoteStatic(), static.Public) {
			t.Fatalf("remote static: got %x, want %x", c.RemoteStatic(), static.Public)
		}
		var w wire.Welcome
		if err := c.Call(wire.FrameHello, 1, d.hello(t, d.static.Public, d.ik), &w); err != nil {
			t.Fatalf("hello: %v", err)
		}
		if w.Version != 1 {
			t.Errorf("welcome version: got %d, want 1", w.Version)
		}
		// A frame larger than a segment comes back whole.
		big := bytes.Repeat([]byte{0xA5}, 3*MaxSegment+17)
		if err := c.WriteFrame(big); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadFrame()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("echo of %d bytes: got %d bytes, %v", len(big), len(got), err)
		}
	}
}

func TestWrongServerKey(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	d := newDevice(t, 1)
	other := keyPair(t, 50)
	// IK to a key the server does not hold: the server cannot read the
	// first message and the handshake fails on both sides.
	if _, err := dial(t, addr, &ClientConfig{Static: d.static, ServerKey: other.Public}); err == nil {
		t.Error("IK with a wrong server key: handshake succeeded")
	}
	if err := <-errs; !errors.Is(err, ErrHandshakeFailed) {
		t.Errorf("server side: got %v, want %v", err, ErrHandshakeFailed)
	}
	// XX while expecting another key: the device refuses the server.
	if _, err := dial(t, addr, &ClientConfig{Static: d.static, Expect: other.Public}); !errors.Is(err, ErrServerKey) {
		t.Errorf("XX with an unexpected server key: got %v, want %v", err, ErrServerKey)
	}
}

func TestBinding(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	d := newDevice(t, 1)
	stranger := newDevice(t, 20)
	tests := []struct {
		name  string
		hello *wire.Hello
	}{
		{"unbound: binds another transport key", d.hello(t, stranger.static.Public, d.ik)},
		{"wrongly bound: signed by another identity key", d.hello(t, d.static.Public, stranger.ik)},
	}
	for _, tt := range tests {
		c, err := dial(t, addr, &ClientConfig{Static: d.static})
		if err != nil {
			t.Fatal(err)
		}
		var w wire.Welcome
		err = c.Call(wire.FrameHello, 7, tt.hello, &w)
		var re *RemoteError
		if !errors.As(err, &re) || errcode.Code(re.Body.Code) != errcode.AuthBadSignature {
			t.Errorf("%s: got %v, want an error frame %v", tt.name, err, errcode.AuthBadSignature)
		}
		if err := <-errs; !errors.Is(err, errcode.AuthBadSignature) {
			t.Errorf("%s: server got %v", tt.name, err)
		}
	}
}

// established returns a connection that has completed hello.
func established(t *testing.T, addr string) *Conn {
	t.Helper()
	d := newDevice(t, 1)
	c, err := dial(t, addr, &ClientConfig{Static: d.static})
	if err != nil {
		t.Fatal(err)
	}
	var w wire.Welcome
	if err := c.Call(wire.FrameHello, 1, d.hello(t, d.static.Public, d.ik), &w); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOversizeFrame(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	c := established(t, addr)
	refusedLength(t, c, errs, wire.MaxFrameSize+1)
	if _, err := c.ReadFrame(); err == nil {
		t.Error("connection still open after an oversize frame")
	}
}

// refusedLength sends a frame length alone on c (the server must not wait
// for the body), and checks that the server answers it with an error
// frame policy.frame_too_large and ends with that error.
func refusedLength(t *testing.T, c *Conn, errs chan error, n uint32) {
	t.Helper()
	if err := c.WriteStream(binary.BigEndian.AppendUint32(nil, n)); err != nil {
		t.Fatal(err)
	}
	f, err := c.Receive()
	if err != nil {
		t.Fatalf("a frame length of %d: got %v (server: %v), want an error frame", n, err, <-errs)
	}
	var b wire.ErrorBody
	if err := DecodeBody(f, &b); err != nil || errcode.Code(b.Code) != errcode.PolicyFrameTooLarge {
		t.Errorf("a frame length of %d: got code %v (%v), want %v", n, errcode.Code(b.Code), err, errcode.PolicyFrameTooLarge)
	}
	if err := <-errs; !errors.Is(err, errcode.PolicyFrameTooLarge) {
		t.Errorf("server: got %v, want %v", err, errcode.PolicyFrameTooLarge)
	}
}

func TestTruncatedFrame(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	c := established(t, addr)
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], 1000)
	if err := c.WriteStream(append(h[:], make([]byte, 10)...)); err != nil {
		t.Fatal(err)
	}
	// The peer goes silent mid-frame: the server's read deadline ends it.
	if err := <-errs; err == nil {
		t.Error("server accepted a truncated frame")
	}
	// A truncated segment, then the end of the connection: a small one
	// (its start comes with its length), a large one (its rest is read
	// straight into the segment), and a length alone.
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"small segment", []byte{0x00, 0x40, 1, 2, 3}},
		{"large segment", []byte{0x10, 0x00, 1, 2, 3}},
		{"length alone", []byte{0x00, 0x40}},
	} {
		c2 := established(t, addr)
		c2.writeRaw(tc.bytes)
		c2.conn.(*net.TCPConn).CloseWrite()
		if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated %s: server got %v, want %v", tc.name, err, io.ErrUnexpectedEOF)
		}
	}
}

func TestReplayedSegment(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	c := established(t, addr)
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], 3)
	if err := c.WriteStream(append(h[:], 0xA0, 0xA0, 0xA0)); err != nil {
		t.Fatal(err)
	}
	segment := bytes.Clone(c.out)
	if _, err := c.ReadFrame(); err != nil { // the echo
		t.Fatal(err)
	}
	if err := c.writeRaw(segment); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrChannel) {
		t.Errorf("replayed segment: server got %v, want %v", err, ErrChannel)
	}
	if _, err := c.ReadFrame(); err == nil {
		t.Error("connection still open after a replayed segment")
	}
}

func TestSilentPeer(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	// Connects and sends nothing: the handshake deadline closes it.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := <-errs; !isTimeout(err) {
		t.Errorf("silent before the handshake: server got %v, want a timeout", err)
	}
	// Completes the handshake, then never says hello.
	d := newDevice(t, 1)
	if _, err := dial(t, addr, &ClientConfig{Static: d.static}); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !isTimeout(err) {
		t.Errorf("no hello: server got %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBadPreamble(t *testing.T) {
	addr, _, errs := testServer(t, helloServer)
	for _, pre := range [][]byte{[]byte("MSX\x01\x01"), []byte("MSV\x02\x01"), []byte("MSV\x01\x03")} {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		raw.Write(pre)
		if err := <-errs; !errors.Is(err, ErrPreamble) {
			t.Errorf("preamble %q: got %v, want %v", pre, err, ErrPreamble)
		}
		raw.Close()
	}
}

func TestMalformedFrame(t *testing.T) {
	addr, _, errs := testServer(t, func(c *Conn) error {
		_, err := c.Receive()
		return err
	})
	d := newDevice(t, 1)
	c, err := dial(t, addr, &ClientConfig{Static: d.static})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFrame([]byte{0xA2, 0x01, 0x02, 0xFF}); err != nil { // a map cut short by a break
		t.Fatal(err)
	}
	f, err := c.Receive()
	if err != nil {
		t.Fatal(err)
	}
	var b wire.ErrorBody
	if err := DecodeBody(f, &b); err != nil || errcode.Code(b.Code) != errcode.DecodeMalformed {
		t.Errorf("got %v (%v), want %v", errcode.Code(b.Code), err, errcode.DecodeMalformed)
	}
	if err := <-errs; !errors.Is(err, errcode.DecodeMalformed) {
		t.Errorf("server: got %v", err)
	}
}

// TestWriteFrames sends frames of many sizes in batches, each batch one
// write, and checks that the peer reads them back in order: frames that
// arrive together are read ahead, a segment split across reads included.
func TestWriteFrames(t *testing.T) {
	got := make(chan []byte, 256)
	addr, static, _ := testServer(t, func(c *Conn) error {
		for {
			f, err := c.ReadFrame()
			if err != nil {
				close(got)
				return err
			}
			got <- f
		}
	})
	c, err := dial(t, addr, &ClientConfig{Static: keyPair(t, 1), ServerKey: static.Public})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	for batch := range 20 {
		var frames [][]byte
		for range 1 + batch%7 {
			n := r.IntN(3000)
			if r.IntN(10) == 0 {
				n = 70000 + r.IntN(30000) // several segments
			}
			f := make([]byte, n)
			for i := range f {
				f[i] = byte(r.Uint32())
			}
			frames = append(frames, f)
		}
		if err := c.WriteFrames(frames); err != nil {
			t.Fatal(err)
		}
		want = append(want, frames...)
	}
	if err := c.WriteFrames([][]byte{make([]byte, wire.MaxFrameSize+1)}); err == nil {
		t.Error("WriteFrames of an oversize frame succeeded")
	}
	for i, w := range want {
		select {
		case f, ok := <-got:
			if !ok {
				t.Fatalf("frame %d: the server stopped reading", i)
			}
			if !bytes.Equal(f, w) {
				t.Fatalf("frame %d: got %d bytes, want %d", i, len(f), len(w))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d: not received", i)
		}
	}
}

// TestVerifyBindingCache checks that a binding verified once (and so held
// by the cache of verified bindings) verifies again, and that a change of
// any one input still fails after it.
func TestVerifyBindingCache(t *testing.T) {
	d, other := newDevice(t, 30), newDevice(t, 40)
	tk := d.static.Public
	sig, err := Bind(d.ik, tk, 3, "carol", testRand(5))
	if err != nil {
		t.Fatal(err)
	}
	ik := d.ik.Public()
	for i := range 2 {
		if err := VerifyBinding(ik, tk, sig, 3, "carol"); err != nil {
			t.Fatalf("verification %d: got %v, want nil", i+1, err)
		}
	}
	flipped := bytes.Clone(sig)
	flipped[10] ^= 1
	otherKey := bytes.Clone(tk)
	otherKey[0] ^= 1
	for _, tc := range []struct {
		name    string
		ik      keys.PublicKey
		tk, sig []byte
		device  uint32
		account string
	}{
		{"another identity key", other.ik.Public(), tk, sig, 3, "carol"},
		{"another transport key", ik, otherKey, sig, 3, "carol"},
		{"another device", ik, tk, sig, 4, "carol"},
		{"another account", ik, tk, sig, 3, "carl"},
		{"a changed signature", ik, tk, flipped, 3, "carol"},
		{"a short transport key", ik, tk[:31], sig, 3, "carol"},
	} {
		if err := VerifyBinding(tc.ik, tc.tk, tc.sig, tc.device, tc.account); !errors.Is(err, errcode.AuthBadSignature) {
			t.Errorf("%s: got %v, want %v", tc.name, err, errcode.AuthBadSignature)
		}
	}
}

// TestBlockedWrite checks TRN-016: a write that blocks for the write
// timeout, because the peer reads nothing, fails with a timeout and
// closes the connection, which the peer then sees end.
func TestBlockedWrite(t *testing.T) {
	written := make(chan error, 1)
	hold := make(chan struct{}) // the server keeps the connection until the test ends
	addr, _, _ := testServer(t, func(c *Conn) error {
		frame := make([]byte, 60000)
		for i := 0; ; i++ {
			if err := c.WriteFrame(frame); err != nil {
				written <- err
				<-hold // so that only the failed write can have closed it
				return err
			}
			if i > 100000 { // 6 GB: something does read
				written <- nil
				return nil
			}
		}
	})
	t.Cleanup(func() { close(hold) })
	d := newDevice(t, 1)
	c, err := dial(t, addr, &ClientConfig{Static: d.static})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-written:
		if !isTimeout(err) {
			t.Fatalf("server's write to a peer that reads nothing: got %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server's writes did not stop")
	}
	// The peer reads what was sent, then the end of the connection.
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, err := c.ReadFrame(); err != nil {
			if isTimeout(err) {
				t.Fatalf("the connection was not closed: %v", err)
			}
			break
		}
	}
}

// readCounter counts the reads of a connection.
type readCounter struct {
	net.Conn
	reads atomic.Int64
}

func (r *readCounter) Read(p []byte) (int, error) {
	r.reads.Add(1)
	return r.Conn.Read(p)
}

// TestOneReadPerSmallSegment checks that a small segment that arrives alone
// costs the reader one read, its length included, and that segments of
// every size around the reader's own buffer still arrive whole.
func TestOneReadPerSmallSegment(t *testing.T) {
	reads := make(chan int64, 1)
	addr, static, _ := testServer(t, func(c *Conn) error {
		rc := &readCounter{Conn: c.conn}
		c.conn = rc
		for {
			f, err := c.ReadFrame()
			if err != nil {
				reads <- rc.reads.Load()
				return err
			}
			if err := c.WriteFrame(f); err != nil {
				return err
			}
		}
	})
	c, err := dial(t, addr, &ClientConfig{Static: keyPair(t, 1), ServerKey: static.Public})
	if err != nil {
		t.Fatal(err)
	}
	// Each frame waits for its echo, so that it arrives alone. A segment
	// of a frame of n bytes holds 2+4+n+16 bytes.
	small := 0
	for n := range leadBuf {
		f := bytes.Repeat([]byte{byte(n)}, n)
		if err := c.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f) {
			t.Fatalf("frame of %d bytes: got %d bytes back", n, len(got))
		}
		if 2+4+n+tagSize <= leadBuf {
			small++
		}
	}
	c.Close()
	got := <-reads
	// Every small frame costs one read; each larger one two; the end of
	// the connection one.
	if want := int64(small + 2*(leadBuf-small) + 1); got != want {
		t.Errorf("got %d reads for %d frames (%d of them small), want %d", got, leadBuf, small, want)
	}
}

// deadlineCounter counts the deadlines set on a connection.
type deadlineCounter struct {
	net.Conn
	reads, writes atomic.Int64
}

func (d *deadlineCounter) SetReadDeadline(t time.Time) error {
	d.reads.Add(1)
	return d.Conn.SetReadDeadline(t)
}

func (d *deadlineCounter) SetWriteDeadline(t time.Time) error {
	d.writes.Add(1)
	return d.Conn.SetWriteDeadline(t)
}

// TestStale checks the rule of TRN-017 for when a deadline is set again:
// never left later than wanted, left earlier by at most TIMEOUT_SLACK.
func TestStale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	timeout := 10 * time.Second // slack 100 ms
	tests := []struct {
		name string
		cur  time.Time
		want bool
	}{
		{"never set", time.Time{}, true},
		{"the same", now, false},
		{"50 ms early", now.Add(-50 * time.Millisecond), false},
		{"exactly the slack early", now.Add(-100 * time.Millisecond), false},
		{"beyond the slack", now.Add(-100*time.Millisecond - time.Nanosecond), true},
		{"a second early", now.Add(-time.Second), true},
		{"a nanosecond late", now.Add(time.Nanosecond), true},
		{"an hour late", now.Add(time.Hour), true},
	}
	for _, tt := range tests {
		if got := stale(tt.cur, now, timeout); got != tt.want {
			t.Errorf("%s: stale(%v before, timeout %v): got %v, want %v", tt.name, now.Sub(tt.cur), timeout, got, tt.want)
		}
	}
}

// TestDeadlinesWithinSlack checks that a busy connection sets its read and
// write deadlines far less often than once per frame (TRN-017), and sets the
// read deadline again at once when the idle timeout is shortened.
func TestDeadlinesWithinSlack(t *testing.T) {
	type result struct {
		reads, writes int64
		timeouts      Timeouts
	}
	results := make(chan result, 1)
	addr, static, _ := testServer(t, func(c *Conn) error {
		dc := &deadlineCounter{Conn: c.conn}
		c.conn = dc
		c.SetIdleTimeout(10 * time.Second)
		for {
			f, err := c.ReadFrame()
			if err != nil {
				results <- result{dc.reads.Load(), dc.writes.Load(), c.timeouts}
				return err
			}
			if err := c.WriteFrame(f); err != nil {
				return err
			}
		}
	})
	long := Timeouts{Handshake: 10 * time.Second, Idle: 10 * time.Second, Write: 10 * time.Second}
	c, err := dial(t, addr, &ClientConfig{Static: keyPair(t, 1), ServerKey: static.Public, Timeouts: long})
	if err != nil {
		t.Fatal(err)
	}
	dc := &deadlineCounter{Conn: c.conn}
	c.conn = dc
	// A deadline is set again once it would move by more than its slack
	// (1 % of its timeout): about once per side and kind however many
	// frames, unless the round trips took long (a loaded machine).
	atMost := func(elapsed, timeout time.Duration) int64 { return 2 + int64(elapsed/(timeout/timeoutSlack)) }
	const frames = 200
	start := time.Now()
	for i := range frames {
		if err := c.WriteFrame([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if r, w, mr, mw := dc.reads.Load(), dc.writes.Load(), atMost(elapsed, long.Idle), atMost(elapsed, long.Write); r > mr || w > mw {
		t.Errorf("device: got %d read and %d write deadlines for %d frames in %v, want at most %d and %d", r, w, frames, elapsed, mr, mw)
	}
	before := dc.reads.Load()
	c.SetIdleTimeout(5 * time.Second)
	if err := c.WriteFrame([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if got := dc.reads.Load() - before; got != 1 {
		t.Errorf("read deadlines set after the idle timeout was shortened: got %d, want 1", got)
	}
	c.Close()
	elapsed = time.Since(start)
	got := <-results
	if mr, mw := atMost(elapsed, got.timeouts.Idle), atMost(elapsed, got.timeouts.Write); got.reads > mr || got.writes > mw {
		t.Errorf("server: got %d read and %d write deadlines for %d frames in %v, want at most %d and %d", got.reads, got.writes, frames+1, elapsed, mr, mw)
	}
}

// TestWaiting checks what Waiting reports of a reader: a frame read ahead
// (two frames in one write, the first one returned), then nothing; empty
// segments, read ahead or queued, which carry no frame; then a frame in the
// socket's queue that no read has touched, behind an empty segment.
func TestWaiting(t *testing.T) {
	server, done := make(chan *Conn, 1), make(chan struct{})
	defer close(done)
	addr, static, _ := testServer(t, func(c *Conn) error {
		server <- c
		<-done
		return nil
	})
	c, err := dial(t, addr, &ClientConfig{Static: keyPair(t, 1), ServerKey: static.Public})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-server
	defer s.Close()
	empty := func() []byte {
		t.Helper()
		seg, err := c.SealSegment(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{0, byte(len(seg))}, seg...)
	}
	read := func(want byte) {
		t.Helper()
		if f, err := s.ReadFrame(); err != nil || !bytes.Equal(f, []byte{want}) {
			t.Fatalf("got frame %x, %v, want %02x", f, err, want)
		}
	}
	if err := c.WriteFrames([][]byte{{1}, {2}}); err != nil {
		t.Fatal(err)
	}
	read(1)
	if got := s.Waiting(); !got {
		t.Errorf("with a frame read ahead: got Waiting %v, want true", got)
	}
	read(2)
	if got := s.Waiting(); got {
		t.Errorf("with everything read: got Waiting %v, want false", got)
	}
	// A frame with two empty segments behind it in one write: they are
	// read ahead with it, and carry nothing.
	seg3, err := c.SealSegment(append([]byte{0, 0, 0, 1}, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.writeRaw(slices.Concat([]byte{0, byte(len(seg3))}, seg3, empty(), empty())); err != nil {
		t.Fatal(err)
	}
	read(3)
	if got := s.Waiting(); got {
		t.Errorf("with two empty segments read ahead: got Waiting %v, want false", got)
	}
	if !canPeek {
		return // this system cannot look at a socket's queue
	}
	if err := c.writeRaw(empty()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // for it to arrive, were it to count
	if got := s.Waiting(); got {
		t.Errorf("with an empty segment queued: got Waiting %v, want false", got)
	}
	if err := c.WriteFrame([]byte{4}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !s.Waiting() {
		if time.Now().After(deadline) {
			t.Fatal("with a frame in the socket's queue: got Waiting false, want true")
		}
		time.Sleep(time.Millisecond)
	}
	read(4)
}

// TestFirstFrameLimit checks SetFrameLimit, with which the server reads
// at most MAX_FIRST_FRAME until the hello has passed its checks (TRN-020):
// a frame length above it is refused before the frame is read; once the
// limit is lifted, frames up to MAX_FRAME_SIZE pass.
func TestFirstFrameLimit(t *testing.T) {
	addr, _, errs := testServer(t, echoAfterHello(MaxFirstFrame))
	d := newDevice(t, 1)
	c, err := dial(t, addr, &ClientConfig{Static: d.static})
	if err != nil {
		t.Fatal(err)
	}
	refusedLength(t, c, errs, MaxFirstFrame+1) // the first frame

	c = established(t, addr)
	big := bytes.Repeat([]byte{0xA0}, 4*MaxFirstFrame)
	if err := c.WriteFrame(big); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadFrame()
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("a frame of %d bytes after the hello: got %d bytes back (%v), want it echoed", len(big), len(got), err)
	}
}
