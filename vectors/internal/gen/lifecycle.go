package gen

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"sort"
)

// This file writes lifecycle.json (section 9.2): sequences of content that one
// device receives, sends or sees its clock reach in a conversation, with the
// result of each event and the state the device reaches (chapter 18), and,
// for convergence cases, other orders of the same events that reach the same
// state (LIF-009).

// Constants of section 18.1, in milliseconds of sent-at.
const (
	editWindowMS   = 900 * 1000
	deleteWindowMS = 172800 * 1000
	maxTimer       = 7776000
)

// lifecycleCase is one case of lifecycle.json.
type lifecycleCase struct {
	caseHead
	Device string    `json:"device"`
	Clock  uint64    `json:"clock"`
	Events []lcEvent `json:"events"`
	Final  lcFinal   `json:"final"`
	Orders [][]int   `json:"orders,omitempty"`
	Expect string    `json:"expect"`
}

// lcEvent is one event of a case.
type lcEvent struct {
	Op          string     `json:"op"`
	From        string     `json:"from,omitempty"`
	Type        string     `json:"type,omitempty"`
	ID          hexBytes   `json:"id,omitempty"`
	SentAt      uint64     `json:"sent_at,omitempty"`
	Text        string     `json:"text,omitempty"`
	ViewOnce    bool       `json:"view_once,omitempty"`
	ExpireAfter uint64     `json:"expire_after,omitempty"`
	Target      hexBytes   `json:"target,omitempty"`
	Timer       *uint64    `json:"timer,omitempty"`
	Messages    []lcOpened `json:"messages,omitempty"`
	Now         uint64     `json:"now,omitempty"`
	Result      string     `json:"result"`
	Error       string     `json:"error,omitempty"`
}

// lcOpened is a message named by opened content.
type lcOpened struct {
	Account string   `json:"account"`
	ID      hexBytes `json:"id"`
}

// lcFinal is the device's state after the last event.
type lcFinal struct {
	Messages []lcFinalMsg `json:"messages"`
	Pending  []hexBytes   `json:"pending"`
	Timer    uint64       `json:"timer"`
	TimerID  hexBytes     `json:"timer_id,omitempty"`
}

type lcFinalMsg struct {
	From     string   `json:"from"`
	ID       hexBytes `json:"id"`
	Text     *string  `json:"text,omitempty"`
	EditedBy hexBytes `json:"edited_by,omitempty"`
	Deleted  bool     `json:"deleted"`
	Expired  bool     `json:"expired"`
	Opened   *bool    `json:"opened,omitempty"`
}

var lifecycleNotes = notes{
	{"edit", "edits (LIF-001, LIF-003)"},
	{"delete", "deletes for everyone (LIF-001, LIF-004)"},
	{"window", "a change at, or just beyond, the bound of its window, or before its target"},
	{"pending", "an edit or a delete arrives before its target (LIF-005)"},
	{"timer", "timer content (LIF-006, LIF-007)"},
	{"expiry", "messages with expire-after, and the device's clock (LIF-008)"},
	{"view_once", "view-once media, and opened content (MED-007, MED-008)"},
	{"send", "the device's own user sends content (LIF-002, LIF-007)"},
	{"duplicate", "an event delivered again"},
	{"convergence", "orders lists other orders of the events, which reach the same final state (LIF-009)"},
	{"generated", "a schedule drawn at random from the case's stream"},
}

const lifecycleDescription = "Sequences of events applied by one device, device, of account bob, in its conversation " +
	"with account alice (chapter 18). The device's clock starts at clock (milliseconds). Events, in order: op " +
	"\"receive\" is content of type type (text, media, receipt, edit, delete, timer or opened) with message id id and " +
	"sent-at sent_at, received from the device from (an address: alice's devices, or bob's own other devices, whose " +
	"content arrives as sent transcripts); text is the text of text and edit content and the caption of media (absent: " +
	"none); view_once marks view-once media; expire_after is the content's field 16 (absent: none); target is the " +
	"message id that an edit or a delete changes; timer is the value of timer content; messages are the (account, " +
	"message id) pairs of opened content. Op \"send\" is content the device's own user sends, from device, with the " +
	"same fields; for text, expire_after is what the device must put in field 16 (LIF-007: the conversation's timer, " +
	"absent when it is 0). Op \"clock\": the device's clock reaches now. Each event has result: \"applied\" (the " +
	"event joined the state: an edit or timer content joins its register even when one with a higher (sent-at, " +
	"message id) keeps the value; a clock event always applies); " +
	"\"pending\" (an edit or a delete whose target the device does not know is kept, LIF-005, and checked when the " +
	"target arrives); \"dropped\" with error (LIF-001: the first of policy.not_author, policy.not_editable, " +
	"policy.window_passed); \"refused\" with error (a send that LIF-001 would drop, LIF-002: nothing is sent or " +
	"changed); \"ignored\" (an edit or a delete that passes LIF-001 for a target that is deleted or expired, " +
	"LIF-004, LIF-008); \"expired\" (text or media that arrives when the clock has reached its sent-at plus " +
	"expire-after: stored as expired at once, LIF-008); \"duplicate\" (content whose sender address and message id " +
	"the device has processed, CLI-001). The device finds a target by its message id among the content it holds, " +
	"whatever its sender; LIF-001 then checks, in order, that the target's sender account is the change's sender " +
	"account, that the target is text or media (for an edit, not view-once), and that the change's sent-at minus the " +
	"target's is 0 to EDIT_WINDOW (900000 ms) for an edit, 0 to DELETE_WINDOW (172800000 ms) for a delete. A kept " +
	"change is checked when its target arrives, and dropped or applied then (or ignored when the target arrives " +
	"expired). The text of a message is that of the applied edit with the highest (sent-at, message id), ids " +
	"compared bytewise, or its own; a message expires when the clock reaches sent-at + 1000 * expire-after. Opened " +
	"content marks the messages it names, known yet or not, as opened. final is the state after the last event: " +
	"messages, every text and media message the device holds, sorted by id, with its sender account, its text (absent " +
	"when it has none, and when it is deleted or expired: erased), edited_by (the id of the edit that gives its text; " +
	"absent when none, and when erased), deleted, expired, and opened for view-once media only; pending, the sorted " +
	"ids of the changes still kept; timer, the conversation's timer (the value of the timer content with the highest " +
	"(sent-at, message id), 0 when there is none) and timer_id, that content's id. For a case with orders, each " +
	"order is a list of event indexes (every index at least once, some twice: a redelivery) that, applied in that " +
	"order from the same start, reaches final too (the results of the events then differ). Every case has expect " +
	"\"valid\"; the negative cases are negative in what they deliver."

