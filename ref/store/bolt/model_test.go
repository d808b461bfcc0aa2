package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/store/mem"
)

// TestQueueMatchesMem runs random sequences of queue operations (enqueue
// at any priority, acknowledgements of live, acknowledged and unknown ids,
// attempt counts, expiry, device removal, reopening) on the bolt store and
// on the in-memory store, and checks that they answer alike: the bolt
// store's layout (entries keyed by queue id, each device's delivery order
// and queue size in memory, published only after a commit) must not change
// what the interface says.
func TestQueueMatchesMem(t *testing.T) {
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		run++
		path := filepath.Join(dir, fmt.Sprintf("m%d.db", run))
		b, err := bolt.Open(path)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { b.Close() }()
		m := mem.New()
		defer m.Close()
		base := time.Unix(1_800_000_000, 0).UTC()
		now := base
		devices := []store.Address{{Account: "bob", Device: 1}, {Account: "bob", Device: 2}, {Account: "carol", Device: 1}}
		for _, s := range []store.Store{b, m} {
			for _, acc := range []string{"bob", "carol"} {
				if err := s.CreateAccount(ctx, acc, store.Device{ID: 1, IdentityKey: []byte{1}, Created: base}); err != nil {
					rt.Fatal(err)
				}
			}
			if _, err := s.AddDevice(ctx, "bob", []byte{2}, base); err != nil {
				rt.Fatal(err)
			}
		}
		sender := store.Address{Account: "alice", Device: 1}
		var ids []uint64 // every queue id handed out, acknowledged or not
		msg := 0
		check := func(what string, gb, gm any, eb, em error) {
			rt.Helper()
			if (eb == nil) != (em == nil) {
				rt.Fatalf("%s: bolt error %v, mem error %v", what, eb, em)
			}
			if fmt.Sprint(gb) != fmt.Sprint(gm) {
				rt.Fatalf("%s: bolt got %v, mem got %v", what, gb, gm)
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
			case op <= 3: // enqueue to one or more devices
				n := rapid.IntRange(1, 3).Draw(rt, "recipients")
				prio := uint8(rapid.OneOf(rapid.IntRange(0, 2), rapid.IntRange(0, 255)).Draw(rt, "priority"))
				ttl := time.Duration(rapid.IntRange(1, 100).Draw(rt, "ttl")) * time.Second
				// A new message, or a resend of an earlier one: with its
				// sent-at (a duplicate while remembered) or another (another
				// envelope, SRV-008).
				id, sentAt := msg+1, uint64(msg+1)
				if msg > 0 && rapid.Bool().Draw(rt, "resend") {
					id = rapid.IntRange(1, msg).Draw(rt, "resent")
					sentAt = uint64(id) + 1000*uint64(rapid.IntRange(0, 1).Draw(rt, "other sent-at"))
				} else {
					msg++
				}
				mk := func() []store.Entry {
					var es []store.Entry
					for _, d := range devices[:n] {
						es = append(es, store.Entry{Recipient: d, MessageID: []byte(fmt.Sprint(id)), Sender: sender, Type: 1,
							Priority: prio, Ciphertext: []byte(fmt.Sprint("c", id)), SentAt: sentAt, AcceptedAt: now, ExpiresAt: now.Add(ttl)})
					}
					return es
				}
				eb, em := mk(), mk()
				_, db, errb := b.Enqueue(ctx, eb, store.Quota{Entries: 6}, now.Add(time.Hour))
				_, dm, errm := m.Enqueue(ctx, em, store.Quota{Entries: 6}, now.Add(time.Hour))
				check("Enqueue", db, dm, errb, errm)
				if errb == nil {
					var qb, qm []uint64
					for i := range eb {
						qb, qm = append(qb, eb[i].QueueID), append(qm, em[i].QueueID)
					}
					check("Enqueue queue ids", qb, qm, nil, nil)
					ids = append(ids, qb...)
				}
			case op <= 5: // acknowledge some ids, unknown ones included
				d := devices[rapid.IntRange(0, 2).Draw(rt, "device")]
				var ack []uint64
				for range rapid.IntRange(1, 4).Draw(rt, "acks") {
					if len(ids) > 0 && rapid.Bool().Draw(rt, "known") {
						ack = append(ack, ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "id")])
					} else {
						ack = append(ack, uint64(rapid.IntRange(0, 50).Draw(rt, "unknown id")))
					}
				}
				check("Ack", nil, nil, b.Ack(ctx, d, ack), m.Ack(ctx, d, ack))
			case op == 6: // an attempt count
				if len(ids) == 0 {
					continue
				}
				d := devices[rapid.IntRange(0, 2).Draw(rt, "device")]
				id := ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "id")]
				n := uint32(rapid.IntRange(1, 9).Draw(rt, "attempt"))
				check("SetAttempt", nil, nil, b.SetAttempt(ctx, d, id, n), m.SetAttempt(ctx, d, id, n))
			case op == 7: // time passes; expire
				now = now.Add(time.Duration(rapid.IntRange(1, 60).Draw(rt, "seconds")) * time.Second)
				nb, errb := b.Expire(ctx, now)
				nm, errm := m.Expire(ctx, now)
				check("Expire", nb, nm, errb, errm)
			case op == 8: // reopen the bolt store
				if err := b.Close(); err != nil {
					rt.Fatal(err)
				}
				if b, err = bolt.Open(path); err != nil {
					rt.Fatal(err)
				}
			default: // remove bob's second device, once
				if rapid.IntRange(0, 3).Draw(rt, "remove") == 0 {
					d := devices[1]
					check("RemoveDevice", nil, nil, b.RemoveDevice(ctx, d), m.RemoveDevice(ctx, d))
				}
			}
			for _, d := range devices {
				skip := map[uint64]bool{}
				if len(ids) > 0 {
					skip[ids[len(ids)/2]] = true
				}
				pb, errb := b.Pending(ctx, d, now, skip, 100)
				pm, errm := m.Pending(ctx, d, now, skip, 100)
				check(fmt.Sprint("Pending ", d), summary(pb), summary(pm), errb, errm)
				sb, errb := b.Stats(ctx, d)
				sm, errm := m.Stats(ctx, d)
				check(fmt.Sprint("Stats ", d), sb, sm, errb, errm)
			}
			tb, errb := b.TotalEntries(ctx)
			tm, errm := m.TotalEntries(ctx)
			check("TotalEntries", tb, tm, errb, errm)
		}
	})
}

// summary is what TestQueueMatchesMem compares of a Pending answer.
func summary(es []store.Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d/p%d/a%d/%s/%s/%s", e.QueueID, e.Priority, e.Attempt, e.MessageID, e.Ciphertext, e.ExpiresAt.Format(time.RFC3339)))
	}
	return slices.Clip(out)
}
