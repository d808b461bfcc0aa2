package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

var queueTests = []test{
	{"Enqueue", testEnqueue},
	{"EnqueueEmpty", testEnqueueEmpty},
	{"EnqueueQueueIDs", testEnqueueQueueIDs},
	{"EnqueueDuplicate", testEnqueueDuplicate},
	{"Accepted", testAccepted},
	{"EnqueueForget", testEnqueueForget},
	{"EnqueueQuota", testEnqueueQuota},
	{"EnqueueUnknownRecipient", testEnqueueUnknownRecipient},
	{"EnqueueConcurrent", testEnqueueConcurrent},
	{"EnqueueConcurrentQuota", testEnqueueConcurrentQuota},
	{"EnqueueMany", testEnqueueMany},
	{"AckMany", testAckMany},
	{"Pending", testPending},
	{"PendingExpiry", testPendingExpiry},
	{"SetAttempt", testSetAttempt},
	{"Ack", testAck},
	{"Queued", testQueued},
	{"Expire", testExpire},
	{"Stats", testStats},
}

func testEnqueue(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	b2, a2 := h.device("bob"), h.device("alice")
	es := []store.Entry{
		msg(bob, alice, "m1", 1, "for bob/1", 10),
		msg(b2, alice, "m1", 1, "for bob/2", 10),
		msg(a2, alice, "m1", 1, "for alice/2", 10),
	}
	es[1].Ciphertext = make([]byte, 70000) // a large prekey message
	for i := range es[1].Ciphertext {
		es[1].Ciphertext[i] = byte(i)
	}
	es[2].Type, es[2].Kind, es[2].Priority = 3, 1, 2
	accepted, dup, err := h.s.Enqueue(h.ctx, es, store.Quota{Entries: 10, Bytes: 1 << 20}, at(10).Add(forgetAfter))
	h.wantErr("Enqueue", err, nil)
	if dup || !accepted.Equal(at(10)) {
		h.Errorf("Enqueue: got %v, %t, want %v, false", accepted, dup, at(10))
	}
	for i, e := range es {
		if e.QueueID == 0 {
			h.Errorf("Enqueue: entry %d got no queue id", i)
		}
		h.wantEntries(fmt.Sprint("Pending(", e.Recipient, ")"), h.pending(e.Recipient, at(10)), []store.Entry{e})
	}
	if got := h.total(); got != 3 {
		h.Errorf("TotalEntries: got %d, want 3", got)
	}
	if es := h.pending(alice, at(10)); len(es) != 0 {
		h.Errorf("Pending(sender): got %d entries, want 0", len(es))
	}
}

func testEnqueueEmpty(h *harness) {
	h.account("alice")
	accepted, dup, err := h.s.Enqueue(h.ctx, nil, store.Quota{}, at(1))
	if err != nil || dup || !accepted.IsZero() {
		h.Errorf("Enqueue(nil): got %v, %t, %v, want zero, false, nil", accepted, dup, err)
	}
	if got := h.total(); got != 0 {
		h.Errorf("TotalEntries: got %d, want 0", got)
	}
}

func testEnqueueQueueIDs(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	var last = map[store.Address]uint64{}
	check := func(ids []uint64, to ...store.Address) {
		h.Helper()
		for i, a := range to {
			if ids[i] <= last[a] {
				h.Errorf("queue id for %v: got %d, want more than %d", a, ids[i], last[a])
			}
			last[a] = ids[i]
		}
	}
	for i := range 5 {
		id := fmt.Sprint("m", i)
		check(h.enqueue(msg(bob, alice, id, 0, "x", 1), msg(b2, alice, id, 0, "y", 1)), bob, b2)
	}
	// Two entries of one envelope for the same device get two ids.
	ids := h.enqueue(msg(bob, alice, "twice", 0, "x", 1), msg(bob, alice, "twice", 0, "y", 1))
	check(ids, bob, bob)
	// Ids are not reused once acked or expired.
	var all []uint64
	for _, e := range h.pending(bob, at(1)) {
		all = append(all, e.QueueID)
	}
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, all), nil)
	check(h.enqueue(msg(bob, alice, "after ack", 0, "x", 2)), bob)
	if _, err := h.s.Expire(h.ctx, at(2+3600_000)); err != nil {
		h.Fatalf("Expire: got %v, want nil", err)
	}
	check(h.enqueue(msg(bob, alice, "after expire", 0, "x", 3600_003)), bob)
}

