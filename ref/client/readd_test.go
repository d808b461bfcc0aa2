package client

import (
	"context"
	"testing"
)

// TestReaddAfterAnotherChange checks GRP-001 step 4 for an account removed
// from a group and added again after a change it was not part of: get-group
// serves it the state that adds it again and not the one in between
// (GRP-004: neither that state nor the one before names it), and the
// device accepts it as a first state. It wanted the next version after the
// one it held (its removal), so that every group-update content and group
// message of the group failed on its devices for good (from a review).
func TestReaddAfterAnotherChange(t *testing.T) {
	addr := reviewServer(t)
	_, ac := reviewDevice(t, addr, "alice")
	_, _ = reviewDevice(t, addr, "bob")
	dave, err := Init(t.TempDir()+"/dave", "dave", addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dave.Close() })
	dc, err := dave.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	errs := errorsOf(dc)
	ctx := context.Background()
	gid, err := ac.CreateGroup(ctx, "g", "bob", "dave")
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.RemoveMember(ctx, gid, "dave"); err != nil { // version 2
		t.Fatal(err)
	}
	eventually(t, "dave removed at 2", func() bool { v, left := groupVersion(dave, gid); return v == 2 && left })
	if err := ac.SetRole(ctx, gid, "bob", true); err != nil { // version 3, without dave
		t.Fatal(err)
	}
	if err := ac.AddMembers(ctx, gid, "dave"); err != nil { // version 4
		t.Fatal(err)
	}
	eventually(t, "dave added again at 4", func() bool { v, left := groupVersion(dave, gid); return v == 4 && !left })
	if e := errs(); len(e) != 0 {
		t.Errorf("dave's errors: %v", e)
	}
}
