//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package transport

import "net"

// queued cannot look at a socket's receive queue here: only what the
// connection has read counts (Conn.Waiting).
func queued(net.Conn) bool { return false }

// canPeek says whether queued can look at a socket's queue here.
const canPeek = false
