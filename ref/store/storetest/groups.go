package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

var groupTests = []test{
	{"GroupStateNone", testGroupStateNone},
	{"GroupStateVersions", testGroupStateVersions},
	{"GroupStatesRange", testGroupStatesRange},
	{"GroupStateConcurrent", testGroupStateConcurrent},
	{"GroupStateReopen", testGroupStateReopen},
	{"GroupSpan", testGroupSpan},
	{"GroupSpanReopen", testGroupSpanReopen},
	{"GroupBudget", testGroupBudget},
	{"GroupBudgetConcurrent", testGroupBudgetConcurrent},
	{"GroupBudgetReopen", testGroupBudgetReopen},
	{"GroupBudgetClockBack", testGroupBudgetClockBack},
	{"GroupBudgetClockStep", testGroupBudgetClockStep},
	{"DeviceListHistory", testDeviceListHistory},
	{"GroupFanout", testGroupFanout},
	{"GroupFanoutReopen", testGroupFanoutReopen},
}

// noBudget lifts the budget of group states.
var noBudget store.Budget

// gid returns a 16-byte group id derived from n.
func gid(n byte) []byte { return bytes.Repeat([]byte{n}, 16) }

// state returns the bytes the suite stores as version v of group n.
func state(n byte, v uint64) []byte { return []byte(fmt.Sprintf("group %d version %d", n, v)) }

// wantGroup fails the test unless the group's current state is version v.
func (h *harness) wantGroup(n byte, v uint64) {
	h.Helper()
	got, version, err := h.s.GroupState(h.ctx, gid(n))
	h.wantErr(fmt.Sprint("GroupState(", n, ")"), err, nil)
	if version != v || !bytes.Equal(got, state(n, v)) {
		h.Errorf("GroupState(%d): got version %d, %q; want %d, %q", n, version, got, v, state(n, v))
	}
}

// putGroup stores version v of group n and fails the test on an error.
func (h *harness) putGroup(n byte, v uint64) {
	h.Helper()
	h.wantErr(fmt.Sprint("PutGroupState(", n, ", ", v, ")"), h.s.PutGroupState(h.ctx, gid(n), v, state(n, v), nil, noBudget), nil)
}

func testGroupStateNone(h *harness) {
	_, _, err := h.s.GroupState(h.ctx, gid(1))
	h.wantErr("GroupState of an unknown group", err, store.ErrNotFound)
	_, _, err = h.s.GroupStates(h.ctx, gid(1), 1, 10)
	h.wantErr("GroupStates of an unknown group", err, store.ErrNotFound)
	h.wantErr("PutGroupState v2 of an unknown group", h.s.PutGroupState(h.ctx, gid(1), 2, state(1, 2), nil, noBudget), store.ErrNotFound)
	_, _, err = h.s.GroupState(h.ctx, gid(1))
	h.wantErr("GroupState after a refusal", err, store.ErrNotFound)
}

func testGroupStateVersions(h *harness) {
	h.putGroup(1, 1)
	h.wantGroup(1, 1)
	h.wantErr("PutGroupState v1 again", h.s.PutGroupState(h.ctx, gid(1), 1, []byte("another v1"), nil, noBudget), store.ErrConflict)
	h.wantErr("PutGroupState v3", h.s.PutGroupState(h.ctx, gid(1), 3, state(1, 3), nil, noBudget), store.ErrConflict)
	h.wantGroup(1, 1)
	h.putGroup(1, 2)
	h.wantErr("PutGroupState v2 again", h.s.PutGroupState(h.ctx, gid(1), 2, []byte("another v2"), nil, noBudget), store.ErrConflict)
	h.putGroup(1, 3)
	h.wantGroup(1, 3)
	// Groups are independent, ids that begin alike included.
	h.putGroup(2, 1)
	h.wantGroup(2, 1)
	long := append(gid(1), 0)
	h.wantErr("PutGroupState of a longer id", h.s.PutGroupState(h.ctx, long, 1, []byte("long"), nil, noBudget), nil)
	h.wantGroup(1, 3)
	states, v, err := h.s.GroupStates(h.ctx, long, 1, 10)
	if err != nil || v != 1 || len(states) != 1 || string(states[0]) != "long" {
		h.Errorf("GroupStates(longer id): got %q, %d, %v, want [long], 1, nil", states, v, err)
	}
}

