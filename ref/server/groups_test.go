package server_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestSetGroupChecks checks set-group's checks (GRP-002) one by one, in
// their order: each refused state also breaks a later check, so that a
// server that checked in another order would answer another code.
func TestSetGroupChecks(t *testing.T) {
	e := start(t)
	a1 := e.member("alice")
	listV1 := a1.a.list
	a2 := a1.link(true)
	b1, c1 := e.member("bob"), e.member("carol")
	g := gid(1)
	v1 := members(role{"alice", true}, role{"bob", false})

	// Step 1, then the author: a state whose field 3 is not a signed
	// device list is refused as such, though its author is another device.
	// The connection closes after a malformed body, so a device of its own.
	m1 := e.member("mallory")
	bad := a2.state(g, 1, v1)
	body := signedBody(t, bad.Signed)
	body.DeviceList = []byte{0xa1, 0x01} // a map missing its value
	if got, _ := m1.try(wire.FrameSetGroup, body, new(wire.Empty)); got.Layer() != "decode" {
		t.Errorf("field 3 not a signed device list: got %v, want a decode.* code", got)
	}

	tests := []struct {
		name string
		from *tdev
		make func() []byte
		want errcode.Code
	}{
		// After step 1: the author is the connection's device (before the
		// signature is checked).
		{"a state by another device", a1, func() []byte { return a2.state(g, 1, v1).Signed }, errcode.AuthSenderMismatch},
		{"a state by another device, badly signed", a1, func() []byte {
			s := signedBody(t, a2.state(g, 1, v1).Signed)
			s.Signature[3] ^= 1
			return mustMarshal(t, s)
		}, errcode.AuthSenderMismatch},
		{"a state by another account", a1, func() []byte { return b1.state(g, 1, v1).Signed }, errcode.AuthSenderMismatch},
		// Step 2: the author's device list.
		{"the list of another account", a1, func() []byte {
			s := signedBody(t, a1.state(g, 1, v1).Signed)
			s.DeviceList = b1.a.list
			return mustMarshal(t, s)
		}, errcode.AuthDeviceListInvalid},
		{"a list signed by another primary", a1, func() []byte {
			other, _ := keys.GeneratePrivateKey(a1.rnd)
			l, err := devices.Sign(other, "alice", 3, []wire.ListedDevice{{Device: 1, IdentityKey: other.Public().Encode()}}, 1, a1.rnd)
			if err != nil {
				t.Fatal(err)
			}
			s := signedBody(t, a1.state(g, 1, v1).Signed)
			s.DeviceList = l.Signed
			return mustMarshal(t, s)
		}, errcode.AuthIdentityChanged},
		{"a second list of a version stored (equivocation)", a1, func() []byte {
			l, err := devices.Sign(a1.ik, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: a1.ik.Public().Encode()}}, 999, a1.rnd)
			if err != nil {
				t.Fatal(err)
			}
			s := signedBody(t, a1.state(g, 1, v1).Signed)
			s.DeviceList = l.Signed
			return mustMarshal(t, s)
		}, errcode.AuthDeviceListInvalid},
		{"a list without the author", a2, func() []byte {
			s := signedBody(t, a2.state(g, 1, v1).Signed)
			s.DeviceList = listV1
			return mustMarshal(t, s)
		}, errcode.AuthDeviceNotListed},
		// Step 3 (before step 4: the group is unknown and the version 2).
		{"a bad signature", a1, func() []byte {
			s := signedBody(t, a1.state(g, 2, v1).Signed)
			s.Signature[3] ^= 1
			return mustMarshal(t, s)
		}, errcode.AuthBadSignature},
		// Step 4 for a group the server does not hold.
		{"version 2 of an unknown group", a1, func() []byte { return a1.state(g, 2, v1).Signed }, errcode.StateUnknownGroup},
		// Step 5 with no previous state: the author must be an admin of S.
		{"a group whose author is not an admin", a1, func() []byte {
			return a1.state(g, 1, members(role{"alice", false}, role{"bob", true})).Signed
		}, errcode.PolicyNotAdmin},
		// The member accounts exist, after step 6.
		{"a member without an account", a1, func() []byte {
			return a1.state(g, 1, members(role{"alice", true}, role{"zed", false})).Signed
		}, errcode.StateUnknownAccount},
		// Created, with an older list of the author's account that the server
		// holds byte for byte: a state may be older than the list.
		// (The signature covers field 1 only.)
		{"version 1", a1, func() []byte {
			s := signedBody(t, a1.state(g, 1, v1).Signed)
			s.DeviceList = listV1
			return mustMarshal(t, s)
		}, 0},
	}
	var created []byte
	for _, tt := range tests {
		signed := tt.make()
		if got := tt.from.setGroup(signed); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if tt.want == 0 {
			created = signed
		}
	}
	if created == nil {
		t.Fatal("no group created")
	}

	// Step 4 for a group the server holds.
	if got := a1.setGroup(created); got != 0 {
		t.Errorf("version 1 again, the same: got %v, want it ignored", got)
	}
	if got := a1.setGroup(a1.state(g, 1, members(role{"alice", true})).Signed); got != errcode.StateGroupRollback {
		t.Errorf("another version 1: got %v, want %v", got, errcode.StateGroupRollback)
	}
	if got := b1.setGroup(b1.state(g, 3, members(role{"bob", true})).Signed); got != errcode.StateGroupRollback {
		t.Errorf("version 3 after 1, by a member: got %v, want %v", got, errcode.StateGroupRollback)
	}
	// Step 5: bob is a member, not an admin; he may only leave.
	withCarol := members(role{"alice", true}, role{"bob", false}, role{"carol", false})
	if got := b1.setGroup(b1.state(g, 2, withCarol).Signed); got != errcode.PolicyNotAdmin {
		t.Errorf("a member adds carol: got %v, want %v", got, errcode.PolicyNotAdmin)
	}
	if got := c1.setGroup(c1.state(g, 2, members(role{"alice", true}, role{"carol", true})).Signed); got != errcode.PolicyNotAdmin {
		t.Errorf("a stranger changes the group: got %v, want %v", got, errcode.PolicyNotAdmin)
	}
	// Step 6 (before the accounts: zed has none).
	if got := a1.setGroup(a1.state(g, 2, members(role{"alice", false}, role{"zed", false})).Signed); got != errcode.PolicyNotAdmin {
		t.Errorf("a group without an admin: got %v, want %v", got, errcode.PolicyNotAdmin)
	}
	// Accepted changes.
	v2 := b1.state(g, 2, members(role{"alice", true}))
	if got := b1.setGroup(v2.Signed); got != 0 {
		t.Errorf("bob leaves: got %v, want a result", got)
	}
	if got := b1.setGroup(v2.Signed); got != 0 {
		t.Errorf("bob's leaving again, the same: got %v, want it ignored", got)
	}
	if got := a2.setGroup(a2.state(g, 3, withCarol).Signed); got != 0 {
		t.Errorf("alice's companion adds bob and carol: got %v, want a result", got)
	}
	// Every state is kept.
	states, current, err := e.st.GroupStates(context.Background(), g, 1, 10)
	if err != nil || current != 3 || len(states) != 3 || !bytes.Equal(states[0], created) || !bytes.Equal(states[1], v2.Signed) {
		t.Errorf("stored states: got %d states, version %d, %v; want 3, the ones accepted", len(states), current, err)
	}
}

