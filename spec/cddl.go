package spec

import (
	"bufio"
	"bytes"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// Rule is a CDDL rule of the specification.
type Rule struct {
	Name      string
	Chapter   string
	Structure bool // a map or an array, rather than a name for another type
}

var ruleRE = regexp.MustCompile(`^([a-z][a-z0-9-]*) = (.*)$`)

// CDDL returns the rules of every cddl code block of the chapters: the
// structures that the protocol puts on the wire and the types they use.
// Informative CDDL (such as stored state) is in text blocks and is not
// returned.
func CDDL() ([]Rule, error) {
	names, err := fs.Glob(FS, "*.md")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Rule
	for _, name := range names {
		data, err := FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		in := false
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "```cddl"):
				in = true
			case strings.HasPrefix(line, "```"):
				in = false
			case in:
				if m := ruleRE.FindStringSubmatch(line); m != nil {
					rhs := strings.TrimSpace(m[2])
					out = append(out, Rule{Name: m[1], Chapter: name,
						Structure: strings.HasPrefix(rhs, "{") || strings.HasPrefix(rhs, "[")})
				}
			}
		}
	}
	return out, nil
}
