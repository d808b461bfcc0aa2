package conformance

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
)

// TestBadHelloConnectionLeftOpen: a server that refuses a bad hello with
// the right code but leaves the connection open fails the hello verb
// (TRN-012 closes it), within the step's time; the transport's own read,
// whose deadline is the idle timeout (90 s), took that for a close.
func TestBadHelloConnectionLeftOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		tc, err := transport.Server(nc, &transport.ServerConfig{Static: static})
		if err != nil {
			return
		}
		if _, err := tc.Receive(); err != nil {
			return
		}
		tc.SendError(1, errcode.StateUnknownAccount)
		<-hold // and never closes
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = badHello(ctx, ln.Addr().String(), "alice", "", "unknown-account")
	if errcode.Of(err) == errcode.StateUnknownAccount || err == nil {
		t.Errorf("a server that left the connection open: got %v, want an error of no code", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v, want the 5 s of the close check", d)
	}
}
