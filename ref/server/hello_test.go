package server_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// slowList is a store whose DeviceList, once asked to, reads the list and
// then waits before it answers: a change of the list can come between the
// read and the welcome that carries it.
type slowList struct {
	store.Store
	hold    atomic.Pointer[chan struct{}]
	entered chan struct{}
}

func (s *slowList) DeviceList(ctx context.Context, account string) ([]byte, uint64, error) {
	l, v, err := s.Store.DeviceList(ctx, account)
	if h := s.hold.Swap(nil); h != nil {
		s.entered <- struct{}{}
		<-*h
	}
	return l, v, err
}

// TestListChangeDuringHello checks DEV-010 across a connection's start: a
// device-list change made while a device's hello is served reaches the
// device, in its welcome or pushed after it. The server attaches the
// connection before it reads what the welcome carries, and holds what it
// pushes until the welcome is written.
func TestListChangeDuringHello(t *testing.T) {
	st := &slowList{Store: mem.New(), entered: make(chan struct{}, 1)}
	e := startWith(t, st, newClock(), nil)
	alice := e.member("alice")
	alice2 := alice.link(true) // version 2
	alice2.close()

	release := make(chan struct{})
	st.hold.Store(&release)
	connected := make(chan struct{})
	go func() {
		defer close(connected)
		alice2.connect(false)
	}()
	<-st.entered     // alice/2's hello read version 2, and waits
	alice.link(true) // version 3, pushed to alice's connected devices
	close(release)
	<-connected

	version := func(signed []byte) uint64 {
		t.Helper()
		l, err := devices.Parse(signed, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return l.Serial
	}
	if alice2.welcome.DeviceList != nil && version(*alice2.welcome.DeviceList) == 3 {
		return
	}
	var sdl wire.SignedDeviceList
	if err := transport.DecodeBody(alice2.push(wire.FrameDeviceList), &sdl); err != nil {
		t.Fatal(err)
	}
	signed, err := wire.Marshal(&sdl)
	if err != nil {
		t.Fatal(err)
	}
	if got := version(signed); got != 3 {
		t.Errorf("alice/2's list after the change during its hello: got version %d, want 3", got)
	}
}

// rawHello dials and says hello as d, returning the connection and the
// hello's error; it calls no Fatal, so it may run off the test goroutine.
func rawHello(d *tdev) (*transport.Conn, error) {
	nc, err := net.Dial("tcp", d.e.addr)
	if err != nil {
		return nil, err
	}
	c, err := transport.Client(nc, &transport.ClientConfig{Static: d.static})
	if err != nil {
		return nil, err
	}
	binding, err := transport.Bind(d.ik, d.static.Public, d.id, d.a.name, d.rnd)
	if err != nil {
		c.Close()
		return nil, err
	}
	h := &wire.Hello{Versions: []uint64{1}, Account: d.a.name, Device: uint64(d.id), IdentityKey: d.ik.Public().Encode(), Binding: binding}
	return c, c.Call(wire.FrameHello, 1, h, new(wire.Welcome))
}

// TestHelloFailsAfterAttach checks that a connection whose hello fails
// after it became its device's does not hold up the next one: a newer
// connection of the device replaces it while it reads its welcome's
// figures, so it cannot write its welcome; the newer one, which waits for
// it to end (SRV-010), is then served.
func TestHelloFailsAfterAttach(t *testing.T) {
	st := &slowList{Store: mem.New(), entered: make(chan struct{}, 1)}
	e := startWith(t, st, newClock(), nil)
	alice := e.member("alice")

	release := make(chan struct{})
	st.hold.Store(&release)
	first := make(chan *transport.Conn, 1)
	go func() {
		c, _ := rawHello(alice) // it fails: replaced before its welcome
		first <- c
	}()
	<-st.entered         // the first connection is alice/1's, and waits
	alice.connect(false) // the second replaces it
	close(release)
	if c := <-first; c != nil {
		defer c.Close()
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		alice.call(wire.FrameSetPrivacy, &wire.Privacy{}, new(wire.Empty))
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection answers nothing: it waits for the first, whose hello failed, to end")
	}
}

// TestPresenceAfterReplace checks section 13.7's online (while one of its
// devices is connected) across a replaced connection: bob connects again
// while his first connection is open (the server replaces it), then
// leaves; another account sees him offline.
func TestPresenceAfterReplace(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	bob.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: wire.VisibilityEveryone, Online: wire.VisibilityEveryone}, new(wire.Empty))
	first := bob.c
	bob.connect(false) // replaces the first connection
	defer first.Close()
	bob.close()
	waitFor(t, "bob offline", func() bool {
		var res wire.PresenceResult
		alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, &res)
		return len(res.Updates) == 1 && res.Updates[0].State == wire.PresenceOffline
	})
}

// TestLastSeenStored checks SRV-022: a last-seen time held in memory is
// shown at once and stored by the next flush of the sweep, and a graceful
// stop stores what it still holds.
func TestLastSeenStored(t *testing.T) {
	for _, byShutdown := range []bool{false, true} {
		st := mem.New()
		e := startWith(t, st, newClock(), func(c *server.Config) {
			if byShutdown {
				c.ExpiryInterval = time.Hour // no flush but the stop's
			}
		})
		bob := e.member("bob")
		bob.close()
		stored := func() bool {
			at, err := st.LastSeen(context.Background(), "bob")
			return err == nil && !at.IsZero()
		}
		if byShutdown {
			waitFor(t, "bob's connection to end", func() bool { return metric(t, e.srv, "missive_connections") == 0 })
			if err := e.srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !stored() {
				t.Error("last seen after a graceful stop: got none stored, want bob's")
			}
			continue
		}
		waitFor(t, "bob's last seen stored", stored)
	}
}
