package conformance

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Outcome is the result of one test.
type Outcome string

// Outcomes.
const (
	Pass          Outcome = "pass"
	Fail          Outcome = "fail"
	Unimplemented Outcome = "unimplemented"
	Skipped       Outcome = "skipped"
	ExpectedFail  Outcome = "expected-fail" // a failure the expectations file lists
)

// FailKind says how a test failed.
type FailKind string

// Kinds of failure, reported apart.
const (
	UnexpectedSuccess FailKind = "unexpected-success" // the implementation accepted what it must refuse
	UnexpectedFailure FailKind = "unexpected-failure" // it refused what it must accept
	WrongError        FailKind = "wrong-error"        // it refused, with another error code
	WrongOutput       FailKind = "wrong-output"       // it answered, with other bytes or values
	AdapterBroken     FailKind = "adapter-broken"     // it crashed, hung, or broke the protocol
)

// Result is the outcome of one test: a vector case or a scenario.
type Result struct {
	Suite        string        `json:"suite"`
	Group        string        `json:"group"`
	ID           string        `json:"id"`
	Requirements []string      `json:"requirements,omitempty"`
	Outcome      Outcome       `json:"outcome"`
	Kind         FailKind      `json:"kind,omitempty"`
	Detail       string        `json:"detail,omitempty"`
	Reason       string        `json:"reason,omitempty"` // from the expectations file
	Duration     time.Duration `json:"duration_ns"`
}

// Name is the result's full name, suite/group/id, which expectations match.
func (r *Result) Name() string { return r.Suite + "/" + r.Group + "/" + r.ID }

// failf fills in a failure.
func (r *Result) failf(kind FailKind, format string, args ...any) {
	r.Outcome, r.Kind, r.Detail = Fail, kind, fmt.Sprintf(format, args...)
}

// Expectations are known gaps: glob patterns of result names with reasons.
type Expectations []struct{ Pattern, Reason string }

// ParseExpectations reads lines "pattern: reason"; blank lines and lines
// starting with # are ignored.
func ParseExpectations(text string) (Expectations, error) {
	var out Expectations
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pattern, reason, ok := strings.Cut(line, ":")
		pattern, reason = strings.TrimSpace(pattern), strings.TrimSpace(reason)
		if !ok || pattern == "" || reason == "" {
			return nil, fmt.Errorf("conformance: expectations line %d: want \"pattern: reason\"", i+1)
		}
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("conformance: expectations line %d: %w", i+1, err)
		}
		out = append(out, struct{ Pattern, Reason string }{pattern, reason})
	}
	return out, nil
}

// apply turns the failures that an expectation matches into ExpectedFail.
func (e Expectations) apply(r *Result) {
	if r.Outcome != Fail {
		return
	}
	for _, x := range e {
		if ok, _ := path.Match(x.Pattern, r.Name()); ok {
			r.Outcome, r.Reason = ExpectedFail, x.Reason
			return
		}
	}
}
