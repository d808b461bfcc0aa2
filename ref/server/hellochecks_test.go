package server_test

import (
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestHelloChecks checks TRN-012: each check of a connection's first frame,
// in the order of section 12.4, answers its failure with an error frame of
// its code and closes the connection. Each case fails one check and passes
// the ones before it; alice is a registered account of one device.
func TestHelloChecks(t *testing.T) {
	e := start(t)
	alice := e.member("alice")
	r := rand.NewChaCha8([32]byte{12})
	other, _ := keys.GeneratePrivateKey(r)
	for _, c := range []struct {
		name string
		ik   *keys.PrivateKey // signs the binding and is the hello's key
		// the hello; its binding is made for bindAccount, bindDevice
		hello       wire.Hello
		bindAccount string
		bindDevice  uint32
		ping        bool // a ping first instead of the hello
		want        errcode.Code
	}{
		{name: "ping first", ping: true, want: errcode.StateNotAuthenticated},
		{name: "no common version", ik: other, hello: wire.Hello{Versions: []uint64{99}, Account: "bob", Device: 1, Register: wire.Ptr(true)},
			bindAccount: "bob", bindDevice: 1, want: errcode.PolicyNoCommonVersion},
		{name: "binding for another account", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "bob", Device: 1, Register: wire.Ptr(true)},
			bindAccount: "carol", bindDevice: 1, want: errcode.AuthBadSignature},
		{name: "unknown account", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "dave", Device: 1},
			bindAccount: "dave", bindDevice: 1, want: errcode.StateUnknownAccount},
		{name: "unknown device", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "alice", Device: 7},
			bindAccount: "alice", bindDevice: 7, want: errcode.AuthUnknownDevice},
		{name: "another identity key", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "alice", Device: 1},
			bindAccount: "alice", bindDevice: 1, want: errcode.AuthIdentityMismatch},
		{name: "register device 2", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "erin", Device: 2, Register: wire.Ptr(true)},
			bindAccount: "erin", bindDevice: 2, want: errcode.PolicyBadRecipient},
		{name: "register a taken account", ik: other, hello: wire.Hello{Versions: []uint64{1}, Account: "alice", Device: 1, Register: wire.Ptr(true)},
			bindAccount: "alice", bindDevice: 1, want: errcode.StateAccountExists},
	} {
		t.Run(c.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			static, _ := transport.Suite.GenerateKeypair(r)
			tc, err := transport.Client(nc, &transport.ClientConfig{Static: static})
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			if c.ping {
				err = tc.Send(wire.FramePing, 0, nil)
			} else {
				h := c.hello
				h.IdentityKey = c.ik.Public().Encode()
				if h.Binding, err = transport.Bind(c.ik, static.Public, c.bindDevice, c.bindAccount, r); err != nil {
					t.Fatal(err)
				}
				err = tc.Send(wire.FrameHello, 1, &h)
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := tc.Receive()
			if err != nil {
				t.Fatalf("got %v, want an error frame with %v", err, c.want)
			}
			var b wire.ErrorBody
			if f.Type != wire.FrameError || transport.DecodeBody(f, &b) != nil {
				t.Fatalf("got a frame of type %d, want an error frame with %v", f.Type, c.want)
			}
			if got := errcode.Code(b.Code); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
			// The transport's reads wait up to the idle timeout: nc is
			// read directly, for a close within a second.
			nc.SetReadDeadline(time.Now().Add(time.Second))
			var ne net.Error
			if n, err := nc.Read(make([]byte, 1)); n > 0 || errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the connection is still open after the error (read %d bytes, %v)", n, err)
			}
		})
	}
	alice.connect(false) // nothing above changed her account
}

// TestOneAnswerPerRequest checks MSG-022: requests sent together, some
// answered with a result and some with an error, each get exactly one
// answer with their request id. The server serves a device's
// requests in order (SRV-019), so a last request's answer comes after the
// others have been served: whatever came twice has come by then.
func TestOneAnswerPerRequest(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	reqs := []struct {
		typ  uint64
		body wire.Message
	}{
		{wire.FrameSetPrivacy, &wire.Privacy{}},
		{wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "nobody"}}, // state.unknown_account
		{wire.FrameSetPrivacy, &wire.Privacy{}},
		{wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "nobody"}},
		{wire.FrameSetPrivacy, &wire.Privacy{}}, // the last
	}
	for i, q := range reqs {
		if err := m.c.Send(q.typ, uint64(100+i), q.body); err != nil {
			t.Fatal(err)
		}
	}
	last := uint64(100 + len(reqs) - 1)
	answers := map[uint64]int{}
	for answers[last] == 0 {
		f, err := m.c.Receive()
		if err != nil {
			t.Fatalf("before the last answer: %v (answers %v)", err, answers)
		}
		if id := transport.RequestID(f); id != 0 {
			answers[id]++
		}
	}
	for i := range reqs {
		if n := answers[uint64(100+i)]; n != 1 {
			t.Errorf("request %d: got %d answers, want 1", 100+i, n)
		}
	}
	if len(answers) != len(reqs) {
		t.Errorf("answers to %d request ids, want %d: %v", len(answers), len(reqs), answers)
	}
}
