package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// wantLimited fails the test unless b is policy.rate_limited with a retry
// time of after.
func wantLimited(t *testing.T, what string, b *wire.ErrorBody, after time.Duration) {
	t.Helper()
	switch {
	case b == nil:
		t.Errorf("%s: got a result, want %v", what, errcode.PolicyRateLimited)
	case errcode.Code(b.Code) != errcode.PolicyRateLimited || b.RetryAfter == nil:
		t.Errorf("%s: got %v, retry after %v, want %v with a retry time", what, errcode.Code(b.Code), b.RetryAfter, errcode.PolicyRateLimited)
	case time.Duration(*b.RetryAfter)*time.Millisecond != after:
		t.Errorf("%s: got a retry after %d ms, want %v", what, *b.RetryAfter, after)
	}
}

// wantCode fails the test unless b is code, or a result when code is 0.
func wantCode(t *testing.T, what string, b *wire.ErrorBody, code errcode.Code) {
	t.Helper()
	var got errcode.Code
	if b != nil {
		got = errcode.Code(b.Code)
	}
	if got != code {
		t.Errorf("%s: got %v, want %v", what, got, code)
	}
}

// TestSendGroupFanoutLimit checks check 9 of GRP-009 and GRP-014: a device
// sends a group of d devices FANOUT_BURST / d group messages at once, and
// then one each d / FANOUT_RATE, on the server's clock (which the test
// holds still); a refusal says when the tokens will be there, takes none,
// and comes after check 8's.
func TestSendGroupFanoutLimit(t *testing.T) {
	e := start(t)
	a1 := e.member("alice")
	const d = 128
	var names []string
	devs := wire.GroupDevices{}
	for i := range d {
		m := e.member(fmt.Sprintf("m%03d", i))
		m.close()
		names = append(names, m.a.name)
		devs = append(devs, wire.AccountDevices{Account: m.a.name, Devices: []uint64{1}})
	}
	g := groupOf(t, 1, a1, names...)
	dg := digest(t, g, devs)
	at := server.FanoutBurst / d // 80, below SEND_BURST: check 2 never refuses
	id := byte(0)
	send := func() *wire.ErrorBody {
		id++
		return a1.call(wire.FrameSendGroup, a1.envelope(g, 1, dg, id), new(wire.SendResult))
	}
	for i := range at {
		if b := send(); b != nil {
			t.Fatalf("group message %d of %d to %d devices: got %v, want a result", i+1, at, d, errcode.Code(b.Code))
		}
	}
	every := time.Second * d / server.FanoutRate // 25 ms
	wantLimited(t, "a group message over FANOUT_BURST", send(), every)
	// Check 8 comes first.
	ahead := a1.envelope(g, 1, dg, 200)
	ahead.SentAt += uint64((server.MaxSentAhead + time.Hour).Milliseconds())
	wantCode(t, "a group message sent ahead, no fan-out token left", a1.call(wire.FrameSendGroup, ahead, new(wire.SendResult)), errcode.PolicySentAtAhead)
	e.clock.Advance(every - time.Millisecond)
	wantLimited(t, "a group message a millisecond early", send(), time.Millisecond)
	e.clock.Advance(time.Millisecond)
	wantCode(t, "a group message once the tokens are back", send(), 0)
	wantLimited(t, "the next", send(), every)
}

// TestSetGroupBudget checks GRP-015: an account's devices author
// GROUP_STATE_BURST states at once (three here), then one each
// GROUP_STATE_RATE interval, on the server's clock; a duplicate and a
// state refused for another reason take no token, and another account has
// a bucket of its own.
func TestSetGroupBudget(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.GroupStateBurst = 3 })
	a1 := e.member("alice")
	a2 := a1.link(true)
	b1 := e.member("bob")
	alone := func(d *tdev, n byte, v uint64) *wire.SignedGroupState {
		return signedBody(t, d.state(gid(n), v, members(role{d.a.name, true})).Signed)
	}
	set := func(d *tdev, s *wire.SignedGroupState) *wire.ErrorBody {
		return d.call(wire.FrameSetGroup, s, new(wire.Empty))
	}
	first := alone(a1, 1, 1)
	wantCode(t, "group 1", set(a1, first), 0)
	wantCode(t, "group 1, version 2", set(a1, alone(a1, 1, 2)), 0)
	wantCode(t, "group 2, by alice's other device", set(a2, alone(a2, 2, 1)), 0)
	wantLimited(t, "group 3", set(a1, alone(a1, 3, 1)), server.GroupStateEvery)
	wantLimited(t, "group 3, by alice's other device", set(a2, alone(a2, 3, 1)), server.GroupStateEvery)
	wantCode(t, "group 3, by bob", set(b1, alone(b1, 3, 1)), 0)
	// Neither a duplicate nor a state refused by an earlier check takes a
	// token: the one that comes back is still there after them.
	e.clock.Advance(server.GroupStateEvery)
	wantCode(t, "group 1 version 1 again (a duplicate)", set(a1, first), 0)
	wantCode(t, "another version 1 of group 1", set(a1, alone(a1, 1, 1)), errcode.StateGroupRollback)
	wantCode(t, "group 4, a token back", set(a1, alone(a1, 4, 1)), 0)
	wantLimited(t, "group 5", set(a1, alone(a1, 5, 1)), server.GroupStateEvery)
	if code, _ := a1.try(wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "bob"}, new(wire.DeviceListResult)); code != 0 {
		t.Errorf("another request while the budget is spent: got %v", code)
	}
}