func testEnqueueDuplicate(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	a2 := h.device("alice")
	h.enqueue(msg(bob, alice, "m", 0, "first", 100))

	// A resend, even with other entries, stores nothing and gets the first
	// acceptance time.
	again := []store.Entry{msg(bob, alice, "m", 0, "second", 500), msg(a2, alice, "m", 0, "second", 500)}
	accepted, dup, err := h.s.Enqueue(h.ctx, again, store.Quota{}, at(500).Add(forgetAfter))
	h.wantErr("Enqueue again", err, nil)
	if !dup || !accepted.Equal(at(100)) {
		h.Errorf("Enqueue again: got %v, %t, want %v, true", accepted, dup, at(100))
	}
	if got := h.total(); got != 1 {
		h.Errorf("TotalEntries: got %d, want 1", got)
	}
	if es := h.pending(bob, at(500)); len(es) != 1 || string(es[0].Ciphertext) != "first" {
		h.Errorf("Pending: got %d entries, want the first only", len(es))
	}
	// The pair is the sender's full address, the message id and the
	// sent-at: an envelope that differs in any of them is another one.
	h.enqueue(msg(bob, a2, "m", 0, "other device", 600))
	h.enqueue(msg(bob, store.Address{Account: "alice2", Device: 1}, "m", 0, "other account", 600))
	h.enqueue(msg(bob, alice, "m2", 0, "other id", 600))
	h.enqueue(msg(bob, alice, "M", 0, "other id", 600))
	for _, d := range []int64{-1, 1, 1 << 40} {
		other := msg(bob, alice, "m", 0, "other sent-at", 600)
		other.SentAt = uint64(int64(other.SentAt) + d)
		h.enqueue(other)
	}
	if got := h.total(); got != 8 {
		h.Errorf("TotalEntries: got %d, want 8", got)
	}
	// Acknowledging the entry does not forget the pair.
	var ids []uint64
	for _, e := range h.pending(bob, at(600)) {
		ids = append(ids, e.QueueID)
	}
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, ids), nil)
	_, dup, err = h.s.Enqueue(h.ctx, []store.Entry{msg(bob, alice, "m", 0, "third", 700)}, store.Quota{}, at(700).Add(forgetAfter))
	if err != nil || !dup {
		h.Errorf("Enqueue after ack: got dup %t, %v, want true, nil", dup, err)
	}
	// The entries of one envelope share its sender, message id and sent-at:
	// entries that differ in sent-at are refused, and nothing is stored.
	total := h.total()
	other := msg(a2, alice, "mixed", 0, "x", 800)
	other.SentAt++
	if _, _, err := h.s.Enqueue(h.ctx, []store.Entry{msg(bob, alice, "mixed", 0, "x", 800), other}, store.Quota{}, at(800).Add(forgetAfter)); err == nil {
		h.Error("Enqueue of entries that differ in sent-at: got nil error, want a refusal")
	}
	if got := h.total(); got != total {
		h.Errorf("TotalEntries after a refused envelope: got %d, want %d", got, total)
	}
}

// testAccepted checks Accepted against what Enqueue remembers: the pair's
// first acceptance until its forget time, nothing for a pair that differs
// in sender, message id or sent-at.
func testAccepted(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	a2 := h.device("alice")
	h.enqueue(msg(bob, alice, "m", 0, "first", 100)) // forgotten at 100 + forgetAfter
	forget := at(100).Add(forgetAfter)
	for _, c := range []struct {
		name   string
		sender store.Address
		id     string
		sentAt uint64
		now    time.Time
		want   bool
	}{
		{"the pair", alice, "m", sentAt("m"), at(500), true},
		{"just before its forget time", alice, "m", sentAt("m"), forget.Add(-time.Millisecond), true},
		{"at its forget time", alice, "m", sentAt("m"), forget, false},
		{"another device", a2, "m", sentAt("m"), at(500), false},
		{"another id", alice, "M", sentAt("m"), at(500), false},
		{"another sent-at", alice, "m", sentAt("m") + 1, at(500), false},
	} {
		accepted, ok, err := h.s.Accepted(h.ctx, c.sender, []byte(c.id), c.sentAt, c.now)
		h.wantErr("Accepted "+c.name, err, nil)
		if ok != c.want || ok && !accepted.Equal(at(100)) {
			h.Errorf("Accepted, %s: got %v, %t; want %t (accepted %v)", c.name, accepted, ok, c.want, at(100))
		}
	}
	if got := h.total(); got != 1 {
		h.Errorf("TotalEntries after Accepted: got %d, want 1", got)
	}
}

