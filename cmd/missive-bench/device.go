package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// device is a simulated device: the primary (device 1) of an account of
// its own, with a real identity key, transport key, signed device list and
// prekeys, speaking the protocol of chapters 11 to 13 over ref/transport.
// It does not run the ratchet: the server routes ciphertext it cannot read,
// so the load tool sends opaque ciphertext of the size a message would
// have.
type device struct {
	i       int
	account string
	ik      *keys.PrivateKey
	static  noise.DHKey
	binding []byte // the transport key's binding, the same on every connection
	src     net.IP // the source address of its connections (nil: any)
	// abort makes its connections end with a reset instead of a FIN, so
	// that a device that reconnects over and over leaves no TIME_WAIT
	// socket behind to slow the kernel's search for a free port: that cost
	// is the tool's, not the server's.
	abort bool

	tc     *transport.Conn
	nextID uint64
	list   []byte // the signed device list reachable uploaded
}

// connectTimeout bounds a connection and its hello.
const connectTimeout = 30 * time.Second

// newDevice makes the keys of device i of a run.
func newDevice(run string, i int, src net.IP) (*device, error) {
	ik, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	static, err := noiseKey()
	if err != nil {
		return nil, err
	}
	d := &device{i: i, account: fmt.Sprintf("%s-%d", run, i), ik: ik, static: static, src: src}
	d.binding, err = transport.Bind(ik, static.Public, 1, d.account, rand.Reader)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// dial opens a TCP connection to the server from the device's source
// address.
func (d *device) dial(ctx context.Context, t *target) (net.Conn, error) {
	return d.dialAddr(ctx, t.addr)
}

// dialAddr is dial to addr.
func (d *device) dialAddr(ctx context.Context, addr string) (net.Conn, error) {
	dialer := transport.Dialer()
	dialer.Timeout = connectTimeout
	if d.src != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: d.src}
	}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err == nil && d.abort {
		nc.(*net.TCPConn).SetLinger(0)
	}
	return nc, err
}

// handshake runs the Noise IK handshake with the pinned server key.
func (d *device) handshake(nc net.Conn, t *target) (*transport.Conn, error) {
	return transport.Client(nc, &transport.ClientConfig{Static: d.static, ServerKey: t.key})
}

// connect connects, runs the handshake and the hello exchange, registering
// the account when register is set.
func (d *device) connect(ctx context.Context, t *target, register bool) error {
	nc, err := d.dial(ctx, t)
	if err != nil {
		return err
	}
	tc, err := d.handshake(nc, t)
	if err != nil {
		nc.Close()
		return fmt.Errorf("handshake: %w", err)
	}
	h := &wire.Hello{Versions: []uint64{wire.ProtocolVersion}, Account: d.account, Device: 1,
		IdentityKey: d.ik.Public().Encode(), Binding: d.binding}
	if register {
		h.Register = wire.Ptr(true)
	}
	if err := call(tc, wire.FrameHello, 1, h, new(wire.Welcome)); err != nil {
		tc.Close()
		return fmt.Errorf("hello: %w", err)
	}
	d.tc, d.nextID = tc, 2
	return nil
}

// reachable uploads the device's first signed device list and its signed
// and last-resort prekeys, so that others may send to it (section 13.2).
func (d *device) reachable() error {
	l, err := devices.Sign(d.ik, d.account, 1, []wire.ListedDevice{{Device: 1, IdentityKey: d.ik.Public().Encode()}},
		uint64(time.Now().UnixMilli()), rand.Reader)
	if err != nil {
		return err
	}
	if err := d.call(wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: l.Signed}, new(wire.Empty)); err != nil {
		return fmt.Errorf("set-device-list: %w", err)
	}
	d.list = l.Signed
	spk, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return err
	}
	spkSig, err := pqxdh.SignSignedPreKey(d.ik, spk.Public(), rand.Reader)
	if err != nil {
		return err
	}
	kem, err := keys.GenerateKEMPrivateKey(rand.Reader)
	if err != nil {
		return err
	}
	kemSig, err := pqxdh.SignKEMPreKey(d.ik, kem.Public(), rand.Reader)
	if err != nil {
		return err
	}
	up := &wire.PrekeyUpload{
		SignedPreKey: &wire.SignedPreKey{ID: 1, Key: spk.Public().Encode(), Signature: spkSig},
		LastResort:   &wire.KEMPreKey{ID: 1, Key: kem.Public().Encode(), Signature: kemSig, LastResort: true},
	}
	if err := d.call(wire.FrameUploadPrekeys, up, new(wire.UploadResult)); err != nil {
		return fmt.Errorf("upload-prekeys: %w", err)
	}
	return nil
}

