package client

import (
	"testing"

	"github.com/missive-protocol/missive/ref/wire"
)

// TestKeptSessionPrekeyMessages checks PQX-016 with prekey messages: alice
// started a session with bob from a bundle (the old one) and, having heard
// nothing back, another (the new one, PQX-014). Bob takes the new
// session's first message, then the old one's, late, which replaces it;
// the new session's next prekey message (alice has still heard nothing)
// must decrypt in the kept session and make it bob's current one again,
// so that his reply is in the session alice uses. Before, it was taken as
// a replay of the prekey message that had made that session
// (state.duplicate_message), and every later message of alice's was lost.
func TestKeptSessionPrekeyMessages(t *testing.T) {
	bob, aliceIK, bundle := bobLastResort(t)
	alice := wire.Address{Account: "alice", Device: 1}
	text := func(p *reviewPeer, s string) *wire.Delivery {
		t.Helper()
		return p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &s})
	}
	old := newReviewPeerWith(t, alice, aliceIK, bundle)
	late := text(old, "old session, late")
	cur := newReviewPeerWith(t, alice, aliceIK, bundle)
	for i, d := range []*wire.Delivery{text(cur, "new session"), late, text(cur, "new session, again")} {
		if m, _, err := bob.receive(d); err != nil || m == nil {
			t.Fatalf("message %d (new, old late, new again): got %v, %v; want the message", i, m, err)
		}
	}
	replyDecrypts(t, bob, cur, "bob's reply, under the session alice uses")
	// The old session is kept in its turn: its next message decrypts.
	if m, _, err := bob.receive(text(old, "old session, again")); err != nil || m == nil {
		t.Errorf("the old session's next message: got %v, %v; want the message", m, err)
	}
}