func testGroupStatesRange(h *harness) {
	for v := uint64(1); v <= 5; v++ {
		h.putGroup(1, v)
	}
	h.putGroup(2, 1)
	cases := []struct {
		from  uint64
		limit int
		want  []uint64
	}{
		{1, 10, []uint64{1, 2, 3, 4, 5}},
		{0, 10, []uint64{1, 2, 3, 4, 5}},
		{2, 2, []uint64{2, 3}},
		{5, 10, []uint64{5}},
		{6, 10, nil},
		{1, 0, nil},
		{4, -1, nil},
	}
	for _, c := range cases {
		got, v, err := h.s.GroupStates(h.ctx, gid(1), c.from, c.limit)
		h.wantErr("GroupStates", err, nil)
		if v != 5 {
			h.Errorf("GroupStates(from %d, limit %d): got current version %d, want 5", c.from, c.limit, v)
		}
		var want [][]byte
		for _, w := range c.want {
			want = append(want, state(1, w))
		}
		if len(got) != len(want) {
			h.Errorf("GroupStates(from %d, limit %d): got %q, want %q", c.from, c.limit, got, want)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				h.Errorf("GroupStates(from %d, limit %d): state %d: got %q, want %q", c.from, c.limit, i, got[i], want[i])
			}
		}
	}
}

func testGroupStateConcurrent(h *harness) {
	h.putGroup(1, 1)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []int
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			err := h.s.PutGroupState(h.ctx, gid(1), 2, []byte(fmt.Sprint("v2 by ", i)), nil, noBudget)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, i)
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		h.Fatalf("concurrent PutGroupState v2: %d succeeded, want 1", len(won))
	}
	for _, err := range errs {
		h.wantErr("the losers of PutGroupState", err, store.ErrConflict)
	}
	got, v, _ := h.s.GroupState(h.ctx, gid(1))
	if v != 2 || string(got) != fmt.Sprint("v2 by ", won[0]) {
		h.Errorf("GroupState: got %q, %d, want the winner's, 2", got, v)
	}
}

func testGroupStateReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	h.putGroup(1, 1)
	h.putGroup(1, 2)
	h.putGroup(2, 1)
	h.reopen()
	h.wantGroup(1, 2)
	h.wantGroup(2, 1)
	got, _, err := h.s.GroupStates(h.ctx, gid(1), 1, 10)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], state(1, 1)) {
		h.Errorf("GroupStates after reopen: got %q, %v", got, err)
	}
	h.wantErr("PutGroupState v2 after reopen", h.s.PutGroupState(h.ctx, gid(1), 2, state(1, 2), nil, noBudget), store.ErrConflict)
	h.putGroup(1, 3)
}

func testDeviceListHistory(h *harness) {
	h.account("alice")
	at := func(v uint64) []byte {
		h.Helper()
		l, err := h.s.DeviceListAt(h.ctx, "alice", v)
		h.wantErr(fmt.Sprint("DeviceListAt(", v, ")"), err, nil)
		return l
	}
	if l := at(1); l != nil {
		h.Errorf("DeviceListAt(1) before any list: got %q, want nil", l)
	}
	for v := uint64(1); v <= 3; v++ {
		h.wantErr("PutDeviceList", h.s.PutDeviceList(h.ctx, "alice", []byte(fmt.Sprint("list ", v)), v, nil, nil), nil)
	}
	h.wantErr("PutDeviceList refused", h.s.PutDeviceList(h.ctx, "alice", []byte("list 9"), 9, nil, nil), store.ErrConflict)
	check := func() {
		h.Helper()
		for v := uint64(1); v <= 3; v++ {
			if l := at(v); string(l) != fmt.Sprint("list ", v) {
				h.Errorf("DeviceListAt(%d): got %q, want %q", v, l, fmt.Sprint("list ", v))
			}
		}
		for _, v := range []uint64{0, 4, 9} {
			if l := at(v); l != nil {
				h.Errorf("DeviceListAt(%d): got %q, want nil", v, l)
			}
		}
	}
	check()
	_, err := h.s.DeviceListAt(h.ctx, "bob", 1)
	h.wantErr("DeviceListAt(bob)", err, store.ErrNotFound)
	if h.f.Durable {
		h.reopen()
		check()
	}
}

