package conformance

import (
	"testing"
	"time"
)

// TestParseHeaderWaits: a scenario's waits header is one duration; any
// other text is marked for Scenarios to refuse.
func TestParseHeaderWaits(t *testing.T) {
	for _, tc := range []struct {
		text string
		want time.Duration
	}{
		{"# suites: client\n", 0},
		{"# waits: 95s\n", 95 * time.Second},
		{"# waits: 95 s\n", -1},
		{"# waits: soon\n", -1},
		{"# waits: -3s\n", -1},
	} {
		if got := parseHeader([]byte(tc.text)).waits; got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.text, got, tc.want)
		}
	}
}
