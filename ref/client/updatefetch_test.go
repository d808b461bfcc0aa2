package client_test

import (
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestGroupUpdateFetchBound checks GRP-017: group-update contents of
// groups alice holds no state of, made up by carol (twenty of them, on a
// clock the test holds still), make alice fetch group states once, in
// vain; a content of carol's after GROUP_UPDATE_INTERVAL once more, and
// one of dave's, another account, once more too. The messages that follow
// each batch are shown: the contents held nothing up. (The contents of an
// admin whose states the server serves make a fetch each:
// TestGroupUpdateFlows.)
func TestGroupUpdateFetchBound(t *testing.T) {
	w, fetches := countingWorld(t, wire.FrameGetGroup)
	clk := w.clock
	alice, carol, dave := w.device("alice"), w.device("carol"), w.device("dave")
	sendUpdates := func(from *dev, n int, text string) {
		t.Helper()
		var cs []*wire.Content
		for range n {
			cs = append(cs, madeUpUpdate(t, from.Account))
		}
		contentsThen(t, from, alice, cs, text)
	}
	for _, c := range []struct {
		from    *dev
		n       int
		advance time.Duration
		want    int64
	}{
		{carol, 20, 0, 1},
		{carol, 1, wire.GroupUpdateInterval*time.Second - time.Millisecond, 1},
		{carol, 1, time.Millisecond, 2},
		{dave, 1, 0, 3},
	} {
		clk.add(c.advance)
		sendUpdates(c.from, c.n, "after "+c.from.Account)
		if got := fetches.Load(); got != c.want {
			t.Errorf("alice's get-group requests after %d contents of %s: got %d, want %d", c.n, c.from.Account, got, c.want)
		}
	}
}

// TestSenderKeyFetchBound checks GRP-017 for sender-key distributions
// (GRP-006): keys of groups alice holds no state of, made up by carol
// (twenty, on a clock the test holds still), make alice fetch once, in
// vain, and then neither they nor carol's group-update content make her
// fetch within GROUP_UPDATE_INTERVAL; another account's key does. Each
// made her fetch before (from a review).
func TestSenderKeyFetchBound(t *testing.T) {
	w, fetches := countingWorld(t, wire.FrameGetGroup)
	alice, carol, dave := w.device("alice"), w.device("carol"), w.device("dave")
	send := func(from *dev, keys, updates int, text string) {
		t.Helper()
		var cs []*wire.Content
		for range keys {
			cs = append(cs, madeUpKey(t))
		}
		for range updates {
			cs = append(cs, madeUpUpdate(t, from.Account))
		}
		contentsThen(t, from, alice, cs, text)
	}
	for _, c := range []struct {
		from          *dev
		keys, updates int
		want          int64
	}{
		{carol, 20, 0, 1},
		{carol, 0, 1, 1},
		{dave, 1, 0, 2},
	} {
		send(c.from, c.keys, c.updates, "after "+c.from.Account)
		if got := fetches.Load(); got != c.want {
			t.Errorf("alice's get-group requests after %d keys and %d contents of %s: got %d, want %d", c.keys, c.updates, c.from.Account, got, c.want)
		}
	}
}

// contentsThen has from send each content to the account of to (in the
// envelope type of its content type), then text, and waits until to shows
// the text: the contents came before it.
func contentsThen(t *testing.T, from, to *dev, contents []*wire.Content, text string) {
	t.Helper()
	for _, c := range contents {
		if _, err := from.c.SendContentIn(ctx, to.Account, wire.EnvelopeOf(c.Type), c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := from.c.Send(ctx, to.Account, text); err != nil {
		t.Fatal(err)
	}
	if m := to.next(t, client.EventMessage).Message; m.Text != text {
		t.Fatalf("%s's message after the contents: got %q, want %q", to.Account, m.Text, text)
	}
}

// madeUpUpdate is group-update content of a made-up group of owner and
// alice (madeUpGroupState).
func madeUpUpdate(t *testing.T, owner string) *wire.Content {
	t.Helper()
	signed := madeUpGroupState(t, owner, "alice")
	return &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}
}

// madeUpKey is sender-key content of a made-up group.
func madeUpKey(t *testing.T) *wire.Content {
	t.Helper()
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	k, err := group.New(gid, 1, 1, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := k.Distribution()
	return &wire.Content{Type: wire.ContentSenderKey, SenderKey: &d}
}

// countingWorld is newWorld with a server that counts the frames of a
// type that alice's device 1 sends it.
func countingWorld(t *testing.T, frameType uint64) (*world, *atomic.Int64) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	n := new(atomic.Int64)
	addr, _ := serveConfig(t, server.Config{Store: mem.New(), Clock: clk.now, FrameRead: func(a store.Address, typ uint64) {
		if a == (store.Address{Account: "alice", Device: 1}) && typ == frameType {
			n.Add(1)
		}
	}})
	return &world{t: t, addr: addr, clock: clk, dir: t.TempDir()}, n
}

// madeUpGroupState is version 1 of a new group of owner (admin) and
// member, signed by a key made up here as owner's device 1.
func madeUpGroupState(t *testing.T, owner, member string) []byte {
	t.Helper()
	ik, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := devices.Sign(ik, owner, 1, []wire.ListedDevice{{Device: 1, IdentityKey: ik.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	ms := []wire.GroupMember{{Account: owner, Role: wire.RoleAdmin}, {Account: member, Role: wire.RoleMember}}
	if member < owner {
		ms[0], ms[1] = ms[1], ms[0]
	}
	s, err := group.Sign(ik, wire.Address{Account: owner, Device: 1}, l.Signed, gid, 1, ms, "", 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s.Signed
}