// groupFanout is the fan-out of one group message: a device of alice sends
// to her two other devices and to three devices of bob and carol, with
// the delivery kind group (3).
func (h *harness) groupFanout() (sender store.Address, to []store.Address) {
	h.Helper()
	alice, bob, carol := h.account("alice"), h.account("bob"), h.account("carol")
	a2, a3 := h.device("alice"), h.device("alice")
	b2 := h.device("bob")
	return alice, []store.Address{a2, a3, bob, b2, carol}
}

func groupEntries(sender store.Address, to []store.Address, id string, acceptedMs int64) []store.Entry {
	es := make([]store.Entry, len(to))
	for i, a := range to {
		es[i] = msg(a, sender, id, 1, "one ciphertext for all", acceptedMs)
		es[i].Kind = 3
	}
	return es
}

func testGroupFanout(h *harness) {
	sender, to := h.groupFanout()
	// One device over its quota: nothing is stored for any.
	full := to[3]
	filler := msg(full, to[4], "filler", 0, "0123456789", 0)
	filler.QueueID = h.enqueue(filler)[0]
	es := groupEntries(sender, to, "g1", 10)
	_, _, err := h.s.Enqueue(h.ctx, es, store.Quota{Entries: 1}, at(10).Add(forgetAfter))
	h.wantErr("Enqueue over one device's quota", err, store.ErrQuota)
	if got := h.total(); got != 1 {
		h.Fatalf("TotalEntries after a refused fan-out: got %d, want 1", got)
	}
	// One device removed: nothing is stored either.
	removed := h.device("carol")
	h.wantErr("RemoveDevice", h.s.RemoveDevice(h.ctx, removed), nil)
	_, _, err = h.s.Enqueue(h.ctx, groupEntries(sender, append(to[:len(to):len(to)], removed), "g1", 10), store.Quota{}, at(10).Add(forgetAfter))
	h.wantErr("Enqueue to a removed device", err, store.ErrNotFound)
	if got := h.total(); got != 1 {
		h.Fatalf("TotalEntries after a refused fan-out: got %d, want 1", got)
	}
	// Accepted: one entry per device, none for the sender.
	ids := h.enqueue(es...)
	for i, a := range to {
		want := []store.Entry{es[i]}
		want[0].QueueID = ids[i]
		if a == full {
			want = append(want, filler) // of a lower priority
		}
		h.wantEntries(fmt.Sprint("Pending(", a, ")"), h.pending(a, at(10)), want)
	}
	if es := h.pending(sender, at(10)); len(es) != 0 {
		h.Errorf("Pending(sender): got %d entries, want 0", len(es))
	}
	if got := h.total(); got != 1+len(to) {
		h.Errorf("TotalEntries: got %d, want %d", got, 1+len(to))
	}
	// A resend stores nothing.
	accepted, dup, err := h.s.Enqueue(h.ctx, groupEntries(sender, to, "g1", 20), store.Quota{}, at(20).Add(forgetAfter))
	if err != nil || !dup || !accepted.Equal(at(10)) {
		h.Errorf("Enqueue again: got %v, %t, %v, want %v, true, nil", accepted, dup, err, at(10))
	}
	if got := h.total(); got != 1+len(to) {
		h.Errorf("TotalEntries after a resend: got %d, want %d", got, 1+len(to))
	}
}

func testGroupFanoutReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	sender, to := h.groupFanout()
	es := groupEntries(sender, to, "g1", 10)
	ids := h.enqueue(es...)
	h.reopen()
	for i, a := range to {
		want := es[i]
		want.QueueID = ids[i]
		h.wantEntries(fmt.Sprint("Pending(", a, ") after reopen"), h.pending(a, at(10)), []store.Entry{want})
	}
	_, dup, err := h.s.Enqueue(h.ctx, groupEntries(sender, to, "g1", 20), store.Quota{}, at(20).Add(forgetAfter))
	if err != nil || !dup {
		h.Errorf("Enqueue again after reopen: got %t, %v, want true, nil", dup, err)
	}
}

// budgetEvery is the interval of the suite's budgets of group states.
const budgetEvery = 5 * time.Minute

// budget is a budget of three group states of account at now.
func budget(account string, now time.Time) store.Budget {
	return store.Budget{Account: account, Now: now, Every: budgetEvery, Burst: 3}
}

