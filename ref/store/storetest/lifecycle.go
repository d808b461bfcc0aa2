package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/missive-protocol/missive/ref/store"
)

var lifecycleTests = []test{
	{"Closed", testClosed},
	{"DoneContext", testDoneContext},
	{"NoAliasing", testNoAliasing},
	{"Reopen", testReopen},
}

// calls is one call of every method, for the tests that expect every one of
// them to fail the same way.
func calls(s store.Store, ctx context.Context) []struct {
	name string
	call func() error
} {
	a := store.Address{Account: "alice", Device: 1}
	e := msg(store.Address{Account: "bob", Device: 1}, a, "m", 0, "c", 0)
	return []struct {
		name string
		call func() error
	}{
		{"CreateAccount", func() error {
			return s.CreateAccount(ctx, "carol", store.Device{ID: 1, IdentityKey: ik(1), Created: at(0)})
		}},
		{"Account", func() error { _, err := s.Account(ctx, "alice"); return err }},
		{"AddDevice", func() error { _, err := s.AddDevice(ctx, "alice", ik(2), at(0)); return err }},
		{"RemoveDevice", func() error { return s.RemoveDevice(ctx, a) }},
		{"PutPrekeys", func() error {
			_, err := s.PutPrekeys(ctx, a, store.PrekeyUpdate{OneTimeEC: pks(9)})
			return err
		}},
		{"TakeBundle", func() error { _, _, err := s.TakeBundle(ctx, a, store.Budget{}); return err }},
		{"PrekeyCounts", func() error { _, _, err := s.PrekeyCounts(ctx, a); return err }},
		{"Enqueue", func() error {
			_, _, err := s.Enqueue(ctx, []store.Entry{e}, store.Quota{}, at(1000))
			return err
		}},
		{"Pending", func() error { _, err := s.Pending(ctx, a, at(0), nil, 10); return err }},
		{"SetAttempt", func() error { return s.SetAttempt(ctx, a, 1, 2) }},
		{"Ack", func() error { return s.Ack(ctx, a, []uint64{1}) }},
		{"Queued", func() error { _, err := s.Queued(ctx, a, []uint64{1}); return err }},
		{"Expire", func() error { _, err := s.Expire(ctx, at(1e9)); return err }},
		{"Stats", func() error { _, err := s.Stats(ctx, a); return err }},
		{"TotalEntries", func() error { _, err := s.TotalEntries(ctx); return err }},
		{"SetPrivacy", func() error { return s.SetPrivacy(ctx, "alice", store.Privacy{}) }},
		{"Privacy", func() error { _, err := s.Privacy(ctx, "alice"); return err }},
		{"SetContacts", func() error { return s.SetContacts(ctx, "alice", []string{"x"}) }},
		{"Contacts", func() error { _, err := s.Contacts(ctx, "alice"); return err }},
		{"SetLastSeen", func() error { return s.SetLastSeen(ctx, "alice", at(5)) }},
		{"LastSeen", func() error { _, err := s.LastSeen(ctx, "alice"); return err }},
		{"DeviceListAt", func() error { _, err := s.DeviceListAt(ctx, "alice", 1); return err }},
		{"PutGroupState", func() error { return s.PutGroupState(ctx, gid(9), 1, []byte("s"), nil, noBudget) }},
		{"GroupState", func() error { _, _, err := s.GroupState(ctx, gid(1)); return err }},
		{"GroupStates", func() error { _, _, err := s.GroupStates(ctx, gid(1), 1, 10); return err }},
		{"GroupSpan", func() error { _, _, _, err := s.GroupSpan(ctx, gid(1), "alice"); return err }},
		{"CreateBlob", func() error { _, _, err := s.CreateBlob(ctx, newBlob("new", "alice", []byte("x"), 0), 0); return err }},
		{"Blob", func() error { _, err := s.Blob(ctx, "b"); return err }},
		{"AppendBlob", func() error {
			_, err := s.AppendBlob(ctx, "b", store.BlobAppend{Offset: 1, Data: []byte("y"), Now: at(0)})
			return err
		}},
		{"ReadBlob", func() error { _, _, err := s.ReadBlob(ctx, "b", 0, 1); return err }},
		{"DeleteBlob", func() error { return s.DeleteBlob(ctx, "b") }},
		{"ExpireBlobs", func() error { _, _, err := s.ExpireBlobs(ctx, at(1e12)); return err }},
	}
}

