package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
)

// MutantResult says which tests caught a mutant.
type MutantResult struct {
	Mutant string   `json:"mutant"`
	Breaks string   `json:"breaks"`
	Suite  string   `json:"suite"`
	Caught []string `json:"caught"` // the failing tests (of scenarios, the first only); empty: the mutant passed the suite
}

// mutantsAtOnce is how many mutants RunMutants runs at the same time: a
// run mostly waits on the network and on timers, so they overlap well.
const mutantsAtOnce = 6

// RunMutants runs the suites against every mutant of the reference
// implementation: the client mutants through the reference adapter (vectors
// first, then the client scenarios if the vectors catch nothing), the
// server mutants through the reference server under test. A scenario suite
// stops at its first failure (Options.FailFast): one failure catches a
// mutant, and the scenarios after it would take minutes. adapterBin and
// serverBin are the paths of missive-adapter and missive-server. Mutants
// run a few at a time, each with its own adapter and servers; the results
// are in the order of faults.Names.
func RunMutants(ctx context.Context, adapterBin, serverBin string, progress func(string)) ([]MutantResult, error) {
	names := faults.Names()
	out := make([]MutantResult, len(names))
	errs := make([]error, len(names))
	var (
		wg  sync.WaitGroup
		pmu sync.Mutex
	)
	sem := make(chan struct{}, mutantsAtOnce)
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = runMutant(ctx, adapterBin, serverBin, name)
			if progress != nil && errs[i] == nil {
				pmu.Lock()
				progress(fmt.Sprintf("%s: %d tests caught it", name, len(out[i].Caught)))
				pmu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// runMutant runs the suites of one mutant.
func runMutant(ctx context.Context, adapterBin, serverBin, name string) (MutantResult, error) {
	f := faults.Fault(name)
	mr := MutantResult{Mutant: name, Breaks: faults.All[f]}
	o := Options{Adapter: adapterBin + " -mutant " + name, Timeout: 20 * time.Second, FailFast: true}
	suites := []string{"vectors", "client"}
	if faults.ServerFaults[f] {
		o.Adapter = adapterBin
		o.ServerCommand = serverBin + " -mutant " + name + " -listen {addr} -data {data} -clock {clock}"
		suites = []string{"server"}
	}
	for _, s := range suites {
		o.Suites = []string{s}
		rep, err := Run(ctx, o)
		if err != nil {
			return mr, fmt.Errorf("conformance: mutant %s, %s suite: %w", name, s, err)
		}
		mr.Suite = s
		for _, r := range rep.Results {
			if r.Outcome == Fail {
				mr.Caught = append(mr.Caught, r.Name())
			}
		}
		if len(mr.Caught) > 0 {
			break
		}
	}
	slices.Sort(mr.Caught)
	return mr, nil
}

// WriteMutants prints, for each mutant, which tests caught it.
func WriteMutants(w io.Writer, rs []MutantResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "mutant\tsuite\tcaught by\tfirst tests that caught it")
	for _, r := range rs {
		first := "NOTHING: the mutant passes"
		if len(r.Caught) > 0 {
			first = r.Caught[0]
			if len(r.Caught) > 1 {
				first += ", " + r.Caught[1]
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Mutant, r.Suite, len(r.Caught), first)
	}
	tw.Flush()
}
