//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package transport

import (
	"net"
	"syscall"
)

// peek returns up to limit bytes of nc's receive queue without taking them
// (MSG_PEEK). Go's sockets do not block, so an empty queue answers at once.
func peek(nc net.Conn, limit int) []byte {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	b := make([]byte, limit)
	n := 0
	rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK)
		return true // once, whatever it found: no waiting
	})
	return b[:max(n, 0)]
}

// canPeek says whether peek can look at a socket's queue here.
const canPeek = true
