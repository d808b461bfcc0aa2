package conformance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
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
	// OnTarget says whether a failing test covers a requirement that
	// Breaks names (such as "(TRN-015)"), or its failure names one (the
	// checks of every scenario do); true when Breaks names none. A
	// scenario suite runs the scenarios that cover those requirements
	// first, and the others only when those pass: a mutant caught only
	// off target was caught by something else (a failure of the machine's
	// timing, say), and the scenarios meant for it missed it.
	OnTarget bool `json:"on_target"`
}

// requirementRE matches a requirement id.
var requirementRE = regexp.MustCompile(`\b[A-Z]{2,5}-[0-9]{3}\b`)

// onTarget reports whether a failing result covers or names one of the
// requirements, or there are none.
func onTarget(requirements []string, r Result) bool {
	if len(requirements) == 0 {
		return true
	}
	for _, id := range requirements {
		if slices.Contains(r.Requirements, id) || strings.Contains(r.Detail, id) {
			return true
		}
	}
	return false
}

// mutantsAtOnce is how many mutants RunMutants runs at the same time: a
// run mostly waits on the network and on timers, so they overlap well.
const mutantsAtOnce = 6

// RunMutants runs the suites against every mutant of the reference
// implementation: the client mutants through the reference adapter (vectors
// first, then the client scenarios if the vectors catch nothing), the
// server mutants through the reference server under test. A scenario suite
// runs the scenarios that cover the requirements the mutant breaks first,
// then the whole suite if they pass it, each run stopping at its first
// failure (Options.FailFast): one failure catches a mutant, and the
// scenarios after it would take minutes. adapterBin and
// serverBin are the paths of missive-adapter and missive-server. Mutants
// run a few at a time, each with its own adapter and servers, those whose
// catch waits longest first (startOrder); the results are in the order of
// faults.Names.
func RunMutants(ctx context.Context, adapterBin, serverBin string, progress func(string)) ([]MutantResult, error) {
	names := faults.Names()
	order, err := startOrder(names)
	if err != nil {
		return nil, err
	}
	out := make([]MutantResult, len(names))
	errs := make([]error, len(names))
	var (
		wg  sync.WaitGroup
		pmu sync.Mutex
	)
	sem := make(chan struct{}, mutantsAtOnce)
	for _, i := range order {
		name := names[i]
		sem <- struct{}{} // in order: a mutant starts when one before it ends
		wg.Add(1)
		go func() {
			defer wg.Done()
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

// startOrder returns the indexes of names in the order to start them: the
// mutants whose requirements (named in faults.All) are covered by the
// scenarios that wait longest on the spec's timeouts first, since the
// suites run those scenarios last, so that the longest runs do not start
// at the end; the rest as they come.
func startOrder(names []string) ([]int, error) {
	headers, err := Scenarios()
	if err != nil {
		return nil, err
	}
	wait := make([]time.Duration, len(names))
	for i, name := range names {
		named := requirementRE.FindAllString(faults.All[faults.Fault(name)], -1)
		for _, h := range headers {
			if h.covers(named) {
				wait[i] = max(wait[i], h.waits)
			}
		}
	}
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(wait[b], wait[a]) })
	return order, nil
}

// referenceServerFlags are the flags of missive-server under test: every
// placeholder of Options.ServerCommand.
const referenceServerFlags = " -listen {addr} -data {data} -clock {clock} -store-fail {store-fail}"

// runMutant runs the suites of one mutant.
func runMutant(ctx context.Context, adapterBin, serverBin, name string) (MutantResult, error) {
	f := faults.Fault(name)
	mr := MutantResult{Mutant: name, Breaks: faults.All[f]}
	named := requirementRE.FindAllString(mr.Breaks, -1)
	o := Options{Adapter: adapterBin + " -mutant " + name, Timeout: 20 * time.Second, FailFast: true}
	suites := []string{"vectors", "client"}
	if faults.ServerFaults[f] {
		o.Adapter = adapterBin
		o.ServerCommand = serverBin + " -mutant " + name + referenceServerFlags
		suites = []string{"server"}
	}
	run := func(suite string, match *regexp.Regexp) error {
		o.Suites, o.Match = []string{suite}, match
		rep, err := Run(ctx, o)
		if err != nil {
			return fmt.Errorf("conformance: mutant %s, %s suite: %w", name, suite, err)
		}
		mr.Suite = suite
		for _, r := range rep.Results {
			if r.Outcome == Fail {
				mr.Caught = append(mr.Caught, r.Name())
				mr.OnTarget = mr.OnTarget || onTarget(named, r)
			}
		}
		return nil
	}
	for _, s := range suites {
		// A scenario suite runs the scenarios that cover what the mutant
		// breaks first, then, if they pass it, all of them: a fail-fast
		// run of the whole suite reached the covering scenarios only after
		// minutes of others.
		if s != "vectors" {
			covering, err := scenariosCovering(s, named)
			if err != nil {
				return mr, err
			}
			if covering != nil {
				if err := run(s, covering); err != nil {
					return mr, err
				}
			}
		}
		if len(mr.Caught) == 0 {
			if err := run(s, nil); err != nil {
				return mr, err
			}
		}
		if len(mr.Caught) > 0 {
			break
		}
	}
	slices.Sort(mr.Caught)
	return mr, nil
}

// scenariosCovering matches the scenarios of a suite that cover one of the
// requirements, or is nil when none does.
func scenariosCovering(suite string, requirements []string) (*regexp.Regexp, error) {
	headers, err := Scenarios()
	if err != nil {
		return nil, err
	}
	var names []string
	for name, h := range headers {
		if slices.Contains(h.suites, suite) && h.covers(requirements) {
			names = append(names, regexp.QuoteMeta(name))
		}
	}
	if names == nil {
		return nil, nil
	}
	slices.Sort(names)
	return regexp.MustCompile("^(" + strings.Join(names, "|") + ")$"), nil
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
