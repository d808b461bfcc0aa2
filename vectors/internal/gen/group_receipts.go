package gen

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
)

// This file writes group_receipts.json (section 9.2): receipts for group
// messages that a device of the sending account applies (GRP-013), and the
// status per device, per member and as a whole of section 16.6.

// groupReceiptCase is one case of group_receipts.json.
type groupReceiptCase struct {
	caseHead
	Devices  map[string][]uint32   `json:"devices"`
	Versions map[string][]string   `json:"versions"`
	Device   string                `json:"device"`
	Messages []grMessage           `json:"messages"`
	Events   []grEvent             `json:"events"`
	Final    map[string]grMsgState `json:"final"`
	Expect   string                `json:"expect"`
}

type grMessage struct {
	ID           hexBytes `json:"id"`
	GroupVersion uint64   `json:"group_version"`
}

type grEvent struct {
	Kind     string     `json:"kind"`
	Message  hexBytes   `json:"message,omitempty"`
	From     string     `json:"from,omitempty"`
	Receipt  string     `json:"receipt,omitempty"`
	Messages []hexBytes `json:"messages,omitempty"`
}

type grMsgState struct {
	Statuses map[string]string `json:"statuses"`
	Members  map[string]string `json:"members"`
	Overall  string            `json:"overall"`
}

var groupReceiptNotes = notes{
	{"membership", "a receipt from an account that was not a member in the state of the message's group version: no " +
		"effect (GRP-013)"},
	{"reordered", "a receipt arrives before the sent event of its message: kept, and applied when the message becomes " +
		"known (DEV-015)"},
	{"duplicated", "some events are delivered more than once"},
	{"not_listed", "a receipt from a device that is not in its account's device list: dropped (DEV-013)"},
	{"generated", "a schedule drawn at random from the case's stream, then shuffled with duplicates"},
}

const groupReceiptDescription = "Receipts for group messages that a device of the sending account applies (section " +
	"16.6). devices gives the device lists of the accounts (static during the schedule); versions gives, for each group " +
	"version (a decimal string), the sorted member accounts of the group's state of that version; device is the device " +
	"whose state the case follows; messages are group messages that its account sent, each with the group version it " +
	"was sent for. Events, in delivery order: kind \"sent\" makes message known to the device as sent by its account " +
	"(by its send-result or, for another device of the account, as a group message it receives too), with status " +
	"\"sent\" for each device of each member account of the message's group version other than its own account; kind " +
	"\"receipt\" is a receipt content from the address from, of kind receipt, naming messages. A receipt from a device " +
	"not in its account's list is dropped (DEV-013); for each message it names that the device knows, it raises the " +
	"status of from's device when from's account was a member in the state of the message's group version (GRP-013), " +
	"and has no effect otherwise (so it has none from a device of the device's own account); a message the device does " +
	"not know yet keeps the receipt, which is applied in the same way when the message becomes known (DEV-015). " +
	"Statuses only go up (CLI-004). final has, for every message the device knows, the status of each recipient " +
	"device (statuses, by address), the status of each member account (members: the highest of its devices'), and " +
	"overall, the lowest of the members' statuses. The final states were checked against permutations of the events " +
	"with duplicates: every case has expect \"valid\"."

// grWorld is the static part of a case.
type grWorld struct {
	devices  map[string][]uint32
	versions map[uint64][]string
	self     rcAddr
	msgs     map[string]uint64 // id -> group version
}

func (w *grWorld) member(v uint64, account string) bool {
	for _, a := range w.versions[v] {
		if a == account {
			return true
		}
	}
	return false
}

func (w *grWorld) listed(a rcAddr) bool {
	for _, d := range w.devices[a.account] {
		if d == a.device {
			return true
		}
	}
	return false
}

// grFold is the device's state: statuses of known messages, and receipts
// kept for unknown ones.
type grFold struct {
	sent map[string]map[string]int // id -> address -> rank
	kept map[kept]bool
}

func (w *grWorld) applyKnown(f *grFold, k kept) {
	if k.from.account == w.self.account || !w.member(w.msgs[k.id], k.from.account) {
		return
	}
	st := f.sent[k.id]
	if cur, ok := st[k.from.String()]; ok && k.rank > cur {
		st[k.from.String()] = k.rank
	}
}

