package server_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// register sends a hello that registers account from the local address
// from (nil: the system's choice), and returns the code of the answer (0
// for a welcome) and, for an error, its retry time.
func (e *env) register(from net.IP, account string) (errcode.Code, *uint64) {
	e.t.Helper()
	d := net.Dialer{}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Skipf("no connection from %v to the server: %v", from, err)
	}
	c, _, h := e.rawHello(account, nc)
	if err := c.Send(wire.FrameHello, 1, h); err != nil {
		e.t.Fatal(err)
	}
	f, err := c.Receive()
	if err != nil {
		e.t.Fatalf("hello of %s: %v", account, err)
	}
	c.Close()
	if f.Type != wire.FrameError {
		return 0, nil
	}
	var b wire.ErrorBody
	if err := transport.DecodeBody(f, &b); err != nil {
		e.t.Fatal(err)
	}
	return errcode.Code(b.Code), b.RetryAfter
}

// TestRegistrationsLimited checks SRV-026: one source registers at most
// the burst of new accounts at once, the next refused as rate-limited
// with a retry time; a hello that registers an account it already holds
// takes no token; another source is not limited by the first; and a
// negative burst lifts the limit.
func TestRegistrationsLimited(t *testing.T) {
	const burst = 3
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.RegisterBurst = burst })
	local := net.IPv4(127, 0, 0, 1)
	for i := range burst {
		if code, _ := e.register(local, fmt.Sprintf("r%d", i)); code != 0 {
			t.Fatalf("registration %d of %d from one source: got %v, want a welcome", i+1, burst, code)
		}
	}
	code, retry := e.register(local, "one-too-many")
	if code != errcode.PolicyRateLimited || retry == nil || *retry == 0 || time.Duration(*retry)*time.Millisecond > server.RegisterEvery {
		t.Fatalf("registration %d from one source: got %v (retry after %v ms), want %v with a retry time of at most %v", burst+1, code, retry, errcode.PolicyRateLimited, server.RegisterEvery)
	}
	e.seed -= burst + 1 // the hello of r0 again, with its key
	if code, _ := e.register(local, "r0"); code != 0 {
		t.Errorf("the registration of an account the source holds, again: got %v, want a welcome (it creates nothing)", code)
	}
	if code, _ := e.register(net.IPv4(127, 0, 0, 2), "elsewhere"); code != 0 {
		t.Errorf("a registration from another source: got %v, want a welcome", code)
	}

	open := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.RegisterBurst = -1 })
	for i := range 2 * burst {
		if code, _ := open.register(local, fmt.Sprintf("o%d", i)); code != 0 {
			t.Fatalf("registration %d with the limit lifted: got %v, want a welcome", i+1, code)
		}
	}
}

// TestFirstFrameLimit checks TRN-020: before a hello has passed, the
// server answers a frame length above MAX_FIRST_FRAME with
// policy.frame_too_large, without waiting for the frame.
func TestFirstFrameLimit(t *testing.T) {
	e := start(t)
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := e.rawHello("big", nc)
	if err := c.WriteStream(binary.BigEndian.AppendUint32(nil, transport.MaxFirstFrame+1)); err != nil {
		t.Fatal(err)
	}
	f, err := c.Receive()
	if err != nil {
		t.Fatalf("a first frame of MAX_FIRST_FRAME + 1 bytes: got %v, want an error frame", err)
	}
	var b wire.ErrorBody
	if err := transport.DecodeBody(f, &b); err != nil || errcode.Code(b.Code) != errcode.PolicyFrameTooLarge {
		t.Errorf("a first frame of MAX_FIRST_FRAME + 1 bytes: got %v (%v), want %v", errcode.Code(b.Code), err, errcode.PolicyFrameTooLarge)
	}
}
