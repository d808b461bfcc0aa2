package transport

import (
	"context"
	"net"
)

// TCP keep-alive is off at both ends of a Missive connection. The
// protocol's own keepalive (section 12.5: a device pings after
// KEEPALIVE_INTERVAL of silence, either side closes after IDLE_TIMEOUT)
// finds a dead peer; the kernel's probes would add wake-ups of their own
// (Go turns them on, every 15 s, unless told otherwise), which a phone pays
// for in battery, and cost the server four system calls for every
// connection it accepts.

// Listen listens for devices on the TCP address addr, with TCP keep-alive
// off.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Dialer returns the dialer a device connects with: TCP keep-alive off.
func Dialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }
