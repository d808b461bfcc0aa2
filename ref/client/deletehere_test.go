package client

import (
	"bytes"
	"crypto/rand"
	"testing"

	bolt "go.etcd.io/bbolt"

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
			if c.name == "delivery" && !owesDelivered(t, comp, "alice", x) {
				t.Errorf("X deleted by bob's primary, then delivered: got no delivered receipt owed to alice, want one (section 14.1, step 5)")
			}
		})
	}
}

// owesDelivered reports whether d owes account the delivered receipt of
// message id.
func owesDelivered(t *testing.T, d *Device, account string, id []byte) bool {
	t.Helper()
	found := false
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
			var e outboxEntry
			if err := cborDec.Unmarshal(v, &e); err != nil {
				return err
			}
			r := e.Content.Receipt
			if e.Account == account && r != nil && r.Kind == wire.ReceiptDelivered {
				for _, rid := range r.MessageIDs {
					found = found || bytes.Equal(rid, id)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// mustReceive processes one delivery on d, failing the test at an error.
func mustReceive(t *testing.T, d *Device, del *wire.Delivery) {
	t.Helper()
	if _, _, err := d.receive(del); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteHereSameIDBothWays checks DEV-023's pair: message ids are
// chosen by their senders, so alice can give a message of hers the id X
// of a message bob sent her. bob's user deletes alice's message for
// himself (here, or by the deleted content of his other device naming
// (alice, X)): the pair deletes both. Before, deleteMessage dropped bob's
// own message and left alice's shown.
func TestDeleteHereSameIDBothWays(t *testing.T) {
	for _, path := range []string{"here", "deleted content"} {
		t.Run(path, func(t *testing.T) {
			comp, bob1, alice := newCompanion(t)
			x := make([]byte, wire.MessageIDSize)
			rand.Read(x)
			// bob's own message X to alice, from his primary's transcript.
			mine := "bob's message X"
			inner, err := wire.Marshal(&wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &mine})
			if err != nil {
				t.Fatal(err)
			}
			mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentSent, Transcript: &wire.SentTranscript{Recipient: "alice", Content: inner}}))
			// alice's message, with the same id.
			hers := "alice's message, id X reused"
			mustReceive(t, comp, alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, MessageID: x, SentAt: 2000, Text: &hers}))
			if ms, _ := comp.Messages("alice"); len(ms) != 2 {
				t.Fatalf("set-up: %d messages in the conversation with alice, want 2", len(ms))
			}
			if path == "here" {
				if err := comp.db.Update(func(tx *bolt.Tx) error { return deleteMessage(tx, "alice", x, comp.now()) }); err != nil {
					t.Fatal(err)
				}
			} else {
				ds := wire.DeletedSync{{Account: "alice", MessageID: x}}
				mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentDeleted, Deleted: &ds}))
			}
			ms, err := comp.Messages("alice")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if bytes.Equal(m.ID, x) {
					t.Errorf("(alice, X) deleted here: got %q (outgoing %v) still shown, want no message (alice, X) names", m.Shown(), m.Outgoing)
				}
			}
		})
	}
}

// TestDeletedHereChangesIgnored checks DEV-023: anything about a message
// deleted here is ignored (section 15.7). An edit of it, and a receipt
// for a sent message deleted here, were kept as if for a message not known
// yet (LIF-005, DEV-015), in the bounded stores of MAX_PENDING_RECEIPTS,
// where they waited for a message that never comes and pushed out the
// kept changes and receipts of messages that will.
func TestDeletedHereChangesIgnored(t *testing.T) {
	comp, bob1, alice := newCompanion(t)
	x, y := make([]byte, wire.MessageIDSize), make([]byte, wire.MessageIDSize)
	rand.Read(x)
	rand.Read(y)
	text := "alice's message, deleted here"
	mustReceive(t, comp, alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &text}))
	mine := "bob's message to alice, deleted here"
	inner, err := wire.Marshal(&wire.Content{Version: wire.ProtocolVersion, Type: wire.ContentText, MessageID: y, SentAt: 1000, Text: &mine})
	if err != nil {
		t.Fatal(err)
	}
	mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentSent, Transcript: &wire.SentTranscript{Recipient: "alice", Content: inner}}))
	ds := wire.DeletedSync{{Account: "alice", MessageID: x}, {Account: "alice", MessageID: y}}
	mustReceive(t, comp, bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentDeleted, Deleted: &ds}))

	edit := "edited after the delete for me"
	mustReceive(t, comp, alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentEdit, SentAt: 2000, Target: &x, Text: &edit}))
	mustReceive(t, comp, alice.deliver(wire.EnvelopeReceipt, &wire.Content{Type: wire.ContentReceipt, Receipt: &wire.Receipt{Kind: wire.ReceiptRead, MessageIDs: [][]byte{y}}}))
	comp.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketLifePending).Stats().KeyN; n != 0 {
			t.Errorf("an edit of a message deleted here: %d changes kept for later, want it ignored", n)
		}
		if n := tx.Bucket(bucketPending).Stats().KeyN; n != 0 {
			t.Errorf("a receipt for a sent message deleted here: %d receipts kept for later, want it ignored", n)
		}
		return nil
	})
}
