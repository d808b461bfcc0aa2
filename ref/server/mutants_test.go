package server_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// numbered is an envelope from d to the account of to, for its devices,
// with a message id and a ciphertext of its own, n, and a priority.
func numbered(d, to *tdev, n int, priority uint64, devices ...uint64) *wire.Envelope {
	e := marker(d, to, devices...)
	e.MessageID = slices.Clone(e.MessageID)
	e.MessageID[2], e.MessageID[3], e.MessageID[4] = byte(n>>8), byte(n), 0xA5
	e.Priority = priority
	for i := range e.Messages {
		e.Messages[i].Ciphertext = []byte(fmt.Sprint(n))
	}
	return e
}

// sendNumbered sends numbered envelopes 0 to len(priorities)-1 from d to
// device 1 of to, each with its priority, one at a time.
func sendNumbered(d, to *tdev, priorities []uint64) {
	d.t.Helper()
	for n, p := range priorities {
		d.do(wire.FrameSend, numbered(d, to, n, p, 1), new(wire.SendResult))
	}
}

// deliveriesN waits for n deliveries to d and returns them in the order
// they came.
func (d *tdev) deliveriesN(n int) []*wire.Delivery {
	d.t.Helper()
	out := make([]*wire.Delivery, 0, n)
	for range n {
		out = append(out, d.delivery())
	}
	return out
}

// queueIDs returns the queue ids of deliveries.
func queueIDs(dls []*wire.Delivery) []uint64 {
	ids := make([]uint64, len(dls))
	for i, dl := range dls {
		ids[i] = dl.QueueID
	}
	return ids
}

// TestDeliveryOrder checks SRV-009's order: the entries of a device's queue
// are delivered highest priority first, then by queue id (the order they
// were sent in), whatever order they were queued in.
func TestDeliveryOrder(t *testing.T) {
	const low, normal, high = wire.PriorityLow, wire.PriorityNormal, wire.PriorityHigh
	many := slices.Repeat([]uint64{normal}, server.MaxInflight+5)
	tests := []struct {
		name       string
		priorities []uint64 // of the entries, in the order sent
	}{
		{"one priority", []uint64{normal, normal, normal, normal}},
		{"mixed", []uint64{low, high, normal, high, low, normal}},
		{"high after a full window", append(slices.Clone(many), high)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.RedeliveryBase, c.RedeliveryMax = time.Hour, time.Hour })
			alice, bob := e.member("alice"), e.member("bob")
			bob.close() // the entries wait in bob's queue
			sendNumbered(alice, bob, tt.priorities)
			want := make([]int, len(tt.priorities))
			for i := range want {
				want[i] = i
			}
			slices.SortStableFunc(want, func(a, b int) int { return cmp.Compare(tt.priorities[b], tt.priorities[a]) })
			want = want[:min(len(want), server.MaxInflight)]

			bob.connect(false)
			var got []int
			for _, dl := range bob.deliveriesN(len(want)) {
				var n int
				fmt.Sscan(string(dl.Ciphertext), &n)
				got = append(got, n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("delivery order (by send order): got %v, want %v", got, want)
			}
		})
	}
}

// TestInflightWindow checks SRV-009's window: at most MAX_INFLIGHT
// deliveries to a device wait for an ack at once, whether the entries were
// queued before the device connected or sent while it is connected; each
// ack lets one more go.
func TestInflightWindow(t *testing.T) {
	const total = server.MaxInflight + 6
	tests := []struct {
		name    string
		offline bool // the entries are queued before bob connects
	}{
		{"queued while offline", true},
		{"sent while online", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No redelivery during the test: every delivery is a new entry.
			e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.RedeliveryBase, c.RedeliveryMax = time.Hour, time.Hour })
			alice, bob := e.member("alice"), e.member("bob")
			if tt.offline {
				bob.close()
			}
			sendNumbered(alice, bob, slices.Repeat([]uint64{wire.PriorityNormal}, total))
			if tt.offline {
				bob.connect(false)
			}
			first := queueIDs(bob.deliveriesN(server.MaxInflight))
			inflight := func(want int) {
				t.Helper()
				select {
				case dl := <-bob.deliveries:
					t.Fatalf("deliveries waiting for an ack: got more than %d (queue id %d came too), want %d", want, dl.QueueID, want)
				case <-time.After(300 * time.Millisecond):
				}
			}
			inflight(server.MaxInflight)

			bob.ack(first[0]) // one ack: one more delivery
			second := queueIDs(bob.deliveriesN(1))
			inflight(server.MaxInflight)

			bob.ack(append(first[1:], second...)...) // the rest comes
			rest := queueIDs(bob.deliveriesN(total - server.MaxInflight - 1))
			inflight(total - server.MaxInflight - 1)
			all := slices.Concat(first, second, rest)
			slices.Sort(all)
			if got := len(slices.Compact(all)); got != total {
				t.Errorf("distinct entries delivered: got %d, want %d", got, total)
			}
		})
	}
}

