package client

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestGroupUpdateFlows walks the legitimate flows of group-update content
// under GRP-016: an offline member catching up over several versions, a
// removed member learning it, a promoted admin changing the group, and
// the admin's companion following.
func TestGroupUpdateFlows(t *testing.T) {
	addr := reviewServer(t)
	alice, ac := reviewDevice(t, addr, "alice")
	bob, bc := reviewDevice(t, addr, "bob")
	dave, _ := reviewDevice(t, addr, "dave")
	alice2, _ := reviewLink(t, addr, ac, nil)
	carol, err := Init(filepath.Join(t.TempDir(), "carol"), "carol", addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carol.Close() })
	cc, err := carol.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cc.Close()
	ctx := context.Background()
	gid, err := ac.CreateGroup(ctx, "g", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob at 1", func() bool { v, _ := groupVersion(bob, gid); return v == 1 })
	if err := ac.AddMembers(ctx, gid, "dave"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob, dave at 2", func() bool {
		v, _ := groupVersion(bob, gid)
		w, _ := groupVersion(dave, gid)
		return v == 2 && w == 2
	})
	if err := ac.SetRole(ctx, gid, "bob", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob at 3", func() bool { v, _ := groupVersion(bob, gid); return v == 3 })
	if err := bc.RemoveMember(ctx, gid, "dave"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dave removed, alice at 4", func() bool {
		v, left := groupVersion(dave, gid)
		w, _ := groupVersion(alice, gid)
		return v == 4 && left && w == 4
	})
	cc, err = carol.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	errs := errorsOf(cc)
	eventually(t, "carol at 4", func() bool { v, _ := groupVersion(carol, gid); return v == 4 })
	if err := bc.Leave(ctx, gid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol at 5", func() bool { v, _ := groupVersion(carol, gid); return v == 5 })
	if e := errs(); len(e) != 0 {
		t.Errorf("carol's errors: %v", e)
	}
	eventually(t, "alice2 at 5", func() bool { v, _ := groupVersion(alice2, gid); return v == 5 })
}

// errorsOf collects the error events of c until its events end; the
// function it returns gives those so far.
func errorsOf(c *Conn) func() []error {
	var (
		mu   sync.Mutex
		errs []error
	)
	go func() {
		for e := range c.Events {
			if e.Kind == EventError {
				mu.Lock()
				errs = append(errs, e.Err)
				mu.Unlock()
			}
		}
	}()
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}