func testEnqueueForget(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	forget := at(1000)
	enq := func(acceptedMs int64, fg int64) (bool, error) {
		_, dup, err := h.s.Enqueue(h.ctx, []store.Entry{msg(bob, alice, "m", 0, "c", acceptedMs)}, store.Quota{}, at(fg))
		return dup, err
	}
	if dup, err := enq(0, 1000); dup || err != nil {
		h.Fatalf("Enqueue: got %t, %v, want false, nil", dup, err)
	}
	// Expire before the forget time keeps the pair.
	if _, err := h.s.Expire(h.ctx, forget.Add(-1)); err != nil {
		h.Fatalf("Expire: %v", err)
	}
	if dup, err := enq(999, 2000); !dup || err != nil {
		h.Errorf("Enqueue before the forget time: got %t, %v, want true, nil", dup, err)
	}
	// Expire at the forget time forgets it.
	if _, err := h.s.Expire(h.ctx, forget); err != nil {
		h.Fatalf("Expire: %v", err)
	}
	if dup, err := enq(999, 2000); dup || err != nil {
		h.Errorf("Enqueue after Expire at the forget time: got %t, %v, want false, nil", dup, err)
	}
	// Without Expire, an envelope accepted at or after the forget time is
	// new, and it is remembered with its own forget time.
	if dup, err := enq(1999, 5000); !dup || err != nil {
		h.Errorf("Enqueue before the second forget time: got %t, %v, want true, nil", dup, err)
	}
	if dup, err := enq(2000, 3000); dup || err != nil {
		h.Errorf("Enqueue at the second forget time: got %t, %v, want false, nil", dup, err)
	}
	accepted, dup, err := h.s.Enqueue(h.ctx, []store.Entry{msg(bob, alice, "m", 0, "c", 2500)}, store.Quota{}, at(9000))
	if !dup || err != nil || !accepted.Equal(at(2000)) {
		h.Errorf("Enqueue before the third forget time: got %v, %t, %v, want %v, true, nil", accepted, dup, err, at(2000))
	}
	if got := h.total(); got != 3 {
		h.Errorf("TotalEntries: got %d, want 3", got)
	}
}

func testEnqueueQuota(h *harness) {
	cases := []struct {
		name    string
		quota   store.Quota
		queued  []int // ciphertext sizes already queued for bob/1
		add     []int // ciphertext sizes for bob/1 in the new envelope
		wantErr error
	}{
		{"entries under", store.Quota{Entries: 3}, []int{1, 1}, []int{1}, nil},
		{"entries over", store.Quota{Entries: 3}, []int{1, 1}, []int{1, 1}, store.ErrQuota},
		{"entries full", store.Quota{Entries: 2}, []int{1, 1}, []int{1}, store.ErrQuota},
		{"bytes under", store.Quota{Bytes: 100}, []int{40, 40}, []int{20}, nil},
		{"bytes over", store.Quota{Bytes: 100}, []int{40, 40}, []int{21}, store.ErrQuota},
		{"bytes over by two entries", store.Quota{Bytes: 100}, []int{40}, []int{30, 31}, store.ErrQuota},
		{"both under", store.Quota{Entries: 3, Bytes: 100}, []int{50}, []int{25, 25}, nil},
		{"entries over, bytes under", store.Quota{Entries: 2, Bytes: 100}, []int{10}, []int{10, 10}, store.ErrQuota},
		{"no limit", store.Quota{}, []int{1000, 1000, 1000}, []int{1000}, nil},
		{"entries only limited", store.Quota{Entries: 10}, []int{1 << 16}, []int{1 << 16}, nil},
	}
	for _, c := range cases {
		h.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			alice, bob, carol := h.account("alice"), h.account("bob"), h.account("carol")
			for i, n := range c.queued {
				h.enqueue(store.Entry{Recipient: bob, Sender: alice, MessageID: []byte(fmt.Sprint("q", i)), Ciphertext: make([]byte, n), AcceptedAt: at(1), ExpiresAt: at(1e6)})
			}
			// One envelope: the entries for bob/1, and one for carol/1 that
			// fits any quota.
			var env []store.Entry
			for _, n := range c.add {
				env = append(env, store.Entry{Recipient: bob, Sender: alice, MessageID: []byte("new"), Ciphertext: make([]byte, n), AcceptedAt: at(2), ExpiresAt: at(1e6)})
			}
			env = append(env, store.Entry{Recipient: carol, Sender: alice, MessageID: []byte("new"), Ciphertext: []byte{1}, AcceptedAt: at(2), ExpiresAt: at(1e6)})
			_, dup, err := h.s.Enqueue(h.ctx, env, c.quota, at(1e6))
			h.wantErr("Enqueue", err, c.wantErr)
			if dup {
				h.Errorf("Enqueue: got dup true, want false")
			}
			wantBob, wantCarol := len(c.queued), 0
			if c.wantErr == nil {
				wantBob, wantCarol = len(c.queued)+len(c.add), 1
			}
			if got := h.stats(bob).Entries; got != wantBob {
				h.Errorf("Stats(bob): got %d entries, want %d", got, wantBob)
			}
			if got := h.stats(carol).Entries; got != wantCarol {
				h.Errorf("Stats(carol): got %d entries, want %d (all or none)", got, wantCarol)
			}
			if got := h.total(); got != wantBob+wantCarol {
				h.Errorf("TotalEntries: got %d, want %d", got, wantBob+wantCarol)
			}
			if c.wantErr == nil {
				return
			}
			// A refused envelope is not remembered: once bob's queue is empty,
			// the resend is accepted.
			var ids []uint64
			for _, e := range h.pending(bob, at(2)) {
				ids = append(ids, e.QueueID)
			}
			h.wantErr("Ack", h.s.Ack(h.ctx, bob, ids), nil)
			accepted, dup, err := h.s.Enqueue(h.ctx, env, c.quota, at(1e6))
			if err != nil || dup || !accepted.Equal(at(2)) {
				h.Errorf("Enqueue after the queue emptied: got %v, %t, %v, want %v, false, nil", accepted, dup, err, at(2))
			}
		})
	}
}