// TestRedeliverySameConnection checks SRV-010 on one connection: an entry
// delivered and not acknowledged is delivered again after the backoff, on
// the same connection, with a growing attempt count, and not again once it
// is acknowledged.
func TestRedeliverySameConnection(t *testing.T) {
	const base = 100 * time.Millisecond
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.RedeliveryBase, c.RedeliveryMax = base, 8*base })
	alice, bob := e.member("alice"), e.member("bob")
	alice.do(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	first := bob.delivery()
	if first.Attempt != 1 {
		t.Fatalf("first delivery: got attempt %d, want 1", first.Attempt)
	}
	last := first
	for want := uint64(2); want <= 3; want++ {
		var again *wire.Delivery
		select {
		case again = <-bob.deliveries:
		case <-time.After(5 * time.Second):
			t.Fatalf("no redelivery of attempt %d on the same connection within 5s, want one after about %v", want, base<<(want-2))
		}
		if again.QueueID != first.QueueID || again.Attempt != want {
			t.Fatalf("redelivery: got queue id %d attempt %d, want queue id %d attempt %d", again.QueueID, again.Attempt, first.QueueID, want)
		}
		last = again
	}
	bob.ack(last.QueueID)
	// The next redelivery would be due 4*base after the last one: none
	// comes once the ack is in.
	bob.noDelivery(10 * base)
}

// TestLastSeenPrivacy checks SRV-014 for last seen: an offline account's
// last seen is shown to a subscriber, in the subscribe result and in the
// presence pushed when the account goes offline, only when its last-seen
// visibility lets the subscriber see it. Online visibility is everyone in
// every case, so the state is always shown.
func TestLastSeenPrivacy(t *testing.T) {
	tests := []struct {
		name     string
		lastSeen uint64   // bob's last-seen visibility
		contacts []string // bob's contacts; nil sets none
		shown    bool
	}{
		{"everyone", wire.VisibilityEveryone, nil, true},
		{"contacts, alice is one", wire.VisibilityContacts, []string{"alice"}, true},
		{"contacts, alice is not one", wire.VisibilityContacts, []string{"carol"}, false},
		{"contacts, the default", wire.VisibilityContacts, nil, false},
		{"nobody", wire.VisibilityNobody, []string{"alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			alice, bob := e.member("alice"), e.member("bob")
			bob.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: tt.lastSeen, Online: wire.VisibilityEveryone}, new(wire.Empty))
			if tt.contacts != nil {
				bob.do(wire.FrameSetContacts, &wire.Contacts{Accounts: tt.contacts}, new(wire.Empty))
			}
			var res wire.PresenceResult
			alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, &res)
			if len(res.Updates) != 1 || res.Updates[0].State != wire.PresenceOnline {
				t.Fatalf("subscribe result: got %+v, want bob online", res.Updates)
			}
			e.clock.Advance(time.Minute)
			seen := uint64(e.clock.Now().UnixMilli())
			bob.close()

			check := func(what string, u wire.PresenceUpdate) {
				t.Helper()
				if u.Account != "bob" || u.State != wire.PresenceOffline {
					t.Errorf("%s: got account %q state %d, want bob offline (%d)", what, u.Account, u.State, wire.PresenceOffline)
				}
				switch {
				case tt.shown && (u.LastSeen == nil || *u.LastSeen != seen):
					t.Errorf("%s: got last seen %v, want %d", what, u.LastSeen, seen)
				case !tt.shown && u.LastSeen != nil:
					t.Errorf("%s: got last seen %d, want none", what, *u.LastSeen)
				}
			}
			var pushed wire.PresenceUpdate
			if err := transport.DecodeBody(alice.push(wire.FramePresence), &pushed); err != nil {
				t.Fatal(err)
			}
			check("presence pushed", pushed)
			res = wire.PresenceResult{}
			alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, &res)
			if len(res.Updates) != 1 {
				t.Fatalf("subscribe result: got %d updates, want 1", len(res.Updates))
			}
			check("subscribe result", res.Updates[0])
		})
	}
}

