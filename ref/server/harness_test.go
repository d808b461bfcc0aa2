package server_test

import (
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// account is a test's view of an account: its primary's key and its
// current signed device list, which its primary device changes.
type account struct {
	name    string
	version uint64
	listed  []wire.ListedDevice
	list    []byte // the current signed device list
}

// tdev is a device driven frame by frame over the real transport, with a
// reader that routes results to their requests, deliveries to one channel
// and other pushes to another.
type tdev struct {
	t      testing.TB
	e      *env
	a      *account
	id     uint32
	ik     *keys.PrivateKey
	static noise.DHKey
	rnd    io.Reader

	c          *transport.Conn
	welcome    wire.Welcome // of the last connection
	mu         sync.Mutex
	next       uint64
	waiting    map[uint64]chan *wire.Frame
	deliveries chan *wire.Delivery
	pushes     chan *wire.Frame
	done       chan struct{}
}

// newDevice makes the keys of a device of a; connect connects it.
func (e *env) newDevice(a *account, id uint32) *tdev {
	e.t.Helper()
	e.seed++
	r := rand.NewChaCha8([32]byte{e.seed, 0xD0})
	ik, err := keys.GeneratePrivateKey(r)
	if err != nil {
		e.t.Fatal(err)
	}
	static, err := transport.Suite.GenerateKeypair(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return &tdev{t: e.t, e: e, a: a, id: id, ik: ik, static: static, rnd: r}
}

// member registers an account, uploads its first device list and its
// primary's prekeys, and returns the connected primary.
func (e *env) member(name string) *tdev {
	e.t.Helper()
	a := &account{name: name}
	d := e.newDevice(a, 1)
	d.connect(true)
	a.listed = []wire.ListedDevice{{Device: 1, IdentityKey: d.ik.Public().Encode()}}
	d.signList()
	d.do(wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: a.list}, new(wire.Empty))
	d.uploadPrekeys()
	return d
}

// signList makes the next version of the account's list, as its primary.
func (d *tdev) signList() {
	d.t.Helper()
	d.a.version++
	l, err := devices.Sign(d.ik, d.a.name, d.a.version, d.a.listed, uint64(d.e.clock.Now().UnixMilli()), d.rnd)
	if err != nil {
		d.t.Fatal(err)
	}
	d.a.list = l.Signed
}

// connect connects the device to its env's server, with register set in
// the hello if asked, and starts its reader.
func (d *tdev) connect(register bool) {
	d.t.Helper()
	nc, err := net.Dial("tcp", d.e.addr)
	if err != nil {
		d.t.Fatal(err)
	}
	c, err := transport.Client(nc, &transport.ClientConfig{Static: d.static})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	binding, err := transport.Bind(d.ik, d.static.Public, d.id, d.a.name, d.rnd)
	if err != nil {
		d.t.Fatal(err)
	}
	h := &wire.Hello{Versions: []uint64{1}, Account: d.a.name, Device: uint64(d.id), IdentityKey: d.ik.Public().Encode(), Binding: binding}
	if register {
		h.Register = wire.Ptr(true)
	}
	d.welcome = wire.Welcome{}
	if err := c.Call(wire.FrameHello, 1, h, &d.welcome); err != nil {
		d.t.Fatalf("hello of %s/%d: %v", d.a.name, d.id, err)
	}
	// The reader of a connection before this one may still run: it has
	// channels and a map of its own, and the fields change under d.mu.
	waiting := map[uint64]chan *wire.Frame{}
	deliveries := make(chan *wire.Delivery, 1000)
	pushes := make(chan *wire.Frame, 100)
	done := make(chan struct{})
	d.mu.Lock()
	d.c, d.next, d.waiting, d.deliveries, d.pushes, d.done = c, 1, waiting, deliveries, pushes, done
	d.mu.Unlock()
	go d.read(c, done, waiting, deliveries, pushes)
}

// close closes the device's connection and waits for its reader.
func (d *tdev) close() {
	d.c.Close()
	<-d.done
}

func (d *tdev) read(c *transport.Conn, done chan struct{}, waiting map[uint64]chan *wire.Frame, deliveries chan *wire.Delivery, pushes chan *wire.Frame) {
	defer close(done)
	for {
		f, err := c.Receive()
		if err != nil {
			return
		}
		switch id := transport.RequestID(f); {
		case id != 0 && (f.Type == wire.FrameResult || f.Type == wire.FrameError):
			d.mu.Lock()
			ch := waiting[id]
			delete(waiting, id)
			d.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		case f.Type == wire.FrameDeliver:
			var dl wire.Delivery
			if err := transport.DecodeBody(f, &dl); err != nil {
				d.t.Errorf("delivery to %s/%d: %v", d.a.name, d.id, err)
				return
			}
			deliveries <- &dl
		case f.Type == wire.FramePing:
			c.Send(wire.FramePong, 0, nil)
		default:
			select {
			case pushes <- f:
			default:
			}
		}
	}
}

// call sends a request and returns the error body of its answer, nil for a
// result, which it decodes into result.
func (d *tdev) call(typ uint64, body, result wire.Message) *wire.ErrorBody {
	d.t.Helper()
	ch := make(chan *wire.Frame, 1)
	d.mu.Lock()
	d.next++
	id := d.next
	d.waiting[id] = ch
	d.mu.Unlock()
	if err := d.c.Send(typ, id, body); err != nil {
		d.t.Fatalf("send frame %d: %v", typ, err)
	}
	var f *wire.Frame
	select {
	case f = <-ch:
	case <-d.done:
		select {
		case f = <-ch: // the answer came before the connection closed
		default:
			d.t.Fatalf("%s/%d: connection closed waiting for the answer to frame %d", d.a.name, d.id, typ)
		}
	case <-time.After(10 * time.Second):
		d.t.Fatalf("%s/%d: no answer to frame %d", d.a.name, d.id, typ)
	}
	if f.Type == wire.FrameError {
		var b wire.ErrorBody
		if err := transport.DecodeBody(f, &b); err != nil {
			d.t.Fatalf("error body: %v", err)
		}
		return &b
	}
	if err := transport.DecodeBody(f, result); err != nil {
		d.t.Fatalf("result of frame %d: %v", typ, err)
	}
	return nil
}

// try is call, waiting out rate limits; it returns the answer's error code,
// 0 for a result, and its error body.
func (d *tdev) try(typ uint64, body, result wire.Message) (errcode.Code, *wire.ErrorBody) {
	d.t.Helper()
	for {
		b := d.call(typ, body, result)
		switch {
		case b == nil:
			return 0, nil
		case errcode.Code(b.Code) == errcode.PolicyRateLimited && b.RetryAfter != nil:
			time.Sleep(time.Duration(*b.RetryAfter) * time.Millisecond)
			continue
		}
		return errcode.Code(b.Code), b
	}
}

// do is try for a request that must succeed.
func (d *tdev) do(typ uint64, body, result wire.Message) {
	d.t.Helper()
	if code, _ := d.try(typ, body, result); code != 0 {
		d.t.Fatalf("%s/%d: frame %d: got %v, want a result", d.a.name, d.id, typ, code)
	}
}

// uploadPrekeys makes the device reachable: a signed prekey and a
// last-resort KEM prekey.
func (d *tdev) uploadPrekeys() {
	d.t.Helper()
	spk, _ := keys.GeneratePrivateKey(d.rnd)
	sig, err := pqxdh.SignSignedPreKey(d.ik, spk.Public(), d.rnd)
	if err != nil {
		d.t.Fatal(err)
	}
	kem, _ := keys.GenerateKEMPrivateKey(d.rnd)
	ksig, err := pqxdh.SignKEMPreKey(d.ik, kem.Public(), d.rnd)
	if err != nil {
		d.t.Fatal(err)
	}
	d.do(wire.FrameUploadPrekeys, &wire.PrekeyUpload{
		SignedPreKey: &wire.SignedPreKey{ID: 1, Key: spk.Public().Encode(), Signature: sig},
		LastResort:   &wire.KEMPreKey{ID: 1, Key: kem.Public().Encode(), Signature: ksig, LastResort: true},
	}, new(wire.UploadResult))
}

// link links a companion to the primary's account (section 15.3), connects
// it and, when reachable is set, uploads its prekeys.
func (d *tdev) link(reachable bool) *tdev {
	d.t.Helper()
	c := d.e.newDevice(d.a, 0)
	linkID := make([]byte, wire.LinkIDSize)
	d.rnd.Read(linkID)
	d.do(wire.FrameOpenLink, &wire.OpenLink{LinkID: linkID}, new(wire.Empty))
	answers := d.e.requestLink(c, linkID)
	var n wire.LinkNotice
	if err := transport.DecodeBody(d.push(wire.FrameLink), &n); err != nil {
		d.t.Fatal(err)
	}
	c.id = uint32(n.Device)
	d.a.listed = append(d.a.listed, wire.ListedDevice{Device: n.Device, IdentityKey: c.ik.Public().Encode()})
	d.signList()
	list := d.a.list
	d.do(wire.FrameAnswerLink, &wire.AnswerLink{LinkID: linkID, DeviceList: &list}, new(wire.Empty))
	if a := <-answers; a.err != nil || a.r.Device != n.Device {
		d.t.Fatalf("link-request: got device %d, %v, want %d", a.r.Device, a.err, n.Device)
	}
	c.connect(false)
	if reachable {
		c.uploadPrekeys()
	}
	return c
}

// linkReply is the answer to a companion's link-request.
type linkReply struct {
	r   wire.LinkResult
	err error
}

// requestLink sends the link-request of companion c for linkID, on a
// connection of its own, and returns where its answer comes.
func (e *env) requestLink(c *tdev, linkID []byte) <-chan linkReply {
	answers := make(chan linkReply, 1)
	go func() {
		var a linkReply
		defer func() { answers <- a }()
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			a.err = err
			return
		}
		tc, err := transport.Client(nc, &transport.ClientConfig{Static: c.static})
		if err != nil {
			a.err = err
			return
		}
		defer tc.Close()
		a.err = tc.Call(wire.FrameLinkRequest, 1, &wire.LinkRequest{LinkID: linkID, IdentityKey: c.ik.Public().Encode(), MAC: make([]byte, 32)}, &a.r)
	}()
	return answers
}

