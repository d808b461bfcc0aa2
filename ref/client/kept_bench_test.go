package client

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/wire"
)

// BenchmarkReceiveWithKept measures receiving a text while the device
// keeps changes of other messages: none, and MAX_PENDING_RECEIPTS edits of
// MAX_TEXT bytes each (what a peer can make it keep). With the index of
// kept changes the two should be close; before it, each message decoded
// every kept change.
//
//	go test ./ref/client -run '^$' -bench ReceiveWithKept -benchtime 200x
func BenchmarkReceiveWithKept(b *testing.B) {
	for _, kept := range []int{0, MaxPendingReceipts - 1} {
		b.Run(fmt.Sprintf("kept=%d", kept), func(b *testing.B) {
			carol := offline(b, "carol", nil)
			malIK := newKey(b)
			mal := sessionFrom(b, carol, "mallory", 1, malIK, 1, malIK)
			big := strings.Repeat("x", wire.MaxText)
			for range kept {
				target := make([]byte, wire.MessageIDSize)
				rand.Read(target)
				if _, _, err := carol.receive(mal.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentEdit, Target: &target, Text: &big, SentAt: 2000})); err != nil {
					b.Fatal(err)
				}
			}
			text := "hello"
			dels := make([]*wire.Delivery, b.N)
			for i := range dels {
				dels[i] = mal.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text})
			}
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := carol.receive(dels[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
