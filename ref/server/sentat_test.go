package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestSentAtAhead checks SRV-023: an envelope or a group envelope whose
// sent-at is later than the server's clock plus MAX_SENT_AHEAD is refused
// with policy.sent_at_ahead and stores nothing; one at the bound, or in
// the past, is accepted; the check comes before the quota's (check 7 of
// section 13.4 and check 8 of GRP-009 before the quota's).
func TestSentAtAhead(t *testing.T) {
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.Quota = store.Quota{Entries: 3} })
	ctx := context.Background()
	a1 := e.member("alice")
	a2 := a1.link(true)
	b1 := e.member("bob")
	b1.close() // bob's queue holds what is accepted
	now := func() uint64 { return uint64(e.clock.Now().UnixMilli()) }
	ahead := uint64(server.MaxSentAhead / time.Millisecond)
	entries := func() int {
		t.Helper()
		n, err := e.st.TotalEntries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, c := range []struct {
		name   string
		sentAt func() uint64
		want   errcode.Code
	}{
		{"now", now, 0},
		{"at the bound", func() uint64 { return now() + ahead }, 0},
		{"a millisecond beyond", func() uint64 { return now() + ahead + 1 }, errcode.PolicySentAtAhead},
		{"years ahead", func() uint64 { return now() + 10*365*24*3600*1000 }, errcode.PolicySentAtAhead},
		{"the largest timestamp", func() uint64 { return 1<<64 - 1 }, errcode.PolicySentAtAhead},
		{"a year ago", func() uint64 { return now() - 365*24*3600*1000 }, 0},
	} {
		before := entries()
		env := numbered(a1, b1, i, wire.PriorityNormal, 1)
		env.SentAt = c.sentAt()
		code, _ := a1.try(wire.FrameSend, env, new(wire.SendResult))
		if code != c.want {
			t.Errorf("%s: got %v, want %v", c.name, code, c.want)
		}
		if stored := entries() - before; (c.want == 0) != (stored == 1) {
			t.Errorf("%s: %d entries stored, want %d", c.name, stored, map[bool]int{true: 1, false: 0}[c.want == 0])
		}
	}
	// bob's queue is full (3 entries): an envelope both ahead and over the
	// quota gets the sent-at's code, which comes first.
	env := numbered(a1, b1, 99, wire.PriorityNormal, 1)
	env.SentAt = now() + 2*ahead
	if code, _ := a1.try(wire.FrameSend, env, new(wire.SendResult)); code != errcode.PolicySentAtAhead {
		t.Errorf("ahead and over the quota: got %v, want %v", code, errcode.PolicySentAtAhead)
	}

	// A group envelope: alice's second device is the only group device
	// besides bob's full queue, so check with a group of alice alone.
	g := groupOf(t, 8, a1)
	dg := digest(t, g, wire.GroupDevices{{Account: "alice", Devices: []uint64{2}}})
	ge := a1.envelope(g, 1, dg, 1)
	ge.SentAt = now() + ahead + 1
	if code, _ := a1.try(wire.FrameSendGroup, ge, new(wire.SendResult)); code != errcode.PolicySentAtAhead {
		t.Errorf("group envelope ahead: got %v, want %v", code, errcode.PolicySentAtAhead)
	}
	a2.noDelivery(200 * time.Millisecond)
	ge.SentAt = now() + ahead
	a1.do(wire.FrameSendGroup, ge, new(wire.SendResult))
	if dl := a2.delivery(); dl.SentAt != ge.SentAt {
		t.Errorf("group envelope at the bound: delivered with sent-at %d, want %d", dl.SentAt, ge.SentAt)
	}
}
