package history

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

func lid(b byte) ID {
	var id ID
	id[0] = b
	return id
}

func lidb(b byte) []byte { id := lid(b); return id[:] }

func TestCheckChange(t *testing.T) {
	text := Target{Author: "alice", SentAt: 1_000_000, Type: wire.ContentText}
	once := Target{Author: "alice", SentAt: 1_000_000, Type: wire.ContentMedia, ViewOnce: true}
	for _, tc := range []struct {
		name   string
		target Target
		change Change
		want   error
	}{
		{"edit at the window", text, Change{From: "alice", SentAt: 1_000_000 + EditWindowMillis}, nil},
		{"edit after the window", text, Change{From: "alice", SentAt: 1_000_001 + EditWindowMillis}, errcode.PolicyWindowPassed},
		{"edit before the message", text, Change{From: "alice", SentAt: 999_999}, errcode.PolicyWindowPassed},
		{"edit by another account", text, Change{From: "bob", SentAt: 1_000_001}, errcode.PolicyNotAuthor},
		{"edit of view-once media", once, Change{From: "alice", SentAt: 1_000_001}, errcode.PolicyNotEditable},
		{"delete of view-once media", once, Change{Delete: true, From: "alice", SentAt: 1_000_001}, nil},
		{"edit of a receipt", Target{Author: "alice", SentAt: 1, Type: wire.ContentReceipt}, Change{From: "alice", SentAt: 2}, errcode.PolicyNotEditable},
		{"delete at its window", text, Change{Delete: true, From: "alice", SentAt: 1_000_000 + DeleteWindowMillis}, nil},
		{"delete after its window", text, Change{Delete: true, From: "alice", SentAt: 1_000_001 + DeleteWindowMillis}, errcode.PolicyWindowPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckChange(tc.target, tc.change)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// event is one thing a device receives about a conversation.
type lifeEvent struct {
	msg    *LifeMessage
	target ID
	change Change
	timer  *Register
}

func (c *Conversation) render(now uint64) string {
	var out []string
	for k, m := range c.Messages {
		text, ok := c.Messages[k].Shown(now)
		out = append(out, fmt.Sprintf("%s/%x:%q:%v:%v", k.From, k.ID[:1], text, ok, m.Deleted))
	}
	sort.Strings(out)
	return strings.Join(out, " ") + fmt.Sprintf(" timer=%d", c.Timer.Value)
}

// TestConvergence applies the same events in many orders, and twice: every
// order gives the same state (LIF-009).
func TestLifecycleConvergence(t *testing.T) {
	base := uint64(5_000_000)
	events := []lifeEvent{
		{msg: &LifeMessage{Target: Target{"alice", base, wire.ContentText, false}, ID: lid(1), Text: "hello"}},
		{msg: &LifeMessage{Target: Target{"bob", base + 10, wire.ContentText, false}, ID: lid(2), Text: "hi", Expire: 60}},
		{msg: &LifeMessage{Target: Target{"alice", base + 20, wire.ContentText, false}, ID: lid(3), Text: "typo"}},
		{target: lid(1), change: Change{From: "alice", ID: lid(10), SentAt: base + 1000, Text: "hello!"}},
		{target: lid(1), change: Change{From: "alice", ID: lid(11), SentAt: base + 2000, Text: "hello!!"}},
		{target: lid(3), change: Change{From: "alice", ID: lid(12), SentAt: base + 1000, Text: "fixed"}},
		{target: lid(3), change: Change{Delete: true, From: "alice", ID: lid(13), SentAt: base + 3000}},
		{target: lid(2), change: Change{From: "alice", ID: lid(14), SentAt: base + 3000, Text: "not mine"}},
		{target: lid(1), change: Change{From: "alice", ID: lid(15), SentAt: base + EditWindowMillis + 1, Text: "too late"}},
		{timer: &Register{SentAt: base + 5, ID: lidb(20), Value: 3600}},
		{timer: &Register{SentAt: base + 6, ID: lidb(21), Value: 0}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var want string
	for i := 0; i < 2000; i++ {
		c := NewConversation()
		order := r.Perm(len(events))
		for _, j := range append(order, order[:3]...) { // and a few twice
			e := events[j]
			switch {
			case e.msg != nil:
				c.Add(*e.msg)
			case e.timer != nil:
				c.SetTimer(ID(e.timer.ID), e.timer.SentAt, e.timer.Value)
			default:
				c.Apply(e.target, e.change)
			}
		}
		got := c.render(base + 30_000)
		if i == 0 {
			want = got
			if !strings.Contains(want, `alice/01:"hello!!":true`) || !strings.Contains(want, `alice/03:"":false:true`) ||
				!strings.Contains(want, `bob/02:"hi":true`) || !strings.Contains(want, "timer=0") {
				t.Fatalf("first order: %s", want)
			}
		}
		if got != want {
			t.Fatalf("order %v: got %s, want %s", order, got, want)
		}
		if c.render(base+10+60_000) == got {
			t.Fatalf("bob's message did not expire: %s", c.render(base+10+60_000))
		}
	}
}
