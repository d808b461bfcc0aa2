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
	static, err := transport.Suite.GenerateKeypair(rand.NewChaCha8([32]byte{42}))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: mem.New(), Static: static})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