func testEnqueueUnknownRecipient(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	for _, to := range []store.Address{{Account: "bob", Device: 2}, {Account: "nobody", Device: 1}} {
		env := []store.Entry{msg(bob, alice, "m", 0, "c", 1), msg(to, alice, "m", 0, "c", 1)}
		_, _, err := h.s.Enqueue(h.ctx, env, store.Quota{}, at(1e6))
		h.wantErr(fmt.Sprint("Enqueue to ", to), err, store.ErrNotFound)
		if got := h.total(); got != 0 {
			h.Errorf("TotalEntries: got %d, want 0", got)
		}
	}
	// Not remembered either.
	h.enqueue(msg(bob, alice, "m", 0, "c", 1))
}

func testEnqueueConcurrent(h *harness) {
	const (
		goroutines = 16
		perG       = 8
		dupSenders = 8
	)
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      = map[store.Address][]uint64{}
		fresh    int
		accepted = map[int64]int{}
		errs     []error
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				id := fmt.Sprint(g, "-", i)
				env := []store.Entry{msg(bob, alice, id, uint8(i%3), id, int64(g)), msg(b2, alice, id, 0, id, int64(g))}
				_, dup, err := h.s.Enqueue(h.ctx, env, store.Quota{}, at(1e6))
				mu.Lock()
				if err != nil || dup {
					errs = append(errs, fmt.Errorf("Enqueue(%s): got dup %t, %w", id, dup, err))
				} else {
					ids[bob] = append(ids[bob], env[0].QueueID)
					ids[b2] = append(ids[b2], env[1].QueueID)
				}
				mu.Unlock()
			}
		})
	}
	// Resends of one envelope, racing: exactly one is fresh, and all get
	// the same acceptance time.
	for g := range dupSenders {
		wg.Go(func() {
			env := []store.Entry{msg(b2, alice, "resent", 0, "r", int64(100+g))}
			t, dup, err := h.s.Enqueue(h.ctx, env, store.Quota{}, at(1e6))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("Enqueue(resent): %w", err))
				return
			}
			if !dup {
				fresh++
			}
			accepted[t.UnixMilli()]++
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		h.Fatalf("got %d failures, first: %v", len(errs), errs[0])
	}
	if fresh != 1 || len(accepted) != 1 {
		h.Errorf("resends: got %d fresh and acceptance times %v, want 1 fresh and one time", fresh, accepted)
	}
	for _, a := range []store.Address{bob, b2} {
		got := ids[a]
		slices.Sort(got)
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			h.Errorf("%v: queue ids repeat: %v", a, got)
		}
		var pend []uint64
		for _, e := range h.pending(a, at(0)) {
			pend = append(pend, e.QueueID)
		}
		want := goroutines * perG
		if a == b2 {
			want++
		}
		if len(pend) != want {
			h.Errorf("Pending(%v): got %d entries, want %d", a, len(pend), want)
		}
	}
	if got := h.total(); got != 2*goroutines*perG+1 {
		h.Errorf("TotalEntries: got %d, want %d", got, 2*goroutines*perG+1)
	}
	checkOrder(h, bob, h.pending(bob, at(0)))
}

// checkOrder fails the test unless es is in delivery order.
func checkOrder(h *harness, a store.Address, es []store.Entry) {
	h.Helper()
	for i := 1; i < len(es); i++ {
		p, q := es[i-1], es[i]
		if p.Priority < q.Priority || p.Priority == q.Priority && p.QueueID >= q.QueueID {
			h.Fatalf("Pending(%v): entry %d (priority %d, id %d) before entry %d (priority %d, id %d)", a, i-1, p.Priority, p.QueueID, i, q.Priority, q.QueueID)
		}
	}
}