// putCharged stores version v of group n charged to b and checks the
// error: nil when wait is 0, else a *SpentError of that wait, the group
// then left at the version before.
func (h *harness) putCharged(n byte, v uint64, b store.Budget, wait time.Duration) {
	h.Helper()
	err := h.s.PutGroupState(h.ctx, gid(n), v, state(n, v), nil, b)
	what := fmt.Sprintf("PutGroupState(%d, %d) by %s at %v", n, v, b.Account, b.Now.Sub(t0))
	if wait == 0 {
		h.wantErr(what, err, nil)
		return
	}
	var se *store.SpentError
	if !errors.As(err, &se) || se.After != wait || !errors.Is(err, store.ErrQuota) {
		h.Errorf("%s: got %v, want a *store.SpentError of %v wrapping ErrQuota", what, err, wait)
	}
	_, got, err := h.s.GroupState(h.ctx, gid(n))
	if errors.Is(err, store.ErrNotFound) {
		got, err = 0, nil
	}
	if err != nil || got != v-1 {
		h.Errorf("%s refused: the group is at version %d (%v), want %d", what, got, err, v-1)
	}
}

func testGroupBudget(h *harness) {
	for n := byte(1); n <= 3; n++ {
		h.putCharged(n, 1, budget("alice", t0), 0)
	}
	h.putCharged(4, 1, budget("alice", t0), budgetEvery)
	h.putCharged(1, 2, budget("alice", t0.Add(time.Minute)), budgetEvery-time.Minute)
	// Another account's bucket is its own.
	h.putCharged(5, 1, budget("bob", t0), 0)
	// A state refused for its version takes no token, even with one due.
	later := t0.Add(budgetEvery)
	h.wantErr("PutGroupState v1 again", h.s.PutGroupState(h.ctx, gid(1), 1, []byte("again"), nil, budget("alice", later)), store.ErrConflict)
	h.putCharged(4, 1, budget("alice", later), 0)
	h.putCharged(6, 1, budget("alice", later), budgetEvery)
	// The bucket fills up to its burst, not beyond.
	much := t0.Add(100 * budgetEvery)
	for n := byte(6); n <= 8; n++ {
		h.putCharged(n, 1, budget("alice", much), 0)
	}
	h.putCharged(9, 1, budget("alice", much), budgetEvery)
	// A lifted limit takes nothing, and charges nothing.
	lifted := budget("alice", much)
	lifted.Burst = 0
	h.putCharged(9, 1, lifted, 0)
	h.putCharged(10, 1, budget("alice", much), budgetEvery)
}

func testGroupBudgetConcurrent(h *harness) {
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		won int
	)
	for i := range byte(n) {
		wg.Go(func() {
			err := h.s.PutGroupState(h.ctx, gid(i+1), 1, state(i+1, 1), nil, budget("alice", t0))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if !errors.Is(err, store.ErrQuota) {
				h.Errorf("concurrent PutGroupState: got %v, want nil or ErrQuota", err)
			}
		})
	}
	wg.Wait()
	if won != 3 {
		h.Errorf("concurrent PutGroupState on a budget of 3: got %d stored, want 3", won)
	}
}

func testGroupBudgetReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	for n := byte(1); n <= 3; n++ {
		h.putCharged(n, 1, budget("alice", t0), 0)
	}
	h.reopen()
	h.putCharged(4, 1, budget("alice", t0.Add(time.Minute)), budgetEvery-time.Minute)
	h.putCharged(4, 1, budget("alice", t0.Add(budgetEvery)), 0)
}

// testGroupBudgetClockBack: a budget spent while the server's clock was a
// year ahead, the clock then set right, holds a token again within an
// interval, not a year later.
func testGroupBudgetClockBack(h *harness) {
	ahead := t0.Add(365 * 24 * time.Hour)
	for n := byte(1); n <= 3; n++ {
		h.putCharged(n, 1, budget("alice", ahead), 0)
	}
	err := h.s.PutGroupState(h.ctx, gid(4), 1, state(4, 1), nil, budget("alice", t0))
	var se *store.SpentError
	if errors.As(err, &se) && se.After > budgetEvery {
		h.Errorf("PutGroupState after the clock went back a year: a token back in %v, want at most %v", se.After, budgetEvery)
	}
	h.putCharged(5, 1, budget("alice", t0.Add(budgetEvery)), 0)
}

