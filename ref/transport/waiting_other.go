//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package transport

import "net"

// peek cannot look at a socket's receive queue here: only what the
// connection has read counts (Conn.Waiting).
func peek(net.Conn, int) []byte { return nil }

// canPeek says whether peek can look at a socket's queue here.
const canPeek = false
