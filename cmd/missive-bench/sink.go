package main

import (
	"io"
	"net"
)

// The TCP baseline of the reconnect scenario: what a connection costs this
// machine before any cryptography. A device dials the sink, writes the
// bytes of the IK handshake's first message (with the preamble), reads
// those of its second and resets the connection, as in the storm; the
// sink, in the server's process, answers each connection from a goroutine
// of its own, as the server does (TestSinkSizes checks the sizes).
const (
	ikMsg1 = 5 + 2 + 32 + 32 + 16 + 16 // preamble, length, e, s and its tag, the empty payload's tag
	ikMsg2 = 2 + 32 + 16               // length, e, the empty payload's tag
)

// serveSink serves ln until it is closed.
func serveSink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var b [ikMsg1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:ikMsg2]); err != nil {
				return
			}
			io.Copy(io.Discard, c) // until the device resets the connection
		}()
	}
}

// sinkExchange is the device's side of one baseline connection.
func (d *device) sinkExchange(nc net.Conn) error {
	var b [ikMsg1]byte
	if _, err := nc.Write(b[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(nc, b[:ikMsg2])
	return err
}