// populate gives alice/1 and bob/1 prekeys and an entry, for the tests that
// check that a failed call changed nothing.
func (h *harness) populate() {
	h.Helper()
	alice, bob := h.account("alice"), h.account("bob")
	h.reachable(alice)
	h.put(alice, store.PrekeyUpdate{OneTimeEC: pks(1)})
	h.enqueue(msg(alice, bob, "x", 0, "c", 0))
	h.wantErr("PutDeviceList", h.s.PutDeviceList(h.ctx, "alice", []byte("v1"), 1, nil, nil), nil)
	h.putGroup(1, 1)
	h.create(newBlob("b", "alice", []byte("xy"), 0), 0)
	h.appendAll("b", []byte("x"), 0, 1, 0)
}

func testClosed(h *harness) {
	h.populate()
	h.wantErr("Close", h.s.Close(), nil)
	for _, c := range calls(h.s, h.ctx) {
		h.wantErr(c.name+" after Close", c.call(), store.ErrClosed)
	}
	h.wantErr("Close again", h.s.Close(), store.ErrClosed)
}

func testDoneContext(h *harness) {
	h.populate()
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	for _, c := range calls(h.s, ctx) {
		h.wantErr(c.name+" with a canceled context", c.call(), context.Canceled)
	}
	// Nothing changed.
	if _, err := h.s.Account(h.ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		h.Errorf("Account(carol): got %v, want %v", err, store.ErrNotFound)
	}
	a, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	if len(a.Devices) != 1 || a.Devices[0].Removed {
		h.Errorf("Account(alice): got %+v, want one device, not removed", a.Devices)
	}
	alice := store.Address{Account: "alice", Device: 1}
	if c, ok := h.counts(alice); c != (store.Counts{EC: 1}) || !ok {
		h.Errorf("PrekeyCounts: got %+v, %t, want {1 0}, true", c, ok)
	}
	if got := h.total(); got != 1 {
		h.Errorf("TotalEntries: got %d, want 1", got)
	}
	if es := h.pending(alice, at(0)); len(es) != 1 || es[0].Attempt != 0 {
		h.Errorf("Pending: got %+v, want one entry at attempt 0", es)
	}
	if p, _ := h.s.Privacy(h.ctx, "alice"); p != (store.Privacy{LastSeen: contacts, Online: contacts}) {
		h.Errorf("Privacy: got %+v, want the default", p)
	}
	h.wantGroup(1, 1)
	if _, _, err := h.s.GroupState(h.ctx, gid(9)); !errors.Is(err, store.ErrNotFound) {
		h.Errorf("GroupState(9): got %v, want %v", err, store.ErrNotFound)
	}
	if b, err := h.s.Blob(h.ctx, "b"); err != nil || b.Received != 1 {
		h.Errorf("Blob(b): got %+v, %v, want 1 byte received", b, err)
	}
	if _, err := h.s.Blob(h.ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		h.Errorf("Blob(new): got %v, want %v", err, store.ErrNotFound)
	}
}

func testNoAliasing(h *harness) {
	key := ik(1)
	h.wantErr("CreateAccount", h.s.CreateAccount(h.ctx, "alice", store.Device{ID: 1, IdentityKey: key, Created: at(0)}), nil)
	alice := store.Address{Account: "alice", Device: 1}
	bob := h.account("bob")
	sp, lr, ec := pk(1), pk(100), pks(1, 2)
	h.put(alice, store.PrekeyUpdate{SignedPrekey: &sp, LastResort: &lr, OneTimeEC: ec})
	e := msg(alice, bob, "m", 0, "secret", 0)
	h.enqueue(e)
	list := []string{"bob", "carol"}
	h.wantErr("SetContacts", h.s.SetContacts(h.ctx, "alice", list), nil)

	// The caller changes what it passed.
	key[5]++
	sp.Key[1]++
	sp.Signature[0]++
	ec[1].Key[1]++
	e.Ciphertext[0]++
	e.MessageID[0]++
	list[0] = "mallory"

	acc, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	if !bytes.Equal(acc.Devices[0].IdentityKey, ik(1)) {
		h.Errorf("identity key: got %x, want %x", acc.Devices[0].IdentityKey, ik(1))
	}
	acc.Devices[0].IdentityKey[5]++ // and what it got
	acc2, _ := h.s.Account(h.ctx, "alice")
	if !bytes.Equal(acc2.Devices[0].IdentityKey, ik(1)) {
		h.Errorf("identity key after changing a result: got %x, want %x", acc2.Devices[0].IdentityKey, ik(1))
	}
	es := h.pending(alice, at(0))
	if len(es) != 1 || string(es[0].Ciphertext) != "secret" || string(es[0].MessageID) != "m" {
		h.Fatalf("Pending: got %+v, want the entry as enqueued", es)
	}
	es[0].Ciphertext[0]++
	if es := h.pending(alice, at(0)); string(es[0].Ciphertext) != "secret" {
		h.Errorf("Pending after changing a result: got %q, want %q", es[0].Ciphertext, "secret")
	}
	got, _ := h.s.Contacts(h.ctx, "alice")
	if !slices.Equal(got, []string{"bob", "carol"}) {
		h.Errorf("Contacts: got %q, want [bob carol]", got)
	}
	b, _ := h.take(alice)
	h.wantPrekey("signed prekey", b.SignedPrekey, pk(1))
	h.wantPrekey("one-time EC prekey", *b.OneTimeEC, pk(1))
	b.SignedPrekey.Key[1]++
	b.KEMPrekey.Signature[0]++
	b, _ = h.take(alice)
	h.wantPrekey("signed prekey", b.SignedPrekey, pk(1))
	h.wantPrekey("last-resort prekey", b.KEMPrekey, pk(100))
	h.wantPrekey("one-time EC prekey", *b.OneTimeEC, pk(2))
}

func testReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("the backend is not durable")
	}
	alice, bob := h.account("alice"), h.account("bob")
	a2, a3 := h.device("alice"), h.device("alice")
	h.wantErr("RemoveDevice", h.s.RemoveDevice(h.ctx, a2), nil)
	h.put(alice, store.PrekeyUpdate{SignedPrekey: ptr(pk(1)), LastResort: ptr(pk(100)), OneTimeEC: pks(1, 2, 3, 4), OneTimeKEM: pks(1, 2, 3)})
	h.take(alice)
	h.take(alice)
	h.reachable(a3)
	h.put(bob, store.PrekeyUpdate{OneTimeEC: pks(5)})

	es := []store.Entry{
		msg(alice, bob, "m1", 0, "one", 10),
		msg(alice, bob, "m2", 2, "two", 20),
		msg(alice, bob, "m3", 1, "three", 30),
		msg(alice, bob, "m4", 0, "four", 40),
	}
	for i := range es {
		es[i].QueueID = h.enqueue(es[i])[0]
	}
	toBob := msg(bob, alice, "hi", 1, "to bob", 50)
	toBob.QueueID = h.enqueue(toBob)[0]
	h.wantErr("SetAttempt", h.s.SetAttempt(h.ctx, alice, es[1].QueueID, 3), nil)
	es[1].Attempt = 3
	h.wantErr("Ack", h.s.Ack(h.ctx, alice, []uint64{es[3].QueueID}), nil)
	// A pair remembered briefly, forgotten by Expire before the restart.
	brief := []store.Entry{msg(bob, alice, "brief", 0, "b", 60)}
	if _, _, err := h.s.Enqueue(h.ctx, brief, store.Quota{}, at(70)); err != nil {
		h.Fatalf("Enqueue: %v", err)
	}
	if _, err := h.s.Expire(h.ctx, at(70)); err != nil {
		h.Fatalf("Expire: %v", err)
	}
	h.wantErr("SetPrivacy", h.s.SetPrivacy(h.ctx, "alice", store.Privacy{LastSeen: everyone, Online: nobody}), nil)
	h.wantErr("SetContacts", h.s.SetContacts(h.ctx, "alice", []string{"bob", "carol"}), nil)
	h.wantErr("SetLastSeen", h.s.SetLastSeen(h.ctx, "alice", at(99)), nil)

	h.reopen()

	acc, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	h.wantDevices("Account", acc.Devices, []store.Device{
		{ID: 1, IdentityKey: ik(1), Created: at(0)},
		{ID: 2, IdentityKey: ik(9), Created: at(1), Removed: true},
		{ID: 3, IdentityKey: ik(9), Created: at(1)},
	})
	h.wantErr("CreateAccount(bob)", h.s.CreateAccount(h.ctx, "bob", store.Device{ID: 1}), store.ErrExists)
	if got := h.device("alice").Device; got != 4 {
		h.Errorf("AddDevice after reopen: got %d, want 4", got)
	}

	// Prekeys: counts, reachability, ids taken stay taken.
	if c, ok := h.counts(alice); c != (store.Counts{EC: 2, KEM: 1}) || !ok {
		h.Errorf("PrekeyCounts(alice/1): got %+v, %t, want {2 1}, true", c, ok)
	}
	if c, ok := h.counts(a3); c != (store.Counts{}) || !ok {
		h.Errorf("PrekeyCounts(alice/3): got %+v, %t, want {0 0}, true", c, ok)
	}
	if c, ok := h.counts(bob); c != (store.Counts{EC: 1}) || ok {
		h.Errorf("PrekeyCounts(bob/1): got %+v, %t, want {1 0}, false", c, ok)
	}
	for _, u := range []store.PrekeyUpdate{{OneTimeEC: pks(1)}, {OneTimeKEM: pks(2)}, {SignedPrekey: ptr(pk(1))}, {OneTimeKEM: pks(100)}} {
		_, err := h.s.PutPrekeys(h.ctx, alice, u)
		h.wantErr("PutPrekeys of a used id after reopen", err, store.ErrDuplicatePrekey)
	}
	b, c := h.take(alice)
	if b.OneTimeEC == nil || b.OneTimeEC.ID != 3 || b.KEMPrekey.ID != 3 || b.LastResort || c != (store.Counts{EC: 1}) {
		h.Errorf("TakeBundle after reopen: got EC %+v, KEM %d (last resort %t), counts %+v, want 3, 3 (false), {1 0}", b.OneTimeEC, b.KEMPrekey.ID, b.LastResort, c)
	}
	h.wantPrekey("signed prekey", b.SignedPrekey, pk(1))

	// Queues, attempts, order, counters.
	h.wantEntries("Pending(alice/1) after reopen", h.pending(alice, at(0)), []store.Entry{es[1], es[2], es[0]})
	h.wantEntries("Pending(bob/1) after reopen", h.pending(bob, at(0)), []store.Entry{toBob, brief[0]})
	if st := h.stats(alice); st != (store.QueueStats{Entries: 3, Bytes: 11}) {
		h.Errorf("Stats(alice/1) after reopen: got %+v, want {3 11}", st)
	}
	if got := h.total(); got != 5 {
		h.Errorf("TotalEntries after reopen: got %d, want 5", got)
	}
	// Remembered pairs: kept, and forgotten.
	accepted, dup, err := h.s.Enqueue(h.ctx, []store.Entry{msg(alice, bob, "m4", 0, "again", 100)}, store.Quota{}, at(1e6))
	if err != nil || !dup || !accepted.Equal(at(40)) {
		h.Errorf("Enqueue of an acked message after reopen: got %v, %t, %v, want %v, true, nil", accepted, dup, err, at(40))
	}
	late := msg(bob, alice, "brief", 0, "b", 100)
	late.QueueID = h.enqueue(late)[0]
	if late.QueueID <= toBob.QueueID {
		h.Errorf("queue id after reopen: got %d, want more than %d", late.QueueID, toBob.QueueID)
	}

	// Presence.
	if p, _ := h.s.Privacy(h.ctx, "alice"); p != (store.Privacy{LastSeen: everyone, Online: nobody}) {
		h.Errorf("Privacy after reopen: got %+v, want {0 2}", p)
	}
	if p, _ := h.s.Privacy(h.ctx, "bob"); p != (store.Privacy{LastSeen: contacts, Online: contacts}) {
		h.Errorf("Privacy(bob) after reopen: got %+v, want the default", p)
	}
	if got, _ := h.s.Contacts(h.ctx, "alice"); !slices.Equal(got, []string{"bob", "carol"}) {
		h.Errorf("Contacts after reopen: got %q, want [bob carol]", got)
	}
	if got, _ := h.s.LastSeen(h.ctx, "alice"); !got.Equal(at(99)) {
		h.Errorf("LastSeen after reopen: got %v, want %v", got, at(99))
	}

	// What was written after the first reopen survives a second, and the
	// expiry bookkeeping still works.
	h.reopen()
	h.wantEntries("Pending(bob/1) after a second reopen", h.pending(bob, at(0)), []store.Entry{toBob, brief[0], late})
	if c, _ := h.counts(alice); c != (store.Counts{EC: 1}) {
		h.Errorf("PrekeyCounts after a second reopen: got %+v, want {1 0}", c)
	}
	n, err := h.s.Expire(h.ctx, at(1e9))
	if err != nil || n != 6 {
		h.Errorf("Expire after reopen: got %d, %v, want 6, nil", n, err)
	}
	if got := h.total(); got != 0 {
		h.Errorf("TotalEntries after Expire: got %d, want 0", got)
	}
	h.reopen()
	if got := h.total(); got != 0 {
		h.Errorf("TotalEntries after Expire and reopen: got %d, want 0", got)
	}
	if st := h.stats(alice); st != (store.QueueStats{}) {
		h.Errorf("Stats after Expire and reopen: got %+v, want zero", st)
	}
}
