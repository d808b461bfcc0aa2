package client

import (
	"crypto/rand"
	"testing"

	"github.com/missive-protocol/missive/ref/wire"
)

// TestDeletedHereStaysDeleted checks DEV-023 where the scenarios cannot
// order it: the deleted content of bob's primary, naming message X of the
// conversation with alice, reaches his companion before X does, by each
// path X can take (alice's delivery, the primary's sent transcript of a
// message bob sent alice, a history entry). The companion must remember
// the deletion and never show X.
func TestDeletedHereStaysDeleted(t *testing.T) {
	for _, c := range []struct {
		name string
		// bring gives the companion X, once the deletion is in.
		bring func(t *testing.T, comp *Device, bob1, alice *reviewPeer, x []byte)
	}{
		{"delivery", func(t *testing.T, comp *Device, _, alice *reviewPeer, x []byte) {
			text := "deleted before it came"
			mustReceive(t, comp, alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &text}))
		}},
		{"transcript", func(t *testing.T, comp *Device, bob1, _ *reviewPeer, x []byte) {
			text := "bob's words, deleted before their transcript came"
			inner, err := wire.Marshal(&wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &text})
			if err != nil {
				t.Fatal(err)
			}
			mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentSent, Transcript: &wire.SentTranscript{Recipient: "alice", Content: inner}}))
		}},
		{"history", func(t *testing.T, comp *Device, bob1, _ *reviewPeer, x []byte) {
			h := wire.History{
				{MessageID: x, Account: "alice", Outgoing: false, Text: "from the history", SentAt: 1000},
				{MessageID: x, Account: "alice", Outgoing: true, Text: "sent, from the history", SentAt: 1000},
			}
			mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentHistory, History: &h}))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			comp, bob1, alice := newCompanion(t)
			x := make([]byte, wire.MessageIDSize)
			rand.Read(x)
			ds := wire.DeletedSync{{Account: "alice", MessageID: x}}
			mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentDeleted, Deleted: &ds}))
			c.bring(t, comp, bob1, alice, x)
			ms, err := comp.Messages("alice")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				t.Errorf("X deleted by bob's primary, then brought by the %s: got %q shown (outgoing %v), want nothing", c.name, m.Shown(), m.Outgoing)
			}
		})
	}
}

// mustReceive processes one delivery on d, failing the test at an error.
func mustReceive(t *testing.T, d *Device, del *wire.Delivery) {
	t.Helper()
	if _, _, err := d.receive(del); err != nil {
		t.Fatal(err)
	}
}
