package conformance

// Tests of an interrupted run from a review of the interruption handling:
// the first and the third failed on it (a cancel while the adapter started
// was an adapter error; a suite named twice reported the failures the
// cancel caused, its results matched by name).

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunnerInterruptedBeforeAdapter: a Ctrl-C that comes while the
// adapter starts (or before) is an interruption too: Run returns
// ErrInterrupted, and the CLI exits 130, as for one a moment later.
func TestRunnerInterruptedBeforeAdapter(t *testing.T) {
	adapter, _ := buildTools(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Options{Adapter: adapter, Suites: []string{"vectors"}})
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("Run with its context cancelled before the adapter answers: got error %v, want ErrInterrupted", err)
	}
}

// TestRunnerInterruptedServerSuite: the server suite (a server in a child
// process, no adapter) stops soon after a cancel and reports only the
// tests that ended before.
func TestRunnerInterruptedServerSuite(t *testing.T) {
	_, server := buildTools(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var cancelled time.Time
	o := Options{Suites: []string{"server"}, ServerCommand: server + referenceServerFlags,
		Match: regexp.MustCompile("^(online_delivery|offline_queue|duplicate_delivery|receipts_from_impl|ttl_expiry)$"),
		Progress: func(r Result) {
			n++
			if n == 1 {
				cancelled = time.Now()
				cancel()
			}
		}}
	rep, err := Run(ctx, o)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if len(rep.Results) != 1 {
		t.Errorf("got %d results, want 1", len(rep.Results))
	}
	if d := time.Since(cancelled); d > 30*time.Second {
		t.Errorf("the run went on %v after the cancel", d)
	}
}

// TestRunnerInterruptedRepeatedSuite: a suite named twice on the command
// line ("vectors vectors") runs twice; a cancel in the second run reports
// only the tests that ended before it, and none failed for the cancel.
// The tests of the second run that did not end before the cancel have the
// names of tests of the first run, which ended.
func TestRunnerInterruptedRepeatedSuite(t *testing.T) {
	adapter, _ := buildTools(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const perRun = 27 // cases of xeddsa.json
	const cancelAt = perRun + 3
	n := 0
	rep, err := Run(ctx, Options{Adapter: adapter, Suites: []string{"vectors", "vectors"}, Match: regexp.MustCompile("^xeddsa$"),
		Progress: func(r Result) {
			n++
			if n == cancelAt {
				cancel()
			}
		}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if len(rep.Results) != cancelAt {
		t.Errorf("got %d results, want the %d that ended before the cancel", len(rep.Results), cancelAt)
	}
	fails := 0
	for _, r := range rep.Results {
		if r.Outcome == Fail {
			fails++
		}
	}
	if fails != 0 {
		t.Errorf("got %d failed results (e.g. adapter-broken for the cancel), want 0", fails)
	}
}

// TestJUnitInterrupted: the JUnit report of an interrupted run holds an
// error, so that a CI tool does not show it as a green run with fewer
// tests.
func TestJUnitInterrupted(t *testing.T) {
	for _, interrupted := range []bool{false, true} {
		var b strings.Builder
		rep := &Report{Interrupted: interrupted, Results: []Result{{Suite: "client", Group: "scenarios", ID: "online_delivery", Outcome: Pass}}}
		if err := rep.WriteJUnit(&b); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), `<error type="interrupted"`); got != interrupted {
			t.Errorf("JUnit report of a run interrupted %v: got an interrupted error %v, want %v\n%s", interrupted, got, interrupted, b.String())
		}
	}
}
