package server_test

import (
	"path/filepath"
	"testing"

	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestAttemptGrowsAcrossConnections checks that the attempt count of an
// entry only grows (section 13.3) when its device connects again while
// its older connection, which had the entry in flight, is still open, as a
// device on a new network does: the new connection delivers the entry
// with a higher attempt than the old one did, although the old connection
// stores its attempts only as it ends.
func TestAttemptGrowsAcrossConnections(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := startWith(t, st, newClock(), nil)
	alice, bob := e.member("alice"), e.member("bob")
	alice.do(wire.FrameSend, marker(alice, bob, 1), new(wire.SendResult))
	dl := bob.delivery()
	for range 8 {
		bob.connect(false) // the older connection stays open until the server closes it
		again := bob.delivery()
		if again.QueueID != dl.QueueID {
			t.Fatalf("delivery on the new connection: got queue id %d, want %d", again.QueueID, dl.QueueID)
		}
		if again.Attempt <= dl.Attempt {
			t.Fatalf("attempt on the new connection: got %d, want more than the %d delivered before", again.Attempt, dl.Attempt)
		}
		dl = again
	}
}
