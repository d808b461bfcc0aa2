package storetest

import (
	"fmt"

	"github.com/missive-protocol/missive/ref/store"
)

var accountTests = []test{
	{"CreateAccount", testCreateAccount},
	{"AccountNotFound", testAccountNotFound},
	{"AddDevice", testAddDevice},
	{"RemoveDevice", testRemoveDevice},
	{"RemoveDeviceDeletesPrekeysAndQueue", testRemoveDeviceDeletes},
	{"AccountsIsolated", testAccountsIsolated},
}

func testCreateAccount(h *harness) {
	primary := store.Device{ID: 1, IdentityKey: ik(7), Created: at(42)}
	h.wantErr("CreateAccount", h.s.CreateAccount(h.ctx, "alice", primary), nil)
	a, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	if a.Name != "alice" {
		h.Errorf("Account: got name %q, want %q", a.Name, "alice")
	}
	h.wantDevices("Account", a.Devices, []store.Device{primary})

	other := store.Device{ID: 1, IdentityKey: ik(8), Created: at(43)}
	h.wantErr("CreateAccount again", h.s.CreateAccount(h.ctx, "alice", other), store.ErrExists)
	a, err = h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	h.wantDevices("Account after a refused create", a.Devices, []store.Device{primary})

	// Names are exact: a prefix or an extension is another account.
	for _, name := range []string{"alic", "alice2", "Alice", ""} {
		if _, err := h.s.Account(h.ctx, name); err == nil {
			h.Errorf("Account(%q): got nil error, want %v", name, store.ErrNotFound)
		}
	}
	h.wantErr("CreateAccount(alic)", h.s.CreateAccount(h.ctx, "alic", primary), nil)
	h.wantErr("CreateAccount(alice2)", h.s.CreateAccount(h.ctx, "alice2", primary), nil)
}

func testAccountNotFound(h *harness) {
	h.account("alice")
	_, err := h.s.Account(h.ctx, "bob")
	h.wantErr("Account(bob)", err, store.ErrNotFound)
	_, err = h.s.AddDevice(h.ctx, "bob", ik(2), at(0))
	h.wantErr("AddDevice(bob)", err, store.ErrNotFound)
	h.wantErr("RemoveDevice(bob/1)", h.s.RemoveDevice(h.ctx, store.Address{Account: "bob", Device: 1}), store.ErrNotFound)
	h.wantErr("RemoveDevice(alice/2)", h.s.RemoveDevice(h.ctx, store.Address{Account: "alice", Device: 2}), store.ErrNotFound)
	h.wantErr("RemoveDevice(alice/0)", h.s.RemoveDevice(h.ctx, store.Address{Account: "alice", Device: 0}), store.ErrNotFound)
}

func testAddDevice(h *harness) {
	h.account("alice")
	want := []store.Device{{ID: 1, IdentityKey: ik(1), Created: at(0)}}
	for i := range 4 {
		key, created := ik(byte(20+i)), at(int64(100*i))
		id, err := h.s.AddDevice(h.ctx, "alice", key, created)
		h.wantErr("AddDevice", err, nil)
		if wantID := uint32(i + 2); id != wantID {
			h.Fatalf("AddDevice %d: got id %d, want %d", i, id, wantID)
		}
		want = append(want, store.Device{ID: id, IdentityKey: key, Created: created})
	}
	a, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	h.wantDevices("Account", a.Devices, want)

	// Each account counts on its own.
	h.account("bob")
	if got := h.device("bob").Device; got != 2 {
		h.Errorf("AddDevice(bob): got id %d, want 2", got)
	}

	// Ids follow the primary's id when it is not 1.
	h.wantErr("CreateAccount(carol)", h.s.CreateAccount(h.ctx, "carol", store.Device{ID: 7, IdentityKey: ik(3), Created: at(0)}), nil)
	if got := h.device("carol").Device; got != 8 {
		h.Errorf("AddDevice(carol): got id %d, want 8", got)
	}
}

