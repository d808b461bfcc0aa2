package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/missive-protocol/missive/spec"
)

// Options configure a run.
type Options struct {
	Adapter string // the adapter's command line
	// ServerCommand and ServerAddr name the server under test of the
	// server suite (see ScenarioOptions).
	ServerCommand, ServerAddr string
	Match                     *regexp.Regexp
	Timeout                   time.Duration // per response
	Suites                    []string      // vectors, client, server
	Expect                    Expectations
	Progress                  func(Result) // called for each result as it comes; may be nil
	// FailFast ends each scenario suite at its first failure, leaving the
	// scenarios after it out of the report: for runs that only ask
	// whether anything fails, such as a mutant's.
	FailFast bool
}

// NeedsAdapter reports whether any of suites tests an implementation
// behind an adapter: vectors or client.
func NeedsAdapter(suites []string) bool {
	for _, s := range suites {
		if s == "vectors" || s == "client" {
			return true
		}
	}
	return false
}

// ErrInterrupted is the error of a run whose context was cancelled (the
// runner's user pressed Ctrl-C): Run returns it with the report of the
// tests that ended before, since the tests that were running then, and
// those after, would all fail for want of an adapter or a server.
var ErrInterrupted = errors.New("conformance: interrupted")

// ErrNoMatch is the error of a run whose Match selects no scenario and no
// vector family of its suites: a pattern that matches nothing runs no test,
// and a run of no test passes nothing. A suite of the run that Match selects
// nothing of is left out, provided another suite has a test it selects.
var ErrNoMatch = errors.New("conformance: -run matches no test")

// Run starts the adapter, when a suite needs one, and runs the suites. The
// vectors and client suites test the implementation behind the adapter;
// the server suite tests a server with reference clients only, and needs
// no adapter.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{Command: o.Adapter, SpecVersion: spec.Version, Started: time.Now()}
	// The results that ended before ctx was cancelled, in the order they
	// came (the scenarios run one at a time): only they are reported, and
	// given to Progress; the suites' own lists would hold the failures the
	// cancel caused.
	emit := func(r Result) {
		if ctx.Err() != nil {
			return
		}
		o.Expect.apply(&r)
		rep.Results = append(rep.Results, r)
		if o.Progress != nil {
			o.Progress(r)
		}
	}
	var a *Adapter
	if NeedsAdapter(o.Suites) {
		var err error
		if a, err = StartAdapter(ctx, o.Adapter, o.Timeout); err != nil {
			if ctx.Err() != nil {
				rep.Interrupted = true
				return rep, ErrInterrupted
			}
			// No suite can run: the report holds why, as a failure of
			// its own, so that a job that reads the JSON or JUnit file
			// sees it rather than a missing file.
			emit(Result{Suite: "adapter", Group: "start", ID: "hello", Outcome: Fail, Kind: AdapterBroken, Detail: err.Error()})
			rep.Elapsed = time.Since(rep.Started)
			return rep, nil
		}
		defer a.Close()
		rep.Adapter = a.Hello
	}
	unmatched := 0
	for _, s := range o.Suites {
		if ctx.Err() != nil {
			break
		}
		var err error
		switch s {
		case "vectors":
			_, err = RunVectors(ctx, a, o.Match, emit)
		case "client", "server":
			so := ScenarioOptions{Adapter: a, ServerCommand: o.ServerCommand, ServerAddr: o.ServerAddr, Match: o.Match, FailFast: o.FailFast}
			_, err = RunScenarios(ctx, s, so, emit)
		default:
			return nil, fmt.Errorf("conformance: unknown suite %q", s)
		}
		switch {
		case errors.Is(err, ErrNoMatch):
			unmatched++
		case err != nil && ctx.Err() == nil:
			return nil, err
		}
	}
	if unmatched > 0 && unmatched == len(o.Suites) && ctx.Err() == nil {
		return nil, fmt.Errorf("%w of the suites %s: %q", ErrNoMatch, strings.Join(o.Suites, ", "), o.Match)
	}
	rep.Elapsed = time.Since(rep.Started)
	if ctx.Err() != nil {
		rep.Interrupted = true
		return rep, ErrInterrupted
	}
	return rep, nil
}
