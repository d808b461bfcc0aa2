package history

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The convergence test (spec section 15.7): random schedules of sends,
// receipts, reads, deletions, offline periods, and deliveries that are
// reordered, duplicated and lost (a lost delivery is delivered again
// later, as the server redelivers until acknowledged), between two
// accounts with several devices each. Once every delivery has settled, the
// devices of each account must agree on everything, with nothing lost and
// nothing shown twice.

// event is what the network carries to one device.
type event struct {
	seq  int // unique per event, for deduplication (a device's processed set)
	to   Address
	kind string // "sent", "message", "receipt", "read", "deleted"
	id   ID
	peer string // message: the sender account; sent: the recipient account
	rcpt Receipt
	keys []Key
}

type device struct {
	addr      Address
	state     *State
	processed map[int]bool
	online    bool
}

type world struct {
	t        *rapid.T
	devices  map[Address]*device
	accounts map[string][]uint32
	net      []event
	seq      int
	next     byte
	sentTo   map[ID]string // ground truth: every message and its recipient
	from     map[ID]string
	readBy   map[ID]bool            // some device of the recipient read it
	deleted  map[ID]map[string]bool // accounts that deleted the message
}

func (w *world) others(a Address) []Address {
	var out []Address
	for _, d := range w.accounts[a.Account] {
		if d != a.Device {
			out = append(out, Address{a.Account, d})
		}
	}
	return out
}

func (w *world) all(account string) []Address {
	var out []Address
	for _, d := range w.accounts[account] {
		out = append(out, Address{account, d})
	}
	return out
}

func (w *world) post(e event) {
	w.seq++
	e.seq = w.seq
	w.net = append(w.net, e)
}

func other(account string) string {
	if account == "alice" {
		return "bob"
	}
	return "alice"
}

// send: the sender learns its message at once (send-result); its other
// devices get the transcript, the recipient's devices the message.
func (w *world) send(from Address) {
	w.next++
	id := ID{w.next}
	to := other(from.Account)
	w.sentTo[id], w.from[id] = to, from.Account
	w.devices[from].state.LearnSent(id, to, w.accounts[to])
	for _, a := range w.others(from) {
		w.post(event{to: a, kind: "sent", id: id, peer: to})
	}
	for _, a := range w.all(to) {
		w.post(event{to: a, kind: "message", id: id, peer: from.Account})
	}
}

// read: a device reads what it has unread, sends one read receipt to the
// sender account, and tells its own other devices (DEV-012).
func (w *world) read(at Address) {
	d := w.devices[at]
	var keys []Key
	for k := range d.state.Received {
		if !d.state.IsRead(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b Key) int { return int(a.ID[0]) - int(b.ID[0]) })
	d.state.ApplyRead(keys)
	for _, k := range keys {
		w.readBy[k.ID] = true
		for _, a := range w.all(k.Account) {
			w.post(event{to: a, kind: "receipt", rcpt: Receipt{From: at, Kind: Read, IDs: []ID{k.ID}}})
		}
	}
	for _, a := range w.others(at) {
		w.post(event{to: a, kind: "read", keys: keys})
	}
}

// remove: a device deletes a message of a conversation for its account.
func (w *world) remove(at Address, k Key) {
	w.devices[at].state.ApplyDeleted([]Key{k})
	if w.deleted[k.ID] == nil {
		w.deleted[k.ID] = map[string]bool{}
	}
	w.deleted[k.ID][at.Account] = true
	for _, a := range w.others(at) {
		w.post(event{to: a, kind: "deleted", keys: []Key{k}})
	}
}

// deliver hands event i to its device, which processes it once.
func (w *world) deliver(i int) {
	e := w.net[i]
	w.net = slices.Delete(w.net, i, i+1)
	d := w.devices[e.to]
	if d.processed[e.seq] {
		return // a duplicate: already processed (CLI-001)
	}
	d.processed[e.seq] = true
	switch e.kind {
	case "sent":
		d.state.LearnSent(e.id, e.peer, w.accounts[e.peer])
	case "message":
		d.state.Receive(e.peer, e.id)
		// The device stored it: a delivered receipt to the sender account.
		for _, a := range w.all(e.peer) {
			w.post(event{to: a, kind: "receipt", rcpt: Receipt{From: e.to, Kind: Delivered, IDs: []ID{e.id}}})
		}
	case "receipt":
		d.state.ApplyReceipt(e.rcpt, true)
	case "read":
		d.state.ApplyRead(e.keys)
	case "deleted":
		d.state.ApplyDeleted(e.keys)
	}
}

// deliverable returns the indexes of events whose device is online.
func (w *world) deliverable() []int {
	var out []int
	for i, e := range w.net {
		if w.devices[e.to].online {
			out = append(out, i)
		}
	}
	return out
}