func testEnqueueConcurrentQuota(h *harness) {
	const (
		quota      = 10
		goroutines = 24
	)
	alice, bob := h.account("alice"), h.account("bob")
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, refuse int
		other      []error
	)
	for g := range goroutines {
		wg.Go(func() {
			_, _, err := h.s.Enqueue(h.ctx, []store.Entry{msg(bob, alice, fmt.Sprint(g), 0, "c", 1)}, store.Quota{Entries: quota}, at(1e6))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrQuota):
				refuse++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if ok != quota || refuse != goroutines-quota || len(other) > 0 {
		h.Errorf("got %d accepted, %d refused, errors %v, want %d, %d, none", ok, refuse, other, quota, goroutines-quota)
	}
	if got := h.stats(bob).Entries; got != quota {
		h.Errorf("Stats: got %d entries, want %d", got, quota)
	}
}

func testPending(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	prios := []uint8{0, 2, 1, 2, 0, 1, 255, 0}
	var es []store.Entry
	for i, p := range prios {
		e := msg(bob, alice, fmt.Sprint("m", i), p, fmt.Sprint("c", i), int64(i))
		e.QueueID = h.enqueue(e)[0]
		es = append(es, e)
	}
	order := []int{6, 1, 3, 2, 5, 0, 4, 7}
	want := func(idx ...int) []store.Entry {
		out := make([]store.Entry, len(idx))
		for i, j := range idx {
			out[i] = es[j]
		}
		return out
	}
	cases := []struct {
		name  string
		skip  []int
		limit int
		want  []int
	}{
		{"all", nil, 100, order},
		{"limit", nil, 3, order[:3]},
		{"limit exact", nil, len(order), order},
		{"limit one", nil, 1, order[:1]},
		{"limit zero", nil, 0, nil},
		{"limit negative", nil, -1, nil},
		{"skip", []int{6, 3, 0}, 100, []int{1, 2, 5, 4, 7}},
		{"skip and limit", []int{6, 1}, 2, []int{3, 2}},
		{"skip all", order, 100, nil},
	}
	for _, c := range cases {
		skip := map[uint64]bool{}
		for _, i := range c.skip {
			skip[es[i].QueueID] = true
		}
		got, err := h.s.Pending(h.ctx, bob, at(0), skip, c.limit)
		h.wantErr("Pending "+c.name, err, nil)
		h.wantEntries("Pending "+c.name, got, want(c.want...))
	}
	// Ids in skip that name nothing, and an unknown device.
	got, err := h.s.Pending(h.ctx, bob, at(0), map[uint64]bool{1 << 60: true}, 2)
	h.wantErr("Pending", err, nil)
	h.wantEntries("Pending with a foreign skip id", got, want(order[:2]...))
	for _, a := range []store.Address{{Account: "bob", Device: 2}, {Account: "nobody", Device: 1}, alice} {
		got, err := h.s.Pending(h.ctx, a, at(0), nil, 10)
		if err != nil || len(got) != 0 {
			h.Errorf("Pending(%v): got %d entries, %v, want none, nil", a, len(got), err)
		}
	}
}

func testPendingExpiry(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	var es []store.Entry
	for i, exp := range []int64{500, 100, 300, 100, 400} {
		e := msg(bob, alice, fmt.Sprint("m", i), uint8(i%2), "c", 0)
		e.ExpiresAt = at(exp)
		e.QueueID = h.enqueue(e)[0]
		es = append(es, e)
	}
	alive := func(now int64) []uint64 {
		var ids []uint64
		for _, e := range h.pending(bob, at(now)) {
			if !e.ExpiresAt.After(at(now)) {
				h.Errorf("Pending(now %d): got entry expiring at %v", now, e.ExpiresAt)
			}
			ids = append(ids, e.QueueID)
		}
		return ids
	}
	cases := []struct {
		now  int64
		want []int
	}{
		{0, []int{1, 3, 0, 2, 4}},
		{99, []int{1, 3, 0, 2, 4}},
		{100, []int{0, 2, 4}}, // expiring at now is left out
		{101, []int{0, 2, 4}},
		{400, []int{0}},
		{500, nil},
	}
	for _, c := range cases {
		var want []uint64
		for _, i := range c.want {
			want = append(want, es[i].QueueID)
		}
		if got := alive(c.now); !slices.Equal(got, want) {
			h.Errorf("Pending(now %d): got ids %v, want %v", c.now, got, want)
		}
	}
	// Pending does not delete: the expired entries are still counted.
	if got := h.stats(bob).Entries; got != 5 {
		h.Errorf("Stats: got %d entries, want 5", got)
	}
}

func testSetAttempt(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	e := msg(bob, alice, "m", 1, "c", 0)
	f := msg(b2, alice, "m", 1, "d", 0)
	ids := h.enqueue(e, f)
	e.QueueID, f.QueueID = ids[0], ids[1]
	for _, n := range []uint32{1, 2, 7, 1 << 31} {
		h.wantErr("SetAttempt", h.s.SetAttempt(h.ctx, bob, e.QueueID, n), nil)
		e.Attempt = n
		h.wantEntries("Pending after SetAttempt", h.pending(bob, at(0)), []store.Entry{e})
	}
	// Only that device's entry changes.
	h.wantEntries("Pending(other device)", h.pending(b2, at(0)), []store.Entry{f})
	// Missing entries and devices are not errors.
	h.wantErr("SetAttempt(missing id)", h.s.SetAttempt(h.ctx, bob, e.QueueID+1000, 3), nil)
	h.wantErr("SetAttempt(unknown device)", h.s.SetAttempt(h.ctx, store.Address{Account: "bob", Device: 9}, 1, 3), nil)
	h.wantErr("SetAttempt(unknown account)", h.s.SetAttempt(h.ctx, store.Address{Account: "nobody", Device: 1}, 1, 3), nil)
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, []uint64{e.QueueID}), nil)
	h.wantErr("SetAttempt(acked)", h.s.SetAttempt(h.ctx, bob, e.QueueID, 9), nil)
	if got := h.pending(bob, at(0)); len(got) != 0 {
		h.Errorf("SetAttempt on an acked entry: got %d entries, want 0", len(got))
	}
	// SetAttempt keeps the entry's place in delivery order.
	var es []store.Entry
	for i := range 4 {
		x := msg(bob, alice, fmt.Sprint("o", i), uint8(i%2), "c", 1)
		x.QueueID = h.enqueue(x)[0]
		es = append(es, x)
	}
	h.wantErr("SetAttempt", h.s.SetAttempt(h.ctx, bob, es[1].QueueID, 5), nil)
	es[1].Attempt = 5
	h.wantEntries("Pending after SetAttempt", h.pending(bob, at(1)), []store.Entry{es[1], es[3], es[0], es[2]})
}

