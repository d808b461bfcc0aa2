package conformance

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

// TestCheckCoverageProblems: the problems CheckCoverage finds, one case
// each: a MUST covered by nothing and not listed, a listed id that is
// covered, one the specification does not define, and one that is not a
// MUST (the summary's counts of MUSTs covered and listed would not add up).
func TestCheckCoverageProblems(t *testing.T) {
	reqs := []spec.Requirement{
		{ID: "SRV-001", Must: true},
		{ID: "SRV-002", Must: true},
		{ID: "SRV-003", Must: true},
		{ID: "SRV-004"},
	}
	cov := Coverage{"SRV-002": {"vectors/x/y"}}
	for _, c := range []struct {
		allowed Allowed
		want    string // a problem's text contains it; "" for none
	}{
		{Allowed{"SRV-001": "r", "SRV-003": "r"}, ""},
		{Allowed{"SRV-003": "r"}, "SRV-001 (" /* a MUST that no vector or scenario covers */},
		{Allowed{"SRV-001": "r", "SRV-002": "r", "SRV-003": "r"}, "SRV-002 is listed as uncovered but is covered"},
		{Allowed{"SRV-001": "r", "SRV-003": "r", "SRV-999": "r"}, "SRV-999 is listed as uncovered but the specification does not define it"},
		{Allowed{"SRV-001": "r", "SRV-003": "r", "SRV-004": "r"}, "SRV-004 is listed as uncovered but is not a MUST"},
	} {
		got := CheckCoverage(reqs, cov, c.allowed)
		switch {
		case c.want == "" && len(got) != 0:
			t.Errorf("allowed %v: got problems %q, want none", c.allowed, got)
		case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
			t.Errorf("allowed %v: got problems %q, want one with %q", c.allowed, got, c.want)
		}
	}
}

// TestSummaryChapterSides: the per-chapter table credits a result to the
// chapters of the side under test: a client-suite scenario that names a
// server requirement (met by the reference server) counts for the client's
// chapters only, and a server-suite scenario's client requirements do not
// count.
func TestSummaryChapterSides(t *testing.T) {
	rep := &Report{Results: []Result{
		{Suite: "client", Group: "scenarios", ID: "a", Requirements: []string{"SRV-009", "CLI-001"}, Outcome: Pass},
		{Suite: "server", Group: "scenarios", ID: "b", Requirements: []string{"SRV-010", "CLI-002"}, Outcome: Fail, Kind: WrongOutput},
	}}
	var b strings.Builder
	rep.WriteSummary(&b)
	rows := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) == 6 && (f[0] == "SRV" || f[0] == "CLI") {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	// pass fail unimplemented skipped expected
	if got, want := rows["CLI"], "1 0 0 0 0"; got != want {
		t.Errorf("CLI row: got %q, want %q\n%s", got, want, b.String())
	}
	if got, want := rows["SRV"], "0 1 0 0 0"; got != want {
		t.Errorf("SRV row: got %q, want %q\n%s", got, want, b.String())
	}
}

// TestRefusalMustsHaveNegativeVectors: a MUST whose text names registered
// error codes, and which vectors alone cover, has among its vectors an
// invalid case that expects one of those codes; else the vectors that name
// it test only what is accepted, and an implementation that never refuses
// passes them.
func TestRefusalMustsHaveNegativeVectors(t *testing.T) {
	reqs, err := spec.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, c := range errcode.All() {
		registered[c.String()] = true
	}
	named := map[string]int{}                // id -> vector cases that name it
	refusals := map[string]map[string]bool{} // id -> codes its invalid cases expect
	files, err := fs.Glob(vectors.FS, "v1/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("vector files: %v, %v", files, err)
	}
	for _, name := range files {
		data, err := vectors.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Cases []struct {
				Requirements  []string
				Expect, Error string
			}
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range f.Cases {
			for _, id := range c.Requirements {
				named[id]++
				if refusals[id] == nil {
					refusals[id] = map[string]bool{}
				}
				if c.Expect == "invalid" {
					refusals[id][c.Error] = true
				}
			}
		}
	}
	scen, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	inScenario := map[string]bool{}
	for _, h := range scen {
		for _, id := range h.requirements {
			inScenario[id] = true
		}
	}
	code := regexp.MustCompile("`([a-z]+\\.[a-z_]+)`")
	for _, r := range reqs {
		if !r.Must || named[r.ID] == 0 || inScenario[r.ID] {
			continue
		}
		var codes []string
		refused := false
		for _, m := range code.FindAllStringSubmatch(r.Text, -1) {
			if registered[m[1]] {
				codes = append(codes, m[1])
				refused = refused || refusals[r.ID][m[1]]
			}
		}
		if len(codes) > 0 && !refused {
			t.Errorf("%s names %v, and none of the %d vector cases that name it expects one of them", r.ID, codes, named[r.ID])
		}
	}
}
