package server_test

// Tests of the checks of section 13.4 that no other file covers: the
// sent-at bound (SRV-023) and the server's own quotas.

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

// TestDefaultQuota checks the server's own quotas (section 13.1), which a
// server configured with none applies: a device's queue holds at most
// QUEUE_QUOTA entries and QUEUE_BYTES_QUOTA bytes of ciphertext (check 8
// of section 13.4). The queues are filled through the store, since
// SEND_RATE would take minutes to fill them with sends.
func TestDefaultQuota(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries int // already queued for bob, each of size bytes
		size    int
		send    int // the ciphertext size of alice's send
	}{
		{"entries", server.QueueQuota, 1, 1},
		{"bytes", server.QueueBytesQuota / 65536, 65536, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startWith(t, mem.New(), newClock(), nil)
			alice, bob := e.member("alice"), e.member("bob")
			bob.close()
			ctx := context.Background()
			now := e.clock.Now()
			fill := make([]store.Entry, c.entries-1)
			for i := range fill {
				id := make([]byte, 16)
				id[0], id[1], id[2], id[15] = byte(i>>16), byte(i>>8), byte(i), 0xEE
				fill[i] = store.Entry{Recipient: store.Address{Account: "bob", Device: 1}, MessageID: id,
					Sender: store.Address{Account: "alice", Device: 1}, Type: wire.EnvelopeChat, Priority: wire.PriorityNormal,
					Kind: wire.KindRatchet, Ciphertext: make([]byte, c.size), SentAt: 1, AcceptedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			for _, f := range fill {
				if _, _, err := e.st.Enqueue(ctx, []store.Entry{f}, store.Quota{}, now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			last := numbered(alice, bob, 1, wire.PriorityNormal, 1) // the last that fits
			last.Messages[0].Ciphertext = make([]byte, c.size)
			if code, _ := alice.try(wire.FrameSend, last, new(wire.SendResult)); code != 0 {
				t.Fatalf("the send that fills the quota: got %v, want it accepted", code)
			}
			over := numbered(alice, bob, 2, wire.PriorityNormal, 1)
			over.Messages[0].Ciphertext = make([]byte, c.send)
			if code, _ := alice.try(wire.FrameSend, over, new(wire.SendResult)); code != errcode.PolicyQuotaExceeded {
				t.Errorf("a send over the quota: got %v, want %v", code, errcode.PolicyQuotaExceeded)
			}
		})
	}
}

// TestSentAtAheadResend checks SRV-023 with SRV-008: a resend of an
// envelope the server accepted earlier is answered with the first
// acceptance time whatever its sent-at, also when the server's clock has
// stepped back since the first acceptance (an NTP correction) so that the
// sent-at is now more than MAX_SENT_AHEAD ahead. It was refused with
// policy.sent_at_ahead, and the sender reported a failure for a message
// the recipient had (from a review).
func TestSentAtAheadResend(t *testing.T) {
	ahead := server.MaxSentAhead
	for i, c := range []struct {
		name   string
		sentAt time.Duration // ahead of the server's clock at the first send
		step   time.Duration // the server's clock moves by this before the resend
	}{
		{"clock forward", ahead - time.Hour, time.Hour},
		{"clock unchanged", ahead - time.Hour, 0},
		{"clock stepped back two hours", ahead - time.Hour, -2 * time.Hour},
		{"at the bound, clock stepped back a second", ahead, -time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startWith(t, mem.New(), newClock(), nil)
			ctx := context.Background()
			a1 := e.member("alice")
			b1 := e.member("bob")
			b1.close()
			env := numbered(a1, b1, i, wire.PriorityNormal, 1)
			env.SentAt = uint64(e.clock.Now().Add(c.sentAt).UnixMilli())
			var first wire.SendResult
			a1.do(wire.FrameSend, env, &first)
			e.clock.Advance(c.step)
			var again wire.SendResult
			if code, _ := a1.try(wire.FrameSend, env, &again); code != 0 {
				t.Fatalf("resend of an accepted envelope: got %v, want the first acceptance (SRV-008)", code)
			}
			if again.AcceptedAt != first.AcceptedAt {
				t.Errorf("resend: got acceptance %d, want %d", again.AcceptedAt, first.AcceptedAt)
			}
			if n, err := e.st.TotalEntries(ctx); err != nil || n != 1 {
				t.Errorf("after the resend: got %d entries (%v), want 1", n, err)
			}
			// Another envelope as far ahead is still refused.
			other := numbered(a1, b1, i+100, wire.PriorityNormal, 1)
			other.SentAt = env.SentAt
			if c.step < 0 {
				if code, _ := a1.try(wire.FrameSend, other, new(wire.SendResult)); code != errcode.PolicySentAtAhead {
					t.Errorf("a new envelope with the resend's sent-at: got %v, want %v", code, errcode.PolicySentAtAhead)
				}
			}
		})
	}
}