// queuedForBob makes alice and bob, with a second device, and queues n
// envelopes from alice to bob's two devices: mine are bob/1's entries
// ("ab"), theirs bob/2's ("cde").
func queuedForBob(h *harness, n int) (alice, bob, b2 store.Address, mine, theirs []store.Entry) {
	alice, bob = h.account("alice"), h.account("bob")
	b2 = h.device("bob")
	for i := range n {
		e, f := msg(bob, alice, fmt.Sprint("m", i), 0, "ab", 1), msg(b2, alice, fmt.Sprint("m", i), 0, "cde", 1)
		ids := h.enqueue(e, f)
		e.QueueID, f.QueueID = ids[0], ids[1]
		mine, theirs = append(mine, e), append(theirs, f)
	}
	return
}

func testAck(h *harness) {
	alice, bob, b2, mine, theirs := queuedForBob(h, 5)
	ack := []uint64{mine[1].QueueID, mine[3].QueueID}
	for i := range 2 { // an ack can be repeated
		h.wantErr(fmt.Sprint("Ack ", i), h.s.Ack(h.ctx, bob, ack), nil)
		h.wantEntries("Pending after Ack", h.pending(bob, at(1)), []store.Entry{mine[0], mine[2], mine[4]})
		if st := h.stats(bob); st != (store.QueueStats{Entries: 3, Bytes: 6}) {
			h.Errorf("Stats after Ack: got %+v, want {3 6}", st)
		}
		if got := h.total(); got != 8 {
			h.Errorf("TotalEntries after Ack: got %d, want 8", got)
		}
	}
	// Ids that name nothing are ignored; the rest are deleted.
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, []uint64{mine[0].QueueID, 1 << 62, mine[1].QueueID, mine[0].QueueID}), nil)
	h.wantEntries("Pending after Ack", h.pending(bob, at(1)), []store.Entry{mine[2], mine[4]})
	h.wantErr("Ack(empty)", h.s.Ack(h.ctx, bob, nil), nil)
	// Acks for unknown devices do nothing, and acks delete only the named
	// device's entries, whatever their ids.
	h.wantErr("Ack(unknown)", h.s.Ack(h.ctx, store.Address{Account: "nobody", Device: 1}, queueIDs(mine)), nil)
	h.wantErr("Ack(alice)", h.s.Ack(h.ctx, alice, append(queueIDs(mine), queueIDs(theirs)...)), nil)
	h.wantEntries("Pending(bob/2)", h.pending(b2, at(1)), theirs)
	h.wantErr("Ack(bob/2)", h.s.Ack(h.ctx, b2, queueIDs(theirs)), nil)
	h.wantEntries("Pending(bob/1) after acking bob/2", h.pending(bob, at(1)), []store.Entry{mine[2], mine[4]})
	if got := h.total(); got != 2 {
		h.Errorf("TotalEntries: got %d, want 2", got)
	}
}

func testQueued(h *harness) {
	alice, bob, b2, mine, theirs := queuedForBob(h, 4)
	queued := func(what string, a store.Address, ids []uint64, want []uint64) {
		h.Helper()
		got, err := h.s.Queued(h.ctx, a, ids)
		h.wantErr(what, err, nil)
		if !slices.Equal(got, want) {
			h.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	ids := []uint64{mine[3].QueueID, 1 << 62, mine[0].QueueID, theirs[0].QueueID, mine[3].QueueID}
	queued("Queued(bob/1)", bob, ids, []uint64{mine[3].QueueID, mine[0].QueueID, mine[3].QueueID})
	queued("Queued(bob/2)", b2, ids, []uint64{theirs[0].QueueID})
	queued("Queued(alice)", alice, ids, nil)
	queued("Queued(unknown)", store.Address{Account: "nobody", Device: 1}, ids, nil)
	queued("Queued(none)", bob, nil, nil)
	// Acked entries are not queued.
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, []uint64{mine[0].QueueID}), nil)
	queued("Queued after Ack", bob, ids, []uint64{mine[3].QueueID, mine[3].QueueID})
	if got := h.total(); got != 7 {
		h.Errorf("TotalEntries after Queued: got %d, want 7 (Queued writes nothing)", got)
	}
}