// lcMsg is a content the device holds.
type lcMsg struct {
	from        rcAddr
	id          []byte
	typ         string
	sentAt      uint64
	text        string
	hasText     bool
	viewOnce    bool
	expireAfter uint64
	deleted     bool
	expired     bool
	winner      *lcEvent // the applied edit with the highest (sent-at, id)
}

// lcDevice folds events (chapter 18).
type lcDevice struct {
	self      rcAddr
	now       uint64
	processed map[string]bool
	held      map[string]*lcMsg // every content held, by id
	pending   map[string][]lcEvent
	timer     *lcEvent
	opened    map[string]bool // "account id"
}

func newLCDevice(self rcAddr, clock uint64) *lcDevice {
	return &lcDevice{self: self, now: clock, processed: map[string]bool{}, held: map[string]*lcMsg{},
		pending: map[string][]lcEvent{}, opened: map[string]bool{}}
}

// later reports whether (sent-at, id) of a is above that of b.
func later(a, b *lcEvent) bool {
	if a.SentAt != b.SentAt {
		return a.SentAt > b.SentAt
	}
	return bytes.Compare(a.ID, b.ID) > 0
}

// check is LIF-001 for a change from account on target.
func lcCheck(e lcEvent, from string, t *lcMsg) *codeError {
	if t.from.account != from {
		return errNotAuthor
	}
	ok := t.typ == "text" || t.typ == "media"
	if e.Type == "edit" && t.viewOnce {
		ok = false
	}
	if !ok {
		return errNotEditable
	}
	window := uint64(editWindowMS)
	if e.Type == "delete" {
		window = deleteWindowMS
	}
	if e.SentAt < t.sentAt || e.SentAt-t.sentAt > window {
		return errWindowPassed
	}
	return nil
}

// change applies an edit or delete that passed LIF-001.
func (d *lcDevice) change(e lcEvent, t *lcMsg) string {
	if t.deleted || t.expired {
		return "ignored"
	}
	if e.Type == "delete" {
		t.deleted = true
		return "applied"
	}
	if t.winner == nil || later(&e, t.winner) {
		c := e
		t.winner = &c
	}
	return "applied"
}

// expire marks the messages whose time has come.
func (d *lcDevice) expire() {
	for _, m := range d.held {
		// sent-at + 1000 * expire-after, compared without wrapping round.
		if m.expireAfter > 0 && d.now >= m.sentAt && (d.now-m.sentAt)/1000 >= m.expireAfter {
			m.expired = true
		}
	}
}

// hold records a content; for text and media it runs the kept changes.
func (d *lcDevice) hold(e lcEvent, from rcAddr) string {
	m := &lcMsg{from: from, id: cloneBytes(e.ID), typ: e.Type, sentAt: e.SentAt, text: e.Text, hasText: e.Text != "",
		viewOnce: e.ViewOnce, expireAfter: e.ExpireAfter}
	d.held[hex.EncodeToString(e.ID)] = m
	result := "applied"
	d.expire()
	if m.expired {
		result = "expired"
	}
	id := hex.EncodeToString(e.ID)
	kept := d.pending[id]
	delete(d.pending, id)
	for _, k := range kept {
		ka, _ := parseAddr(k.From)
		if err := lcCheck(k, ka.account, m); err == nil {
			d.change(k, m)
		}
	}
	return result
}

