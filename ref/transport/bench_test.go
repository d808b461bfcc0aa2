package transport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// discard is a net.Conn whose writes go nowhere, so the benchmark measures
// the framing and the encryption, not the network.
type discard struct{ net.Conn }

func (discard) Write(b []byte) (int, error)      { return len(b), nil }
func (discard) SetWriteDeadline(time.Time) error { return nil }

// pairForBench returns two connected Conns over net.Pipe.
func pairForBench(b *testing.B) (client, server *Conn) {
	b.Helper()
	x, y := net.Pipe()
	done := make(chan *Conn)
	go func() {
		c, err := Server(y, &ServerConfig{Static: keyPair(b, 100)})
		if err != nil {
			b.Error(err)
		}
		done <- c
	}()
	c, err := Client(x, &ClientConfig{Static: keyPair(b, 1)})
	if err != nil {
		b.Fatal(err)
	}
	return c, <-done
}

// BenchmarkSeal256 is WriteFrame of a 256-byte frame: the length, one
// segment, its encryption.
func BenchmarkSeal256(b *testing.B) {
	c, _ := pairForBench(b)
	c.conn = discard{c.conn}
	frame := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := c.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal256Baseline is the raw AEAD sealing the same 260 bytes.
func BenchmarkSeal256Baseline(b *testing.B) {
	a, _ := chacha20poly1305.New(make([]byte, 32))
	plain, nonce := make([]byte, 260), make([]byte, 12)
	out := make([]byte, 0, 300)
	b.ReportAllocs()
	b.SetBytes(256)
	for b.Loop() {
		out = a.Seal(out[:0], nonce, plain, nil)
	}
}

// BenchmarkOpen256 is ReadFrame of a 256-byte frame: reading and
// decrypting one segment and splitting the frame off the stream.
func BenchmarkOpen256(b *testing.B) {
	c, s := pairForBench(b)
	frame := make([]byte, 256)
	// Record segments once; each pass over them restarts the receiving
	// nonce, since a nonce is used once.
	const n = 4096
	var rec bytes.Buffer
	c.conn = writerConn{c.conn, &rec}
	for range n {
		c.WriteFrame(frame)
	}
	r := bytes.NewReader(rec.Bytes())
	s.conn = readerConn{s.conn, r}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	i := 0
	for b.Loop() {
		if i == n {
			b.StopTimer()
			r.Reset(rec.Bytes())
			s.recv.SetNonce(0)
			i = 0
			b.StartTimer()
		}
		if _, err := s.ReadFrame(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

type writerConn struct {
	net.Conn
	w io.Writer
}

func (w writerConn) Write(b []byte) (int, error) { return w.w.Write(b) }

type readerConn struct {
	net.Conn
	r io.Reader
}

func (r readerConn) Read(b []byte) (int, error) { return r.r.Read(b) }

// SetReadDeadline does nothing: net.Pipe's deadlines cost more than a TCP
// connection's and are not what the benchmark measures.
func (readerConn) SetReadDeadline(time.Time) error { return nil }

// BenchmarkOpen256Baseline is the raw AEAD opening the same 260 bytes.
func BenchmarkOpen256Baseline(b *testing.B) {
	a, _ := chacha20poly1305.New(make([]byte, 32))
	nonce := make([]byte, 12)
	ct := a.Seal(nil, nonce, make([]byte, 260), nil)
	out := make([]byte, 0, 300)
	b.ReportAllocs()
	b.SetBytes(256)
	for b.Loop() {
		out, _ = a.Open(out[:0], nonce, ct, nil)
	}
}