func mustMarshal(t *testing.T, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustState(t *testing.T, s *wire.SignedGroupState) *wire.GroupState {
	t.Helper()
	var st wire.GroupState
	if err := wire.Unmarshal(s.State, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// TestGetGroup checks GRP-004: a device gets the states that name its
// account, or whose previous state does, and those between two that name
// it (made while it was away), never one before the first that names it.
func TestGetGroup(t *testing.T) {
	e := start(t)
	a1, b1, c1, d1, m1 := e.member("alice"), e.member("bob"), e.member("carol"), e.member("dave"), e.member("mallory")
	g := gid(2)
	chain := [][]wire.GroupMember{
		members(role{"alice", true}, role{"bob", false}),
		members(role{"alice", true}, role{"bob", false}, role{"carol", false}),
		members(role{"alice", true}, role{"carol", false}),
		members(role{"alice", true}, role{"carol", false}, role{"dave", false}),
	}
	var signed [][]byte
	for i, ms := range chain {
		s := a1.state(g, uint64(i+1), ms)
		if got := a1.setGroup(s.Signed); got != 0 {
			t.Fatalf("version %d: %v", i+1, got)
		}
		signed = append(signed, s.Signed)
	}
	type fetch struct {
		name string
		from *tdev
		id   []byte
		v    uint64
		want []int // versions
		code errcode.Code
	}
	check := func(tests []fetch) {
		t.Helper()
		for _, tt := range tests {
			var h wire.GroupHistory
			code, _ := tt.from.try(wire.FrameGetGroup, &wire.GroupFetch{GroupID: tt.id, From: tt.v}, &h)
			if code != tt.code {
				t.Errorf("%s: got %v, want %v", tt.name, code, tt.code)
				continue
			}
			var want [][]byte
			for _, v := range tt.want {
				want = append(want, signed[v-1])
			}
			if code == 0 && !slices.EqualFunc(h.States, want, bytes.Equal) {
				t.Errorf("%s: got versions %v, want %v", tt.name, versionsOf(t, h.States), tt.want)
			}
		}
	}
	check([]fetch{
		{"alice from 1", a1, g, 1, []int{1, 2, 3, 4}, 0},
		{"alice from 3", a1, g, 3, []int{3, 4}, 0},
		{"bob, removed at 3", b1, g, 1, []int{1, 2, 3}, 0},
		{"bob from 2", b1, g, 2, []int{2, 3}, 0},
		{"bob after his removal, not back", b1, g, 4, nil, errcode.PolicyNotMember},
		{"carol, added at 2", c1, g, 1, []int{2, 3, 4}, 0},
		{"dave, added at 4", d1, g, 1, []int{4}, 0},
		{"mallory, never a member", m1, g, 1, nil, errcode.PolicyNotMember},
		{"past the current version", a1, g, 5, nil, errcode.PolicyNotMember},
		{"an unknown group", a1, gid(3), 1, nil, errcode.StateUnknownGroup},
		{"an unknown group, by a stranger", m1, gid(3), 1, nil, errcode.StateUnknownGroup},
	})

	// Alice makes carol an admin at version 5; carol adds bob again at 6;
	// version 7 removes dave.
	for i, ms := range [][]wire.GroupMember{
		members(role{"alice", true}, role{"carol", true}, role{"dave", false}),
		members(role{"alice", true}, role{"carol", true}, role{"dave", false}, role{"bob", false}),
		members(role{"alice", true}, role{"carol", true}, role{"bob", false}),
	} {
		author := a1
		if i > 0 {
			author = c1
		}
		s := author.state(g, uint64(i+5), ms)
		if got := author.setGroup(s.Signed); got != 0 {
			t.Fatalf("version %d: %v", i+5, got)
		}
		signed = append(signed, s.Signed)
	}
	check([]fetch{
		{"bob, away from 3 to 6", b1, g, 1, []int{1, 2, 3, 4, 5, 6, 7}, 0},
		{"bob from his removal", b1, g, 3, []int{3, 4, 5, 6, 7}, 0},
		{"bob from the state after it", b1, g, 4, []int{4, 5, 6, 7}, 0},
		{"bob from his return", b1, g, 6, []int{6, 7}, 0},
		{"carol from 1", c1, g, 1, []int{2, 3, 4, 5, 6, 7}, 0},
		{"dave, added at 4 and removed at 7", d1, g, 1, []int{4, 5, 6, 7}, 0},
		{"dave after his removal", d1, g, 8, nil, errcode.PolicyNotMember},
		{"mallory, never a member", m1, g, 1, nil, errcode.PolicyNotMember},
	})
}

// versionsOf returns the versions of signed group states.
func versionsOf(t *testing.T, states [][]byte) []int {
	t.Helper()
	var vs []int
	for _, s := range states {
		vs = append(vs, int(mustState(t, signedBody(t, s)).Serial))
	}
	return vs
}

// TestGetGroupLimit checks that get-group answers at most MAX_GROUP_STATES
// states, and the rest from the next version. One admin makes them all, at
// once: its budget (GRP-015) is lifted.
func TestGetGroupLimit(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.GroupStateBurst = -1 })
	a1 := e.member("alice")
	g := gid(4)
	const n = wire.MaxGroupStates + 6
	for v := uint64(1); v <= n; v++ {
		if got := a1.setGroup(a1.state(g, v, members(role{"alice", true})).Signed); got != 0 {
			t.Fatalf("version %d: %v", v, got)
		}
	}
	var h wire.GroupHistory
	a1.do(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: 1}, &h)
	if len(h.States) != wire.MaxGroupStates {
		t.Fatalf("from 1: got %d states, want %d", len(h.States), wire.MaxGroupStates)
	}
	for i, s := range h.States {
		if v := mustState(t, signedBody(t, s)).Serial; v != uint64(i+1) {
			t.Fatalf("state %d: got version %d, want %d", i, v, i+1)
		}
	}
	a1.do(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: wire.MaxGroupStates + 1}, &h)
	if len(h.States) != 6 || mustState(t, signedBody(t, h.States[5])).Serial != n {
		t.Errorf("from %d: got %d states, want 6 up to version %d", wire.MaxGroupStates+1, len(h.States), n)
	}
}

