package server_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/missive-protocol/missive/ref/devices"
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
