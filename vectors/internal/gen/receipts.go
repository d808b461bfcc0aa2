package gen

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// This file writes receipts.json (section 9.2): schedules of receipts and
// sync content delivered to the devices of two or three accounts, and the
// state each device reaches (sections 14.3 and 15.7). The state is computed
// twice: by folding the events one at a time as chapters 14 and 15 describe
// (statuses raised by joins, receipts for unknown messages kept and applied
// when the message becomes known), and as a view of grow-only sets (a
// state-based CRDT); the two must agree, and the fold must give the same
// state for every permutation, duplication and split-and-join of the events.

// receiptCase is one case of receipts.json.
type receiptCase struct {
	caseHead
	Devices  map[string][]uint32 `json:"devices"`
	Messages []rcMessage         `json:"messages"`
	Events   []rcEvent           `json:"events"`
	Final    map[string]rcState  `json:"final"`
	Expect   string              `json:"expect"`
}

type rcMessage struct {
	ID   hexBytes `json:"id"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

type rcEvent struct {
	To       string     `json:"to"`
	Kind     string     `json:"kind"`
	Message  hexBytes   `json:"message,omitempty"`
	From     string     `json:"from,omitempty"`
	Receipt  string     `json:"receipt,omitempty"`
	Messages []hexBytes `json:"messages,omitempty"`
}

type rcState struct {
	Sent map[string]rcSent `json:"sent"`
	Read []hexBytes        `json:"read"`
}

type rcSent struct {
	Statuses map[string]string `json:"statuses"`
	Overall  string            `json:"overall"`
}

var receiptNotes = notes{
	{"reordered", "a device gets a receipt or read content about a message before the message's sent or message " +
		"event (a receipt that overtakes the sent transcript or the send-result, a read sync that overtakes the " +
		"message): it is kept and applied when the message becomes known (DEV-015)"},
	{"duplicated", "some events are delivered more than once"},
	{"lost", "some events never reach some devices, so devices of one account end in different states"},
	{"sync", "read content between the devices of one account (DEV-012)"},
	{"played", "a played receipt"},
	{"backwards", "a receipt that would lower a status (delivered after read, read after played): it changes nothing (CLI-004)"},
	{"unknown_message", "a receipt or read content about a message that the receiving device never learns of: kept, " +
		"never applied, it changes nothing"},
	{"not_listed", "a receipt from a device that is not in its account's device list: dropped (DEV-013)"},
	{"other_account", "a receipt about a message that the receiving device's account sent to another account than the " +
		"receipt's: ignored (CLI-003)"},
	{"generated", "a schedule drawn at random from the case's stream: every message fanned out, receipts and read syncs " +
		"for some, then events lost, duplicated and shuffled"},
}

const receiptDescription = "Schedules of receipts and sync events delivered to the devices of accounts whose device lists " +
	"are devices (static during the schedule), and the state each device reaches (sections 14.3 and 15.7). A consumer " +
	"starts every device with no message, delivers the events in the order given, and compares each device's state " +
	"with final, which lists every device of devices. A sent event to a device of the sender's account makes the " +
	"message known to it as sent by its account, with status sent for each device of the to account's list (a repeat " +
	"changes nothing). A message event makes the message received by the device. A receipt event from an address " +
	"whose device is not in its account's list is dropped (DEV-013); otherwise each message id it names that the " +
	"device knows as sent raises the status of the receipt's device to the receipt's kind when the message was sent " +
	"to the receipt's account (statuses only go up: pending < sent < delivered < read < played, CLI-004), and is " +
	"ignored when it was sent to another account (CLI-003); an id the device does not know is kept and applied in the " +
	"same way when a sent event makes it known (DEV-015); one it knows as received by itself is ignored. A read event " +
	"adds its ids to the device's set of messages read on some device of its account, whether received yet or not " +
	"(section 15.7); read in final lists, sorted bytewise, the received messages in that set. A read by the user on " +
	"a device is not an event: the device where a message was read shows it read only if an event says so (the " +
	"reading device sends the read receipts and the read content that the schedule holds, DEV-012). sent in final " +
	"has an entry for every message the device knows its account sent, with the status of each recipient device and " +
	"the overall status, the highest of them. Receipt ids are sorted bytewise and distinct, as in a receipt content " +
	"(MSG-010). The final states were checked against a fold of grow-only sets, and against every permutation, " +
	"duplication and split-and-join of the events that the generator tried: the state is a join-semilattice (DEV-016)."

// Status ranks of section 14.3.
var statusNames = []string{"pending", "sent", "delivered", "read", "played"}

func statusRank(name string) int {
	for i, n := range statusNames {
		if n == name {
			return i
		}
	}
	return -1
}

// rcAddr is a device address "account/device".
type rcAddr struct {
	account string
	device  uint32
}

func parseAddr(s string) (rcAddr, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return rcAddr{}, fmt.Errorf("address %q", s)
	}
	d, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil || d == 0 {
		return rcAddr{}, fmt.Errorf("address %q", s)
	}
	return rcAddr{s[:i], uint32(d)}, nil
}

func (a rcAddr) String() string { return fmt.Sprintf("%s/%d", a.account, a.device) }

// rcWorld is what every device of a schedule shares: the device lists and
// the messages.
type rcWorld struct {
	devices  map[string][]uint32
	messages map[string]rcMessage // by hex id
}

func newWorld(devices map[string][]uint32, msgs []rcMessage) *rcWorld {
	w := &rcWorld{devices: devices, messages: map[string]rcMessage{}}
	for _, m := range msgs {
		w.messages[hex.EncodeToString(m.ID)] = m
	}
	return w
}

func (w *rcWorld) listed(a rcAddr) bool {
	for _, d := range w.devices[a.account] {
		if d == a.device {
			return true
		}
	}
	return false
}

// addresses returns every device of every account, sorted.
func (w *rcWorld) addresses() []rcAddr {
	var out []rcAddr
	for acct, ds := range w.devices {
		for _, d := range ds {
			out = append(out, rcAddr{acct, d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].account != out[j].account {
			return out[i].account < out[j].account
		}
		return out[i].device < out[j].device
	})
	return out
}

// kept is a receipt kept for a message the device does not know yet.
type kept struct {
	from rcAddr
	rank int
	id   string
}

// foldDev is a device's state in the fold of section 15.7: the event
// handling of chapters 14 and 15, one event at a time.
type foldDev struct {
	self      rcAddr
	sent      map[string]map[uint32]int // known sent messages: status rank per recipient device
	received  map[string]bool
	readMarks map[string]bool // messages read on some device of the account
	pending   map[kept]bool   // receipts kept for unknown messages (DEV-015)
}

func newFoldDev(self rcAddr) *foldDev {
	return &foldDev{self: self, sent: map[string]map[uint32]int{}, received: map[string]bool{},
		readMarks: map[string]bool{}, pending: map[kept]bool{}}
}

// applyKnown applies a receipt to a message the device knows as sent.
func (d *foldDev) applyKnown(w *rcWorld, k kept) {
	m := w.messages[k.id]
	if m.To != k.from.account {
		return // CLI-003: sent to another account
	}
	st := d.sent[k.id]
	if cur, ok := st[k.from.device]; ok && k.rank > cur {
		st[k.from.device] = k.rank
	}
}

// learnSent makes a message known as sent by the device's account.
func (d *foldDev) learnSent(w *rcWorld, id string) error {
	m, ok := w.messages[id]
	if !ok {
		return fmt.Errorf("a sent event for a message that is not in messages")
	}
	from, err := parseAddr(m.From)
	if err != nil {
		return err
	}
	if from.account != d.self.account {
		return fmt.Errorf("a sent event to %v for a message of %s", d.self, from.account)
	}
	if _, ok := d.sent[id]; ok {
		return nil // a duplicate
	}
	st := map[uint32]int{}
	for _, r := range w.devices[m.To] {
		st[r] = statusRank("sent")
	}
	d.sent[id] = st
	// DEV-015: the receipts kept for it.
	var ks []kept
	for k := range d.pending {
		if k.id == id {
			ks = append(ks, k)
		}
	}
	for _, k := range ks {
		delete(d.pending, k)
		d.applyKnown(w, k)
	}
	return nil
}

func (d *foldDev) apply(w *rcWorld, e rcEvent) error {
	switch e.Kind {
	case "sent":
		return d.learnSent(w, hex.EncodeToString(e.Message))
	case "message":
		id := hex.EncodeToString(e.Message)
		m, ok := w.messages[id]
		if !ok || m.To != d.self.account {
			return fmt.Errorf("a message event to %v for a message to another account", d.self)
		}
		d.received[id] = true
	case "receipt":
		from, err := parseAddr(e.From)
		if err != nil {
			return err
		}
		rank := statusRank(e.Receipt)
		if rank < statusRank("delivered") {
			return fmt.Errorf("receipt kind %q", e.Receipt)
		}
		if !w.listed(from) {
			return nil // DEV-013
		}
		for _, idb := range e.Messages {
			k := kept{from, rank, hex.EncodeToString(idb)}
			switch {
			case d.sent[k.id] != nil:
				d.applyKnown(w, k)
			case d.received[k.id]:
				// Not a message this account sent (CLI-003).
			default:
				d.pending[k] = true
			}
		}
	case "read":
		for _, idb := range e.Messages {
			d.readMarks[hex.EncodeToString(idb)] = true
		}
	default:
		return fmt.Errorf("event kind %q", e.Kind)
	}
	return nil
}

// join is the join of two states of one device (section 15.7): field by
// field the larger, then the kept receipts whose message is now known are
// applied.
func (d *foldDev) join(w *rcWorld, o *foldDev) *foldDev {
	out := newFoldDev(d.self)
	for _, s := range []*foldDev{d, o} {
		for id, st := range s.sent {
			cur := out.sent[id]
			if cur == nil {
				cur = map[uint32]int{}
				out.sent[id] = cur
			}
			for r, v := range st {
				if v > cur[r] {
					cur[r] = v
				}
			}
		}
		for id := range s.received {
			out.received[id] = true
		}
		for id := range s.readMarks {
			out.readMarks[id] = true
		}
		for k := range s.pending {
			out.pending[k] = true
		}
	}
	for k := range out.pending {
		if out.sent[k.id] != nil {
			delete(out.pending, k)
			out.applyKnown(w, k)
		}
	}
	return out
}

// view returns the state of section 9.2.
func (d *foldDev) view() rcState {
	return makeView(d.sent, d.received, d.readMarks)
}

func makeView(sent map[string]map[uint32]int, received, readMarks map[string]bool) rcState {
	st := rcState{Sent: map[string]rcSent{}, Read: []hexBytes{}}
	for id, statuses := range sent {
		e := rcSent{Statuses: map[string]string{}}
		top := -1
		for r, v := range statuses {
			e.Statuses[strconv.FormatUint(uint64(r), 10)] = statusNames[v]
			if v > top {
				top = v
			}
		}
		e.Overall = statusNames[top]
		st.Sent[id] = e
	}
	var ids []string
	for id := range received {
		if readMarks[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids) // hex order is byte order
	for _, id := range ids {
		st.Read = append(st.Read, mustHex(id))
	}
	return st
}

// foldAll folds events into every device of the world.
func foldAll(w *rcWorld, events []rcEvent) (map[string]*foldDev, error) {
	devs := map[string]*foldDev{}
	for _, a := range w.addresses() {
		devs[a.String()] = newFoldDev(a)
	}
	for i, e := range events {
		d := devs[e.To]
		if d == nil {
			return nil, fmt.Errorf("event %d: to %q is not a listed device", i, e.To)
		}
		if err := d.apply(w, e); err != nil {
			return nil, fmt.Errorf("event %d: %v", i, err)
		}
	}
	return devs, nil
}

func views(devs map[string]*foldDev) map[string]rcState {
	out := map[string]rcState{}
	for a, d := range devs {
		out[a] = d.view()
	}
	return out
}

// setView is the second computation: each device's state as grow-only sets
// of what it was told, and the statuses derived from them.
func setView(w *rcWorld, events []rcEvent) (map[string]rcState, error) {
	type sets struct {
		sent, received, readMarks map[string]bool
		receipts                  map[kept]bool
	}
	all := map[string]*sets{}
	for _, a := range w.addresses() {
		all[a.String()] = &sets{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[kept]bool{}}
	}
	for _, e := range events {
		s := all[e.To]
		if s == nil {
			return nil, fmt.Errorf("to %q is not a listed device", e.To)
		}
		switch e.Kind {
		case "sent":
			s.sent[hex.EncodeToString(e.Message)] = true
		case "message":
			s.received[hex.EncodeToString(e.Message)] = true
		case "read":
			for _, id := range e.Messages {
				s.readMarks[hex.EncodeToString(id)] = true
			}
		case "receipt":
			from, err := parseAddr(e.From)
			if err != nil {
				return nil, err
			}
			for _, id := range e.Messages {
				s.receipts[kept{from, statusRank(e.Receipt), hex.EncodeToString(id)}] = true
			}
		}
	}
	out := map[string]rcState{}
	for a, s := range all {
		sent := map[string]map[uint32]int{}
		for id := range s.sent {
			m := w.messages[id]
			st := map[uint32]int{}
			for _, r := range w.devices[m.To] {
				st[r] = statusRank("sent")
				for k := range s.receipts {
					if k.id == id && k.from.account == m.To && k.from.device == r && k.rank > st[r] {
						st[r] = k.rank
					}
				}
			}
			sent[id] = st
		}
		out[a] = makeView(sent, s.received, s.readMarks)
	}
	return out, nil
}

// checkConvergence checks a schedule's final states: the fold and the set
// view agree, and the fold gives them again for random permutations of the
// events with random duplicates, and for random splits of the events in two
// overlapping parts whose folds are joined (DEV-016).
func checkConvergence(w *rcWorld, events []rcEvent, want map[string]rcState, st *stream, rounds int) error {
	sv, err := setView(w, events)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(sv, want) {
		return fmt.Errorf("the fold and the set view disagree")
	}
	u := func(n int) int { // a uniform-enough index below n
		b := st.read(4)
		return int((uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % uint32(n))
	}
	for r := 0; r < rounds; r++ {
		// A permutation with duplicates.
		perm := append([]rcEvent{}, events...)
		for i := 0; i < len(events)/3+1 && len(events) > 0; i++ {
			perm = append(perm, events[u(len(events))])
		}
		for i := len(perm) - 1; i > 0; i-- {
			j := u(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		devs, err := foldAll(w, perm)
		if err != nil {
			return err
		}
		if got := views(devs); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("round %d: a permutation with duplicates gives another state", r)
		}
		// A split in two overlapping parts, folded apart and joined.
		var a, b []rcEvent
		for _, e := range perm {
			switch u(3) {
			case 0:
				a = append(a, e)
			case 1:
				b = append(b, e)
			default:
				a, b = append(a, e), append(b, e)
			}
		}
		da, err := foldAll(w, a)
		if err != nil {
			return err
		}
		db, err := foldAll(w, b)
		if err != nil {
			return err
		}
		for addr := range want {
			ab, ba := da[addr].join(w, db[addr]), db[addr].join(w, da[addr])
			if !reflect.DeepEqual(ab.view(), want[addr]) || !reflect.DeepEqual(ba.view(), want[addr]) {
				return fmt.Errorf("round %d: %s: the join of two partial folds gives another state", r, addr)
			}
			if aa := ab.join(w, ab); !reflect.DeepEqual(aa.view(), want[addr]) {
				return fmt.Errorf("round %d: %s: a join with itself changes the state", r, addr)
			}
		}
	}
	return nil
}

// rcBuilder writes one schedule.
type rcBuilder struct {
	v        *vb
	devices  map[string][]uint32
	msgs     []rcMessage
	ids      map[string][]byte
	events   []rcEvent
	noEffect []bool // events that the case says change nothing
	err      error
}

func newRCBuilder(id string, devices map[string][]uint32) *rcBuilder {
	return &rcBuilder{v: newVB("Missive v1 test vectors: receipts: " + id), devices: devices, ids: map[string][]byte{}}
}

func (b *rcBuilder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// message adds a message of the schedule, named for the builder.
func (b *rcBuilder) message(name, from, to string) {
	id := b.v.messageID()
	b.ids[name] = id
	b.msgs = append(b.msgs, rcMessage{ID: id, From: from, To: to})
}

// stray names a message id that no message of the schedule has.
func (b *rcBuilder) stray(name string) { b.ids[name] = b.v.messageID() }

func (b *rcBuilder) id(name string) []byte {
	id, ok := b.ids[name]
	if !ok {
		b.fail(fmt.Errorf("no message %s", name))
	}
	return id
}

func (b *rcBuilder) msg(name string) rcMessage {
	for _, m := range b.msgs {
		if bytes.Equal(m.ID, b.ids[name]) {
			return m
		}
	}
	b.fail(fmt.Errorf("no message %s", name))
	return rcMessage{}
}

func (b *rcBuilder) add(e rcEvent) {
	b.events = append(b.events, e)
	b.noEffect = append(b.noEffect, false)
}

// none marks the last n events (one when n is absent) as events that
// change nothing.
func (b *rcBuilder) none(n ...int) {
	k := 1
	if len(n) > 0 {
		k = n[0]
	}
	for i := 0; i < k; i++ {
		b.noEffect[len(b.noEffect)-1-i] = true
	}
}

func (b *rcBuilder) sent(to, m string) { b.add(rcEvent{To: to, Kind: "sent", Message: b.id(m)}) }

func (b *rcBuilder) deliver(to, m string) { b.add(rcEvent{To: to, Kind: "message", Message: b.id(m)}) }

func (b *rcBuilder) receipt(to, from, kind string, ms ...string) {
	var ids [][]byte
	for _, m := range ms {
		ids = append(ids, b.id(m))
	}
	sortBytes(ids)
	var out []hexBytes
	for i, id := range ids {
		if i > 0 && bytes.Equal(id, ids[i-1]) {
			b.fail(fmt.Errorf("a receipt names a message twice"))
		}
		out = append(out, id)
	}
	b.add(rcEvent{To: to, Kind: "receipt", From: from, Receipt: kind, Messages: out})
}

func (b *rcBuilder) read(to string, ms ...string) {
	var out []hexBytes
	for _, m := range ms {
		out = append(out, b.id(m))
	}
	b.add(rcEvent{To: to, Kind: "read", Messages: out})
}

// devicesOf returns the addresses of an account's devices, optionally
// without one.
func (b *rcBuilder) devicesOf(account string, except string) []string {
	var out []string
	for _, d := range b.devices[account] {
		a := fmt.Sprintf("%s/%d", account, d)
		if a != except {
			out = append(out, a)
		}
	}
	return out
}

// sentAll delivers the sent event of m to every device of its sender's
// account (the sender by its send-result, the others by the transcript).
func (b *rcBuilder) sentAll(m string) {
	from, _ := parseAddr(b.msg(m).From)
	for _, a := range b.devicesOf(from.account, "") {
		b.sent(a, m)
	}
}

// deliverAll delivers m to every device of its recipient account.
func (b *rcBuilder) deliverAll(m string) {
	for _, a := range b.devicesOf(b.msg(m).To, "") {
		b.deliver(a, m)
	}
}

// receiptAll sends a receipt from a device to every device of account.
func (b *rcBuilder) receiptAll(account, from, kind string, ms ...string) {
	for _, a := range b.devicesOf(account, "") {
		b.receipt(a, from, kind, ms...)
	}
}

// readOn is a read on device reader of the messages ms, all from one
// account: read receipts to that account's devices, read content to the
// reader's other devices (DEV-012).
func (b *rcBuilder) readOn(reader string, ms ...string) {
	from, _ := parseAddr(b.msg(ms[0]).From)
	r, _ := parseAddr(reader)
	b.receiptAll(from.account, reader, "read", ms...)
	for _, a := range b.devicesOf(r.account, reader) {
		b.read(a, ms...)
	}
}

func genReceipts() (any, error) {
	two := func() map[string][]uint32 {
		return map[string][]uint32{"alice": {1, 2, 3}, "bob": {1, 2}}
	}
	type spec struct {
		id, comment string
		flags, reqs []string
		devices     map[string][]uint32
		build       func(b *rcBuilder)
	}
	specs := []spec{
		{"receipts_in_order", "alice/1 sends m1 to bob; every event arrives once, in order: the sent transcript to " +
			"alice/2 and alice/3, the message to bob's devices, delivered receipts from both, then a read on bob/1: " +
			"its read receipt to alice's devices and read content to bob/2. bob/1's own read is not an event, so " +
			"bob/1's final state does not show it.", []string{"sync"}, []string{"CLI-004", "DEV-012", "DEV-016"}, two(),
			func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.sentAll("m1")
				b.deliverAll("m1")
				b.receiptAll("alice", "bob/1", "delivered", "m1")
				b.receiptAll("alice", "bob/2", "delivered", "m1")
				b.readOn("bob/1", "m1")
			}},
		{"receipts_reordered", "alice/1 sends m1 and m2 to bob. Receipts overtake the sent transcripts on alice/2 " +
			"and alice/3, and the send-result on alice/1 (pending < delivered: the receipt is kept, DEV-015); bob/2 " +
			"gets the read content for m1 before m1 itself.", []string{"reordered", "sync"},
			[]string{"DEV-015", "DEV-016", "CLI-004"}, two(), func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.message("m2", "alice/1", "bob")
				b.deliver("bob/1", "m1")
				b.deliver("bob/1", "m2")
				b.receipt("alice/2", "bob/1", "delivered", "m1", "m2")
				b.receipt("alice/1", "bob/1", "delivered", "m1", "m2")
				b.receipt("alice/2", "bob/1", "read", "m1")
				b.read("bob/2", "m1")
				b.receipt("alice/3", "bob/1", "read", "m1")
				b.sent("alice/1", "m1")
				b.sent("alice/2", "m2")
				b.sent("alice/1", "m2")
				b.receipt("alice/3", "bob/1", "delivered", "m1", "m2")
				b.deliver("bob/2", "m2")
				b.sent("alice/3", "m2")
				b.receipt("alice/1", "bob/1", "read", "m1")
				b.deliver("bob/2", "m1")
				b.receipt("alice/1", "bob/2", "delivered", "m2")
				b.sent("alice/2", "m1")
				b.receipt("alice/2", "bob/2", "delivered", "m2")
				b.sent("alice/3", "m1")
				b.receipt("alice/3", "bob/2", "delivered", "m2")
			}},
		{"receipts_duplicated", "bob/2 sends m1 to alice; alice/3 reads it. Every event arrives twice, some three " +
			"times (redeliveries and resends): each is applied once (CLI-001) or as a join (DEV-016).",
			[]string{"duplicated", "sync"}, []string{"CLI-001", "DEV-016", "DEV-012"}, two(), func(b *rcBuilder) {
				b.message("m1", "bob/2", "alice")
				for i := 0; i < 2; i++ {
					b.sentAll("m1")
					b.deliverAll("m1")
					b.receiptAll("bob", "alice/1", "delivered", "m1")
					b.receiptAll("bob", "alice/2", "delivered", "m1")
					b.receiptAll("bob", "alice/3", "delivered", "m1")
					b.readOn("alice/3", "m1")
				}
				b.receipt("bob/1", "alice/3", "read", "m1")
				b.read("alice/1", "m1")
				b.sent("bob/2", "m1")
			}},
		{"receipts_partly_lost", "alice/2 sends m1 and m2 to bob. alice/3 never gets the transcript of m2 (so receipts " +
			"for m2 stay kept there), alice/1 never gets bob/2's receipts, bob/2 never gets m2 (its read content for m2 " +
			"marks nothing it received), and the read receipt of m1 reaches only alice/2: alice's devices end in " +
			"different states.", []string{"lost", "sync", "unknown_message"}, []string{"DEV-015", "DEV-016", "DEV-012"},
			two(), func(b *rcBuilder) {
				b.message("m1", "alice/2", "bob")
				b.message("m2", "alice/2", "bob")
				b.sentAll("m1")
				b.sent("alice/1", "m2")
				b.sent("alice/2", "m2")
				b.deliverAll("m1")
				b.deliver("bob/1", "m2")
				b.receiptAll("alice", "bob/1", "delivered", "m1", "m2")
				b.receipt("alice/2", "bob/2", "delivered", "m1")
				b.receipt("alice/3", "bob/2", "delivered", "m1")
				b.receipt("alice/2", "bob/1", "read", "m1", "m2")
				b.read("bob/2", "m1", "m2")
			}},
		{"receipts_read_sync", "Both directions: bob/1 sends m1 and m2 to alice, alice/1 sends m3 to bob. alice/2 reads " +
			"m1 and m2 and tells alice/1 and alice/3 with read content, which send no read receipt (DEV-012); bob/2 reads " +
			"m3 and tells bob/1.", []string{"sync"}, []string{"DEV-012", "DEV-016"}, two(), func(b *rcBuilder) {
			b.message("m1", "bob/1", "alice")
			b.message("m2", "bob/1", "alice")
			b.message("m3", "alice/1", "bob")
			for _, m := range []string{"m1", "m2", "m3"} {
				b.sentAll(m)
				b.deliverAll(m)
			}
			for _, a := range []string{"alice/1", "alice/2", "alice/3"} {
				b.receiptAll("bob", a, "delivered", "m1", "m2")
			}
			b.receiptAll("alice", "bob/1", "delivered", "m3")
			b.readOn("alice/2", "m1", "m2")
			b.receiptAll("alice", "bob/2", "delivered", "m3")
			b.readOn("bob/2", "m3")
		}},
		{"receipts_never_backwards", "alice/1 sends m1 to bob. alice/2 gets bob/1's read receipt, then its delivered " +
			"receipt; alice/1 gets bob/2's played receipt, then its read and delivered receipts; alice/3 gets them all in " +
			"reverse. Statuses stay at the highest (CLI-004).", []string{"backwards", "played"},
			[]string{"CLI-004", "DEV-016"}, two(), func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.sentAll("m1")
				b.deliverAll("m1")
				b.receipt("alice/2", "bob/1", "read", "m1")
				b.receipt("alice/2", "bob/1", "delivered", "m1")
				b.none()
				b.receipt("alice/1", "bob/2", "played", "m1")
				b.receipt("alice/1", "bob/2", "read", "m1")
				b.none()
				b.receipt("alice/1", "bob/2", "delivered", "m1")
				b.none()
				b.receipt("alice/3", "bob/2", "played", "m1")
				b.receipt("alice/3", "bob/2", "read", "m1")
				b.none()
				b.receipt("alice/3", "bob/1", "read", "m1")
				b.receipt("alice/3", "bob/2", "delivered", "m1")
				b.none()
				b.receipt("alice/3", "bob/1", "delivered", "m1")
				b.none()
			}},
		{"receipts_unknown_message", "Receipts and read content about message ids no device ever learns of: x1 (no " +
			"message of the schedule) and m9 (a message of alice/1 whose transcript and message reach no device): kept, " +
			"never applied. m1 is delivered normally.", []string{"unknown_message", "sync"}, []string{"CLI-003", "DEV-015"}, two(),
			func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.message("m9", "alice/1", "bob")
				b.stray("x1")
				b.receipt("alice/2", "bob/1", "read", "x1")
				b.none()
				b.sentAll("m1")
				b.receipt("alice/2", "bob/1", "delivered", "m9")
				b.none()
				b.deliverAll("m1")
				b.receiptAll("alice", "bob/1", "delivered", "m1", "x1")
				b.read("bob/2", "x1", "m9")
				b.none()
				b.receipt("bob/1", "alice/1", "read", "x1")
				b.none()
			}},
		{"receipts_device_not_listed", "alice/1 sends m1 to bob, whose list holds devices 1 and 2. Receipts from bob/3 " +
			"(not in the list: never linked, or unlinked) are dropped (DEV-013), even the one that arrives first.",
			[]string{"not_listed", "played", "reordered"}, []string{"DEV-013"}, two(), func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.receipt("alice/2", "bob/3", "read", "m1")
				b.none()
				b.sentAll("m1")
				b.deliverAll("m1")
				b.receiptAll("alice", "bob/3", "played", "m1")
				b.none(3)
				b.receiptAll("alice", "bob/2", "delivered", "m1")
				b.receipt("alice/1", "bob/9", "read", "m1")
				b.none()
			}},
		{"receipts_other_account", "alice/1 sends m1 to bob and m2 to carol. bob/1's read receipt names m1 and m2: m2 " +
			"was not sent to bob, so that part is ignored (CLI-003), also where it was kept before m2 was known " +
			"(alice/2). carol/1's delivered receipt for m2 applies; its receipt naming m1 does not.",
			[]string{"other_account", "reordered", "played"}, []string{"CLI-003", "DEV-015"},
			map[string][]uint32{"alice": {1, 2, 3}, "bob": {1, 2}, "carol": {1}}, func(b *rcBuilder) {
				b.message("m1", "alice/1", "bob")
				b.message("m2", "alice/1", "carol")
				b.deliverAll("m1")
				b.deliverAll("m2")
				b.receipt("alice/2", "bob/1", "read", "m1", "m2")
				b.sentAll("m1")
				b.sentAll("m2")
				b.receipt("alice/1", "bob/1", "read", "m1", "m2")
				b.receipt("alice/3", "bob/1", "read", "m1", "m2")
				b.receiptAll("alice", "carol/1", "delivered", "m2")
				b.receiptAll("alice", "carol/1", "played", "m1")
				b.none(3)
			}},
		{"receipts_played", "alice/3 sends a voice message m1 to bob. bob/1 stores it (delivered); bob/2 plays it " +
			"before any read receipt: played is above read, and the overall status is played.", []string{"played"},
			[]string{"CLI-004"}, two(), func(b *rcBuilder) {
				b.message("m1", "alice/3", "bob")
				b.sentAll("m1")
				b.deliverAll("m1")
				b.receiptAll("alice", "bob/1", "delivered", "m1")
				b.receiptAll("alice", "bob/2", "played", "m1")
				b.receiptAll("alice", "bob/2", "read", "m1")
				b.none(3)
			}},
	}
	var cases []receiptCase
	for _, s := range specs {
		b := newRCBuilder(s.id, s.devices)
		s.build(b)
		c, err := finishReceipts(b, s.id, s.comment, s.flags, s.reqs)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
		cases = append(cases, c)
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("receipts_generated_%d", i)
		b := newRCBuilder(id, two())
		lost, dup := randomSchedule(b, 4+2*i, true)
		flags := []string{"generated"}
		if reordered(b.events) {
			flags = append(flags, "reordered")
		}
		if dup > 0 {
			flags = append(flags, "duplicated")
		}
		if lost > 0 {
			flags = append(flags, "lost")
		}
		for _, f := range []struct{ flag, kind, receipt string }{{"sync", "read", ""}, {"played", "receipt", "played"}} {
			for _, e := range b.events {
				if e.Kind == f.kind && (f.receipt == "" || e.Receipt == f.receipt) {
					flags = append(flags, f.flag)
					break
				}
			}
		}
		c, err := finishReceipts(b, id, fmt.Sprintf("A schedule of %d messages between alice and bob drawn from the "+
			"case's stream: every message fanned out with its sent events, delivered receipts from the devices that got "+
			"it, reads and plays on some devices with their receipts and read content; then about a tenth of the events "+
			"lost, about a tenth duplicated, and all shuffled.", 4+2*i), flags,
			[]string{"CLI-004", "DEV-012", "DEV-015", "DEV-016"})
		if err != nil {
			return nil, fmt.Errorf("%s: %v", id, err)
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("receipts", receiptNotes, heads); err != nil {
		return nil, err
	}
	return newFile("receipts", receiptDescription, receiptNotes, cases), nil
}

// finishReceipts computes a case's final states and runs its checks.
func finishReceipts(b *rcBuilder, id, comment string, flags, reqs []string) (receiptCase, error) {
	if b.err != nil {
		return receiptCase{}, b.err
	}
	if b.v.err != nil {
		return receiptCase{}, b.v.err
	}
	w := newWorld(b.devices, b.msgs)
	devs, err := foldAll(w, b.events)
	if err != nil {
		return receiptCase{}, err
	}
	final := views(devs)
	if err := checkConvergence(w, b.events, final, newStream("Missive v1 test vectors: receipts: permutations: "+id), 8); err != nil {
		return receiptCase{}, err
	}
	// The events marked as changing nothing change nothing, together or
	// one by one; every other event changes something when it is the only
	// copy of itself.
	var kept []rcEvent
	for i, e := range b.events {
		if !b.noEffect[i] {
			kept = append(kept, e)
		}
	}
	if d, err := foldAll(w, kept); err != nil || !reflect.DeepEqual(views(d), final) {
		return receiptCase{}, fmt.Errorf("the events marked as changing nothing change the final state (%v)", err)
	}
	for i, e := range b.events {
		if !b.noEffect[i] {
			continue
		}
		without := append(append([]rcEvent{}, b.events[:i]...), b.events[i+1:]...)
		if d, err := foldAll(w, without); err != nil || !reflect.DeepEqual(views(d), final) {
			return receiptCase{}, fmt.Errorf("event %d (%s to %s) changes the final state", i, e.Kind, e.To)
		}
	}
	// Flags that the schedule must show.
	has := func(f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	anyKind := func(kind, receipt string) bool {
		for _, e := range b.events {
			if e.Kind == kind && (receipt == "" || e.Receipt == receipt) {
				return true
			}
		}
		return false
	}
	if has("played") != anyKind("receipt", "played") {
		return receiptCase{}, fmt.Errorf("flag played does not match the events")
	}
	if has("reordered") != reordered(b.events) {
		return receiptCase{}, fmt.Errorf("flag reordered does not match the events")
	}
	if has("sync") != anyKind("read", "") {
		return receiptCase{}, fmt.Errorf("flag sync does not match the events")
	}
	notListed := false
	for _, e := range b.events {
		if e.Kind == "receipt" {
			a, _ := parseAddr(e.From)
			notListed = notListed || !w.listed(a)
		}
	}
	if has("not_listed") != notListed {
		return receiptCase{}, fmt.Errorf("flag not_listed does not match the events")
	}
	if has("duplicated") {
		seen, dup := map[string]bool{}, false
		for _, e := range b.events {
			k := fmt.Sprintf("%+v", e)
			dup = dup || seen[k]
			seen[k] = true
		}
		if !dup {
			return receiptCase{}, fmt.Errorf("flag duplicated, but no event repeats")
		}
	}
	devices := map[string][]uint32{}
	for a, ds := range b.devices {
		if !sort.SliceIsSorted(ds, func(i, j int) bool { return ds[i] < ds[j] }) {
			return receiptCase{}, fmt.Errorf("device list of %s is not sorted", a)
		}
		devices[a] = ds
	}
	if flags == nil {
		flags = []string{}
	}
	return receiptCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs},
		Devices: devices, Messages: b.msgs, Events: b.events, Final: final, Expect: "valid"}, nil
}

// randomSchedule draws a schedule between alice (devices 1, 2, 3) and bob
// (devices 1, 2): n messages, each fanned out, with delivered receipts from
// the devices that got it, and for some a read or a play on one device with
// its receipts and read content; then, when mangle is set, events are lost,
// duplicated and shuffled.
func randomSchedule(b *rcBuilder, n int, mangle bool) (lost, duplicated int) {
	u := func(k int) int { return int(b.v.read(1)[0]) % k }
	accounts := []string{"alice", "bob"}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i+1)
		fromAcct := u(2)
		from := accounts[fromAcct]
		to := accounts[1-fromAcct]
		fromDevs := b.devicesOf(from, "")
		b.message(name, fromDevs[u(len(fromDevs))], to)
		b.sentAll(name)
		b.deliverAll(name)
		for _, r := range b.devicesOf(to, "") {
			b.receiptAll(from, r, "delivered", name)
		}
		switch u(4) {
		case 0, 1:
			toDevs := b.devicesOf(to, "")
			b.readOn(toDevs[u(len(toDevs))], name)
		case 2:
			toDevs := b.devicesOf(to, "")
			b.receiptAll(from, toDevs[u(len(toDevs))], "played", name)
		}
	}
	if !mangle {
		return 0, 0
	}
	var out []rcEvent
	for _, e := range b.events {
		switch u(10) {
		case 0: // lost
			lost++
		case 1: // duplicated
			duplicated++
			out = append(out, e, e)
		default:
			out = append(out, e)
		}
	}
	for i := len(out) - 1; i > 0; i-- {
		j := (int(b.v.read(1)[0])<<8 | int(b.v.read(1)[0])) % (i + 1)
		out[i], out[j] = out[j], out[i]
	}
	b.events = out
	b.noEffect = make([]bool, len(out))
	return lost, duplicated
}

// reordered reports whether some device gets a receipt or read content
// about a message before the sent or message event of that message.
func reordered(events []rcEvent) bool {
	known := map[string]bool{} // "to id" pairs whose sent or message event has come
	for i, e := range events {
		if e.Kind == "sent" || e.Kind == "message" {
			known[e.To+" "+hex.EncodeToString(e.Message)] = true
			continue
		}
		for _, f := range events[i+1:] {
			if f.To != e.To || (f.Kind != "sent" && f.Kind != "message") {
				continue
			}
			for _, id := range e.Messages {
				if bytes.Equal(id, f.Message) && !known[e.To+" "+hex.EncodeToString(id)] {
					return true
				}
			}
		}
	}
	return false
}

// receiptsSelfTest checks the fold against the set view, and its
// convergence, on random schedules that are not written to any file.
func receiptsSelfTest() error {
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("self-test %d", i)
		b := newRCBuilder(id, map[string][]uint32{"alice": {1, 2, 3}, "bob": {1, 2}})
		randomSchedule(b, 1+i%7, true)
		// Junk: receipts from an unlisted device and for unknown ids.
		b.stray("x")
		b.receipt("alice/1", "bob/3", "read", "x")
		b.receipt("bob/2", "alice/1", "played", "x")
		if b.err != nil {
			return b.err
		}
		w := newWorld(b.devices, b.msgs)
		devs, err := foldAll(w, b.events)
		if err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		if err := checkConvergence(w, b.events, views(devs), newStream("Missive v1 test vectors: receipts: "+id), 6); err != nil {
			return fmt.Errorf("receipts %s: %v", id, err)
		}
	}
	return nil
}
