package client

import (
	"crypto/rand"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestReaddNotByServerAlone checks GRP-001 step 4 and GRP-003 for a device
// removed from a group and added again after changes it was not part of:
// it takes the state that adds it again only once it has checked every
// state in between, which get-group serves it (GRP-004), whoever signed
// that state. Taken as a first state, a server alone could fork the view
// of every group a device was removed from or left: it makes an account,
// signs with its key a later version of the group that names the device
// and makes that account an admin, and serves it; the device then follows
// the made-up group under the real group's id and history, and gives its
// sender key to the server's account. Taken as a first state when an
// admin of the removal signed it (the rule before), a device could not
// follow a group whose admin at its return became one while it was away.
func TestReaddNotByServerAlone(t *testing.T) {
	carol, malIK, malList, mal, gid := readdWorld(t)
	oscarIK := newKey(t)
	sign := func(k *keys.PrivateKey, list []byte, author wire.Address, v uint64, ms ...wire.GroupMember) *group.State {
		t.Helper()
		s, err := group.Sign(k, author, list, gid, v, ms, "", 1000*v, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	accept := func(s *group.State) error {
		return carol.db.Update(func(tx *bolt.Tx) error { _, err := carol.acceptGroupState(tx, s.Signed, gid); return err })
	}
	for _, s := range []*group.State{
		sign(malIK, malList, mal, 1, groupMember("carol"), groupAdmin("mallory")),
		sign(malIK, malList, mal, 2, groupAdmin("mallory")), // carol removed
	} {
		if err := accept(s); err != nil {
			t.Fatal(err)
		}
	}

	// The server's own account oscar, which carol never met, "adds her
	// again" at version 5 as its admin.
	forged := sign(oscarIK, soleList(t, oscarIK, "oscar"), wire.Address{Account: "oscar", Device: 1}, 5, groupMember("carol"), groupAdmin("mallory"), groupAdmin("oscar"))
	if err := accept(forged); err == nil {
		t.Errorf("a state of version 5 by oscar, no admin at carol's removal: accepted, want it refused")
	}
	if v, left := groupVersion(carol, gid); v != 2 || !left {
		t.Errorf("carol's group after oscar's state: version %d, left %v; want version 2, left", v, left)
	}

	// mallory, the admin who removed her, adds her again at version 5: a
	// gap too, until the states in between come.
	var gap errGroupGap
	readd := sign(malIK, malList, mal, 5, groupMember("carol"), groupAdmin("mallory"))
	if err := accept(readd); !errors.As(err, &gap) || gap.from != 3 {
		t.Errorf("mallory adds carol again at version 5, carol at 2: got %v, want a gap from 3", err)
	}
	// With them, whoever the admin of version 5 became in between.
	for _, s := range []*group.State{
		sign(malIK, malList, mal, 3, groupAdmin("mallory"), groupMember("oscar")),
		sign(malIK, malList, mal, 4, groupAdmin("mallory"), groupAdmin("oscar")),
		sign(oscarIK, soleList(t, oscarIK, "oscar"), wire.Address{Account: "oscar", Device: 1}, 5, groupMember("carol"), groupAdmin("mallory"), groupAdmin("oscar")),
	} {
		if err := accept(s); err != nil {
			t.Fatalf("version %d: %v", s.Serial, err)
		}
	}
	if v, left := groupVersion(carol, gid); v != 5 || left {
		t.Errorf("carol's group after the states in between: version %d, left %v; want version 5, a member", v, left)
	}
}

// TestReaddKeepsKeysGivenWhileAway checks GRP-011 for a device that catches
// up on the states made while it was away from a group: a member's sender
// key it accepted after its removal (GRP-006; the member's message may come
// before the content that adds it again) is kept, since none of those
// states removes it again. Deleted at each, the member's message was lost
// (from a review).
func TestReaddKeepsKeysGivenWhileAway(t *testing.T) {
	carol, malIK, malList, mal, gid := readdWorld(t)
	accept := func(v uint64, ms ...wire.GroupMember) {
		t.Helper()
		if err := acceptSigned(carol, malIK, malList, mal, gid, v, ms...); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	held := func() int {
		t.Helper()
		var n int
		err := carol.db.View(func(tx *bolt.Tx) error {
			ks, err := getSenderKeys(tx, gid, wire.Address{Account: "dave", Device: 1})
			n = len(ks)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	accept(1, groupMember("carol"), groupMember("dave"), groupAdmin("mallory"))
	accept(2, groupMember("dave"), groupAdmin("mallory")) // carol removed
	k, err := group.New(gid, 5, 1, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dist := k.Distribution()
	if err := carol.db.Update(func(tx *bolt.Tx) error {
		return carol.acceptSenderKey(tx, wire.Address{Account: "dave", Device: 1}, &dist)
	}); err != nil {
		t.Fatal(err)
	}
	accept(3, groupMember("dave"), groupMember("erin"), groupAdmin("mallory"))
	accept(4, groupMember("dave"), groupAdmin("mallory"))
	accept(5, groupMember("carol"), groupMember("dave"), groupAdmin("mallory")) // carol back
	if n := held(); n != 1 {
		t.Errorf("dave's sender keys after carol caught up: got %d, want 1", n)
	}
	accept(6, groupMember("dave"), groupAdmin("mallory")) // carol removed again
	if n := held(); n != 0 {
		t.Errorf("dave's sender keys after carol's second removal: got %d, want 0", n)
	}
}

// readdWorld returns carol's device, which knows mallory (her key, her
// list and her device's address), and a new group id.
func readdWorld(t *testing.T) (carol *Device, malIK *keys.PrivateKey, malList []byte, mal wire.Address, gid []byte) {
	t.Helper()
	carol = offline(t, "carol", nil)
	malIK = newKey(t)
	sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
	gid = make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	return carol, malIK, carol.DeviceList("mallory").Signed, wire.Address{Account: "mallory", Device: 1}, gid
}

// TestKeyFromMemberAddedWhileAway checks GRP-006 for a sender key from an
// account added to a group while the device was away from it: the key,
// whose epoch is above the device's version, makes it fetch the states it
// misses (a gap), and is then accepted; a key of an epoch the device holds
// from an account its state does not list is refused. Checked against the
// device's state alone, the key of a member added while it was away, sent
// before the device caught up, was refused for good (from a review).
func TestKeyFromMemberAddedWhileAway(t *testing.T) {
	carol, malIK, malList, mal, gid := readdWorld(t)
	accept := func(v uint64, ms ...wire.GroupMember) {
		t.Helper()
		if err := acceptSigned(carol, malIK, malList, mal, gid, v, ms...); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	erin := wire.Address{Account: "erin", Device: 1}
	give := func(epoch uint64) error {
		t.Helper()
		k, err := group.New(gid, epoch, uint32(epoch), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		dist := k.Distribution()
		return carol.db.Update(func(tx *bolt.Tx) error { return carol.acceptSenderKey(tx, erin, &dist) })
	}
	accept(1, groupMember("carol"), groupMember("dave"), groupAdmin("mallory"))
	accept(2, groupMember("dave"), groupAdmin("mallory")) // carol removed
	if err := give(2); errcode.Of(err) != errcode.PolicyNotMember {
		t.Errorf("erin's key of epoch 2, carol at 2: got %v, want %v", err, errcode.PolicyNotMember)
	}
	var gap errGroupGap
	if err := give(4); !errors.As(err, &gap) || gap.from != 3 || !gap.update {
		t.Errorf("erin's key of epoch 4, carol at 2: got %v, want a gap from 3 that GRP-017 bounds", err)
	}
	accept(3, groupMember("dave"), groupMember("erin"), groupAdmin("mallory"))
	accept(4, groupMember("carol"), groupMember("dave"), groupMember("erin"), groupAdmin("mallory")) // carol back
	if err := give(4); err != nil {
		t.Errorf("erin's key of epoch 4 once carol holds version 4: %v", err)
	}
}

// groupAdmin and groupMember are an account's entries in a member list.
func groupAdmin(a string) wire.GroupMember { return wire.GroupMember{Account: a, Role: wire.RoleAdmin} }
func groupMember(a string) wire.GroupMember {
	return wire.GroupMember{Account: a, Role: wire.RoleMember}
}

// acceptSigned has d accept version v of group gid, with members ms,
// signed by the device author of a list (key k).
func acceptSigned(d *Device, k *keys.PrivateKey, list []byte, author wire.Address, gid []byte, v uint64, ms ...wire.GroupMember) error {
	s, err := group.Sign(k, author, list, gid, v, ms, "", 1000*v, rand.Reader)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error { _, err := d.acceptGroupState(tx, s.Signed, gid); return err })
}