// groupOf sets version 1 of a group made by d's account with the others
// as members, and returns its id.
func groupOf(t *testing.T, n byte, d *tdev, others ...string) []byte {
	t.Helper()
	rs := []role{{d.a.name, true}}
	for _, o := range others {
		rs = append(rs, role{o, false})
	}
	g := gid(n)
	if got := d.setGroup(d.state(g, 1, members(rs...)).Signed); got != 0 {
		t.Fatalf("set-group: %v", got)
	}
	return g
}

// TestSendGroupFanout checks that a group message goes to every group
// device, the sender's own other devices included, and not to the sending
// device nor to devices that are not reachable; that the delivery says it
// is a group message; and that a resend stores nothing (SRV-008).
func TestSendGroupFanout(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a1 := e.member("alice")
	a2 := a1.link(true)
	a3 := a1.link(false) // listed, no prekeys: not reachable
	b1 := e.member("bob")
	b2 := b1.link(true)
	c1 := e.member("carol")
	e.member("dave") // not a member
	g := groupOf(t, 5, a1, "bob", "carol")

	devs := wire.GroupDevices{{Account: "alice", Devices: []uint64{2}}, {Account: "bob", Devices: []uint64{1, 2}}, {Account: "carol", Devices: []uint64{1}}}
	env := a1.envelope(g, 1, digest(t, g, devs), 1)
	var res wire.SendResult
	a1.do(wire.FrameSendGroup, env, &res)
	if want := uint64(e.clock.Now().UnixMilli()); res.AcceptedAt != want {
		t.Errorf("send-result: got %d, want the server's clock %d", res.AcceptedAt, want)
	}
	for _, d := range []*tdev{a2, b1, b2, c1} {
		dl := d.delivery()
		want := wire.Delivery{Version: 1, QueueID: dl.QueueID, MessageID: env.MessageID, Sender: a1.addr(),
			Type: wire.EnvelopeChat, Priority: env.Priority, Kind: wire.KindGroup, Ciphertext: env.Message,
			SentAt: env.SentAt, AcceptedAt: res.AcceptedAt, ExpiresAt: res.AcceptedAt + env.TTL*1000, Attempt: 1}
		if !bytes.Equal(mustMarshal(t, dl), mustMarshal(t, &want)) {
			t.Errorf("delivery to %v: got %+v, want %+v", d.addr(), *dl, want)
		}
		d.ack(dl.QueueID)
	}
	a1.noDelivery(100 * time.Millisecond)
	a3.noDelivery(100 * time.Millisecond)
	waitFor(t, "the acks", func() bool { n, _ := e.st.TotalEntries(ctx); return n == 0 })

	// A resend: the first acceptance time, nothing stored.
	e.clock.Advance(time.Second)
	var again wire.SendResult
	a1.do(wire.FrameSendGroup, env, &again)
	if again.AcceptedAt != res.AcceptedAt {
		t.Errorf("resend: got accepted at %d, want %d", again.AcceptedAt, res.AcceptedAt)
	}
	if n, _ := e.st.TotalEntries(ctx); n != 0 {
		t.Errorf("entries after a resend: got %d, want 0", n)
	}
	for _, d := range []*tdev{a2, b1, b2, c1} {
		d.noDelivery(50 * time.Millisecond)
	}

	// A device becomes reachable: the old digest is refused with the group
	// devices, and the new one goes to it too.
	a3.uploadPrekeys()
	env = a1.envelope(g, 1, digest(t, g, devs), 2)
	code, body := a1.try(wire.FrameSendGroup, env, new(wire.SendResult))
	devs[0].Devices = []uint64{2, 3}
	if code != errcode.StateFanoutMismatch || body.Group == nil || !groupDevicesEqual(*body.Group, devs) {
		t.Errorf("a new reachable device: got %v with %+v, want %v with %+v", code, body, errcode.StateFanoutMismatch, devs)
	}
	env.Digest = digest(t, g, devs)
	a1.do(wire.FrameSendGroup, env, &res)
	for _, d := range []*tdev{a2, a3, b1, b2, c1} {
		dl := d.delivery()
		if !bytes.Equal(dl.MessageID, env.MessageID) {
			t.Errorf("delivery to %v: got message %x, want %x", d.addr(), dl.MessageID, env.MessageID)
		}
		d.ack(dl.QueueID)
	}

	// A companion sends: the primary is a group device, the sender is not.
	fromA2 := a2.envelope(g, 1, digest(t, g, wire.GroupDevices{{Account: "alice", Devices: []uint64{1, 3}},
		{Account: "bob", Devices: []uint64{1, 2}}, {Account: "carol", Devices: []uint64{1}}}), 3)
	a2.do(wire.FrameSendGroup, fromA2, &res)
	for _, d := range []*tdev{a1, a3, b1, b2, c1} {
		dl := d.delivery()
		if dl.Sender != a2.addr() {
			t.Errorf("delivery to %v: got sender %v, want %v", d.addr(), dl.Sender, a2.addr())
		}
		d.ack(dl.QueueID)
	}
	a2.noDelivery(100 * time.Millisecond)

	// Bob unlinks a device: it leaves the group devices.
	b1.unlink(b2)
	env = a1.envelope(g, 1, digest(t, g, devs), 4)
	code, body = a1.try(wire.FrameSendGroup, env, new(wire.SendResult))
	devs[1].Devices = []uint64{1}
	if code != errcode.StateFanoutMismatch || body.Group == nil || !groupDevicesEqual(*body.Group, devs) {
		t.Errorf("an unlinked device: got %v with %+v, want %v with %+v", code, body, errcode.StateFanoutMismatch, devs)
	}

	var m strings.Builder
	e.srv.WriteMetrics(ctx, &m)
	for _, want := range []string{"missive_group_envelopes_accepted_total 3\n", "missive_group_fanout_devices_count 3\n",
		"missive_group_states_total 1\n", `missive_group_fanout_devices_bucket{le="5"} 3` + "\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics: no %q", want)
		}
	}
}