func testExpire(h *harness) {
	alice, bob, carol := h.account("alice"), h.account("bob"), h.account("carol")
	type item struct {
		to  store.Address
		exp int64
	}
	items := []item{{bob, 100}, {carol, 100}, {bob, 200}, {carol, 300}, {bob, 300}, {bob, 50}, {carol, 1000}}
	var es []store.Entry
	for i, it := range items {
		e := msg(it.to, alice, fmt.Sprint("m", i), uint8(i%3), "xyz", 0)
		e.ExpiresAt = at(it.exp)
		e.QueueID = h.enqueue(e)[0]
		es = append(es, e)
	}
	steps := []struct {
		now              int64
		deleted          int
		bobLeft, carLeft []int
	}{
		{49, 0, []int{2, 5, 4, 0}, []int{1, 3, 6}},
		{50, 1, []int{2, 4, 0}, []int{1, 3, 6}},
		{50, 0, []int{2, 4, 0}, []int{1, 3, 6}},
		{250, 3, []int{4}, []int{3, 6}},
		{300, 2, nil, []int{6}},
	}
	for _, s := range steps {
		n, err := h.s.Expire(h.ctx, at(s.now))
		h.wantErr("Expire", err, nil)
		if n != s.deleted {
			h.Errorf("Expire(%d): got %d deleted, want %d", s.now, n, s.deleted)
		}
		// Pending at t0 would still show expired entries that were not
		// deleted.
		for _, dev := range []struct {
			a    store.Address
			left []int
		}{{bob, s.bobLeft}, {carol, s.carLeft}} {
			var want []store.Entry
			for _, i := range dev.left {
				want = append(want, es[i])
			}
			h.wantEntries(fmt.Sprint("Pending(", dev.a.Account, ") after Expire(", s.now, ")"), h.pending(dev.a, at(0)), want)
			if st := h.stats(dev.a); st != (store.QueueStats{Entries: len(dev.left), Bytes: 3 * len(dev.left)}) {
				h.Errorf("Stats(%s) after Expire(%d): got %+v, want {%d %d}", dev.a.Account, s.now, st, len(dev.left), 3*len(dev.left))
			}
		}
		if got, want := h.total(), len(s.bobLeft)+len(s.carLeft); got != want {
			h.Errorf("TotalEntries after Expire(%d): got %d, want %d", s.now, got, want)
		}
	}
	// An acked entry is not counted by Expire.
	h.wantErr("Ack", h.s.Ack(h.ctx, carol, []uint64{es[6].QueueID}), nil)
	if n, err := h.s.Expire(h.ctx, at(5000)); n != 0 || err != nil {
		h.Errorf("Expire after Ack: got %d, %v, want 0, nil", n, err)
	}
}

func testStats(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	for _, a := range []store.Address{alice, bob, b2, {Account: "bob", Device: 7}, {Account: "nobody", Device: 1}} {
		if st := h.stats(a); st != (store.QueueStats{}) {
			h.Errorf("Stats(%v) of an empty queue: got %+v, want zero", a, st)
		}
	}
	sizes := []int{0, 1, 100, 73728}
	var ids []uint64
	wantBytes := 0
	for i, n := range sizes {
		e := store.Entry{Recipient: bob, Sender: alice, MessageID: []byte{byte(i)}, Ciphertext: make([]byte, n), AcceptedAt: at(0), ExpiresAt: at(1000)}
		f := e
		f.Recipient, f.Ciphertext = b2, make([]byte, 2*n)
		ids = append(ids, h.enqueue(e, f)[0])
		wantBytes += n
		if st := h.stats(bob); st != (store.QueueStats{Entries: i + 1, Bytes: wantBytes}) {
			h.Errorf("Stats(bob/1): got %+v, want {%d %d}", st, i+1, wantBytes)
		}
		if st := h.stats(b2); st != (store.QueueStats{Entries: i + 1, Bytes: 2 * wantBytes}) {
			h.Errorf("Stats(bob/2): got %+v, want {%d %d}", st, i+1, 2*wantBytes)
		}
		if got := h.total(); got != 2*(i+1) {
			h.Errorf("TotalEntries: got %d, want %d", got, 2*(i+1))
		}
	}
	h.wantErr("Ack", h.s.Ack(h.ctx, bob, ids[2:]), nil)
	if st := h.stats(bob); st != (store.QueueStats{Entries: 2, Bytes: 1}) {
		h.Errorf("Stats(bob/1) after Ack: got %+v, want {2 1}", st)
	}
	if got := h.total(); got != 6 {
		h.Errorf("TotalEntries after Ack: got %d, want 6", got)
	}
}

