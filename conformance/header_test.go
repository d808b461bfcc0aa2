package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/missive-protocol/missive/ref/store"
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

// TestChecksAfterLastStep: what a watching server found after a
// scenario's last step fails the scenario, as a wrong output; nothing
// found, or a server that does not watch, passes.
func TestChecksAfterLastStep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		e     *embedded
		want  Outcome
		found string
	}{
		{"early", &embedded{watch: true, early: []store.Address{{Account: "bob", Device: 1}}}, Fail, "TRN-013"},
		{"reused", &embedded{watch: true, reused: []reusedID{{store.Address{Account: "bob", Device: 1}, 3}}}, Fail, "MSG-005"},
		{"clean", &embedded{watch: true}, Pass, ""},
		{"unwatched", &embedded{early: []store.Address{{Account: "bob", Device: 1}}}, Pass, ""},
	} {
		root := &scriptT{suite: "client"}
		root.Run(tc.name, func(tt testscript.T) { tt.(*scriptT).world = &world{server: tc.e} })
		if len(root.results) != 1 {
			t.Fatalf("%s: got %d results, want 1", tc.name, len(root.results))
		}
		r := root.results[0]
		if r.Outcome != tc.want || (tc.want == Fail && (r.Kind != WrongOutput || !strings.Contains(r.Detail, tc.found) || !strings.Contains(r.Detail, "after the last step"))) {
			t.Errorf("%s: got %s %s %q, want %s naming %s after the last step", tc.name, r.Outcome, r.Kind, r.Detail, tc.want, tc.found)
		}
	}
}

// TestStartOrder: the mutants caught by the scenarios that wait longest
// start first, the rest in their order.
func TestStartOrder(t *testing.T) {
	names := []string{"accept-bad-signature", "no-keepalive", "no-idle-timeout", "no-dedup", "no-idle-close"}
	order, err := startOrder(names)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range order {
		got = append(got, names[i])
	}
	want := []string{"no-idle-timeout", "no-idle-close", "no-keepalive", "accept-bad-signature", "no-dedup"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