// apply folds one event and returns its result and error.
func (d *lcDevice) apply(e lcEvent) (string, *codeError, error) {
	switch e.Op {
	case "clock":
		if e.Now < d.now {
			return "", nil, fmt.Errorf("the clock moves back")
		}
		d.now = e.Now
		d.expire()
		return "applied", nil, nil
	case "receive", "send":
	default:
		return "", nil, fmt.Errorf("op %q", e.Op)
	}
	from := d.self
	if e.Op == "receive" {
		a, err := parseAddr(e.From)
		if err != nil {
			return "", nil, err
		}
		from = a
		key := e.From + " " + hex.EncodeToString(e.ID)
		if d.processed[key] {
			return "duplicate", nil, nil
		}
		d.processed[key] = true
	}
	switch e.Type {
	case "text", "media", "receipt":
		if e.Op == "send" {
			d.processed[d.self.String()+" "+hex.EncodeToString(e.ID)] = true
		}
		return d.hold(e, from), nil, nil
	case "timer":
		d.hold(e, from)
		if d.timer == nil || later(&e, d.timer) {
			c := e
			d.timer = &c
		}
		return "applied", nil, nil
	case "opened":
		if e.Op != "receive" || from.account != d.self.account {
			return "", nil, fmt.Errorf("opened content from another account")
		}
		d.hold(e, from)
		for _, o := range e.Messages {
			d.opened[o.Account+" "+hex.EncodeToString(o.ID)] = true
		}
		return "applied", nil, nil
	case "edit", "delete":
		t := d.held[hex.EncodeToString(e.Target)]
		if t == nil {
			if e.Op == "send" {
				return "", nil, fmt.Errorf("a send of a change to an unknown target")
			}
			d.hold(e, from)
			id := hex.EncodeToString(e.Target)
			d.pending[id] = append(d.pending[id], e)
			return "pending", nil, nil
		}
		if err := lcCheck(e, from.account, t); err != nil {
			if e.Op == "send" {
				return "refused", err, nil
			}
			d.hold(e, from)
			return "dropped", err, nil
		}
		if e.Op == "send" {
			d.processed[d.self.String()+" "+hex.EncodeToString(e.ID)] = true
		}
		d.hold(e, from)
		return d.change(e, t), nil, nil
	}
	return "", nil, fmt.Errorf("type %q", e.Type)
}

// view returns the final state of section 9.2.
func (d *lcDevice) view() lcFinal {
	f := lcFinal{Messages: []lcFinalMsg{}, Pending: []hexBytes{}}
	var ids []string
	for id, m := range d.held {
		if m.typ == "text" || m.typ == "media" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := d.held[id]
		fm := lcFinalMsg{From: m.from.account, ID: m.id, Deleted: m.deleted, Expired: m.expired}
		if !m.deleted && !m.expired {
			if m.winner != nil {
				t := m.winner.Text
				fm.Text, fm.EditedBy = &t, m.winner.ID
			} else if m.hasText {
				t := m.text
				fm.Text = &t
			}
		}
		if m.viewOnce {
			o := d.opened[m.from.account+" "+id]
			fm.Opened = &o
		}
		f.Messages = append(f.Messages, fm)
	}
	var ps []string
	for _, ks := range d.pending {
		for _, k := range ks {
			ps = append(ps, hex.EncodeToString(k.ID))
		}
	}
	sort.Strings(ps)
	for _, p := range ps {
		f.Pending = append(f.Pending, mustHex(p))
	}
	if d.timer != nil {
		f.Timer, f.TimerID = *d.timer.Timer, d.timer.ID
	}
	return f
}

// foldLifecycle applies events in order and returns the final state and
// each event with its result.
func foldLifecycle(self rcAddr, clock uint64, events []lcEvent) (lcFinal, []lcEvent, error) {
	d := newLCDevice(self, clock)
	var out []lcEvent
	for i, e := range events {
		r, code, err := d.apply(e)
		if err != nil {
			return lcFinal{}, nil, fmt.Errorf("event %d: %v", i, err)
		}
		e.Result, e.Error = r, ""
		if code != nil {
			e.Error = code.name
		}
		if e.Op == "send" && e.Type == "text" {
			e.ExpireAfter = 0
			if d.timer != nil {
				e.ExpireAfter = *d.timer.Timer
			}
			d.held[hex.EncodeToString(e.ID)].expireAfter = e.ExpireAfter
		}
		out = append(out, e)
	}
	return d.view(), out, nil
}

// lcBuilder writes one case.
type lcBuilder struct {
	v      *vb
	clock  uint64
	t0     uint64
	events []lcEvent
	ids    map[string][]byte
	orders [][]int
}

func (b *lcBuilder) id(name string) []byte {
	if id, ok := b.ids[name]; ok {
		return id
	}
	id := b.v.messageID()
	b.ids[name] = id
	return id
}

// at is t0 plus ms milliseconds.
func (b *lcBuilder) at(ms int64) uint64 { return uint64(int64(b.t0) + ms) }

func (b *lcBuilder) text(name, from string, ms int64, text string) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "text", ID: b.id(name), SentAt: b.at(ms), Text: text})
}

func (b *lcBuilder) textExpiring(name, from string, ms int64, text string, e uint64) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "text", ID: b.id(name), SentAt: b.at(ms), Text: text,
		ExpireAfter: e})
}

func (b *lcBuilder) media(name, from string, ms int64, caption string, viewOnce bool) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "media", ID: b.id(name), SentAt: b.at(ms),
		Text: caption, ViewOnce: viewOnce})
}

