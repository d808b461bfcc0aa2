package wire

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// benchEnvelope is an envelope of the common kind: one message for each of
// two devices, 256 bytes of ciphertext each.
func benchEnvelope() *Envelope {
	return &Envelope{
		Version:   1,
		MessageID: make([]byte, MessageIDSize),
		Sender:    Address{Account: "alice", Device: 1},
		Recipient: "bob",
		Messages: []DeviceMessage{
			{Device: 1, Kind: KindRatchet, Ciphertext: make([]byte, 256)},
			{Device: 2, Kind: KindRatchet, Ciphertext: make([]byte, 256)},
		},
		Type: EnvelopeChat, Priority: PriorityNormal, TTL: MaxTTL, SentAt: 1_790_000_000_000,
	}
}

var sinkBytes []byte

// BenchmarkEnvelopeEncode is Marshal, with its schema checks.
func BenchmarkEnvelopeEncode(b *testing.B) {
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes, _ = Marshal(e)
	}
}

// BenchmarkEnvelopeEncodeBaseline is a plain fxamacker/cbor encoding of the
// same value with the core deterministic options.
func BenchmarkEnvelopeEncodeBaseline(b *testing.B) {
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes, _ = encMode.Marshal(e)
	}
}

// BenchmarkEnvelopeDecode is Unmarshal: the form scan, the version stage,
// the typed decode, the re-encoding and comparison, and the schema checks.
func BenchmarkEnvelopeDecode(b *testing.B) {
	enc, _ := Marshal(benchEnvelope())
	b.ReportAllocs()
	for b.Loop() {
		var e Envelope
		if err := Unmarshal(enc, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeDecodeBaseline is a plain fxamacker/cbor decode of the
// same bytes, with its default options and no canonical check.
func BenchmarkEnvelopeDecodeBaseline(b *testing.B) {
	enc, _ := Marshal(benchEnvelope())
	b.ReportAllocs()
	for b.Loop() {
		var e Envelope
		if err := cbor.Unmarshal(enc, &e); err != nil {
			b.Fatal(err)
		}
	}
}
