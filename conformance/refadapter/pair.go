package refadapter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/transport"
)

// recorder keeps what is written to a connection.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// messages splits recorded handshake bytes into Noise messages, after skip
// bytes (the preamble).
func messages(b []byte, skip int) [][]byte {
	b = b[skip:]
	var out [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		out = append(out, bytes.Clone(b[2:2+n]))
		b = b[2+n:]
	}
	return out
}

// runPair runs a handshake between a client and a server configuration,
// then the segments, and reports what was written.
func runPair(ccfg *transport.ClientConfig, scfg *transport.ServerConfig, segs []*pb.TransportSegment) (*pb.TransportRunResult, error) {
	a, b := net.Pipe()
	ca, cb := &recorder{Conn: a}, &recorder{Conn: b}
	type result struct {
		c   *transport.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := transport.Client(ca, ccfg)
		done <- result{c, err}
	}()
	server, err := transport.Server(cb, scfg)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("refadapter: responder handshake: %w", err)
	}
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("refadapter: initiator handshake: %w", r.err)
	}
	client := r.c
	defer client.Close()
	defer server.Close()
	ini, resp := messages(ca.buf.Bytes(), 5), messages(cb.buf.Bytes(), 0)
	out := &pb.TransportRunResult{HandshakeHash: client.HandshakeHash()}
	for i := 0; i < len(ini) || i < len(resp); i++ { // messages alternate, the initiator first
		if i < len(ini) {
			out.Handshake = append(out.Handshake, ini[i])
		}
		if i < len(resp) {
			out.Handshake = append(out.Handshake, resp[i])
		}
	}
	for _, s := range segs {
		from, to := client, server
		if s.GetFrom() == "responder" {
			from, to = server, client
		}
		sr := &pb.SegmentResult{}
		out.Segments = append(out.Segments, sr)
		seg := s.GetSegment()
		if len(seg) == 0 {
			if seg, err = from.SealSegment(s.GetPlaintext()); err != nil {
				return nil, err
			}
			sr.Segment = seg
		}
		pt, err := to.OpenSegment(seg)
		if err != nil {
			sr.ErrorCode = uint32(errcode.AuthDecryptFailed)
			break // the receiver closes the connection (TRN-007)
		}
		sr.Plaintext = pt
	}
	return out, nil
}