func groupDevicesEqual(a, b wire.GroupDevices) bool {
	return slices.EqualFunc(a, b, func(x, y wire.AccountDevices) bool {
		return x.Account == y.Account && slices.Equal(x.Devices, y.Devices)
	})
}

// TestSendGroupChecks checks send-group's checks 3 to 7 (GRP-009) in their
// order: each refused envelope also breaks the checks after its own.
func TestSendGroupChecks(t *testing.T) {
	e := start(t)
	a1, b1, c1 := e.member("alice"), e.member("bob"), e.member("carol")
	g := groupOf(t, 6, a1, "bob")
	v2 := a1.state(g, 2, members(role{"alice", true}, role{"bob", false}))
	if got := a1.setGroup(v2.Signed); got != 0 {
		t.Fatal(got)
	}
	good := digest(t, g, wire.GroupDevices{{Account: "bob", Devices: []uint64{1}}})
	zero := make([]byte, 32)

	mismatch := a1.envelope(gid(99), 1, zero, 1)
	mismatch.Sender = b1.addr()
	tests := []struct {
		name string
		from *tdev
		env  *wire.GroupEnvelope
		want errcode.Code
	}{
		{"another sender, an unknown group", a1, mismatch, errcode.AuthSenderMismatch},
		{"an unknown group", a1, a1.envelope(gid(99), 1, zero, 2), errcode.StateUnknownGroup},
		{"a stranger, with a stale version and digest", c1, c1.envelope(g, 1, zero, 3), errcode.PolicyNotMember},
		{"a stale version and digest", a1, a1.envelope(g, 1, zero, 4), errcode.StateGroupStale},
		{"a future version", a1, a1.envelope(g, 3, good, 5), errcode.StateGroupStale},
		{"a wrong digest", a1, a1.envelope(g, 2, zero, 6), errcode.StateFanoutMismatch},
		{"all good", a1, a1.envelope(g, 2, good, 7), 0},
	}
	for _, tt := range tests {
		code, body := tt.from.try(wire.FrameSendGroup, tt.env, new(wire.SendResult))
		if code != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, code, tt.want)
			continue
		}
		switch code {
		case errcode.StateGroupStale:
			if body.GroupState == nil || !bytes.Equal(*body.GroupState, v2.Signed) || body.Group != nil || body.Fanout != nil {
				t.Errorf("%s: got %+v, want field 7 with the current state, and only it", tt.name, body)
			}
		case errcode.StateFanoutMismatch:
			want := wire.GroupDevices{{Account: "bob", Devices: []uint64{1}}}
			if body.Group == nil || !groupDevicesEqual(*body.Group, want) || body.GroupState != nil || body.Fanout != nil || body.DeviceList != nil {
				t.Errorf("%s: got %+v, want field 6 with the group devices, and only it", tt.name, body)
			}
		}
	}
	if dl := b1.delivery(); !bytes.Equal(dl.MessageID, tests[len(tests)-1].env.MessageID) {
		t.Errorf("bob got message %x, want only the accepted one", dl.MessageID)
	}
	b1.noDelivery(100 * time.Millisecond)
}

