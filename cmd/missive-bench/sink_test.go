package main

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/missive-protocol/missive/ref/transport"
)

// countingConn counts the bytes written through it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// TestSinkSizes checks that the TCP baseline sends the bytes of a real IK
// handshake: ikMsg1 from the device, ikMsg2 from the server.
func TestSinkSizes(t *testing.T) {
	server, err := noiseKey()
	if err != nil {
		t.Fatal(err)
	}
	client, err := noiseKey()
	if err != nil {
		t.Fatal(err)
	}
	x, y := net.Pipe()
	defer x.Close()
	defer y.Close()
	var fromDevice, fromServer atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := transport.Server(countingConn{y, &fromServer}, &transport.ServerConfig{Static: server})
		done <- err
	}()
	if _, err := transport.Client(countingConn{x, &fromDevice}, &transport.ClientConfig{Static: client, ServerKey: server.Public}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fromDevice.Load(); got != ikMsg1 {
		t.Errorf("the device wrote %d bytes, want ikMsg1 = %d", got, ikMsg1)
	}
	if got := fromServer.Load(); got != ikMsg2 {
		t.Errorf("the server wrote %d bytes, want ikMsg2 = %d", got, ikMsg2)
	}
}
