package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// Requirement is one requirement id defined in the specification, with the
// text of the paragraph or list item that defines it.
type Requirement struct {
	ID      string // such as "RAT-012"
	Chapter string // the file, such as "05-ratchet.md"
	Text    string // the defining paragraph or list item, on one line
	Must    bool   // the text states MUST or MUST NOT (else SHOULD or weaker)
}

var (
	idDef    = regexp.MustCompile(`\[([A-Z]+-[0-9]{3})\]`)
	mustRE   = regexp.MustCompile(`\bMUST\b`)
	prefixR  = regexp.MustCompile(`^\| ([A-Z]+) +\| `)
	codeSpan = regexp.MustCompile("`[^`]*`")
)

// block is a paragraph or a list item of a chapter, outside code blocks.
type block struct {
	chapter string
	line    int
	text    string
}

func blocks(name string, data []byte) []block {
	var (
		out   []block
		cur   []string
		start int
		code  bool
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, block{name, start, strings.Join(cur, " ")})
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			flush()
			code = !code
			continue
		}
		if code {
			continue
		}
		isItem := strings.HasPrefix(trimmed, "- ") || regexp.MustCompile(`^[0-9]+\. `).MatchString(trimmed)
		if trimmed == "" || isItem || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "|") {
			flush()
		}
		if trimmed == "" {
			continue
		}
		if len(cur) == 0 {
			start = n
		}
		cur = append(cur, trimmed)
	}
	flush()
	return out
}

// Prefixes returns the requirement-id prefixes that chapter 1 registers.
func Prefixes() (map[string]bool, error) {
	data, err := FS.ReadFile("01-conventions.md")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := prefixR.FindStringSubmatch(line); m != nil {
			out[m[1]] = true
		}
	}
	return out, nil
}

// Requirements returns every requirement id defined in the chapters, in
// chapter order. It fails when an id is defined twice, has a prefix that
// chapter 1 does not register, or when a paragraph states a MUST without
// defining an id.
func Requirements() ([]Requirement, error) {
	prefixes, err := Prefixes()
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(FS, "*.md")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	seen := map[string]string{}
	var out []Requirement
	for _, name := range names {
		if name == "README.md" {
			continue
		}
		data, err := FS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks(name, data) {
			// Ids in code spans are examples, not definitions.
			ids := idDef.FindAllStringSubmatch(codeSpan.ReplaceAllString(b.text, ""), -1)
			// The BCP 14 boilerplate quotes the key words.
			must := mustRE.MatchString(strings.ReplaceAll(b.text, `"MUST"`, ""))
			if strings.Contains(b.text, `"MUST NOT"`) {
				must = false
			}
			if must && len(ids) == 0 {
				return nil, fmt.Errorf("%s:%d: MUST without a requirement id: %.80s", name, b.line, b.text)
			}
			for _, m := range ids {
				id := m[1]
				if prev, ok := seen[id]; ok {
					return nil, fmt.Errorf("%s:%d: %s is already defined in %s", name, b.line, id, prev)
				}
				if !prefixes[strings.SplitN(id, "-", 2)[0]] {
					return nil, fmt.Errorf("%s:%d: %s has an unregistered prefix", name, b.line, id)
				}
				seen[id] = name
				out = append(out, Requirement{ID: id, Chapter: name, Text: b.text, Must: must})
			}
		}
	}
	return out, nil
}
