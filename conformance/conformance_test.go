package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCoverage fails when a MUST is covered by no vector or scenario and
// not listed, with a reason, in uncovered.txt; or when that list is stale.
func TestCoverage(t *testing.T) {
	reqs, cov, err := ComputeCoverage()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("uncovered.txt")
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := ParseAllowed(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range CheckCoverage(reqs, cov, allowed) {
		t.Error(p)
	}
	musts, covered := 0, 0
	for _, r := range reqs {
		if r.Must {
			musts++
			if len(cov[r.ID]) > 0 {
				covered++
			}
		}
	}
	t.Logf("%d of %d MUSTs covered by vectors or scenarios, %d listed with a reason", covered, musts, len(allowed))
}

// buildTools builds missive-adapter and missive-server for the tests that
// run them as processes.
func buildTools(t *testing.T) (adapter, server string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/missive-adapter", "../cmd/missive-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the tools: %v\n%s", err, out)
	}
	return filepath.Join(dir, "missive-adapter"), filepath.Join(dir, "missive-server")
}

// TestReferencePasses runs every suite against the reference
// implementation: everything must pass. The client and the server suites
// run at the same time, each with its own servers; the server suite, whose
// clients are all reference clients, without an adapter. It runs beside
// TestMutantsFail: the suites mostly wait (for deliveries, timeouts,
// keepalives), and one after the other they took most of this package's
// time. The two suites run in goroutines of their own, not as parallel
// subtests, which would wait for a free slot of go test's -parallel
// (GOMAXPROCS: two here, one taken by TestMutantsFail).
func TestReferencePasses(t *testing.T) {
	t.Parallel()
	adapter, server := buildTools(t)
	ctx := context.Background()
	opts := []Options{
		{Adapter: adapter, Suites: []string{"vectors", "client"}},
		{Suites: []string{"server"}, ServerCommand: server + referenceServerFlags},
	}
	reps := make([]*Report, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Go(func() { reps[i], errs[i] = Run(ctx, o) })
	}
	wg.Wait()
	for i, o := range opts {
		t.Run(strings.Join(o.Suites, "+"), func(t *testing.T) {
			rep, err := reps[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) == 0 {
				t.Fatalf("%v: no results", o.Suites)
			}
			for _, r := range rep.Results {
				// A server started by a command cannot be inspected, so the
				// scenarios that inspect one are skipped in the server suite.
				if r.Outcome != Pass && !(r.Outcome == Skipped && r.Suite == "server") {
					t.Errorf("%s: %s %s %s", r.Name(), r.Outcome, r.Kind, r.Detail)
				}
			}
			t.Logf("%v: %d results, all passed", o.Suites, len(rep.Results))
		})
	}
}

// TestMutantsFail runs the suites against every mutant: each must fail at
// least one test. The log says which tests caught each.
func TestMutantsFail(t *testing.T) {
	t.Parallel()
	adapter, server := buildTools(t)
	rs, err := RunMutants(context.Background(), adapter, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 12 {
		t.Errorf("%d mutants, want at least 12", len(rs))
	}
	var b strings.Builder
	WriteMutants(&b, rs)
	t.Log("\n" + b.String())
	for _, r := range rs {
		switch {
		case len(r.Caught) == 0:
			t.Errorf("mutant %s (%s) passes the suite", r.Mutant, r.Breaks)
		case !r.OnTarget:
			t.Errorf("mutant %s (%s) was caught only by tests that neither cover nor name what it breaks: %v", r.Mutant, r.Breaks, r.Caught)
		}
	}
}
