package client

import (
	"context"
	"os"
	"sync"
	"testing"
)

// TestReaddAfterAnotherChange checks that an account removed from a group
// and added again after a change it was not part of follows the group.
// get-group serves it the state that adds it again and not the one in
// between (GRP-004: neither that state nor the one before names it),
// while GRP-001 step 4 wants the next version after the one it holds (its
// removal): the state never passes, and every group-update content and
// group message of the group fails on its devices for good.
//
// Fails before and after GRP-016 alike; the fix needs a spec decision
// (GRP-001 step 4 for a device whose account P does not name, and the
// device checker of group_states.json), so it is skipped until then.
func TestReaddAfterAnotherChange(t *testing.T) {
	if os.Getenv("MISSIVE_READD") == "" {
		t.Skip("pre-existing: GRP-004 serves no state between a removal and a re-add; GRP-001 step 4 wants it (MISSIVE_READD=1 to run)")
	}
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
	var (
		mu   sync.Mutex
		errs []error
	)
	go func() {
		for e := range dc.Events {
			if e.Kind == EventError {
				mu.Lock()
				errs = append(errs, e.Err)
				mu.Unlock()
			}
		}
	}()
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
	defer func() {
		mu.Lock()
		t.Logf("dave's errors: %v", errs)
		mu.Unlock()
	}()
	eventually(t, "dave added again at 4", func() bool { v, left := groupVersion(dave, gid); return v == 4 && !left })
}