// unlink removes a companion with the next version of the list.
func (d *tdev) unlink(c *tdev) {
	d.t.Helper()
	d.a.listed = slices.DeleteFunc(d.a.listed, func(l wire.ListedDevice) bool { return l.Device == uint64(c.id) })
	d.signList()
	d.do(wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: d.a.list}, new(wire.Empty))
}

// push waits for a pushed frame of a type, dropping others.
func (d *tdev) push(typ uint64) *wire.Frame {
	d.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f := <-d.pushes:
			if f.Type == typ {
				return f
			}
		case <-timeout:
			d.t.Fatalf("%s/%d: no frame of type %d", d.a.name, d.id, typ)
		}
	}
}

// delivery waits for the next delivery.
func (d *tdev) delivery() *wire.Delivery {
	d.t.Helper()
	select {
	case dl := <-d.deliveries:
		return dl
	case <-time.After(10 * time.Second):
		d.t.Fatalf("%s/%d: no delivery", d.a.name, d.id)
	}
	return nil
}

// noDelivery checks that no delivery comes for a while.
func (d *tdev) noDelivery(wait time.Duration) {
	d.t.Helper()
	select {
	case dl := <-d.deliveries:
		d.t.Errorf("%s/%d: unexpected delivery of %x from %v", d.a.name, d.id, dl.MessageID, dl.Sender)
	case <-time.After(wait):
	}
}