// TestSendGroupRateLimit checks checks 1 and 2 of GRP-009: a send-group
// over the send rate is refused before the sender is checked, and a
// malformed one is refused as such even then.
func TestSendGroupRateLimit(t *testing.T) {
	e := start(t)
	a1, b1 := e.member("alice"), e.member("bob")
	env := a1.envelope(gid(7), 1, make([]byte, 32), 1)
	env.Sender = b1.addr()
	codes := map[errcode.Code]int{}
	var first errcode.Code
	for i := range server.SendBurst + 20 {
		b := a1.call(wire.FrameSendGroup, env, new(wire.SendResult))
		if i == 0 {
			first = errcode.Code(b.Code)
		}
		codes[errcode.Code(b.Code)]++
	}
	if first != errcode.AuthSenderMismatch || codes[errcode.PolicyRateLimited] == 0 {
		t.Fatalf("%d send-groups in a row: got %v (first %v), want sender mismatches then rate limits", server.SendBurst+20, codes, first)
	}
	// Other requests have their own limit.
	if code, _ := a1.try(wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "bob"}, new(wire.DeviceListResult)); code != 0 {
		t.Errorf("fetch-device-list while sends are limited: got %v", code)
	}
	// A malformed body while limited: a decode error, and the connection
	// closes.
	garbage := []byte{0xa1, 0x01}
	id := uint64(9999)
	f, err := wire.Marshal(&wire.Frame{Version: 1, Type: wire.FrameSendGroup, RequestID: &id, Body: &garbage})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *wire.Frame, 1)
	a1.mu.Lock()
	a1.waiting[id] = ch
	a1.mu.Unlock()
	if err := a1.c.WriteFrame(f); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-ch:
		var b wire.ErrorBody
		wire.Unmarshal(*f.Body, &b)
		if code := errcode.Code(b.Code); code.Layer() != "decode" {
			t.Errorf("malformed group envelope while limited: got %v, want a decode.* code", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	select {
	case <-a1.done:
	case <-time.After(10 * time.Second):
		t.Error("connection still open after a malformed body")
	}
}

// TestSendGroupQuota checks check 10 of GRP-009 and SRV-007: when one group
// device's queue is full, no group device gets the message.
func TestSendGroupQuota(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.Quota = store.Quota{Entries: 2} })
	ctx := context.Background()
	a1 := e.member("alice")
	a2 := a1.link(true)
	b1 := e.member("bob")
	g := groupOf(t, 8, a1, "bob")
	b1.close() // bob's queue fills up
	dg := digest(t, g, wire.GroupDevices{{Account: "alice", Devices: []uint64{2}}, {Account: "bob", Devices: []uint64{1}}})
	for i := range 2 {
		a1.do(wire.FrameSendGroup, a1.envelope(g, 1, dg, byte(i+1)), new(wire.SendResult))
		dl := a2.delivery()
		a2.ack(dl.QueueID)
	}
	waitFor(t, "alice's acks", func() bool { n, _ := e.st.TotalEntries(ctx); return n == 2 })
	if code, _ := a1.try(wire.FrameSendGroup, a1.envelope(g, 1, dg, 3), new(wire.SendResult)); code != errcode.PolicyQuotaExceeded {
		t.Errorf("bob's queue full: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
	a2.noDelivery(200 * time.Millisecond)
	if n, _ := e.st.TotalEntries(ctx); n != 2 {
		t.Errorf("entries after a refusal: got %d, want 2", n)
	}
}

// TestSendGroupRestart checks SRV-006 and SRV-013 for group messages over
// the embedded store: the entries of every group device, and the memory of
// the accepted message, survive a crash of the server.
func TestSendGroupRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missive.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	e := startWith(t, st, clk, nil)
	a1 := e.member("alice")
	a2 := a1.link(true)
	b1 := e.member("bob")
	b2 := b1.link(true)
	g := groupOf(t, 9, a1, "bob")
	for _, d := range []*tdev{a2, b1, b2} {
		d.close()
	}
	env := a1.envelope(g, 1, digest(t, g, wire.GroupDevices{{Account: "alice", Devices: []uint64{2}}, {Account: "bob", Devices: []uint64{1, 2}}}), 1)
	var res wire.SendResult
	a1.do(wire.FrameSendGroup, env, &res)

	e.srv.Close() // a crash: no notice, no grace
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	clk.Advance(time.Minute)
	e2 := startWith(t, st2, clk, nil)
	for _, d := range []*tdev{a1, a2, b1, b2} {
		d.e = e2
		d.connect(false)
	}
	for _, d := range []*tdev{a2, b1, b2} {
		dl := d.delivery()
		if !bytes.Equal(dl.MessageID, env.MessageID) || dl.Kind != wire.KindGroup || dl.AcceptedAt != res.AcceptedAt {
			t.Errorf("delivery to %v after the restart: got %+v", d.addr(), *dl)
		}
	}
	a1.noDelivery(100 * time.Millisecond)
	var again wire.SendResult
	a1.do(wire.FrameSendGroup, env, &again)
	if again.AcceptedAt != res.AcceptedAt {
		t.Errorf("resend after the restart: got accepted at %d, want %d", again.AcceptedAt, res.AcceptedAt)
	}
	// The group states survive too.
	var h wire.GroupHistory
	b1.do(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: 1}, &h)
	if len(h.States) != 1 {
		t.Errorf("get-group after the restart: got %d states, want 1", len(h.States))
	}
}