func (d *device) call(typ uint64, body, result wire.Message) error {
	id := d.nextID
	d.nextID++
	return call(d.tc, typ, id, body, result)
}

// call sends a request and waits for its answer, passing over the frames
// the server pushes meanwhile (device lists, notices, pings).
func call(tc *transport.Conn, typ, id uint64, body, result wire.Message) error {
	if err := tc.Send(typ, id, body); err != nil {
		return err
	}
	for {
		f, err := tc.Receive()
		if err != nil {
			return err
		}
		switch {
		case f.Type == wire.FramePing:
			tc.Send(wire.FramePong, 0, nil)
		case transport.RequestID(f) != id:
		case f.Type == wire.FrameResult:
			return transport.DecodeBody(f, result)
		case f.Type == wire.FrameError:
			var b wire.ErrorBody
			if err := transport.DecodeBody(f, &b); err != nil {
				return err
			}
			return &transport.RemoteError{Body: &b}
		}
	}
}

func (d *device) close() {
	if d.tc != nil {
		d.tc.Close()
		d.tc = nil
	}
}

// fleet is a set of devices.
type fleet []*device

// makeFleet makes n devices, spreading them over the source addresses.
func makeFleet(run string, n int, srcs []net.IP) (fleet, error) {
	f := make(fleet, n)
	err := parallel(n, func(i int) error {
		var src net.IP
		if len(srcs) > 0 {
			src = srcs[i%len(srcs)]
		}
		d, err := newDevice(run, i, src)
		f[i] = d
		return err
	})
	return f, err
}

// setup connects every device, registering its account, and makes it
// reachable when reachable is set; p counts the devices done.
func (f fleet) setup(ctx context.Context, t *target, reachable bool, p *progress) error {
	return parallel(len(f), func(i int) error {
		d := f[i]
		if err := d.connect(ctx, t, true); err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		if reachable {
			if err := d.reachable(); err != nil {
				return fmt.Errorf("device %d: %w", i, err)
			}
		}
		p.add(1)
		return nil
	})
}

func (f fleet) close() {
	for _, d := range f {
		d.close()
	}
}

// setupWorkers is how many devices connect at once during set-up.
const setupWorkers = 64

// parallel runs fn(0) to fn(n-1) on setupWorkers goroutines and returns
// the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(n, setupWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// Payload layout: the opaque ciphertext the tool sends starts with the
// time it was meant to be sent (nanoseconds since the tool's epoch) and
// the sender's index, and is filled to its size.
const payloadHeader = 12

var epoch = time.Now()

func since() int64 { return int64(time.Since(epoch)) }

func putPayload(b []byte, at int64, sender int) {
	binary.BigEndian.PutUint64(b, uint64(at))
	binary.BigEndian.PutUint32(b[8:], uint32(sender))
}

