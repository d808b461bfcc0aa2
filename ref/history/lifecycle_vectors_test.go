package history

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/wire"
)

type lifeEventJSON struct {
	Op       string      `json:"op"`
	From     string      `json:"from"`
	Type     string      `json:"type"`
	ID       vectest.Hex `json:"id"`
	SentAt   uint64      `json:"sent_at"`
	Text     *string     `json:"text"`
	ViewOnce bool        `json:"view_once"`
	Expire   uint64      `json:"expire_after"`
	Target   vectest.Hex `json:"target"`
	Timer    *uint64     `json:"timer"`
	Messages []struct {
		Account string      `json:"account"`
		ID      vectest.Hex `json:"id"`
	} `json:"messages"`
	Now    uint64 `json:"now"`
	Result string `json:"result"`
	Error  string `json:"error"`
}

type lifeMessageJSON struct {
	From     string      `json:"from"`
	ID       vectest.Hex `json:"id"`
	Text     *string     `json:"text"`
	EditedBy vectest.Hex `json:"edited_by"`
	Deleted  bool        `json:"deleted"`
	Expired  bool        `json:"expired"`
	Opened   *bool       `json:"opened"`
}

type lifeFinal struct {
	Messages []lifeMessageJSON `json:"messages"`
	Pending  []vectest.Hex     `json:"pending"`
	Timer    uint64            `json:"timer"`
	TimerID  vectest.Hex       `json:"timer_id"`
}

type lifeCase struct {
	vectest.Common
	Device string          `json:"device"`
	Clock  uint64          `json:"clock"`
	Events []lifeEventJSON `json:"events"`
	Final  lifeFinal       `json:"final"`
	Orders [][]int         `json:"orders"`
}

var contentTypes = map[string]uint64{"text": wire.ContentText, "media": wire.ContentMedia, "receipt": wire.ContentReceipt,
	"edit": wire.ContentEdit, "delete": wire.ContentDelete, "timer": wire.ContentTimer, "opened": wire.ContentOpened}

// content returns the content of a receive or send event.
func (e *lifeEventJSON) content(t *testing.T, device Address) Content {
	t.Helper()
	typ, ok := contentTypes[e.Type]
	if !ok {
		t.Fatalf("unknown content type %q", e.Type)
	}
	x := Content{From: device, Type: typ, ID: toID(t, e.ID), SentAt: e.SentAt, ViewOnce: e.ViewOnce, Expire: e.Expire}
	if e.Op == "receive" {
		x.From = parseAddress(t, e.From)
	}
	if e.Text != nil {
		x.Text = *e.Text
	}
	if e.Target != nil {
		x.Target = toID(t, e.Target)
	}
	if e.Timer != nil {
		x.Timer = *e.Timer
	}
	for _, m := range e.Messages {
		x.Opened = append(x.Opened, MsgKey{m.Account, toID(t, m.ID)})
	}
	return x
}

// run applies one event and returns its result and error code.
func (e *lifeEventJSON) run(t *testing.T, c *Conversation, device Address) (string, errcode.Code, error) {
	t.Helper()
	switch e.Op {
	case "clock":
		c.Clock(e.Now)
		return "applied", 0, nil
	case "receive":
		r, err := c.Receive(e.content(t, device))
		if err != nil {
			return "dropped", errcode.Of(err), err
		}
		return r.String(), 0, nil
	case "send":
		x := e.content(t, device)
		x.Expire = 0
		sent, r, err := c.Send(x)
		if err != nil {
			return "refused", errcode.Of(err), err
		}
		if (x.Type == wire.ContentText || x.Type == wire.ContentMedia) && sent.Expire != e.Expire {
			return "", 0, fmt.Errorf("sent with expire-after %d, want %d", sent.Expire, e.Expire)
		}
		return r.String(), 0, nil
	}
	t.Fatalf("unknown op %q", e.Op)
	return "", 0, nil
}

func codeName(c errcode.Code) string {
	if c == 0 {
		return ""
	}
	return c.String()
}

