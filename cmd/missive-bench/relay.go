package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/missive-protocol/missive/ref/transport"
)

// The loopback relay is the routing baseline: the same connections, the
// same frames of the same sizes in the same pattern (send, then result to
// the sender and deliver to each recipient, then ack), over plain TCP on
// 127.0.0.1, with no encryption, no decoding and no store. Frame layout:
// u16be(length of the rest) || type || for send and deliver: u32be(sender
// index, in deliveries) || i64be(time meant to be sent) || padding.
const (
	relaySend    = 1
	relayAnswer  = 2
	relayDeliver = 3
	relayAck     = 4
	relayHeader  = 2 + 1 + 4 + 8
)

type relayOutcome struct {
	rate float64 // deliveries per second in the measured window
	lat  *histogram
}

// relayConn is one end of a relay connection with its write lock.
type relayConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (r *relayConn) write(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.c.Write(b)
	return err
}

func relayFrame(size int, typ byte, peer int, at int64) []byte {
	b := make([]byte, max(size, relayHeader))
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	b[2] = typ
	binary.BigEndian.PutUint32(b[3:], uint32(peer))
	binary.BigEndian.PutUint64(b[7:], uint64(at))
	return b
}

func readRelayFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < relayHeader-2 {
		return nil, errors.New("relay: short frame")
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// relayPhase runs len(fan) clients through a relay, client i's sends
// delivered to each client of fan[i] (one for a ring, the other members of
// a group), each with at most window sends unanswered and no pacing, for
// warm then dur, and returns the deliveries per second of the measured
// part.
func relayPhase(fan [][]int, sizes wireSizes, window int, warm, dur time.Duration, prog *progress) (relayOutcome, error) {
	n := len(fan)
	ln, err := transport.Listen("127.0.0.1:0") // the server's socket options
	if err != nil {
		return relayOutcome{}, err
	}
	defer ln.Close()
	server := make([]*relayConn, n)
	client := make([]*relayConn, n)
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	closeAll := func() {
		for i := range n {
			if server[i] != nil {
				server[i].c.Close()
			}
			if client[i] != nil {
				client[i].c.Close()
			}
		}
	}
	defer closeAll()
	// Connect in order, so server[i] is client[i]'s other end; the first
	// frame a client sends names it.
	for i := range n {
		c, err := transport.Dialer().Dial("tcp", ln.Addr().String())
		if err != nil {
			return relayOutcome{}, err
		}
		client[i] = &relayConn{c: c}
		s, ok := <-accepted
		if !ok {
			return relayOutcome{}, errors.New("relay: listener closed")
		}
		server[i] = &relayConn{c: s}
	}
	// The relay: read each connection, answer and forward.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(server[i].c)
			buf := make([]byte, 1<<16)
			result := relayFrame(sizes.result, relayAnswer, 0, 0)
			for {
				f, err := readRelayFrame(r, buf)
				if err != nil {
					return
				}
				if f[0] != relaySend {
					continue // acks end here
				}
				at := int64(binary.BigEndian.Uint64(f[5:]))
				if err := server[i].write(result); err != nil {
					return
				}
				del := relayFrame(sizes.deliver, relayDeliver, i, at)
				for _, to := range fan[i] {
					server[to].write(del)
				}
			}
		}()
	}
	var (
		delivered atomic.Uint64
		from      atomic.Int64
		lat       = new(histogram)
		stop      = make(chan struct{})
	)
	from.Store(since() + int64(warm))
	for i := range n {
		slots := make(chan struct{}, max(window, 1))
		acks := make(chan struct{}, 1)
		var pendingAcks atomic.Int64
		// Reader: results free a slot, deliveries are recorded and acked.
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(client[i].c)
			buf := make([]byte, 1<<16)
			for {
				f, err := readRelayFrame(r, buf)
				if err != nil {
					return
				}
				switch f[0] {
				case relayAnswer:
					select {
					case <-slots:
					default:
					}
				case relayDeliver:
					delivered.Add(1)
					if at := int64(binary.BigEndian.Uint64(f[5:])); at >= from.Load() {
						lat.Record(time.Duration(since() - at))
					}
					pendingAcks.Add(1)
					select {
					case acks <- struct{}{}:
					default:
					}
				}
			}
		}()
		// Acker: one ack frame per burst of deliveries, as the devices do.
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack := relayFrame(sizes.ack, relayAck, 0, 0)
			for {
				select {
				case <-stop:
					return
				case <-acks:
				}
				if pendingAcks.Swap(0) > 0 {
					if err := client[i].write(ack); err != nil {
						return
					}
				}
			}
		}()
		// Sender.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case slots <- struct{}{}:
				}
				if err := client[i].write(relayFrame(sizes.send, relaySend, 0, since())); err != nil {
					return
				}
			}
		}()
	}
	t0 := time.Now()
	prog.phase(func() string {
		return number(float64(delivered.Load())/max(time.Since(t0).Seconds(), 1e-3)) + " msg/s"
	}, "loopback relay baseline")
	time.Sleep(warm)
	t0, d0 := time.Now(), delivered.Load()
	time.Sleep(dur)
	t1, d1 := time.Now(), delivered.Load()
	close(stop)
	closeAll()
	return relayOutcome{rate: float64(d1-d0) / t1.Sub(t0).Seconds(), lat: lat}, nil
}
