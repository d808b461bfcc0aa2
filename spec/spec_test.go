package spec

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestRequirements(t *testing.T) {
	reqs, err := Requirements()
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) < 50 {
		t.Errorf("got %d requirement ids, want at least 50", len(reqs))
	}
	musts := 0
	for _, r := range reqs {
		if r.Must {
			musts++
		}
	}
	t.Logf("%d requirement ids, %d of them MUST", len(reqs), musts)
}

// TestReferences checks that every requirement id mentioned anywhere in the
// chapters is defined.
func TestReferences(t *testing.T) {
	reqs, err := Requirements()
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, r := range reqs {
		defined[r.ID] = true
	}
	prefixes, _ := Prefixes()
	ref := regexp.MustCompile(`\b([A-Z]+)-([0-9]{3})\b`)
	names, _ := fs.Glob(FS, "*.md")
	for _, name := range names {
		data, _ := FS.ReadFile(name)
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			if prefixes[m[1]] && !defined[m[0]] {
				t.Errorf("%s mentions %s, which no chapter defines", name, m[0])
			}
		}
	}
}

// TestLabels checks CONV-005: no label is a prefix of another.
func TestLabels(t *testing.T) {
	data, err := FS.ReadFile("01-conventions.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(LABEL_[A-Z_]+)` \\| `([^`]+)` \\|")
	labels := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			labels[m[1]] = m[2]
		}
	}
	if len(labels) < 5 {
		t.Fatalf("found %d labels in the table, want at least 5", len(labels))
	}
	for n1, v1 := range labels {
		for n2, v2 := range labels {
			if n1 != n2 && strings.HasPrefix(v2, v1) {
				t.Errorf("label %s (%q) is a prefix of %s (%q)", n1, v1, n2, v2)
			}
		}
	}
}

func TestErrorsJSON(t *testing.T) {
	data, err := FS.ReadFile("errors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
}
