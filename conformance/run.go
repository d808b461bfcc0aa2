package conformance

import (
	"context"
	"fmt"
	"regexp"
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

// Run starts the adapter, when a suite needs one, and runs the suites. The
// vectors and client suites test the implementation behind the adapter;
// the server suite tests a server with reference clients only, and needs
// no adapter.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{Command: o.Adapter, SpecVersion: spec.Version, Started: time.Now()}
	emit := func(r Result) {
		if o.Progress != nil {
			o.Progress(r)
		}
	}
	var a *Adapter
	if NeedsAdapter(o.Suites) {
		var err error
		if a, err = StartAdapter(ctx, o.Adapter, o.Timeout); err != nil {
			return nil, err
		}
		defer a.Close()
		rep.Adapter = a.Hello
	}
	for _, s := range o.Suites {
		switch s {
		case "vectors":
			rs, err := RunVectors(ctx, a, o.Match, func(r Result) {
				o.Expect.apply(&r)
				emit(r)
			})
			if err != nil {
				return nil, err
			}
			for i := range rs {
				o.Expect.apply(&rs[i])
			}
			rep.Results = append(rep.Results, rs...)
		case "client", "server":
			so := ScenarioOptions{Adapter: a, ServerCommand: o.ServerCommand, ServerAddr: o.ServerAddr, Match: o.Match}
			rs, err := RunScenarios(ctx, s, so, func(r Result) {
				o.Expect.apply(&r)
				emit(r)
			})
			if err != nil {
				return nil, err
			}
			for i := range rs {
				o.Expect.apply(&rs[i])
			}
			rep.Results = append(rep.Results, rs...)
		default:
			return nil, fmt.Errorf("conformance: unknown suite %q", s)
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}