// TestFetchDeviceList checks fetch-device-list: the account's current
// signed list, or state.unknown_account.
func TestFetchDeviceList(t *testing.T) {
	e := start(t)
	a1, b1 := e.member("alice"), e.member("bob")
	fetch := func(from *tdev, account string) ([]byte, errcode.Code) {
		t.Helper()
		var r wire.DeviceListResult
		code, _ := from.try(wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: account}, &r)
		return r.DeviceList, code
	}
	if got, code := fetch(b1, "alice"); code != 0 || !bytes.Equal(got, a1.a.list) {
		t.Errorf("alice's list: got %v, want version 1", code)
	}
	a1.link(true)
	for _, from := range []*tdev{a1, b1} {
		if got, code := fetch(from, "alice"); code != 0 || !bytes.Equal(got, a1.a.list) {
			t.Errorf("alice's list after a link, fetched by %s: got %v, want version 2", from.a.name, code)
		}
	}
	if _, code := fetch(b1, "nobody"); code != errcode.StateUnknownAccount {
		t.Errorf("an unknown account: got %v, want %v", code, errcode.StateUnknownAccount)
	}
	// An account registered without a list yet has none to give.
	n := e.newDevice(&account{name: "newcomer"}, 1)
	n.connect(true)
	if _, code := fetch(b1, "newcomer"); code != errcode.StateUnknownAccount {
		t.Errorf("an account without a list: got %v, want %v", code, errcode.StateUnknownAccount)
	}
	if _, err := e.st.Account(context.Background(), "newcomer"); errors.Is(err, store.ErrNotFound) {
		t.Error("newcomer not registered")
	}
}