// testGroupBudgetClockStep: a spent budget, the server's clock then
// stepped back a millisecond, takes no state until an interval later (it
// took a whole burst again before).
func testGroupBudgetClockStep(h *harness) {
	for n := byte(1); n <= 3; n++ {
		h.putCharged(n, 1, budget("alice", t0), 0)
	}
	back := t0.Add(-time.Millisecond)
	h.putCharged(4, 1, budget("alice", back), budgetEvery)
	h.putCharged(4, 1, budget("alice", back.Add(budgetEvery)), 0)
}

// putNamed stores version v of group n, whose members are members.
func (h *harness) putNamed(n byte, v uint64, members ...string) {
	h.Helper()
	h.wantErr(fmt.Sprint("PutGroupState(", n, ", ", v, ")"), h.s.PutGroupState(h.ctx, gid(n), v, state(n, v), members, noBudget), nil)
}

// wantSpan fails the test unless GroupSpan of account in group n gives
// first, last and current.
func (h *harness) wantSpan(n byte, account string, first, last, current uint64) {
	h.Helper()
	f, l, c, err := h.s.GroupSpan(h.ctx, gid(n), account)
	if err != nil || f != first || l != last || c != current {
		h.Errorf("GroupSpan(%d, %q): got %d, %d, %d, %v; want %d, %d, %d", n, account, f, l, c, err, first, last, current)
	}
}

func testGroupSpan(h *harness) {
	_, _, _, err := h.s.GroupSpan(h.ctx, gid(1), "alice")
	h.wantErr("GroupSpan of an unknown group", err, store.ErrNotFound)
	h.putNamed(1, 1, "alice", "bob")
	h.putNamed(1, 2, "alice")        // bob removed
	h.putNamed(1, 3, "alice", "dan") // dan added
	h.putNamed(1, 4, "alice", "bob", "dan")
	h.putNamed(1, 5, "alice", "bob")
	// Refused states name nobody: a conflict, and a spent budget.
	h.wantErr("PutGroupState v5 again", h.s.PutGroupState(h.ctx, gid(1), 5, state(1, 5), []string{"carol"}, noBudget), store.ErrConflict)
	spent := store.Budget{Account: "alice", Now: time.Unix(1000, 0), Every: time.Hour, Burst: 1}
	h.wantErr("PutGroupState v6 on a budget", h.s.PutGroupState(h.ctx, gid(1), 6, state(1, 6), []string{"carol"}, spent), nil)
	var se *store.SpentError
	if err := h.s.PutGroupState(h.ctx, gid(1), 7, state(1, 7), []string{"erin"}, spent); !errors.As(err, &se) {
		h.Errorf("PutGroupState v7 on a spent budget: got %v, want a *store.SpentError", err)
	}
	h.wantSpan(1, "alice", 1, 5, 6)
	h.wantSpan(1, "bob", 1, 5, 6)
	h.wantSpan(1, "dan", 3, 4, 6)
	h.wantSpan(1, "carol", 6, 6, 6)
	h.wantSpan(1, "erin", 0, 0, 6)
	h.wantSpan(1, "al", 0, 0, 6) // a prefix of a member's name
	// Groups are independent, ids that begin alike included.
	long := append(gid(1), 0)
	h.wantErr("PutGroupState of a longer id", h.s.PutGroupState(h.ctx, long, 1, []byte("long"), []string{"erin"}, noBudget), nil)
	if f, l, c, err := h.s.GroupSpan(h.ctx, long, "alice"); err != nil || f != 0 || l != 0 || c != 1 {
		h.Errorf("GroupSpan of a longer id for alice: got %d, %d, %d, %v; want 0, 0, 1", f, l, c, err)
	}
	h.wantSpan(1, "erin", 0, 0, 6)
}

func testGroupSpanReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	h.putNamed(1, 1, "alice", "bob")
	h.putNamed(1, 2, "alice")
	h.reopen()
	h.wantSpan(1, "bob", 1, 1, 2)
	h.putNamed(1, 3, "alice", "bob")
	h.wantSpan(1, "bob", 1, 3, 3)
	h.wantSpan(1, "alice", 1, 3, 3)
}