// renderFinal writes the state of a conversation as a case's final does.
func renderFinal(c *Conversation) string {
	var b strings.Builder
	keys := slices.SortedFunc(maps.Keys(c.Messages), func(x, y MsgKey) int { return bytes.Compare(x.ID[:], y.ID[:]) })
	for _, k := range keys {
		m := c.Messages[k]
		expired := Expired(m.SentAt, m.Expire, c.Now)
		fmt.Fprintf(&b, "%s %x", k.From, k.ID[:])
		if text, ok := m.Shown(c.Now); ok && (m.Text != "" || m.Edit.ID != nil) {
			fmt.Fprintf(&b, " text %q", text)
			if m.Edit.ID != nil {
				fmt.Fprintf(&b, " edited-by %x", m.Edit.ID)
			}
		}
		fmt.Fprintf(&b, " deleted %v expired %v", m.Deleted, expired)
		if m.Type == wire.ContentMedia && m.ViewOnce {
			fmt.Fprintf(&b, " opened %v", m.Opened)
		}
		b.WriteString("\n")
	}
	var pending []string
	for _, p := range c.Pending {
		pending = append(pending, hex.EncodeToString(p.ID[:]))
	}
	slices.Sort(pending)
	fmt.Fprintf(&b, "pending %v timer %d %x\n", pending, c.Timer.Value, c.Timer.ID)
	return b.String()
}

func (f *lifeFinal) render() string {
	var b strings.Builder
	for i, m := range f.Messages {
		if i > 0 && bytes.Compare(f.Messages[i-1].ID, m.ID) >= 0 {
			b.WriteString("(not sorted by id)\n")
		}
		fmt.Fprintf(&b, "%s %x", m.From, []byte(m.ID))
		if m.Text != nil {
			fmt.Fprintf(&b, " text %q", *m.Text)
			if m.EditedBy != nil {
				fmt.Fprintf(&b, " edited-by %x", []byte(m.EditedBy))
			}
		} else if m.EditedBy != nil {
			b.WriteString(" (edited-by without text)")
		}
		fmt.Fprintf(&b, " deleted %v expired %v", m.Deleted, m.Expired)
		if m.Opened != nil {
			fmt.Fprintf(&b, " opened %v", *m.Opened)
		}
		b.WriteString("\n")
	}
	var pending []string
	for _, p := range f.Pending {
		pending = append(pending, hex.EncodeToString(p))
	}
	if !slices.IsSorted(pending) {
		b.WriteString("(pending not sorted)\n")
	}
	fmt.Fprintf(&b, "pending %v timer %d %x\n", pending, f.Timer, []byte(f.TimerID))
	return b.String()
}

// TestLifecycleVectors runs vectors/v1/lifecycle.json through the
// Conversation model: the result of every event, the final state, and
// the final state of every other order a case lists (LIF-009).
func TestLifecycleVectors(t *testing.T) {
	f := vectest.Load[lifeCase](t, "lifecycle")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			if c.Want(t) != 0 {
				t.Fatalf("a lifecycle case is valid")
			}
			device := parseAddress(t, c.Device)
			conv := NewConversation()
			conv.Now = c.Clock
			for i, e := range c.Events {
				got, code, err := e.run(t, conv, device)
				var want errcode.Code
				if e.Error != "" {
					w, ok := errcode.Parse(e.Error)
					if !ok {
						t.Fatalf("event %d: unknown error %q", i, e.Error)
					}
					want = w
				}
				if got != e.Result || code != want {
					t.Fatalf("event %d (%s %s): got %s %s (%v), want %s %s", i, e.Op, e.Type, got, codeName(code), err, e.Result, e.Error)
				}
			}
			want := c.Final.render()
			if got := renderFinal(conv); got != want {
				t.Fatalf("final state: got\n%s\nwant\n%s", got, want)
			}
			for n, order := range c.Orders {
				seen := map[int]bool{}
				conv := NewConversation()
				conv.Now = c.Clock
				for _, i := range order {
					if i < 0 || i >= len(c.Events) {
						t.Fatalf("order %d: no event %d", n, i)
					}
					e := c.Events[i]
					if seen[i] && e.Op != "receive" {
						t.Fatalf("order %d: event %d (%s) twice", n, i, e.Op)
					}
					seen[i] = true
					if _, _, err := e.run(t, conv, device); err != nil && errcode.Of(err) == 0 {
						t.Fatalf("order %d: event %d: %v", n, i, err)
					}
				}
				if len(seen) != len(c.Events) {
					t.Fatalf("order %d leaves out events", n)
				}
				if got := renderFinal(conv); got != want {
					t.Errorf("order %d %v: final state: got\n%s\nwant\n%s", n, order, got, want)
				}
			}
		})
	}
}