// ack acknowledges deliveries.
func (d *tdev) ack(ids ...uint64) {
	d.t.Helper()
	slices.Sort(ids)
	if err := d.c.Send(wire.FrameAck, 0, &wire.Ack{QueueIDs: ids}); err != nil {
		d.t.Fatal(err)
	}
}

// addr is the device's address.
func (d *tdev) addr() wire.Address { return wire.Address{Account: d.a.name, Device: uint64(d.id)} }

// role is an account and its role, for members.
type role struct {
	account string
	admin   bool
}

// members returns a member list, sorted.
func members(rs ...role) []wire.GroupMember {
	out := make([]wire.GroupMember, len(rs))
	for i, r := range rs {
		out[i] = wire.GroupMember{Account: r.account}
		if r.admin {
			out[i].Role = wire.RoleAdmin
		}
	}
	slices.SortFunc(out, func(a, b wire.GroupMember) int { return strings.Compare(a.Account, b.Account) })
	return out
}

// state signs a group state as the device, with its account's current
// list.
func (d *tdev) state(id []byte, version uint64, ms []wire.GroupMember) *group.State {
	d.t.Helper()
	s, err := group.Sign(d.ik, d.addr(), d.a.list, id, version, ms, "", uint64(d.e.clock.Now().UnixMilli()), d.rnd)
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

// signedBody decodes a signed group state, to send it.
func signedBody(t testing.TB, signed []byte) *wire.SignedGroupState {
	t.Helper()
	var s wire.SignedGroupState
	if err := wire.Unmarshal(signed, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// setGroup sends set-group with a signed state and returns the answer's
// code.
func (d *tdev) setGroup(signed []byte) errcode.Code {
	d.t.Helper()
	code, _ := d.try(wire.FrameSetGroup, signedBody(d.t, signed), new(wire.Empty))
	return code
}

// gid returns a group id derived from n.
func gid(n byte) []byte {
	id := make([]byte, wire.GroupIDSize)
	for i := range id {
		id[i] = n ^ byte(i)
	}
	return id
}

// digest returns the device digest of a group for a list of group devices.
func digest(t *testing.T, id []byte, devs wire.GroupDevices) []byte {
	t.Helper()
	d, err := group.Digest(id, devs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// envelope returns a group envelope from the device.
func (d *tdev) envelope(id []byte, version uint64, dg []byte, msgID byte) *wire.GroupEnvelope {
	return &wire.GroupEnvelope{Version: 1, MessageID: slices.Repeat([]byte{msgID}, 16), Sender: d.addr(), GroupID: id,
		Serial: version, Digest: dg, Message: []byte("one group ciphertext for all"), Priority: wire.PriorityNormal,
		TTL: 3600, SentAt: uint64(d.e.clock.Now().UnixMilli())}
}