func (w *grWorld) fold(events []grEvent) (map[string]grMsgState, error) {
	f := &grFold{sent: map[string]map[string]int{}, kept: map[kept]bool{}}
	for i, e := range events {
		switch e.Kind {
		case "sent":
			id := hex.EncodeToString(e.Message)
			v, ok := w.msgs[id]
			if !ok {
				return nil, fmt.Errorf("event %d: an unknown message", i)
			}
			if f.sent[id] != nil {
				continue
			}
			st := map[string]int{}
			for _, a := range w.versions[v] {
				if a == w.self.account {
					continue
				}
				for _, d := range w.devices[a] {
					st[rcAddr{a, d}.String()] = statusRank("sent")
				}
			}
			f.sent[id] = st
			for k := range f.kept {
				if k.id == id {
					delete(f.kept, k)
					w.applyKnown(f, k)
				}
			}
		case "receipt":
			from, err := parseAddr(e.From)
			if err != nil {
				return nil, err
			}
			if !w.listed(from) {
				continue
			}
			for _, m := range e.Messages {
				k := kept{from, statusRank(e.Receipt), hex.EncodeToString(m)}
				if f.sent[k.id] != nil {
					w.applyKnown(f, k)
				} else {
					f.kept[k] = true
				}
			}
		default:
			return nil, fmt.Errorf("event %d: kind %q", i, e.Kind)
		}
	}
	out := map[string]grMsgState{}
	for id, st := range f.sent {
		s := grMsgState{Statuses: map[string]string{}, Members: map[string]string{}}
		members := map[string]int{}
		for addr, r := range st {
			s.Statuses[addr] = statusNames[r]
			a, _ := parseAddr(addr)
			if r > members[a.account] {
				members[a.account] = r
			}
		}
		low := len(statusNames)
		for a, r := range members {
			s.Members[a] = statusNames[r]
			low = min(low, r)
		}
		if low == len(statusNames) {
			return nil, fmt.Errorf("a message with no other member")
		}
		s.Overall = statusNames[low]
		out[id] = s
	}
	return out, nil
}

// grBuilder writes one case.
type grBuilder struct {
	v      *vb
	w      *grWorld
	msgs   []grMessage
	ids    map[string][]byte
	events []grEvent
}

func (b *grBuilder) message(name string, version uint64) {
	id := b.v.messageID()
	b.ids[name] = id
	b.msgs = append(b.msgs, grMessage{id, version})
	b.w.msgs[hex.EncodeToString(id)] = version
}

func (b *grBuilder) sent(name string) {
	b.events = append(b.events, grEvent{Kind: "sent", Message: b.ids[name]})
}

func (b *grBuilder) receipt(from, kind string, names ...string) {
	var ids [][]byte
	for _, n := range names {
		ids = append(ids, b.ids[n])
	}
	sortBytes(ids)
	var out []hexBytes
	for _, id := range ids {
		out = append(out, id)
	}
	b.events = append(b.events, grEvent{Kind: "receipt", From: from, Receipt: kind, Messages: out})
}