// listPush waits for a device-list push to d of the given list version,
// dropping other pushes and device lists of other versions.
func (d *tdev) listPush(version uint64) *wire.SignedDeviceList {
	d.t.Helper()
	var got []uint64
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f := <-d.pushes:
			if f.Type != wire.FrameDeviceList {
				continue
			}
			var sdl wire.SignedDeviceList
			if err := transport.DecodeBody(f, &sdl); err != nil {
				d.t.Fatalf("%s/%d: device-list push: %v", d.a.name, d.id, err)
			}
			var l wire.DeviceList
			if err := wire.Unmarshal(sdl.List, &l); err != nil {
				d.t.Fatalf("%s/%d: device list: %v", d.a.name, d.id, err)
			}
			if l.Serial == version {
				return &sdl
			}
			got = append(got, l.Serial)
		case <-timeout:
			d.t.Fatalf("%s/%d: device-list pushes: got versions %v, want version %d", d.a.name, d.id, got, version)
			return nil
		}
	}
}

// TestListPushed checks DEV-010: a new device list, whether it comes with
// set-device-list or with answer-link, is pushed to every connected device
// of the account, the one that sent it included, as signed.
func TestListPushed(t *testing.T) {
	tests := []struct {
		name   string
		change func(a1, a3 *tdev) // changes the list of a1's account
	}{
		{"set-device-list removing a device", func(a1, a3 *tdev) { a1.unlink(a3) }},
		{"set-device-list of the same devices", func(a1, _ *tdev) {
			a1.signList()
			a1.do(wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: a1.a.list}, new(wire.Empty))
		}},
		{"answer-link", func(a1, _ *tdev) { a1.link(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			a1 := e.member("alice")
			// Reachable companions: their prekey uploads are answered only
			// once the server has attached their connections (it sends the
			// welcome before it does), so the pushes cannot miss them.
			a2 := a1.link(true)
			a3 := a1.link(true)
			tt.change(a1, a3)
			want := a1.a.list
			var sdl wire.SignedDeviceList
			if err := wire.Unmarshal(want, &sdl); err != nil {
				t.Fatal(err)
			}
			for _, d := range []*tdev{a1, a2} {
				got := d.listPush(a1.a.version)
				if string(got.List) != string(sdl.List) || string(got.Signature) != string(sdl.Signature) {
					t.Errorf("%s/%d: got a device list other than the one signed, want version %d as signed", d.a.name, d.id, a1.a.version)
				}
			}
		})
	}
}

// TestEntryQuota checks check 8 of SRV-005 for QUEUE_QUOTA entries: a send
// that would put more entries in a device's queue than the quota is
// refused with policy.quota_exceeded and stores nothing, whether it is
// served alone or with other sends waiting together.
func TestEntryQuota(t *testing.T) {
	const quota = 2
	tests := []struct {
		name string
		send func(t *testing.T, alice, bob *tdev, n int) []errcode.Code // sends n envelopes, returns their answers
	}{
		{"one at a time", func(t *testing.T, alice, bob *tdev, n int) []errcode.Code {
			var codes []errcode.Code
			for i := range n {
				code, _ := alice.try(wire.FrameSend, numbered(alice, bob, i, wire.PriorityNormal, 1), new(wire.SendResult))
				codes = append(codes, code)
			}
			return codes
		}},
		{"pipelined", func(t *testing.T, alice, bob *tdev, n int) []errcode.Code {
			var frames []*wire.Frame
			for i := range n {
				body := mustMarshal(t, numbered(alice, bob, i, wire.PriorityNormal, 1))
				frames = append(frames, &wire.Frame{Version: 1, Type: wire.FrameSend, Body: &body})
			}
			var codes []errcode.Code
			for _, f := range alice.pipeline(frames) {
				codes = append(codes, answerCode(t, f))
			}
			return codes
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.Quota = store.Quota{Entries: quota} })
			alice, bob := e.member("alice"), e.member("bob")
			bob.close() // bob's queue fills up
			got := tt.send(t, alice, bob, quota+2)
			want := []errcode.Code{0, 0, errcode.PolicyQuotaExceeded, errcode.PolicyQuotaExceeded}
			if !slices.Equal(got, want) {
				t.Errorf("answers: got %v, want %v", got, want)
			}
			s, err := e.st.Stats(context.Background(), store.Address{Account: "bob", Device: 1})
			if err != nil {
				t.Fatal(err)
			}
			if s.Entries != quota {
				t.Errorf("bob's queue: got %d entries, want %d", s.Entries, quota)
			}
		})
	}
}
