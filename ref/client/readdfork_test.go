package client

import (
	"crypto/rand"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestReaddNotByServerAlone checks the exception of GRP-001 step 4 for a
// device removed from a group and added again after changes it was not
// part of: it takes the state that adds it again as a first state only
// when its author's account is an admin in the state it holds (its
// removal). Taken as a first state whoever signed it, a server alone could
// fork the view of every group a device was removed from or left: it
// makes an account, signs with its key a later version of the group that
// names the device and makes that account an admin, and serves it; the
// device then follows the made-up group under the real group's id and
// history, and gives its sender key to the server's account.
func TestReaddNotByServerAlone(t *testing.T) {
	carol := offline(t, "carol", nil)
	malIK := newKey(t)
	sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
	malList := carol.DeviceList("mallory").Signed
	mal := wire.Address{Account: "mallory", Device: 1}
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	oscarIK := newKey(t)
	sign := func(k *keys.PrivateKey, list []byte, author wire.Address, v uint64, ms ...wire.GroupMember) *group.State {
		t.Helper()
		s, err := group.Sign(k, author, list, gid, v, ms, "", 1000*v, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin := func(a string) wire.GroupMember { return wire.GroupMember{Account: a, Role: wire.RoleAdmin} }
	member := func(a string) wire.GroupMember { return wire.GroupMember{Account: a, Role: wire.RoleMember} }
	accept := func(s *group.State) error {
		return carol.db.Update(func(tx *bolt.Tx) error { _, err := carol.acceptGroupState(tx, s.Signed, gid); return err })
	}
	for _, s := range []*group.State{
		sign(malIK, malList, mal, 1, member("carol"), admin("mallory")),
		sign(malIK, malList, mal, 2, admin("mallory")), // carol removed
	} {
		if err := accept(s); err != nil {
			t.Fatal(err)
		}
	}

	// The server's own account oscar, which carol never met, "adds her
	// again" at version 5 as its admin.
	forged := sign(oscarIK, soleList(t, oscarIK, "oscar"), wire.Address{Account: "oscar", Device: 1}, 5, member("carol"), admin("mallory"), admin("oscar"))
	if err := accept(forged); err == nil {
		t.Errorf("a state of version 5 by oscar, no admin at carol's removal: accepted, want it refused")
	}
	if v, left := groupVersion(carol, gid); v != 2 || !left {
		t.Errorf("carol's group after oscar's state: version %d, left %v; want version 2, left", v, left)
	}

	// mallory, the admin who removed her, adds her again at version 5.
	if err := accept(sign(malIK, malList, mal, 5, member("carol"), admin("mallory"))); err != nil {
		var gap errGroupGap
		t.Errorf("mallory adds carol again at version 5: got %v (gap %v), want it accepted", err, errors.As(err, &gap))
	}
	if v, left := groupVersion(carol, gid); v != 5 || left {
		t.Errorf("carol's group after mallory's state: version %d, left %v; want version 5, a member", v, left)
	}
}
