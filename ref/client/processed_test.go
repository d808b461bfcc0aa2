package client

import (
	"crypto/rand"
	"math"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/wire"
)

// TestProcessedServerExpiry checks that a processed pair (CLI-001) is
// kept no later than MAX_TTL after MAX_TTL + MAX_SENT_AHEAD from its
// processing, whatever expiry the delivery gives: a server that delivers
// garbage with an expiry of 2^64-1 ms made the device keep its pairs for
// good (from a review).
func TestProcessedServerExpiry(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := offline(t, "bob", func() time.Time { return now })
	const n = 20
	for i := range n {
		id := make([]byte, wire.MessageIDSize)
		rand.Read(id)
		d.receive(&wire.Delivery{Version: 1, QueueID: uint64(i + 1), MessageID: id,
			Sender: wire.Address{Account: "nobody", Device: 7}, Type: wire.EnvelopeChat, Priority: wire.PriorityNormal,
			Kind: wire.KindRatchet, Ciphertext: []byte{0xa0}, SentAt: 1000, AcceptedAt: 1000,
			ExpiresAt: math.MaxUint64, Attempt: 1}) // fails: no session; its pair is kept
	}
	if got := d.ProcessedPairs(); got != n {
		t.Fatalf("pairs after %d deliveries: got %d, want %d", n, got, n)
	}
	ttl := time.Duration(wire.MaxTTL) * time.Second
	now = now.Add(2*ttl + maxSentAhead - time.Hour)
	if _, err := d.forgetProcessed(); err != nil {
		t.Fatal(err)
	}
	if got := d.ProcessedPairs(); got != n {
		t.Errorf("an hour before 2 MAX_TTL + MAX_SENT_AHEAD: got %d pairs, want %d", got, n)
	}
	now = now.Add(2 * time.Hour)
	if _, err := d.forgetProcessed(); err != nil {
		t.Fatal(err)
	}
	if got := d.ProcessedPairs(); got != 0 {
		t.Errorf("an hour after 2 MAX_TTL + MAX_SENT_AHEAD: got %d pairs, want 0", got)
	}
}