func genGroupReceipts() (any, error) {
	devices := func() map[string][]uint32 {
		return map[string][]uint32{"alice": {1, 2}, "bob": {1, 2}, "carol": {1}, "dave": {1, 3}}
	}
	versions := func() map[uint64][]string {
		return map[uint64][]string{1: {"alice", "bob", "carol"}, 2: {"alice", "bob", "carol", "dave"},
			3: {"alice", "carol", "dave"}}
	}
	type spec struct {
		id, comment string
		flags, reqs []string
		build       func(b *grBuilder)
	}
	specs := []spec{
		{"group_receipts_in_order", "alice/1 sends m1 for version 1 (alice, bob, carol). bob/1 and carol/1 store it, " +
			"bob/2 reads it: bob is at read, carol at delivered, so m1 is delivered as a whole.", nil,
			[]string{"GRP-013", "CLI-004"}, func(b *grBuilder) {
				b.message("m1", 1)
				b.sent("m1")
				b.receipt("bob/1", "delivered", "m1")
				b.receipt("carol/1", "delivered", "m1")
				b.receipt("bob/2", "read", "m1")
			}},
		{"group_receipts_all_read", "Every member has a device that read m1: read as a whole, though bob/1 only " +
			"stored it.", nil, []string{"GRP-013", "CLI-004"}, func(b *grBuilder) {
			b.message("m1", 1)
			b.sent("m1")
			b.receipt("bob/1", "delivered", "m1")
			b.receipt("bob/2", "read", "m1")
			b.receipt("carol/1", "read", "m1")
			b.receipt("carol/1", "delivered", "m1")
		}},
		{"group_receipts_removed_member", "m1 is sent for version 2, m2 for version 3 (bob removed). bob/1's read " +
			"receipt names both: it applies to m1 only.", []string{"membership"}, []string{"GRP-013"},
			func(b *grBuilder) {
				b.message("m1", 2)
				b.message("m2", 3)
				b.sent("m1")
				b.sent("m2")
				b.receipt("bob/1", "read", "m1", "m2")
				b.receipt("dave/3", "delivered", "m1", "m2")
				b.receipt("carol/1", "delivered", "m2")
			}},
		{"group_receipts_added_member", "m1 is sent for version 1, before dave was added; m2 for version 2. dave/1's " +
			"receipt for both applies to m2 only, and m1's status does not wait for dave.", []string{"membership"},
			[]string{"GRP-013"}, func(b *grBuilder) {
				b.message("m1", 1)
				b.message("m2", 2)
				b.sent("m1")
				b.sent("m2")
				b.receipt("dave/1", "read", "m1", "m2")
				b.receipt("bob/2", "delivered", "m1", "m2")
				b.receipt("carol/1", "delivered", "m1", "m2")
			}},
		{"group_receipts_own_account", "alice/2, a device of the sending account and a group device, sends a read " +
			"receipt: it has no effect on the status, which counts the other members only.", []string{"membership"},
			[]string{"GRP-013"}, func(b *grBuilder) {
				b.message("m1", 1)
				b.sent("m1")
				b.receipt("alice/2", "read", "m1")
				b.receipt("bob/1", "delivered", "m1")
			}},
		{"group_receipts_reordered", "Receipts overtake the sent event of m1 (kept, DEV-015), some twice.",
			[]string{"reordered", "duplicated"}, []string{"GRP-013", "DEV-015", "DEV-016"}, func(b *grBuilder) {
				b.message("m1", 2)
				b.receipt("dave/3", "read", "m1")
				b.receipt("bob/1", "delivered", "m1")
				b.receipt("dave/3", "read", "m1")
				b.sent("m1")
				b.receipt("carol/1", "played", "m1")
				b.receipt("bob/1", "delivered", "m1")
				b.sent("m1")
			}},
		{"group_receipts_not_listed", "A receipt from bob/9, which bob's device list does not hold: dropped.",
			[]string{"not_listed"}, []string{"GRP-013", "DEV-013"}, func(b *grBuilder) {
				b.message("m1", 1)
				b.sent("m1")
				b.receipt("bob/9", "read", "m1")
				b.receipt("carol/1", "delivered", "m1")
			}},
	}
	var cases []groupReceiptCase
	finish := func(id, comment string, flags, reqs []string, b *grBuilder) error {
		if b.v.err != nil {
			return b.v.err
		}
		final, err := b.w.fold(b.events)
		if err != nil {
			return err
		}
		st := newStream("Missive v1 test vectors: group_receipts: permutations: " + id)
		for r := 0; r < 16; r++ {
			var perm []grEvent
			for _, e := range b.events {
				perm = append(perm, e)
				if st.read(1)[0]%3 == 0 {
					perm = append(perm, e)
				}
			}
			for i := len(perm) - 1; i > 0; i-- {
				j := int(st.read(1)[0]) % (i + 1)
				perm[i], perm[j] = perm[j], perm[i]
			}
			got, err := b.w.fold(perm)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, final) {
				return fmt.Errorf("a permutation reaches another state")
			}
		}
		vs := map[string][]string{}
		for v, ms := range b.w.versions {
			vs[strconv.FormatUint(v, 10)] = ms
		}
		if flags == nil {
			flags = []string{}
		}
		c := groupReceiptCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs},
			Devices: b.w.devices, Versions: vs, Device: b.w.self.String(), Messages: b.msgs, Events: b.events,
			Final: final, Expect: "valid"}
		notListed, early := false, false
		known := map[string]bool{}
		for _, e := range b.events {
			if e.Kind == "sent" {
				known[hex.EncodeToString(e.Message)] = true
				continue
			}
			a, _ := parseAddr(e.From)
			notListed = notListed || !b.w.listed(a)
			for _, m := range e.Messages {
				early = early || !known[hex.EncodeToString(m)]
			}
		}
		has := func(f string) bool {
			for _, x := range flags {
				if x == f {
					return true
				}
			}
			return false
		}
		if has("not_listed") != notListed || (has("reordered") != early && !has("generated")) {
			return fmt.Errorf("the flags do not match the events")
		}
		cases = append(cases, c)
		return nil
	}
	newB := func(id string) *grBuilder {
		return &grBuilder{v: newVB("Missive v1 test vectors: group_receipts: " + id), ids: map[string][]byte{},
			w: &grWorld{devices: devices(), versions: versions(), self: rcAddr{"alice", 1}, msgs: map[string]uint64{}}}
	}
	for _, s := range specs {
		b := newB(s.id)
		s.build(b)
		if err := finish(s.id, s.comment, s.flags, s.reqs, b); err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
	}
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("group_receipts_generated_%d", i)
		b := newB(id)
		u := func(k int) int { return int(b.v.read(1)[0]) % k }
		kinds := []string{"delivered", "read", "played"}
		var addrs []string
		for _, a := range []string{"alice", "bob", "carol", "dave"} {
			for _, d := range b.w.devices[a] {
				addrs = append(addrs, rcAddr{a, d}.String())
			}
		}
		for m := 0; m < 3+i; m++ {
			name := fmt.Sprintf("m%d", m)
			b.message(name, uint64(1+u(3)))
			b.sent(name)
			for r := 0; r < 2+u(4); r++ {
				b.receipt(addrs[u(len(addrs))], kinds[u(3)], name)
			}
		}
		var out []grEvent
		for _, e := range b.events {
			out = append(out, e)
			if u(5) == 0 {
				out = append(out, e)
			}
		}
		for j := len(out) - 1; j > 0; j-- {
			k := (int(b.v.read(1)[0])<<8 | int(b.v.read(1)[0])) % (j + 1)
			out[j], out[k] = out[k], out[j]
		}
		b.events = out
		flags := []string{"generated"}
		membership, dup, early := false, false, false
		seen, known := map[string]bool{}, map[string]bool{}
		for _, e := range out {
			k := fmt.Sprintf("%+v", e)
			dup = dup || seen[k]
			seen[k] = true
			if e.Kind == "sent" {
				known[hex.EncodeToString(e.Message)] = true
				continue
			}
			a, _ := parseAddr(e.From)
			for _, m := range e.Messages {
				id := hex.EncodeToString(m)
				early = early || !known[id]
				membership = membership || a.account == "alice" || !b.w.member(b.w.msgs[id], a.account)
			}
		}
		for _, f := range []struct {
			on   bool
			flag string
		}{{membership, "membership"}, {early, "reordered"}, {dup, "duplicated"}} {
			if f.on {
				flags = append(flags, f.flag)
			}
		}
		if err := finish(id, fmt.Sprintf("%d messages for random group versions, with receipts from random devices "+
			"of any account, shuffled with duplicates.", 3+i), flags, []string{"GRP-013", "DEV-015", "DEV-016",
			"CLI-004"}, b); err != nil {
			return nil, fmt.Errorf("%s: %v", id, err)
		}
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("group_receipts", groupReceiptNotes, heads); err != nil {
		return nil, err
	}
	return newFile("group_receipts", groupReceiptDescription, groupReceiptNotes, cases), nil
}