func testRemoveDevice(h *harness) {
	alice := h.account("alice")
	d2, d3 := h.device("alice"), h.device("alice")
	h.wantErr("RemoveDevice", h.s.RemoveDevice(h.ctx, d2), nil)
	a, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	want := []store.Device{
		{ID: 1, IdentityKey: ik(1), Created: at(0)},
		{ID: 2, IdentityKey: ik(9), Created: at(1), Removed: true},
		{ID: 3, IdentityKey: ik(9), Created: at(1)},
	}
	h.wantDevices("Account", a.Devices, want)

	// Removing the highest id does not free it.
	h.wantErr("RemoveDevice", h.s.RemoveDevice(h.ctx, d3), nil)
	if got := h.device("alice").Device; got != 4 {
		h.Errorf("AddDevice after removing 3: got id %d, want 4", got)
	}
	// Removing again changes nothing.
	h.wantErr("RemoveDevice again", h.s.RemoveDevice(h.ctx, d2), nil)
	a, err = h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	want[2].Removed = true
	want = append(want, store.Device{ID: 4, IdentityKey: ik(9), Created: at(1)})
	h.wantDevices("Account", a.Devices, want)

	// A removed device takes no prekeys and no entries, and has none.
	sp, lr := pk(1), pk(2)
	_, err = h.s.PutPrekeys(h.ctx, d2, store.PrekeyUpdate{SignedPrekey: &sp, LastResort: &lr})
	h.wantErr("PutPrekeys(removed)", err, store.ErrNotFound)
	_, _, err = h.s.TakeBundle(h.ctx, d2, store.Budget{})
	h.wantErr("TakeBundle(removed)", err, store.ErrNotFound)
	c, ok, err := h.s.PrekeyCounts(h.ctx, d2)
	h.wantErr("PrekeyCounts(removed)", err, nil)
	if ok || c != (store.Counts{}) {
		h.Errorf("PrekeyCounts(removed): got %+v, %t, want {0 0}, false", c, ok)
	}
	_, _, err = h.s.Enqueue(h.ctx, []store.Entry{msg(d2, alice, "m", 0, "x", 0)}, store.Quota{}, at(1000))
	h.wantErr("Enqueue(removed)", err, store.ErrNotFound)
	if st := h.stats(d2); st != (store.QueueStats{}) {
		h.Errorf("Stats(removed): got %+v, want zero", st)
	}
}

func testRemoveDeviceDeletes(h *harness) {
	alice, bob := h.account("alice"), h.account("bob")
	b2 := h.device("bob")
	for _, a := range []store.Address{bob, b2} {
		h.reachable(a)
		h.put(a, store.PrekeyUpdate{OneTimeEC: pks(1, 2, 3), OneTimeKEM: pks(1, 2)})
	}
	for i := range 3 {
		h.enqueue(msg(bob, alice, fmt.Sprint("m", i), 0, "hello", 10), msg(b2, alice, fmt.Sprint("m", i), 0, "hello!", 10))
	}
	if got := h.total(); got != 6 {
		h.Fatalf("TotalEntries: got %d, want 6", got)
	}

	h.wantErr("RemoveDevice", h.s.RemoveDevice(h.ctx, b2), nil)
	if got := h.total(); got != 3 {
		h.Errorf("TotalEntries after RemoveDevice: got %d, want 3", got)
	}
	if st := h.stats(b2); st != (store.QueueStats{}) {
		h.Errorf("Stats(removed): got %+v, want zero", st)
	}
	if es := h.pending(b2, at(0)); len(es) != 0 {
		h.Errorf("Pending(removed): got %d entries, want 0", len(es))
	}
	if c, ok := h.counts(b2); ok || c != (store.Counts{}) {
		h.Errorf("PrekeyCounts(removed): got %+v, %t, want {0 0}, false", c, ok)
	}
	// The other device keeps everything.
	if st := h.stats(bob); st != (store.QueueStats{Entries: 3, Bytes: 15}) {
		h.Errorf("Stats(bob/1): got %+v, want {3 15}", st)
	}
	if c, ok := h.counts(bob); !ok || c != (store.Counts{EC: 3, KEM: 2}) {
		h.Errorf("PrekeyCounts(bob/1): got %+v, %t, want {3 2}, true", c, ok)
	}
	// Expire has nothing of the removed device left to count.
	n, err := h.s.Expire(h.ctx, at(10+3600_000))
	h.wantErr("Expire", err, nil)
	if n != 3 {
		h.Errorf("Expire: got %d, want 3", n)
	}
}

func testAccountsIsolated(h *harness) {
	// Names where one is a prefix of another, with the same device ids, must
	// not share prekeys or queues.
	names := []string{"a", "ab", "a\x00", "b"}
	addrs := make([]store.Address, len(names))
	for i, n := range names {
		addrs[i] = h.account(n)
		h.reachable(addrs[i])
		h.put(addrs[i], store.PrekeyUpdate{OneTimeEC: pks(uint32(10 + i))})
	}
	sender := addrs[3]
	for i, a := range addrs {
		for j := 0; j <= i; j++ {
			h.enqueue(msg(a, sender, fmt.Sprint(i, "-", j), 0, "c", 0))
		}
	}
	for i, a := range addrs {
		if st := h.stats(a); st.Entries != i+1 {
			h.Errorf("Stats(%q): got %d entries, want %d", a.Account, st.Entries, i+1)
		}
		for _, e := range h.pending(a, at(0)) {
			if e.Recipient != a {
				h.Errorf("Pending(%q): got an entry for %v", a.Account, e.Recipient)
			}
		}
		b, _ := h.take(a)
		if b.OneTimeEC == nil || b.OneTimeEC.ID != uint32(10+i) {
			h.Errorf("TakeBundle(%q): got one-time EC %+v, want id %d", a.Account, b.OneTimeEC, 10+i)
		}
	}
	h.wantErr("RemoveDevice(a/1)", h.s.RemoveDevice(h.ctx, addrs[0]), nil)
	for i, a := range addrs[1:] {
		if st := h.stats(a); st.Entries != i+2 {
			h.Errorf("Stats(%q) after removing a/1: got %d entries, want %d", a.Account, st.Entries, i+2)
		}
	}
}
