package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

// Coverage maps each requirement id to the vector cases and scenarios that
// name it.
type Coverage map[string][]string

// ComputeCoverage collects what covers each requirement: the requirement
// lists of every vector case and every scenario. It fails when a vector or
// a scenario names an id the specification does not define.
func ComputeCoverage() ([]spec.Requirement, Coverage, error) {
	reqs, err := spec.Requirements()
	if err != nil {
		return nil, nil, err
	}
	defined := map[string]bool{}
	for _, r := range reqs {
		defined[r.ID] = true
	}
	cov := Coverage{}
	add := func(id, by string) error {
		if !defined[id] {
			return fmt.Errorf("conformance: %s names %s, which the specification does not define", by, id)
		}
		cov[id] = append(cov[id], by)
		return nil
	}
	names, err := fs.Glob(vectors.FS, "v1/*.json")
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		data, err := vectors.FS.ReadFile(n)
		if err != nil {
			return nil, nil, err
		}
		var f struct {
			Family string `json:"family"`
			Cases  []struct {
				ID           string   `json:"id"`
				Requirements []string `json:"requirements"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, nil, fmt.Errorf("conformance: %s: %w", n, err)
		}
		for _, c := range f.Cases {
			for _, id := range c.Requirements {
				if err := add(id, "vector "+f.Family+"/"+c.ID); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	scen, err := Scenarios()
	if err != nil {
		return nil, nil, err
	}
	for name, h := range scen {
		for _, id := range h.requirements {
			if err := add(id, "scenario "+name); err != nil {
				return nil, nil, err
			}
		}
	}
	for id := range cov {
		slices.Sort(cov[id])
	}
	return reqs, cov, nil
}

// Allowed is the list of MUSTs that no vector or scenario covers, each with
// the reason (uncovered.txt): what tests them instead, or why nothing can.
type Allowed map[string]string

// ParseAllowed reads lines "ID: reason".
func ParseAllowed(text string) (Allowed, error) {
	out := Allowed{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("conformance: uncovered list line %d: want \"ID: reason\"", i+1)
		}
		out[strings.TrimSpace(id)] = strings.TrimSpace(reason)
	}
	return out, nil
}

// CheckCoverage returns the problems of a coverage: MUSTs covered by
// nothing and not allowed, and allowed ids that are covered or unknown.
func CheckCoverage(reqs []spec.Requirement, cov Coverage, allowed Allowed) []string {
	var problems []string
	known := map[string]bool{}
	for _, r := range reqs {
		known[r.ID] = true
		_, ok := allowed[r.ID]
		switch {
		case ok && !r.Must:
			problems = append(problems, fmt.Sprintf("%s is listed as uncovered but is not a MUST", r.ID))
		case r.Must && len(cov[r.ID]) == 0 && !ok:
			problems = append(problems, fmt.Sprintf("%s (%s) is a MUST that no vector or scenario covers", r.ID, r.Chapter))
		case len(cov[r.ID]) > 0 && ok:
			problems = append(problems, fmt.Sprintf("%s is listed as uncovered but is covered by %s", r.ID, cov[r.ID][0]))
		}
	}
	for id := range allowed {
		if !known[id] {
			problems = append(problems, fmt.Sprintf("%s is listed as uncovered but the specification does not define it", id))
		}
	}
	slices.Sort(problems)
	return problems
}

// WriteCoverage prints, for every requirement, what covers it.
func WriteCoverage(w io.Writer, reqs []spec.Requirement, cov Coverage, allowed Allowed) {
	covered, musts := 0, 0
	for _, r := range reqs {
		if r.Must {
			musts++
			if len(cov[r.ID]) > 0 {
				covered++
			}
		}
		by := cov[r.ID]
		switch {
		case len(by) > 3:
			fmt.Fprintf(w, "%-9s %s, %s and %d more\n", r.ID, by[0], by[1], len(by)-2)
		case len(by) > 0:
			fmt.Fprintf(w, "%-9s %s\n", r.ID, strings.Join(by, ", "))
		case allowed[r.ID] != "":
			fmt.Fprintf(w, "%-9s not covered by the suite: %s\n", r.ID, allowed[r.ID])
		default:
			fmt.Fprintf(w, "%-9s NOT COVERED\n", r.ID)
		}
	}
	fmt.Fprintf(w, "\n%d of %d MUST requirements covered by vectors or scenarios; %d listed with a reason\n", covered, musts, len(allowed))
}