// TestGetGroupAwayPages checks the pages of GRP-004 for an account away
// from a group for more than a page of states: the states in between come
// in pages of MAX_GROUP_STATES, from any version after its removal (the
// server looks back across pages for a state that names it), and none
// while no later state names it.
func TestGetGroupAwayPages(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.GroupStateBurst = -1 })
	a1, b1 := e.member("alice"), e.member("bob")
	g := gid(6)
	const back = wire.MaxGroupStates + 10 // bob is added again at this version
	set := func(v uint64, ms []wire.GroupMember) {
		t.Helper()
		if got := a1.setGroup(a1.state(g, v, ms).Signed); got != 0 {
			t.Fatalf("version %d: %v", v, got)
		}
	}
	fetch := func(from uint64) ([]int, errcode.Code) {
		t.Helper()
		var h wire.GroupHistory
		code, _ := b1.try(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: from}, &h)
		return versionsOf(t, h.States), code
	}
	span := func(from, to int) []int {
		var vs []int
		for v := from; v <= to; v++ {
			vs = append(vs, v)
		}
		return vs
	}
	set(1, members(role{"alice", true}, role{"bob", false}))
	for v := uint64(2); v < back; v++ { // bob removed at 2
		set(v, members(role{"alice", true}))
	}
	if got, code := fetch(3); code != errcode.PolicyNotMember {
		t.Errorf("from 3, bob not back: got versions %v, code %v; want %v", got, code, errcode.PolicyNotMember)
	}
	set(back, members(role{"alice", true}, role{"bob", false}))
	tests := []struct {
		from uint64
		want []int
	}{
		{1, span(1, wire.MaxGroupStates)},
		{2, span(2, wire.MaxGroupStates+1)},
		{wire.MaxGroupStates + 2, span(wire.MaxGroupStates+2, back)},
		{back - 1, span(back-1, back)},
		{back, span(back, back)},
	}
	for _, tt := range tests {
		got, code := fetch(tt.from)
		if code != 0 || !slices.Equal(got, tt.want) {
			t.Errorf("from %d: got versions %v, code %v; want %v", tt.from, got, code, tt.want)
		}
	}
}