type groupReceiptsCase struct {
	vectest.Common
	Devices  map[string][]uint32 `json:"devices"`
	Versions map[string][]string `json:"versions"`
	Device   string              `json:"device"`
	Messages []struct {
		ID           vectest.Hex `json:"id"`
		GroupVersion uint64      `json:"group_version"`
	} `json:"messages"`
	Events []struct {
		Kind     string        `json:"kind"`
		Message  vectest.Hex   `json:"message"`
		From     string        `json:"from"`
		Receipt  string        `json:"receipt"`
		Messages []vectest.Hex `json:"messages"`
	} `json:"events"`
	Final map[string]struct {
		Statuses map[string]string `json:"statuses"`
		Members  map[string]string `json:"members"`
		Overall  string            `json:"overall"`
	} `json:"final"`
}

// TestGroupReceiptVectors runs vectors/v1/group_receipts.json (GRP-013):
// the statuses of group messages on a device of the sending account.
func TestGroupReceiptVectors(t *testing.T) {
	f := vectest.Load[groupReceiptsCase](t, "group_receipts")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			if c.Want(t) != 0 {
				t.Fatalf("a group receipts case is valid")
			}
			for v, accts := range c.Versions {
				if !slices.IsSorted(accts) || len(slices.Compact(slices.Clone(accts))) != len(accts) {
					t.Fatalf("version %s: members %q, want them sorted, each once (section 9.2)", v, accts)
				}
			}
			own := parseAddress(t, c.Device)
			versions := map[ID]uint64{}
			for _, m := range c.Messages {
				versions[toID(t, m.ID)] = m.GroupVersion
			}
			s := New()
			for i, e := range c.Events {
				switch e.Kind {
				case "sent":
					id := toID(t, e.Message)
					v, ok := versions[id]
					if !ok {
						t.Fatalf("event %d: unknown message %x", i, id)
					}
					accts, ok := c.Versions[fmt.Sprint(v)]
					if !ok {
						t.Fatalf("event %d: no group version %d", i, v)
					}
					members := map[string][]uint32{}
					for _, a := range accts {
						if a != own.Account {
							members[a] = c.Devices[a]
						}
					}
					s.LearnGroupSent(id, members)
				case "receipt":
					from := parseAddress(t, e.From)
					kind, ok := ParseStatus(e.Receipt)
					if !ok || kind < Delivered {
						t.Fatalf("event %d: unknown receipt %q", i, e.Receipt)
					}
					r := Receipt{From: from, Kind: kind}
					for _, m := range e.Messages {
						r.IDs = append(r.IDs, toID(t, m))
					}
					s.ApplyReceipt(r, slices.Contains(c.Devices[from.Account], from.Device))
				default:
					t.Fatalf("event %d: unknown kind %q", i, e.Kind)
				}
			}
			if len(c.Final) == 0 {
				t.Fatal("case has no final state")
			}
			render := func(statuses, members map[string]string, overall string) string {
				var b strings.Builder
				for _, k := range slices.Sorted(maps.Keys(statuses)) {
					fmt.Fprintf(&b, "%s=%s ", k, statuses[k])
				}
				b.WriteString("| ")
				for _, k := range slices.Sorted(maps.Keys(members)) {
					fmt.Fprintf(&b, "%s=%s ", k, members[k])
				}
				return b.String() + "| " + overall
			}
			var got []string
			for id, m := range s.Sent {
				statuses, members := map[string]string{}, map[string]string{}
				for a, devs := range m.Members {
					members[a] = Overall(devs).String()
					for d, st := range devs {
						statuses[Address{a, d}.String()] = st.String()
					}
				}
				got = append(got, hex.EncodeToString(id[:])+": "+render(statuses, members, GroupOverall(m.Members).String()))
			}
			var want []string
			for id, m := range c.Final {
				want = append(want, id+": "+render(m.Statuses, m.Members, m.Overall))
			}
			slices.Sort(got)
			slices.Sort(want)
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Errorf("final state: got\n%s\nwant\n%s", g, w)
			}
		})
	}
}
