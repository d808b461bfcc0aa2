//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package transport

import (
	"net"
	"syscall"
)

// queued reports whether nc's receive queue holds a byte, by looking at it
// without taking it (MSG_PEEK). Go's sockets do not block, so an empty
// queue answers at once.
func queued(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		b [1]byte
		n int
	)
	rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return true // once, whatever it found: no waiting
	})
	return n > 0
}

// canPeek says whether queued can look at a socket's queue here.
const canPeek = true
