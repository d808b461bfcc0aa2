package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
)

// Report is the outcome of a run.
type Report struct {
	Adapter     *pb.HelloResult `json:"adapter"`
	Command     string          `json:"command"`
	SpecVersion string          `json:"spec_version"`
	Started     time.Time       `json:"started"`
	Elapsed     time.Duration   `json:"elapsed_ns"`
	Results     []Result        `json:"results"`
	// Interrupted is set when the run was cancelled: Results holds the
	// tests that ended before, and the others did not run.
	Interrupted bool `json:"interrupted,omitempty"`
}

// counts are the outcomes of a set of results.
type counts struct {
	pass, fail, unimpl, skip, expected int
	kinds                              map[FailKind]int
}

func (c *counts) add(r Result) {
	switch r.Outcome {
	case Pass:
		c.pass++
	case Fail:
		c.fail++
		if c.kinds == nil {
			c.kinds = map[FailKind]int{}
		}
		c.kinds[r.Kind]++
	case Unimplemented:
		c.unimpl++
	case Skipped:
		c.skip++
	case ExpectedFail:
		c.expected++
	}
}

func (c *counts) kindText() string {
	var parts []string
	for _, k := range []FailKind{UnexpectedSuccess, UnexpectedFailure, WrongError, WrongOutput, AdapterBroken} {
		if n := c.kinds[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}

// Failed reports whether any result is an unexpected one.
func (r *Report) Failed() bool {
	for _, x := range r.Results {
		if x.Outcome == Fail {
			return true
		}
	}
	return false
}

// Incomplete returns how many results are unimplemented or skipped: tests
// that neither passed nor failed.
func (r *Report) Incomplete() int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == Unimplemented || x.Outcome == Skipped {
			n++
		}
	}
	return n
}

// chapterOf returns the chapter of a requirement id, by its prefix.
func chapterOf(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	return prefix
}

// WriteSummary writes the tables a person reads: per suite and group, per
// spec chapter, then every failure.
func (r *Report) WriteSummary(w io.Writer) {
	tested := "no adapter (reference clients only)"
	if r.Adapter != nil {
		tested = r.Adapter.GetName() + " " + r.Adapter.GetVersion()
	}
	fmt.Fprintf(w, "%s, specification %s: %d tests in %v\n", tested,
		r.SpecVersion, len(r.Results), r.Elapsed.Round(time.Millisecond))
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: only the tests that ended before are counted; the others did not run")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "suite\tgroup\tpass\tfail\tunimplemented\tskipped\texpected\tfailures by kind")
	groups := map[[2]string]*counts{}
	var order [][2]string
	for _, x := range r.Results {
		k := [2]string{x.Suite, x.Group}
		if groups[k] == nil {
			groups[k] = &counts{}
			order = append(order, k)
		}
		groups[k].add(x)
	}
	var total counts
	for _, k := range order {
		c := groups[k]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", k[0], k[1], c.pass, c.fail, c.unimpl, c.skip, c.expected, c.kindText())
		for _, x := range r.Results {
			if x.Suite == k[0] && x.Group == k[1] {
				total.add(x)
			}
		}
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%s\n", total.pass, total.fail, total.unimpl, total.skip, total.expected, total.kindText())
	tw.Flush()

	// Per chapter: each result counts for every chapter its requirements
	// name, but for the other side's: the client suite tests the
	// implementation as a client, on the reference server, so the server's
	// requirements its scenarios name are the reference server's; the
	// server suite tests the server under test with reference clients.
	chapters := map[string]*counts{}
	for _, x := range r.Results {
		seen := map[string]bool{}
		for _, id := range x.Requirements {
			ch := chapterOf(id)
			if seen[ch] || otherSide(x.Suite, ch) {
				continue
			}
			seen[ch] = true
			if chapters[ch] == nil {
				chapters[ch] = &counts{}
			}
			chapters[ch].add(x)
		}
	}
	if len(chapters) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "chapter\tpass\tfail\tunimplemented\tskipped\texpected")
		names := make([]string, 0, len(chapters))
		for ch := range chapters {
			names = append(names, ch)
		}
		slices.SortFunc(names, func(a, b string) int { return chapterRank(a) - chapterRank(b) })
		for _, ch := range names {
			c := chapters[ch]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", ch, c.pass, c.fail, c.unimpl, c.skip, c.expected)
		}
		tw.Flush()
	}
	var failures []Result
	for _, x := range r.Results {
		if x.Outcome == Fail {
			failures = append(failures, x)
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\n%d failures:\n", len(failures))
		for _, x := range failures {
			fmt.Fprintf(w, "  FAIL %s [%s] %s\n", x.Name(), x.Kind, x.Detail)
		}
	}
}

// otherSide reports whether the requirements of a chapter (its prefix) are
// those of the reference side in a suite: the server's in the client
// suite, the client's in the server suite.
func otherSide(suite, prefix string) bool {
	return suite == "client" && prefix == "SRV" || suite == "server" && prefix == "CLI"
}

// chapterRank orders requirement prefixes as the chapters are ordered.
func chapterRank(prefix string) int {
	order := []string{"CONV", "PRIM", "XED", "PQX", "RAT", "SES", "ERR", "VER", "VEC", "CBOR", "MSG", "TRN", "SRV", "CLI", "DEV"}
	if i := slices.Index(order, prefix); i >= 0 {
		return i
	}
	return len(order)
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJUnit writes the report as JUnit XML, one test suite per group.
func (r *Report) WriteJUnit(w io.Writer) error {
	type failure struct {
		Type    string `xml:"type,attr"`
		Message string `xml:"message,attr"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      float64  `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Error     *failure `xml:"error,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName xml.Name    `xml:"testsuites"`
		Suites  []testsuite `xml:"testsuite"`
	}
	var out testsuites
	index := map[string]int{}
	for _, x := range r.Results {
		name := x.Suite + "/" + x.Group
		i, ok := index[name]
		if !ok {
			i = len(out.Suites)
			index[name] = i
			out.Suites = append(out.Suites, testsuite{Name: name})
		}
		s := &out.Suites[i]
		tc := testcase{Name: x.ID, Classname: name, Time: x.Duration.Seconds()}
		switch x.Outcome {
		case Fail:
			tc.Failure = &failure{Type: string(x.Kind), Message: x.Detail}
			s.Failures++
		case Unimplemented, Skipped:
			tc.Skipped = &skipped{Message: string(x.Outcome) + ": " + x.Detail}
			s.Skipped++
		case ExpectedFail:
			tc.Skipped = &skipped{Message: "expected failure: " + x.Reason}
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	if r.Interrupted {
		// An error of the run, so that a CI report of an interrupted run
		// is not a green one with fewer tests.
		out.Suites = append(out.Suites, testsuite{Name: "run", Tests: 1, Errors: 1, Cases: []testcase{{
			Name: "interrupted", Classname: "run",
			Error: &failure{Type: "interrupted", Message: "the run was interrupted: the tests after those reported did not run"},
		}}})
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
