package client

import (
	"crypto/rand"
	"testing"

	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestTrustUnchangedKey checks DEV-004 and DEV-014: bob and alice have an
// established session (alice has read bob's reply); bob's user trusts
// alice's key again although it did not change (the same list is accepted
// again). The session stays, so alice's next message on it is read.
func TestTrustUnchangedKey(t *testing.T) {
	bob := offline(t, "bob", nil)
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	alice := sessionFrom(t, bob, "alice", 1, aliceIK, 1, aliceIK)
	// bob answers; alice reads it, so her session is past the prekey stage.
	msgs, err := (&Conn{d: bob}).encryptFor("alice", 0, []byte("a reply"))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("encryptFor: %d messages, %v", len(msgs), err)
	}
	if _, err := alice.s.Decrypt(rand.Reader, msgs[0].Ciphertext); err != nil {
		t.Fatal(err)
	}
	if err := bob.Trust("alice"); err != nil {
		t.Fatal(err)
	}
	acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	second := "second"
	m, _, err := bob.receive(alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &second}))
	if err != nil || m == nil || m.Text != second {
		t.Errorf("alice's next message after Trust of her unchanged key: got %v, %v; want the message %q", m, err, second)
	}
}