// statesRead counts the states GroupStates returns.
type statesRead struct {
	store.Store
	n atomic.Int64
}

func (s *statesRead) GroupStates(ctx context.Context, groupID []byte, from uint64, limit int) ([][]byte, uint64, error) {
	states, current, err := s.Store.GroupStates(ctx, groupID, from, limit)
	s.n.Add(int64(len(states)))
	return states, current, err
}

// TestGetGroupReadsWhatItServes checks that get-group reads at most one
// state beyond those its answer holds (the first that does not fit the
// frame), with states of about 36 KB, of which fewer than
// MAX_GROUP_STATES fit a frame: it read pages of MAX_GROUP_STATES (from a
// review).
func TestGetGroupReadsWhatItServes(t *testing.T) {
	st := &statesRead{Store: mem.New()}
	e := startWith(t, st, newClock(), func(c *server.Config) { c.GroupStateBurst = -1 })
	a1 := e.member("alice")
	all := append([]role{{"alice", true}}, e.accounts(a1, "member-of-a-very-large-group", wire.MaxGroupMembers-1)...)
	g := gid(7)
	for v := uint64(1); v <= wire.MaxGroupStates; v++ {
		if got := a1.setGroup(a1.state(g, v, members(all...)).Signed); got != 0 {
			t.Fatalf("version %d: %v", v, got)
		}
	}
	for from := uint64(1); from <= wire.MaxGroupStates; {
		st.n.Store(0)
		var h wire.GroupHistory
		a1.do(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: from}, &h)
		served, read := int64(len(h.States)), st.n.Load()
		if served == 0 || read > served+1 {
			t.Fatalf("get-group from %d: %d states served, %d read; want at most one read beyond those served", from, served, read)
		}
		if from == 1 && served == wire.MaxGroupStates {
			t.Fatalf("get-group from 1: all %d states of %d bytes in one answer; the test wants a frame cut", served, len(h.States[0]))
		}
		from += uint64(served)
	}
}
