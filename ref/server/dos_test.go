package server_test

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
)

// emfileListener is a listener whose first Accept fails as accept(2) does
// when the process has no file descriptor left (EMFILE): what a client
// that opens connections without end, each held for HANDSHAKE_TIMEOUT,
// makes a server's Accept return.
type emfileListener struct {
	net.Listener
	once sync.Once
}

func (l *emfileListener) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() {
		err = &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", syscall.EMFILE)}
	})
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// TestServeSurvivesAcceptFailure checks that a failure of Accept that is
// not the listener's end (EMFILE, ENFILE: the process or the system is out
// of file descriptors for a while) does not end Serve: a client that opens
// connections until the server has no descriptor left would otherwise stop
// the server for good (cmd/missive-server exits when Serve returns), a
// failure that it causes on every other connection (TRN-011).
func TestServeSurvivesAcceptFailure(t *testing.T) {
	srv, ln := unserved(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&emfileListener{Listener: ln}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err == nil {
		defer nc.Close()
		key, _ := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{7}))
		_, err = transport.Client(nc, &transport.ClientConfig{Static: key, Timeouts: transport.Timeouts{Handshake: 5 * time.Second}})
	}
	select {
	case serr := <-served:
		t.Fatalf("Serve after one EMFILE from Accept: got it returned (%v), want it to go on serving", serr)
	default:
	}
	if err != nil {
		t.Fatalf("handshake after one EMFILE from Accept: got %v, want it served", err)
	}
}

// stallConn is a server side connection whose writes, once stalled, write
// nothing and wait for their deadline or the connection's close, as a
// write to a peer that reads nothing waits once the socket's buffers are
// full.
type stallConn struct {
	net.Conn
	mu       sync.Mutex
	stalled  bool
	deadline time.Time
	closed   chan struct{}
	once     sync.Once
}

func (c *stallConn) stall() {
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	stalled, deadline := c.stalled, c.deadline
	c.mu.Unlock()
	if !stalled {
		return c.Conn.Write(b)
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		expired = time.After(time.Until(deadline))
	}
	select {
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// stallListener hands out stallConns and keeps them.
type stallListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*stallConn
}

func (l *stallListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &stallConn{Conn: nc, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

// TestShutdownNotHeldByStalledDevices checks SRV-018 against devices that
// read nothing: a stopping server closes its connections SHUTDOWN_GRACE
// after it began at the latest, however many devices read nothing. Its
// notice(shutting-down) to each was written in turn, each write waiting up
// to WRITE_TIMEOUT for a device that reads nothing, before the grace even
// began: n such devices held a stopping server for n times WRITE_TIMEOUT
// (cmd/missive-server's own limit, two SHUTDOWN_GRACE, is not looked at
// before the notices are written).
func TestShutdownNotHeldByStalledDevices(t *testing.T) {
	const devices = 10
	const write = time.Second
	static, err := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{42}))
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	st := mem.New()
	srv, err := server.New(server.Config{Store: st, Static: static, Clock: clk.Now,
		Timeouts: transport.Timeouts{Write: write}})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &stallListener{Listener: inner}
	go srv.Serve(ln)
	e := &env{t: t, addr: inner.Addr().String(), srv: srv, st: st, clock: clk}
	for i := range devices {
		d := e.member("stalled" + string(rune('a'+i)))
		defer d.c.Close()
	}
	ln.mu.Lock()
	for _, c := range ln.conns {
		c.stall()
	}
	ln.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	srv.Shutdown(ctx)
	if took, most := time.Since(began), server.ShutdownGrace+write; took > most {
		t.Errorf("Shutdown with %d devices that read nothing: got it done after %v, want at most SHUTDOWN_GRACE + WRITE_TIMEOUT (%v)", devices, took.Round(time.Millisecond), most)
	}
}