func payloadTime(b []byte) (int64, bool) {
	if len(b) < payloadHeader {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// envelope returns a chat envelope of one device message from d to the
// account of to, with ciphertext ct.
func (d *device) envelope(to *device, id uint64, ct []byte) *wire.Envelope {
	e := new(wire.Envelope)
	d.fillEnvelope(e, to, id, ct)
	return e
}

// fillEnvelope makes e that envelope, reusing its message id's and device
// messages' memory when it has room: a sender that sends one envelope at a
// time reuses one.
func (d *device) fillEnvelope(e *wire.Envelope, to *device, id uint64, ct []byte) {
	mid := e.MessageID
	if cap(mid) < wire.MessageIDSize {
		mid = make([]byte, wire.MessageIDSize)
	}
	*e = wire.Envelope{
		Version: wire.ProtocolVersion, MessageID: d.putMessageID(mid[:wire.MessageIDSize], id),
		Sender:    wire.Address{Account: d.account, Device: 1},
		Recipient: to.account,
		Messages:  append(e.Messages[:0], wire.DeviceMessage{Device: 1, Kind: wire.KindRatchet, Ciphertext: ct}),
		Type:      wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600,
		SentAt: uint64(time.Now().UnixMilli()),
	}
}

// messageID is the message id of the device's request id: unique per
// device and run.
func (d *device) messageID(id uint64) []byte {
	return d.putMessageID(make([]byte, wire.MessageIDSize), id)
}

// putMessageID writes the message id of request id into mid.
func (d *device) putMessageID(mid []byte, id uint64) []byte {
	binary.BigEndian.PutUint64(mid, uint64(d.i))
	binary.BigEndian.PutUint64(mid[8:], id)
	return mid
}

// ciphertextFor returns the ciphertext length that makes the encoded
// envelope size bytes long, and that size as it comes out (the encoding's
// length fields make some sizes unreachable by one byte).
func ciphertextFor(size int) (int, int, error) {
	a, b := &device{i: 1 << 20, account: "b00000000-1000000"}, &device{account: "b00000000-1000001"}
	return lengthFor(size, payloadHeader, func(n int) *wire.Envelope { return a.envelope(b, 1<<40, make([]byte, n)) })
}

// lengthFor returns the smallest payload length, from least, whose
// message made by mk encodes to at least size bytes, and that size.
func lengthFor[M wire.Message](size, least int, mk func(n int) M) (int, int, error) {
	for n := least; n < wire.MaxEnvelopeSize; n++ {
		enc, err := wire.Marshal(mk(n))
		if err != nil {
			return 0, 0, err
		}
		if len(enc) >= size {
			return n, len(enc), nil
		}
	}
	return 0, 0, errors.New("envelope size out of range")
}

// ackBatcher collects the queue ids a device has received and sends them in
// ack frames, as many as are waiting (at most MaxReceiptIDs each).
type ackBatcher struct {
	mu      sync.Mutex
	ids     []uint64
	wake    chan struct{}
	stopped chan struct{}
}

func newAckBatcher() *ackBatcher {
	return &ackBatcher{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

func (a *ackBatcher) add(id uint64) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run sends acks on tc until done is closed; it returns the ids acked.
func (a *ackBatcher) run(tc *transport.Conn, done <-chan struct{}, acked func(int)) {
	defer close(a.stopped)
	var ids []uint64
	for {
		select {
		case <-done:
			return
		case <-a.wake:
		}
		a.mu.Lock()
		ids, a.ids = a.ids, ids[:0]
		a.mu.Unlock()
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for len(ids) > 0 {
			n := min(len(ids), wire.MaxReceiptIDs)
			if err := tc.Send(wire.FrameAck, 0, &wire.Ack{QueueIDs: ids[:n]}); err != nil {
				return
			}
			acked(n)
			ids = ids[n:]
		}
	}
}

// seenSet records the queue ids a device has received, to tell
// redeliveries from new deliveries. Queue ids of a device start at 1 and
// increase.
type seenSet struct{ bits []uint64 }

// add records id and reports whether it was new.
func (s *seenSet) add(id uint64) bool {
	w := int(id / 64)
	if w >= len(s.bits) {
		s.bits = slices.Grow(s.bits, w+1-len(s.bits))[:w+1]
	}
	m := uint64(1) << (id % 64)
	if s.bits[w]&m != 0 {
		return false
	}
	s.bits[w] |= m
	return true
}
