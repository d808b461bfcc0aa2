package storetest

import (
	"bytes"

	"github.com/missive-protocol/missive/ref/store"
)

var deviceListTests = []test{
	{"DeviceListNone", testDeviceListNone},
	{"DeviceListVersions", testDeviceListVersions},
	{"DeviceListAddsAndRemoves", testDeviceListAddsAndRemoves},
	{"DeviceListRefusalStoresNothing", testDeviceListRefusal},
	{"DeviceListReopen", testDeviceListReopen},
}

func (h *harness) wantList(name string, want []byte, version uint64) {
	h.Helper()
	got, v, err := h.s.DeviceList(h.ctx, name)
	h.wantErr("DeviceList", err, nil)
	if v != version || !bytes.Equal(got, want) {
		h.Errorf("DeviceList(%q): got version %d, %x; want %d, %x", name, v, got, version, want)
	}
}

func testDeviceListNone(h *harness) {
	h.account("alice")
	h.wantList("alice", nil, 0)
	_, _, err := h.s.DeviceList(h.ctx, "bob")
	h.wantErr("DeviceList(bob)", err, store.ErrNotFound)
	h.wantErr("PutDeviceList(bob)", h.s.PutDeviceList(h.ctx, "bob", []byte("v1"), 1, nil, nil), store.ErrNotFound)
}

func testDeviceListVersions(h *harness) {
	h.account("alice")
	h.wantErr("PutDeviceList v2 first", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, nil, nil), store.ErrConflict)
	h.wantErr("PutDeviceList v1", h.s.PutDeviceList(h.ctx, "alice", []byte("v1"), 1, nil, nil), nil)
	h.wantList("alice", []byte("v1"), 1)
	h.wantErr("PutDeviceList v1 again", h.s.PutDeviceList(h.ctx, "alice", []byte("v1'"), 1, nil, nil), store.ErrConflict)
	h.wantErr("PutDeviceList v3", h.s.PutDeviceList(h.ctx, "alice", []byte("v3"), 3, nil, nil), store.ErrConflict)
	h.wantErr("PutDeviceList v2", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, nil, nil), nil)
	h.wantList("alice", []byte("v2"), 2)
}

func testDeviceListAddsAndRemoves(h *harness) {
	a := h.account("alice")
	h.reachable(a)
	h.wantErr("PutDeviceList v1", h.s.PutDeviceList(h.ctx, "alice", []byte("v1"), 1, nil, nil), nil)
	add := []store.Device{{ID: 2, IdentityKey: ik(22), Created: at(5)}, {ID: 3, IdentityKey: ik(23), Created: at(6)}}
	h.wantErr("PutDeviceList v2", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, add, nil), nil)
	acc, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	h.wantDevices("Account after adding", acc.Devices, []store.Device{{ID: 1, IdentityKey: ik(1), Created: at(0)}, add[0], add[1]})
	two := store.Address{Account: "alice", Device: 2}
	h.reachable(two)
	h.enqueue(store.Entry{Recipient: two, MessageID: []byte("m1"), Sender: a, Ciphertext: []byte{1}, AcceptedAt: at(0), ExpiresAt: at(1e9)})
	h.wantErr("PutDeviceList v3", h.s.PutDeviceList(h.ctx, "alice", []byte("v3"), 3, nil, []uint32{2}), nil)
	acc, _ = h.s.Account(h.ctx, "alice")
	removed := add[0]
	removed.Removed = true
	h.wantDevices("Account after removing", acc.Devices, []store.Device{{ID: 1, IdentityKey: ik(1), Created: at(0)}, removed, add[1]})
	if _, ok := h.counts(two); ok {
		h.Error("removed device still reachable")
	}
	if st := h.stats(two); st.Entries != 0 {
		h.Errorf("removed device's queue: got %d entries, want 0", st.Entries)
	}
	// A new device gets a new id: 2 is never reused.
	reuse := []store.Device{{ID: 2, IdentityKey: ik(24), Created: at(7)}}
	h.wantErr("PutDeviceList reusing 2", h.s.PutDeviceList(h.ctx, "alice", []byte("v4"), 4, reuse, nil), store.ErrConflict)
	four := []store.Device{{ID: 4, IdentityKey: ik(24), Created: at(7)}}
	h.wantErr("PutDeviceList adding 4", h.s.PutDeviceList(h.ctx, "alice", []byte("v4"), 4, four, nil), nil)
}

func testDeviceListRefusal(h *harness) {
	h.account("alice")
	h.wantErr("PutDeviceList v1", h.s.PutDeviceList(h.ctx, "alice", []byte("v1"), 1, nil, nil), nil)
	bad := []store.Device{{ID: 5, IdentityKey: ik(25)}, {ID: 5, IdentityKey: ik(26)}}
	h.wantErr("PutDeviceList duplicate ids", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, bad, nil), store.ErrConflict)
	h.wantErr("PutDeviceList removing 9", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, nil, []uint32{9}), store.ErrNotFound)
	h.wantList("alice", []byte("v1"), 1)
	acc, _ := h.s.Account(h.ctx, "alice")
	if len(acc.Devices) != 1 {
		h.Errorf("devices after refusals: got %d, want 1", len(acc.Devices))
	}
}

func testDeviceListReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	h.account("alice")
	add := []store.Device{{ID: 2, IdentityKey: ik(22), Created: at(5)}}
	h.wantErr("PutDeviceList v1", h.s.PutDeviceList(h.ctx, "alice", []byte("v1"), 1, nil, nil), nil)
	h.wantErr("PutDeviceList v2", h.s.PutDeviceList(h.ctx, "alice", []byte("v2"), 2, add, nil), nil)
	h.reopen()
	h.wantList("alice", []byte("v2"), 2)
	acc, err := h.s.Account(h.ctx, "alice")
	h.wantErr("Account", err, nil)
	if len(acc.Devices) != 2 {
		h.Errorf("devices after reopen: got %d, want 2", len(acc.Devices))
	}
}
