// Command missive-vectors lists, checks and regenerates the Missive test
// vectors (spec/09-vectors.md).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"text/tabwriter"

	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

const usage = `missive-vectors lists, checks and regenerates the Missive test vectors.

Usage:
    missive-vectors [list]       list the vector families and their cases
    missive-vectors verify       regenerate every file and compare it, byte for byte,
                                 with the files shipped in package vectors
    missive-vectors write DIR    regenerate every file under DIR (v1/<family>.json)
    missive-vectors --version    print the version

The vectors are written by an implementation of the specification that is
independent of the reference implementation (vectors/internal/gen).

Example:
    $ go run ./cmd/missive-vectors verify
    vectors: 13 files regenerated, all identical
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("missive-vectors", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	version := fl.Bool("version", false, "print the version")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *version {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "missive-vectors %s (specification %s)\n", v, spec.Version)
		return 0
	}
	var err error
	switch cmd := fl.Arg(0); cmd {
	case "", "list":
		err = list(stdout)
	case "verify":
		err = verify(stdout)
	case "write":
		if fl.NArg() != 2 {
			fmt.Fprint(stderr, "missive-vectors: write needs a directory\n")
			return 2
		}
		err = write(fl.Arg(1), stdout)
	default:
		fmt.Fprintf(stderr, "missive-vectors: unknown command %q (want list, verify or write)\n", cmd)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "missive-vectors: %v\n", err)
		return 1
	}
	return 0
}

type summary struct {
	Family string `json:"family"`
	Cases  []struct {
		Expect string `json:"expect"`
	} `json:"cases"`
}

func list(w io.Writer) error {
	names, err := fs.Glob(vectors.FS, "v1/*.json")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("no vector files")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "family\tcases\tvalid\tinvalid\t")
	var total, valid int
	for _, name := range names {
		data, err := vectors.FS.ReadFile(name)
		if err != nil {
			return err
		}
		var s summary
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		v := 0
		for _, c := range s.Cases {
			if c.Expect == "valid" {
				v++
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", s.Family, len(s.Cases), v, len(s.Cases)-v)
		total, valid = total+len(s.Cases), valid+v
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t\n", total, valid, total-valid)
	return tw.Flush()
}

func verify(w io.Writer) error {
	files, err := vectors.Generate()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	bad := 0
	for _, name := range names {
		shipped, err := vectors.FS.ReadFile(name)
		switch {
		case err != nil:
			fmt.Fprintf(w, "%s: not shipped\n", name)
			bad++
		case !bytes.Equal(shipped, files[name]):
			fmt.Fprintf(w, "%s: differs from the regenerated file\n", name)
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files differ (run go generate ./vectors/...)", bad, len(names))
	}
	fmt.Fprintf(w, "vectors: %d files regenerated, all identical\n", len(names))
	return nil
}

func write(dir string, w io.Writer) error {
	files, err := vectors.Generate()
	if err != nil {
		return err
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s\n", path)
	}
	return nil
}