func TestConvergence(t *testing.T) {
	schedules := 0
	// Twenty runs of rapid's default 100 checks, each with its own seed.
	for range 20 {
		rapid.Check(t, property(&schedules))
	}
	t.Logf("ran %d schedules", schedules)
}

func property(schedules *int) func(*rapid.T) {
	return func(rt *rapid.T) {
		*schedules++
		w := &world{t: rt, devices: map[Address]*device{}, accounts: map[string][]uint32{},
			sentTo: map[ID]string{}, from: map[ID]string{}, readBy: map[ID]bool{}, deleted: map[ID]map[string]bool{}}
		for _, acct := range []string{"alice", "bob"} {
			n := rapid.IntRange(1, 4).Draw(rt, acct+" devices")
			for d := uint32(1); d <= uint32(n); d++ {
				a := Address{acct, d}
				w.accounts[acct] = append(w.accounts[acct], d)
				w.devices[a] = &device{addr: a, state: New(), processed: map[int]bool{}, online: true}
			}
		}
		addrs := append(w.all("alice"), w.all("bob")...)
		pick := rapid.SampledFrom(addrs)
		steps := rapid.IntRange(1, 120).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
			case op <= 1:
				if w.next < 200 {
					w.send(pick.Draw(rt, "sender"))
				}
			case op == 2:
				w.read(pick.Draw(rt, "reader"))
			case op == 3:
				at := pick.Draw(rt, "deleter")
				var keys []Key
				for k := range w.devices[at].state.Received {
					keys = append(keys, k)
				}
				for id, m := range w.devices[at].state.Sent {
					keys = append(keys, Key{m.To, id})
				}
				if len(keys) > 0 {
					slices.SortFunc(keys, func(a, b Key) int { return int(a.ID[0]) - int(b.ID[0]) })
					w.remove(at, rapid.SampledFrom(keys).Draw(rt, "deleted"))
				}
			case op == 4:
				d := w.devices[pick.Draw(rt, "toggled")]
				d.online = !d.online
			default:
				ready := w.deliverable()
				if len(ready) == 0 {
					continue
				}
				i := ready[rapid.IntRange(0, len(ready)-1).Draw(rt, "delivery")]
				switch rapid.IntRange(0, 5).Draw(rt, "fate") {
				case 0: // lost: delivered again later
					e := w.net[i]
					w.net = append(slices.Delete(w.net, i, i+1), e)
				case 1: // duplicated
					w.net = append(w.net, w.net[i])
					w.deliver(i)
				default:
					w.deliver(i)
				}
			}
		}
		// Settle: everyone online, everything delivered, in a random order.
		for _, d := range w.devices {
			d.online = true
		}
		for len(w.net) > 0 {
			w.deliver(rapid.IntRange(0, len(w.net)-1).Draw(rt, "settle"))
		}
		w.check()
	}
}

// check asserts agreement, no loss and the expected statuses.
func (w *world) check() {
	for acct, ids := range w.accounts {
		first := w.devices[Address{acct, ids[0]}].state
		for _, id := range ids[1:] {
			if s := w.devices[Address{acct, id}].state; !s.Equal(first) {
				w.t.Fatalf("%s/%d and %s/%d disagree:\n%v\n---\n%v", acct, ids[0], acct, id, first, s)
			}
		}
		for id, to := range w.sentTo {
			from := w.from[id]
			switch {
			case from == acct && !w.deleted[id][acct]:
				m := first.Sent[id]
				if m == nil {
					w.t.Fatalf("%s lost its sent message %x", acct, id[:1])
				}
				for _, d := range w.accounts[to] {
					want := Delivered
					if w.readBy[id] {
						want = max(want, m.Statuses[d]) // read by one device: that device's status is read
					}
					if m.Statuses[d] < Delivered {
						w.t.Fatalf("%s's message %x: device %s/%d status %v, want at least %v", acct, id[:1], to, d, m.Statuses[d], want)
					}
				}
				if w.readBy[id] && Overall(m.Statuses) != Read {
					w.t.Fatalf("%s's message %x was read, overall %v", acct, id[:1], Overall(m.Statuses))
				}
			case to == acct && !w.deleted[id][acct]:
				if _, ok := first.Received[Key{from, id}]; !ok {
					w.t.Fatalf("%s lost the message %x from %s", acct, id[:1], from)
				}
				if got := first.IsRead(Key{from, id}); got != w.readBy[id] {
					w.t.Fatalf("%s: message %x read %v, want %v", acct, id[:1], got, w.readBy[id])
				}
			}
		}
	}
}