// testEnqueueMany checks that EnqueueMany, for a store that has it, gives
// each call the result it would have alone, made in order: queue ids grow
// in call order, a pair stored by an earlier call of the batch makes a
// duplicate, and a refused call leaves the others stored.
func testEnqueueMany(h *harness) {
	me, ok := h.s.(store.ManyEnqueuer)
	if !ok {
		return // optional
	}
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	call := func(q store.Quota, es ...store.Entry) store.EnqueueCall {
		c := store.EnqueueCall{Entries: es, Quota: q}
		if len(es) > 0 {
			c.Forget = es[0].AcceptedAt.Add(forgetAfter)
		}
		return c
	}
	mixed := []store.Entry{msg(bob, alice, "x", 0, "x", 5), msg(bob, alice, "y", 0, "y", 5)}
	calls := []store.EnqueueCall{
		call(store.Quota{}, msg(bob, alice, "m1", 0, "one", 1), msg(b2, alice, "m1", 0, "one", 1)),
		call(store.Quota{}, msg(bob, alice, "m2", 0, "two", 2)),
		call(store.Quota{}, msg(bob, alice, "m1", 0, "one again", 3)),
		call(store.Quota{}, msg(store.Address{Account: "bob", Device: 99}, alice, "m3", 0, "nobody", 4)),
		call(store.Quota{Entries: 2}, msg(bob, alice, "m4", 0, "over", 5)),
		call(store.Quota{}),
		{Entries: mixed},
		call(store.Quota{}, msg(bob, alice, "m5", 0, "five", 6)),
	}
	res := me.EnqueueMany(h.ctx, calls)
	if len(res) != len(calls) {
		h.Fatalf("EnqueueMany: got %d results, want %d", len(res), len(calls))
	}
	for i, tc := range []struct {
		accepted time.Time
		dup      bool
		err      error
	}{
		{at(1), false, nil},
		{at(2), false, nil},
		{at(1), true, nil},
		{time.Time{}, false, store.ErrNotFound},
		{time.Time{}, false, store.ErrQuota},
		{time.Time{}, false, nil},
		{time.Time{}, false, nil}, // an error of its own, checked below
		{at(6), false, nil},
	} {
		r := res[i]
		if i == 6 {
			if r.Err == nil {
				h.Errorf("call %d (mixed envelope): got no error", i)
			}
			continue
		}
		if !errors.Is(r.Err, tc.err) || tc.err == nil && r.Err != nil || r.Dup != tc.dup || !r.Accepted.Equal(tc.accepted) {
			h.Errorf("call %d: got %v, %t, %v, want %v, %t, %v", i, r.Accepted, r.Dup, r.Err, tc.accepted, tc.dup, tc.err)
		}
	}
	want := []store.Entry{calls[0].Entries[0], calls[1].Entries[0], calls[7].Entries[0]}
	for i := 1; i < len(want); i++ {
		if want[i].QueueID <= want[i-1].QueueID {
			h.Errorf("queue ids of bob/1: %d after %d, want increasing in call order", want[i].QueueID, want[i-1].QueueID)
		}
	}
	h.wantEntries("Pending(bob/1)", h.pending(bob, at(6)), want)
	h.wantEntries("Pending(bob/2)", h.pending(b2, at(6)), []store.Entry{calls[0].Entries[1]})
	if got := h.total(); got != 4 {
		h.Errorf("TotalEntries: got %d, want 4", got)
	}
}

// testAckMany checks that AckMany, for a store that has it, deletes the
// named entries of every device in one call, as Ack would device by
// device: ids and devices that name nothing are ignored.
func testAckMany(h *harness) {
	ma, ok := h.s.(store.ManyAcker)
	if !ok {
		return // optional
	}
	alice, bob, b2, mine, theirs := queuedForBob(h, 4)
	acks := map[store.Address][]uint64{
		bob:                            {mine[0].QueueID, mine[2].QueueID, 1 << 62},
		b2:                             {theirs[3].QueueID},
		alice:                          queueIDs(mine),
		{Account: "nobody", Device: 1}: {1},
	}
	for i := range 2 { // repeatable
		h.wantErr(fmt.Sprint("AckMany ", i), ma.AckMany(h.ctx, acks), nil)
		h.wantEntries("Pending(bob/1)", h.pending(bob, at(1)), []store.Entry{mine[1], mine[3]})
		h.wantEntries("Pending(bob/2)", h.pending(b2, at(1)), theirs[:3])
		if st := h.stats(b2); st != (store.QueueStats{Entries: 3, Bytes: 9}) {
			h.Errorf("Stats(bob/2) after AckMany: got %+v, want {3 9}", st)
		}
		if got := h.total(); got != 5 {
			h.Errorf("TotalEntries after AckMany: got %d, want 5", got)
		}
	}
	h.wantErr("AckMany(none)", ma.AckMany(h.ctx, nil), nil)
}