func (b *lcBuilder) receipt(name, from string, ms int64) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "receipt", ID: b.id(name), SentAt: b.at(ms)})
}

func (b *lcBuilder) edit(name, from string, ms int64, target, text string) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "edit", ID: b.id(name), SentAt: b.at(ms),
		Text: text, Target: b.id(target)})
}

func (b *lcBuilder) del(name, from string, ms int64, target string) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "delete", ID: b.id(name), SentAt: b.at(ms),
		Target: b.id(target)})
}

func (b *lcBuilder) timer(name, from string, ms int64, value uint64) {
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "timer", ID: b.id(name), SentAt: b.at(ms),
		Timer: &value})
}

func (b *lcBuilder) opened(name, from string, ms int64, targets ...string) {
	var os []lcOpened
	for _, t := range targets {
		os = append(os, lcOpened{"alice", b.id(t)})
	}
	b.events = append(b.events, lcEvent{Op: "receive", From: from, Type: "opened", ID: b.id(name), SentAt: b.at(ms),
		Messages: os})
}

func (b *lcBuilder) sendText(name string, ms int64, text string) {
	b.events = append(b.events, lcEvent{Op: "send", Type: "text", ID: b.id(name), SentAt: b.at(ms), Text: text})
}

func (b *lcBuilder) sendEdit(name string, ms int64, target, text string) {
	b.events = append(b.events, lcEvent{Op: "send", Type: "edit", ID: b.id(name), SentAt: b.at(ms), Text: text,
		Target: b.id(target)})
}

func (b *lcBuilder) sendDelete(name string, ms int64, target string) {
	b.events = append(b.events, lcEvent{Op: "send", Type: "delete", ID: b.id(name), SentAt: b.at(ms), Target: b.id(target)})
}

func (b *lcBuilder) sendTimer(name string, ms int64, value uint64) {
	b.events = append(b.events, lcEvent{Op: "send", Type: "timer", ID: b.id(name), SentAt: b.at(ms), Timer: &value})
}

func (b *lcBuilder) clockAt(ms int64) {
	b.events = append(b.events, lcEvent{Op: "clock", Now: b.at(ms)})
}

// again repeats event i.
func (b *lcBuilder) again(i int) { b.events = append(b.events, b.events[i]) }

// permutations lists every order of the events (for up to 5 events), or
// n random orders with duplicates.
func (b *lcBuilder) permutations(all bool, n int) {
	k := len(b.events)
	if all {
		idx := make([]int, k)
		for i := range idx {
			idx[i] = i
		}
		var rec func(int)
		rec = func(i int) {
			if i == k {
				b.orders = append(b.orders, append([]int{}, idx...))
				return
			}
			for j := i; j < k; j++ {
				idx[i], idx[j] = idx[j], idx[i]
				rec(i + 1)
				idx[i], idx[j] = idx[j], idx[i]
			}
		}
		rec(0)
		return
	}
	for r := 0; r < n; r++ {
		var o []int
		for i := 0; i < k; i++ {
			o = append(o, i)
		}
		for i := 0; i < k/3+1; i++ {
			if e := b.events[int(b.v.read(1)[0])%k]; e.Op == "receive" {
				o = append(o, int(b.v.read(1)[0])%k)
			}
		}
		for i := len(o) - 1; i > 0; i-- {
			j := (int(b.v.read(1)[0])<<8 | int(b.v.read(1)[0])) % (i + 1)
			o[i], o[j] = o[j], o[i]
		}
		b.orders = append(b.orders, o)
	}
}

