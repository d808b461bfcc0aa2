package client

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// keptSessionWorld is bob with the bundle of his signed and last-resort
// prekeys, and a text from a peer of alice's device 1 sent at a time.
func keptSessionWorld(t *testing.T) (*Device, func() *reviewPeer, func(*reviewPeer, string, uint64) *wire.Delivery) {
	t.Helper()
	bob, aliceIK, bundle := bobLastResort(t)
	alice := wire.Address{Account: "alice", Device: 1}
	peer := func() *reviewPeer { return newReviewPeerWith(t, alice, aliceIK, bundle) }
	text := func(p *reviewPeer, s string, sentAt uint64) *wire.Delivery {
		t.Helper()
		return p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &s, SentAt: sentAt})
	}
	return bob, peer, text
}

// receiveAll has d receive each delivery, which must be shown.
func receiveAll(t *testing.T, d *Device, dels ...*wire.Delivery) {
	t.Helper()
	for i, del := range dels {
		if m, _, err := d.receive(del); err != nil || m == nil {
			t.Fatalf("delivery %d: got %v, %v; want the message", i, m, err)
		}
	}
}

// TestKeptSessionPrekeyMessages checks PQX-016 with prekey messages: alice
// started a session with bob from a bundle (the old one) and, having heard
// nothing back, another (the new one, PQX-014). Bob takes the new
// session's first message, then the old one's, late and sent before it:
// that session is kept beside the current one, which stays bob's; the new
// session's next prekey message decrypts in the current session, and bob's
// reply is in it. A later message of the old session (sent after every
// other) still decrypts, in the kept session, and makes it the current
// one. Before PQX-016 the late message replaced the new session, and the
// new session's next prekey message was refused as a replay of the one
// that had made it (state.duplicate_message): every later message of
// alice's was lost.
func TestKeptSessionPrekeyMessages(t *testing.T) {
	bob, peer, text := keptSessionWorld(t)
	old := peer()
	late := text(old, "old session, late", 1000)
	cur := peer()
	receiveAll(t, bob, text(cur, "new session", 2000), late, text(cur, "new session, again", 3000))
	replyDecrypts(t, bob, cur, "bob's reply, under the session alice uses")
	receiveAll(t, bob, text(old, "old session, again", 4000))
	replyDecrypts(t, bob, old, "bob's reply after the old session's latest message")
}

// TestKeptSessionLateMessage checks PQX-016 against a message held back:
// alice's first session (A1) sent two messages, then, having heard
// nothing, she started another (A2, PQX-014). Bob took A1's first, then
// A2's first, which made A2 his current session and kept A1; A1's second
// message, sent before A2's first but delivered after it (a server may
// hold a delivery back), decrypts in A1 and must not make it bob's current
// session again: alice, past the time she keeps A1, would not read his
// replies (from a review).
func TestKeptSessionLateMessage(t *testing.T) {
	bob, peer, text := keptSessionWorld(t)
	a1 := peer()
	m1, m2 := text(a1, "A1 first", 1000), text(a1, "A1 second", 2000)
	a2 := peer()
	receiveAll(t, bob, m1, text(a2, "A2 first", 3000), m2)
	replyDecrypts(t, bob, a2, "bob's reply after A1's late message, under A2")
}

// TestKeptSessionClockBack checks PQX-016 with a clock that went back: a
// session replaced while bob's clock ran ten years ahead is kept
// previousKept from the present once the clock is right, not ten years
// (from a review).
func TestKeptSessionClockBack(t *testing.T) {
	bob, peer, text := keptSessionWorld(t)
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	now := t0.AddDate(10, 0, 0)
	bob.now = func() time.Time { return now }
	old, cur := peer(), peer()
	receiveAll(t, bob, text(old, "old", 1000), text(cur, "new", 2000))
	now = t0
	if err := bob.forgetPrevious(); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(previousKept + time.Minute)
	if err := bob.forgetPrevious(); err != nil {
		t.Fatal(err)
	}
	if m, _, err := bob.receive(text(old, "old, after the time it is kept", 3000)); err == nil || m != nil {
		t.Errorf("the old session's message previousKept after the clock came back: got %v, %v; want it refused", m, err)
	}
}

// TestKeptSessionSentAtFarAhead checks PQX-016 with a sent-at far ahead:
// a message a year ahead (which only a server whose clock runs ahead lets
// through) counts as MAX_SENT_AHEAD ahead, so that alice's session started
// after she has left the first one still becomes bob's current session.
// Counted as it came, every later session of hers was only kept, and bob's
// replies went to a session she no longer keeps (from a review).
func TestKeptSessionSentAtFarAhead(t *testing.T) {
	bob, peer, text := keptSessionWorld(t)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bob.now = func() time.Time { return now }
	ms := func(t time.Time) uint64 { return uint64(t.UnixMilli()) }
	a1 := peer()
	receiveAll(t, bob, text(a1, "A1, a year ahead", ms(now.AddDate(1, 0, 0))))
	now = now.Add(40 * 24 * time.Hour)
	a3 := peer()
	receiveAll(t, bob, text(a3, "A3", ms(now)))
	replyDecrypts(t, bob, a3, "bob's reply, under the session alice uses")
}

// TestKeptSessionNotEvictedByLate checks PQX-016 with one kept session: a
// prekey message held back, of a session older than both bob holds, does
// not push out the kept session, which decrypted a later message (from a
// review).
func TestKeptSessionNotEvictedByLate(t *testing.T) {
	bob, peer, text := keptSessionWorld(t)
	a0 := peer()
	held := text(a0, "A0, held back", 500)
	a1, a2 := peer(), peer()
	receiveAll(t, bob, text(a1, "A1 first", 1000), text(a2, "A2 first", 2000), held)
	receiveAll(t, bob, text(a1, "A1 again", 4000))
	replyDecrypts(t, bob, a1, "bob's reply after A1's latest message")
}

// TestKeptSessionHeardApart checks that the latest sent-at of the session
// kept with one peer device is stored apart from every current session's:
// kept under the device's key with a byte added, alice/1's was the key of
// alicek/1's current session (from a review).
func TestKeptSessionHeardApart(t *testing.T) {
	bob, _, _ := bobLastResort(t)
	alice, alicek := addrKey("alice", 1), addrKey("alicek", 1)
	err := bob.db.Update(func(tx *bolt.Tx) error {
		if err := bob.setHeard(tx, bucketHeard, alicek, 2000); err != nil {
			return err
		}
		if err := bob.setHeard(tx, bucketHeardKept, alice, 5000); err != nil { // as keepPrevious does
			return err
		}
		if err := deleteSession(tx, alice); err != nil {
			return err
		}
		if got := bob.lastHeard(tx, bucketHeard, alicek); got != 2000 {
			t.Errorf("alicek/1's latest after alice/1's session was kept and deleted: got %d, want 2000", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
