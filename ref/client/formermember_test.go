package client

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestChangeOfFormerMembersMessage checks section 18.2 for a group
// message whose author has left the group: its target is the message of
// the conversation with that id, whoever sent it, so that another member's
// edit or delete of it is dropped with policy.not_author (LIF-001), as
// while its author was a member, and is not kept as one of an unknown
// target (LIF-005). Looking the target up among the current members only
// kept it. The same holds on a device whose database was made before the
// index of the conversations' messages.
func TestChangeOfFormerMembersMessage(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		name := "new database"
		if reopen {
			name = "database made before the index"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "carol")
			carol, err := Init(dir, "carol", "127.0.0.1:1", Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { carol.Close() }()
			malIK := newKey(t)
			sessionFrom(t, carol, "mallory", 1, malIK, 1, malIK)
			malList := carol.DeviceList("mallory").Signed
			gid := make([]byte, wire.GroupIDSize)
			rand.Read(gid)
			mal := wire.Address{Account: "mallory", Device: 1}
			v1, err := group.Sign(malIK, mal, malList, gid, 1, []wire.GroupMember{{Account: "carol", Role: wire.RoleMember},
				{Account: "erin", Role: wire.RoleMember}, {Account: "mallory", Role: wire.RoleAdmin}}, "", 1000, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := group.Sign(malIK, mal, malList, gid, 2, []wire.GroupMember{{Account: "carol", Role: wire.RoleMember},
				{Account: "mallory", Role: wire.RoleAdmin}}, "", 2000, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			id := make([]byte, wire.MessageIDSize)
			rand.Read(id)
			err = carol.db.Update(func(tx *bolt.Tx) error {
				for _, s := range []*group.State{v1, v2} {
					if _, err := carol.acceptGroupState(tx, s.Signed, gid); err != nil {
						return err
					}
				}
				// erin's message, of version 1; erin is removed at 2.
				return putMessage(tx, &Message{ID: id, Peer: "erin", Device: 1, Text: "erin's words", SentAt: 10_000,
					Group: gid, GroupVersion: 1, Type: wire.ContentText})
			})
			if err != nil {
				t.Fatal(err)
			}
			if reopen {
				if err := carol.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketConvMessages) }); err != nil {
					t.Fatal(err)
				}
				carol.Close()
				if carol, err = Open(dir, Config{}); err != nil {
					t.Fatal(err)
				}
			}
			for _, typ := range []uint64{wire.ContentEdit, wire.ContentDelete} {
				mid := make([]byte, wire.MessageIDSize)
				rand.Read(mid)
				target := id
				c := &wire.Content{Type: typ, MessageID: mid, SentAt: 20_000, Target: &target}
				if typ == wire.ContentEdit {
					text := "words erin never wrote"
					c.Text = &text
				}
				err := carol.db.Update(func(tx *bolt.Tx) error {
					_, err := carol.applyChange(tx, Conv{Group: gid}, "mallory", c)
					return err
				})
				if !errors.Is(err, errcode.PolicyNotAuthor) {
					t.Errorf("mallory's change (type %d) of erin's message: got %v, want policy.not_author", typ, err)
				}
			}
			carol.db.View(func(tx *bolt.Tx) error {
				if n := tx.Bucket(bucketLifePending).Stats().KeyN; n != 0 {
					t.Errorf("changes kept: got %d, want 0", n)
				}
				return nil
			})
		})
	}
}
