package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Transition is one arrow of a state diagram: From and To are state names
// ("[*]" for the start or the end), Label the text after the colon.
type Transition struct {
	From, To, Label string
}

var arrowRE = regexp.MustCompile(`^\s*(\[\*\]|[A-Za-z][A-Za-z0-9_]*)\s*-->\s*(\[\*\]|[A-Za-z][A-Za-z0-9_]*)\s*(?::\s*(.*))?$`)

// StateDiagrams returns the transitions of every mermaid stateDiagram
// block of a chapter, one list per block, in order.
func StateDiagrams(chapter string) ([][]Transition, error) {
	data, err := FS.ReadFile(chapter)
	if err != nil {
		return nil, err
	}
	var (
		out [][]Transition
		cur []Transition
		in  bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```mermaid"):
			in, cur = true, nil
		case in && strings.HasPrefix(line, "```"):
			in = false
			out = append(out, cur)
		case in:
			t := strings.TrimSpace(line)
			if t == "" || strings.HasPrefix(t, "stateDiagram") || strings.HasPrefix(t, "direction") || strings.HasPrefix(t, "%%") {
				continue
			}
			m := arrowRE.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s:%d: not a transition: %q", chapter, n, t)
			}
			cur = append(cur, Transition{From: m[1], To: m[2], Label: strings.TrimSpace(m[3])})
		}
	}
	return out, nil
}