func genLifecycle() (any, error) {
	self := rcAddr{"bob", 1}
	type spec struct {
		id, comment string
		flags, reqs []string
		build       func(b *lcBuilder)
	}
	const min = 60_000
	specs := []spec{
		{"lifecycle_edit", "alice/1 sends m1; alice/2, her other device, edits it a minute later.", []string{"edit"},
			[]string{"LIF-001", "LIF-003"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "See you at 7?")
				b.edit("e1", "alice/2", min, "m1", "See you at 8?")
			}},
		{"lifecycle_edit_at_window", "An edit exactly EDIT_WINDOW (900000 ms) after its target: applied.",
			[]string{"edit", "window"}, []string{"LIF-001"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "lunch at noon")
				b.edit("e1", "alice/1", editWindowMS, "m1", "lunch at one")
			}},
		{"lifecycle_edit_after_window", "An edit EDIT_WINDOW + 1 ms after its target: dropped.",
			[]string{"edit", "window"}, []string{"LIF-001"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "lunch at noon")
				b.edit("e1", "alice/1", editWindowMS+1, "m1", "lunch at one")
			}},
		{"lifecycle_edit_before_target", "An edit whose sent-at is 1 ms before its target's: dropped.",
			[]string{"edit", "window"}, []string{"LIF-001"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "lunch at noon")
				b.edit("e1", "alice/1", -1, "m1", "lunch at one")
			}},
		{"lifecycle_edit_not_author", "bob/2 (the device's own account) sends m1; alice edits it: dropped. alice sends " +
			"m2; bob/2 edits it: dropped.", []string{"edit"}, []string{"LIF-001"}, func(b *lcBuilder) {
			b.text("m1", "bob/2", 0, "my words")
			b.edit("e1", "alice/1", min, "m1", "alice's words")
			b.text("m2", "alice/1", 2*min, "her words")
			b.edit("e2", "bob/2", 3*min, "m2", "bob's words")
		}},
		{"lifecycle_edit_not_editable", "alice edits, within the window, content that is not text or media, and " +
			"view-once media: a receipt, a delete, a timer, an edit, and view-once media. Each edit is dropped.",
			[]string{"edit", "view_once"}, []string{"LIF-001", "MED-008"}, func(b *lcBuilder) {
				b.text("m0", "alice/1", 0, "to be deleted")
				b.receipt("r1", "alice/1", 1000)
				b.del("d1", "alice/1", 2000, "m0")
				b.timer("t1", "alice/1", 3000, 3600)
				b.text("m2", "alice/1", 4000, "first")
				b.edit("e2", "alice/1", 5000, "m2", "second")
				b.media("v1", "alice/1", 6000, "", true)
				b.edit("x1", "alice/1", 10_000, "r1", "edited receipt")
				b.edit("x2", "alice/1", 10_000, "d1", "edited delete")
				b.edit("x3", "alice/1", 10_000, "t1", "edited timer")
				b.edit("x4", "alice/1", 10_000, "e2", "edited edit")
				b.edit("x5", "alice/1", 10_000, "v1", "edited view-once")
			}},
		{"lifecycle_delete", "alice deletes her message m1 an hour after sending it: its text is erased.",
			[]string{"delete"}, []string{"LIF-001", "LIF-004"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "oops, wrong chat")
				b.del("d1", "alice/2", 60*min, "m1")
			}},
		{"lifecycle_delete_at_window", "A delete exactly DELETE_WINDOW (172800000 ms) after its target: applied.",
			[]string{"delete", "window"}, []string{"LIF-001", "LIF-004"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "old news")
				b.del("d1", "alice/1", deleteWindowMS, "m1")
			}},
		{"lifecycle_delete_after_window", "A delete DELETE_WINDOW + 1 ms after its target: dropped.",
			[]string{"delete", "window"}, []string{"LIF-001"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "old news")
				b.del("d1", "alice/1", deleteWindowMS+1, "m1")
			}},
		{"lifecycle_delete_not_editable", "alice deletes content that is not a message: a receipt, a timer, an edit, " +
			"a delete. Each is dropped. Her delete of view-once media applies.", []string{"delete", "view_once"},
			[]string{"LIF-001"}, func(b *lcBuilder) {
				b.text("m0", "alice/1", 0, "hello")
				b.receipt("r1", "alice/1", 1000)
				b.timer("t1", "alice/1", 2000, 60)
				b.edit("e1", "alice/1", 3000, "m0", "hello!")
				b.media("v1", "alice/1", 4000, "", true)
				b.del("d1", "alice/1", 5000, "v1")
				b.del("x1", "alice/1", 10_000, "r1")
				b.del("x2", "alice/1", 10_000, "t1")
				b.del("x3", "alice/1", 10_000, "e1")
				b.del("x4", "alice/1", 10_000, "d1")
			}},
		{"lifecycle_delete_then_edit", "m1, then alice's delete, then an edit she sent before the delete: the delete " +
			"wins, in every order.", []string{"edit", "delete", "convergence"},
			[]string{"LIF-004", "LIF-005", "LIF-009"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "first draft")
				b.del("d1", "alice/1", 2*min, "m1")
				b.edit("e1", "alice/2", min, "m1", "second draft")
				b.permutations(true, 0)
			}},
		{"lifecycle_edit_before_message", "alice's edit overtakes its message (it was sent from her other device): " +
			"kept, then applied when m1 arrives; both orders give the edited text.", []string{"edit", "pending",
			"convergence"}, []string{"LIF-005", "LIF-003", "LIF-009"}, func(b *lcBuilder) {
			b.edit("e1", "alice/2", min, "m1", "meet at the station")
			b.text("m1", "alice/1", 0, "meet at the statoin")
			b.permutations(true, 0)
		}},
		{"lifecycle_delete_before_message", "alice's delete overtakes its message: kept, applied when m1 arrives.",
			[]string{"delete", "pending", "convergence"}, []string{"LIF-005", "LIF-004", "LIF-009"}, func(b *lcBuilder) {
				b.del("d1", "alice/2", min, "m1")
				b.text("m1", "alice/1", 0, "never mind")
				b.permutations(true, 0)
			}},
		{"lifecycle_pending_dropped", "Two edits arrive before their target m1 and are kept: one sent EDIT_WINDOW + 1 " +
			"ms after m1, one by bob/2 (not m1's author). When m1 arrives, LIF-001 drops both; a third change, for a " +
			"message that never arrives, stays kept.", []string{"edit", "pending", "window"},
			[]string{"LIF-005", "LIF-001"}, func(b *lcBuilder) {
				b.edit("e1", "alice/1", editWindowMS+1, "m1", "too late")
				b.edit("e2", "bob/2", min, "m1", "not mine")
				b.del("d9", "alice/1", min, "m9")
				b.text("m1", "alice/1", 0, "original")
			}},
		{"lifecycle_two_edits", "Two edits of m1, a minute apart: the later sent-at wins, in every order of arrival.",
			[]string{"edit", "convergence"}, []string{"LIF-003", "LIF-009"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "v1")
				b.edit("e2", "alice/2", 2*min, "m1", "v3")
				b.edit("e1", "alice/1", min, "m1", "v2")
				b.permutations(true, 0)
			}},
		{"lifecycle_two_edits_same_time", "Two edits of m1 with the same sent-at, from alice's two devices: the one " +
			"with the higher message id (bytewise) wins, in every order.", []string{"edit", "convergence"},
			[]string{"LIF-003", "LIF-009"}, func(b *lcBuilder) {
				b.text("m1", "alice/1", 0, "v1")
				b.edit("e1", "alice/1", min, "m1", "from the phone")
				b.edit("e2", "alice/2", min, "m1", "from the laptop")
				b.permutations(true, 0)
			}},
		{"lifecycle_duplicates", "m1, its edit and its delete each arrive twice (redeliveries): a second copy is a " +
			"duplicate, and any order with copies reaches the same state.", []string{"edit", "delete", "duplicate",
			"convergence"}, []string{"LIF-009", "CLI-001"}, func(b *lcBuilder) {
			b.text("m1", "alice/1", 0, "hello")
			b.edit("e1", "alice/1", min, "m1", "hello!")
			b.again(1)
			b.again(0)
			b.text("m2", "alice/1", 2*min, "bye")
			b.del("d2", "alice/1", 3*min, "m2")
			b.again(5)
			b.permutations(false, 8)
		}},
		{"lifecycle_timer", "alice sets the timer to an hour, then bob/2 turns it off later: the later (sent-at, id) " +
			"wins, in both orders.", []string{"timer", "convergence"}, []string{"LIF-006", "LIF-009"}, func(b *lcBuilder) {
			b.timer("t1", "alice/1", 0, 3600)
			b.timer("t2", "bob/2", min, 0)
			b.permutations(true, 0)
		}},
		{"lifecycle_timer_same_time", "Two timer contents with the same sent-at: the higher message id wins.",
			[]string{"timer", "convergence"}, []string{"LIF-006", "LIF-009"}, func(b *lcBuilder) {
				b.timer("t1", "alice/1", min, 86400)
				b.timer("t2", "bob/2", min, 600)
				b.timer("t0", "alice/2", 0, maxTimer)
				b.permutations(true, 0)
			}},
		{"lifecycle_timer_send", "The device's user sends texts while the timer changes: each carries the timer " +
			"current when it is sent (none when it is 0), including after a timer content that arrives late and loses " +
			"to the current one.", []string{"timer", "send", "expiry"}, []string{"LIF-007", "LIF-006"},
			func(b *lcBuilder) {
				b.sendText("s1", 0, "no timer yet")
				b.timer("t1", "alice/1", min, 86400)
				b.sendText("s2", 2*min, "a day")
				b.sendTimer("t2", 3*min, 600)
				b.sendText("s3", 4*min, "ten minutes")
				b.timer("t0", "alice/2", 30_000, 0)
				b.sendText("s4", 5*min, "still ten minutes")
				b.timer("t3", "alice/1", 6*min, 0)
				b.sendText("s5", 7*min, "off again")
			}},
		{"lifecycle_expiry_before", "m1 with expire-after 60; the clock reaches its sent-at + 59999 ms: still shown.",
			[]string{"expiry"}, []string{"LIF-008"}, func(b *lcBuilder) {
				b.textExpiring("m1", "alice/1", 0, "gone in a minute", 60)
				b.clockAt(59_999)
			}},
		{"lifecycle_expiry_exact", "m1 with expire-after 60; the clock reaches exactly its sent-at + 60000 ms: " +
			"erased, with its edit.", []string{"expiry", "edit"}, []string{"LIF-008"}, func(b *lcBuilder) {
			b.textExpiring("m1", "alice/1", 0, "gone in a minute", 60)
			b.edit("e1", "alice/1", 1000, "m1", "gone in a minute!")
			b.clockAt(60_000)
		}},
		{"lifecycle_arrives_expired", "The clock is past m1's sent-at + expire-after (1 hour) when m1 arrives: stored " +
			"as expired at once, never shown.", []string{"expiry"}, []string{"LIF-008"}, func(b *lcBuilder) {
			b.clockAt(3_600_000)
			b.textExpiring("m1", "alice/1", 0, "too late", 3600)
		}},
		{"lifecycle_expiry_far_sent_at", "m1 with expire-after 60 and a sent-at 1 s before the largest timestamp (a " +
			"sender's clock far ahead); the clock an hour on: still shown. Its sent-at + 60000 ms passes every clock, " +
			"and is not computed wrapping round to the past.", []string{"expiry"}, []string{"LIF-008"}, func(b *lcBuilder) {
			b.events = append(b.events, lcEvent{Op: "receive", From: "alice/1", Type: "text", ID: b.id("m1"),
				SentAt: math.MaxUint64 - 1000, Text: "from the far future", ExpireAfter: 60})
			b.clockAt(3_600_000)
		}},
		{"lifecycle_change_after_expiry", "m1 (expire-after 60) expires; then an edit and a delete alice sent before " +
			"it expired arrive: ignored.", []string{"expiry", "edit", "delete"}, []string{"LIF-008", "LIF-001"},
			func(b *lcBuilder) {
				b.textExpiring("m1", "alice/1", 0, "short-lived", 60)
				b.clockAt(61_000)
				b.edit("e1", "alice/1", 10_000, "m1", "short-lived!")
				b.del("d1", "alice/1", 20_000, "m1")
			}},
		{"lifecycle_expiring_media_and_timer", "alice sets a 10-minute timer and sends media that carries it; the " +
			"timer content does not change when earlier messages expire: m0, sent before with no expire-after, stays.",
			[]string{"expiry", "timer"}, []string{"LIF-008", "LIF-006"}, func(b *lcBuilder) {
				b.text("m0", "alice/1", 0, "before the timer")
				b.timer("t1", "alice/1", min, 600)
				b.events = append(b.events, lcEvent{Op: "receive", From: "alice/1", Type: "media", ID: b.id("m1"),
					SentAt: b.at(2 * min), Text: "sunset", ExpireAfter: 600})
				b.clockAt(12 * min)
			}},
		{"lifecycle_opened", "View-once media from alice, opened on bob/2, whose opened content reaches the device: " +
			"it holds the media as opened, in both orders.", []string{"view_once", "convergence"},
			[]string{"LIF-009", "MED-007"}, func(b *lcBuilder) {
				b.media("v1", "alice/1", 0, "", true)
				b.opened("o1", "bob/2", min, "v1")
				b.permutations(true, 0)
			}},
		{"lifecycle_send_changes", "The device's user edits and deletes: an edit of its own message beyond the " +
			"window, an edit of alice's message and a delete of its own timer content are refused (LIF-002); an edit " +
			"within the window and a delete of its own message are sent.", []string{"send", "edit", "delete", "window",
			"timer"}, []string{"LIF-002", "LIF-001"}, func(b *lcBuilder) {
			b.sendText("s1", 0, "draft")
			b.sendEdit("x1", editWindowMS+1, "s1", "too late to fix")
			b.sendEdit("x2", min, "s1", "final")
			b.text("m1", "alice/1", 2*min, "hers")
			b.sendEdit("x3", 3*min, "m1", "mine now")
			b.sendTimer("t1", 4*min, 3600)
			b.sendDelete("x4", 5*min, "t1")
			b.sendText("s2", 6*min, "second")
			b.sendDelete("x5", 7*min, "s2")
		}},
	}
	var cases []lifecycleCase
	for _, s := range specs {
		b := &lcBuilder{v: newVB("Missive v1 test vectors: lifecycle: " + s.id), ids: map[string][]byte{}}
		b.t0 = wireT0 + 3*86_400_000
		b.clock = b.t0
		s.build(b)
		c, err := finishLifecycle(b, self, s.id, s.comment, s.flags, s.reqs)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
		cases = append(cases, c)
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("lifecycle_generated_%d", i)
		b := &lcBuilder{v: newVB("Missive v1 test vectors: lifecycle: " + id), ids: map[string][]byte{}}
		b.t0 = wireT0 + 3*86_400_000
		b.clock = b.t0
		randomLifecycle(b, 3+i)
		b.permutations(false, 6)
		c, err := finishLifecycle(b, self, id, fmt.Sprintf("A schedule drawn from the case's stream: %d messages "+
			"from alice's devices and bob/2, edits and deletes of them (some beyond their window, some by the other "+
			"account, some of messages that never arrive), timer contents and redeliveries, delivered in a shuffled "+
			"order.", 3+i), []string{"generated", "convergence"}, []string{"LIF-001", "LIF-003", "LIF-004", "LIF-005",
			"LIF-006", "LIF-009"})
		if err != nil {
			return nil, fmt.Errorf("%s: %v", id, err)
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("lifecycle", lifecycleNotes, heads); err != nil {
		return nil, err
	}
	return newFile("lifecycle", lifecycleDescription, lifecycleNotes, cases), nil
}

// randomLifecycle draws a schedule of n messages with changes and timers,
// then shuffles it with some redeliveries.
func randomLifecycle(b *lcBuilder, n int) {
	u := func(k int) int { return int(b.v.read(1)[0]) % k }
	senders := []string{"alice/1", "alice/2", "bob/2"}
	for i := 0; i < n; i++ {
		m := fmt.Sprintf("m%d", i)
		at := int64(i) * 5 * 60_000
		from := senders[u(3)]
		b.text(m, from, at, fmt.Sprintf("message %d", i))
		for j := 0; j < 1+u(3); j++ {
			by := from
			if u(5) == 0 {
				by = senders[u(3)]
			}
			late := int64(u(4)) * 300_001
			switch u(3) {
			case 0, 1:
				b.edit(fmt.Sprintf("e%d.%d", i, j), by, at+late, m, fmt.Sprintf("message %d, edit %d", i, j))
			default:
				b.del(fmt.Sprintf("d%d.%d", i, j), by, at+late*200, m)
			}
		}
		if u(3) == 0 {
			b.timer(fmt.Sprintf("t%d", i), senders[u(3)], at+int64(u(4))*60_000, uint64(u(4))*3600)
		}
	}
	b.del("dx", "alice/1", 1000, "never")
	var out []lcEvent
	for _, e := range b.events {
		out = append(out, e)
		if u(6) == 0 {
			out = append(out, e)
		}
	}
	for i := len(out) - 1; i > 0; i-- {
		j := (int(b.v.read(1)[0])<<8 | int(b.v.read(1)[0])) % (i + 1)
		out[i], out[j] = out[j], out[i]
	}
	b.events = out
}

// finishLifecycle folds a case's events and checks its orders.
func finishLifecycle(b *lcBuilder, self rcAddr, id, comment string, flags, reqs []string) (lifecycleCase, error) {
	if b.v.err != nil {
		return lifecycleCase{}, b.v.err
	}
	final, events, err := foldLifecycle(self, b.clock, b.events)
	if err != nil {
		return lifecycleCase{}, err
	}
	c := lifecycleCase{caseHead: caseHead{ID: id, Comment: comment, Flags: flags, Requirements: reqs},
		Device: self.String(), Clock: b.clock, Events: events, Final: final, Orders: b.orders, Expect: "valid"}
	if err := checkLifecycleCase(&c, self); err != nil {
		return lifecycleCase{}, err
	}
	// More orders than the case lists converge too.
	if c.Orders != nil {
		st := newStream("Missive v1 test vectors: lifecycle: permutations: " + id)
		for r := 0; r < 20; r++ {
			var o []int
			for i := range events {
				o = append(o, i)
				if st.read(1)[0]%4 == 0 && events[i].Op == "receive" {
					o = append(o, i)
				}
			}
			for i := len(o) - 1; i > 0; i-- {
				j := int(st.read(1)[0]) % (i + 1)
				o[i], o[j] = o[j], o[i]
			}
			if err := checkOrder(&c, self, o); err != nil {
				return lifecycleCase{}, fmt.Errorf("a random order: %v", err)
			}
		}
	}
	return c, nil
}

// checkOrder folds the events in order o and compares the final state.
func checkOrder(c *lifecycleCase, self rcAddr, o []int) error {
	var evs []lcEvent
	for _, i := range o {
		evs = append(evs, c.Events[i])
	}
	f, _, err := foldLifecycle(self, c.Clock, evs)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(f, c.Final) {
		return fmt.Errorf("order %v reaches another state", o)
	}
	return nil
}

// checkLifecycleCase checks a case: folding its events gives their
// results and final, its orders reach final, and its flags match.
func checkLifecycleCase(c *lifecycleCase, self rcAddr) error {
	f, evs, err := foldLifecycle(self, c.Clock, c.Events)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(f, c.Final) || !reflect.DeepEqual(evs, c.Events) {
		return fmt.Errorf("folding the events again gives another result")
	}
	for _, o := range c.Orders {
		seen := map[int]bool{}
		for _, i := range o {
			if i < 0 || i >= len(c.Events) {
				return fmt.Errorf("order %v: index out of range", o)
			}
			if seen[i] && c.Events[i].Op != "receive" {
				return fmt.Errorf("order %v: a repeated event that is not received content", o)
			}
			seen[i] = true
		}
		if len(seen) != len(c.Events) {
			return fmt.Errorf("order %v: not every event", o)
		}
		if err := checkOrder(c, self, o); err != nil {
			return err
		}
	}
	has := func(flag string) bool {
		for _, x := range c.Flags {
			if x == flag {
				return true
			}
		}
		return false
	}
	any := func(f func(e lcEvent) bool) bool {
		for _, e := range c.Events {
			if f(e) {
				return true
			}
		}
		return false
	}
	if has("convergence") != (c.Orders != nil) {
		return fmt.Errorf("the convergence flag does not match orders")
	}
	if c.Orders != nil && any(func(e lcEvent) bool { return e.Op != "receive" }) {
		return fmt.Errorf("a convergence case with events other than received content")
	}
	if has("send") != any(func(e lcEvent) bool { return e.Op == "send" }) {
		return fmt.Errorf("the send flag does not match the events")
	}
	if has("pending") != any(func(e lcEvent) bool { return e.Result == "pending" }) && !has("generated") {
		return fmt.Errorf("the pending flag does not match the events")
	}
	if has("duplicate") && !any(func(e lcEvent) bool { return e.Result == "duplicate" }) {
		return fmt.Errorf("the duplicate flag, but no duplicate")
	}
	if has("view_once") != any(func(e lcEvent) bool { return e.ViewOnce || e.Type == "opened" }) {
		return fmt.Errorf("the view_once flag does not match the events")
	}
	if has("timer") && !any(func(e lcEvent) bool { return e.Type == "timer" }) {
		return fmt.Errorf("the timer flag, but no timer content")
	}
	if has("expiry") && !any(func(e lcEvent) bool { return e.ExpireAfter > 0 }) {
		return fmt.Errorf("the expiry flag, but no expire-after")
	}
	for i, e := range c.Events {
		if (e.Error != "") != (e.Result == "dropped" || e.Result == "refused") {
			return fmt.Errorf("event %d: result %s with error %q", i, e.Result, e.Error)
		}
	}
	return nil
}
