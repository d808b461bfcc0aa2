package client

import (
	"crypto/rand"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestGroupUpdateNotAccepted checks GRP-016: the state of group-update
// content is never accepted as it comes. Mallory, a peer, sends carol
// states signed in the name of bob, whom carol has not met, with a key
// mallory made up: carol keeps no state, records no key for bob (so bob's
// real list is accepted after), and asks for the group's states from the
// content's version, as from the server; content of a version she holds
// already asks for nothing.
func TestGroupUpdateNotAccepted(t *testing.T) {
	carol := offline(t, "carol", nil)
	malIK := newKey(t)
	mal := sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
	fake := newKey(t)
	l := soleList(t, fake, "bob")
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	ms := []wire.GroupMember{{Account: "bob", Role: wire.RoleAdmin}, {Account: "carol", Role: wire.RoleMember}}
	for _, v := range []uint64{1, 7} {
		s, err := group.Sign(fake, wire.Address{Account: "bob", Device: 1}, l, gid, v, ms, "", 1000, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signed := s.Signed
		_, _, err = carol.receive(mal.deliver(wire.EnvelopeControl, &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}))
		var gap errGroupGap
		if !errors.As(err, &gap) || gap.from != v {
			t.Errorf("group-update of version %d of a group carol holds no state of: got %v, want a fetch from version %d", v, err, v)
		}
	}
	carol.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketGroups).Stats().KeyN; n != 0 {
			t.Errorf("groups after group-update content alone: got %d, want 0", n)
		}
		if k := recorded(tx, "bob"); k != nil {
			t.Errorf("a key recorded for bob from a state mallory made: got %x, want none", k.Encode())
		}
		return nil
	})
	real := newKey(t)
	if err := carol.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, "bob", soleList(t, real, "bob")); return err }); err != nil {
		t.Errorf("bob's real list after mallory's states in his name: %v", err)
	}

	// A group carol holds (accepted as from the server): content of a
	// version she holds is nothing new, of the next one a fetch.
	malList := carol.DeviceList("mallory").Signed
	own, err := group.Sign(malIK, wire.Address{Account: "mallory", Device: 1}, malList, gid, 1,
		[]wire.GroupMember{{Account: "carol", Role: wire.RoleMember}, {Account: "mallory", Role: wire.RoleAdmin}}, "", 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.db.Update(func(tx *bolt.Tx) error { _, err := carol.acceptGroupState(tx, own.Signed, gid); return err }); err != nil {
		t.Fatal(err)
	}
	held := own.Signed
	if _, _, err := carol.receive(mal.deliver(wire.EnvelopeControl, &wire.Content{Type: wire.ContentGroupUpdate, Group: &held})); err != nil {
		t.Errorf("group-update of the version carol holds: got %v, want nothing to do", err)
	}
	next, err := group.Sign(malIK, wire.Address{Account: "mallory", Device: 1}, malList, gid, 2,
		[]wire.GroupMember{{Account: "carol", Role: wire.RoleMember}, {Account: "mallory", Role: wire.RoleAdmin}}, "", 2000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed := next.Signed
	_, _, err = carol.receive(mal.deliver(wire.EnvelopeControl, &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}))
	var gap errGroupGap
	if !errors.As(err, &gap) || gap.from != 2 {
		t.Errorf("group-update of the next version: got %v, want a fetch from version 2", err)
	}
	carol.db.View(func(tx *bolt.Tx) error {
		if rec, err := getGroup(tx, gid); err != nil || rec == nil || rec.Version != 1 {
			t.Errorf("the group after content of version 2 alone: got %+v, %v, want version 1", rec, err)
		}
		return nil
	})
}

// TestChangeOfUnknownTargetReadsNoHistory checks that an edit whose
// target the device does not hold is looked up in the indexes, not by
// reading every message: a peer sending such edits made each cost the
// device its whole history, under its lock. A record that does not
// decode, which the reading of every message trips on, shows it.
func TestChangeOfUnknownTargetReadsNoHistory(t *testing.T) {
	carol := offline(t, "carol", nil)
	malIK := newKey(t)
	mal := sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
	if err := carol.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).Put(u64(1<<40), []byte{0xff, 0x00})
	}); err != nil {
		t.Fatal(err)
	}
	target := make([]byte, wire.MessageIDSize)
	rand.Read(target)
	text := "an edit of nothing carol holds"
	del := mal.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentEdit, Target: &target, Text: &text})
	if _, _, err := carol.receive(del); err != nil {
		t.Errorf("an edit of an unknown target: got %v, want it kept (LIF-005) without reading the history", err)
	}
}

// soleList is version 1 of account's device list, made at 1000 ms, that
// lists device 1 alone with ik, signed by ik.
func soleList(t *testing.T, ik *keys.PrivateKey, account string) []byte {
	t.Helper()
	l, err := devices.Sign(ik, account, 1, []wire.ListedDevice{{Device: 1, IdentityKey: ik.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return l.Signed
}

// TestKeptChangesByTarget checks the index of kept changes (LIF-005): a
// message that arrives applies the edit kept for it, found by its index,
// without reading the other kept changes (one that does not decode, put
// in the store without an index entry, stays untouched; every kept change
// was decoded for every message before). A database made before the index
// gets it when it is opened.
func TestKeptChangesByTarget(t *testing.T) {
	carol := offline(t, "carol", nil)
	malIK := newKey(t)
	mal := sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
	target := make([]byte, wire.MessageIDSize)
	rand.Read(target)
	edited, other := "the edited text", "an edit of another message"
	otherTarget := make([]byte, wire.MessageIDSize)
	rand.Read(otherTarget)
	for _, c := range []*wire.Content{
		{Type: wire.ContentEdit, Target: &target, Text: &edited, SentAt: 2000},
		{Type: wire.ContentEdit, Target: &otherTarget, Text: &other, SentAt: 2000},
	} {
		if _, _, err := carol.receive(mal.deliver(wire.EnvelopeChat, c)); err != nil {
			t.Fatal(err)
		}
	}
	bad := u64(1 << 40)
	if err := carol.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLifePending).Put(bad, []byte{0xff, 0x00}) }); err != nil {
		t.Fatal(err)
	}
	// A database made before the index: the index goes, and comes back
	// at the next opening.
	if err := carol.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketLifeTarget) }); err != nil {
		t.Fatal(err)
	}
	dir := carol.dir
	carol.Close()
	var err error
	if carol, err = Open(dir, Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carol.Close() })
	text := "the first text"
	m, _, err := carol.receive(mal.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, MessageID: target, SentAt: 1000, Text: &text}))
	if err != nil || m == nil || m.Edit.Text != edited {
		t.Fatalf("the message the kept edit names: got %+v, %v; want it edited to %q", m, err, edited)
	}
	carol.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketLifePending).Get(bad); v == nil {
			t.Errorf("the kept change that does not decode: gone, want it not read")
		}
		if n := tx.Bucket(bucketLifePending).Stats().KeyN; n != 2 {
			t.Errorf("kept changes after the message: got %d, want 2 (the other edit, the bad one)", n)
		}
		if n := tx.Bucket(bucketLifeTarget).Stats().KeyN; n != 1 {
			t.Errorf("index entries after the message: got %d, want 1 (the other edit)", n)
		}
		return nil
	})
}
