// Command missive-adapter is the reference implementation's adapter for
// the conformance runner: it speaks the adapter protocol
// (conformance/adapterpb/adapter.proto) on its standard input and output.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/missive-protocol/missive/conformance/refadapter"
)

const usage = `missive-adapter answers the conformance runner with the reference implementation.

Usage:
    missive-adapter [-mutant NAME]   serve requests on standard input and output
    missive-adapter -mutants         list the mutants

A mutant is a deliberate bug that a realistic implementation could have;
the conformance suite must fail every one.

Example:
    $ missive-conformance -adapter "missive-adapter -mutant weak-s-check" vectors
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("missive-adapter", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	mutant := fl.String("mutant", "", "")
	list := fl.Bool("mutants", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *list {
		names := make([]string, 0, len(refadapter.Mutants))
		for m := range refadapter.Mutants {
			names = append(names, string(m))
		}
		sort.Strings(names)
		for _, m := range names {
			fmt.Fprintf(stdout, "%-28s %s\n", m, refadapter.Mutants[faultName(m)])
		}
		return 0
	}
	a, err := refadapter.New(*mutant)
	if err != nil {
		fmt.Fprintf(stderr, "missive-adapter: %v (see missive-adapter -mutants)\n", err)
		return 2
	}
	defer a.Close()
	if err := a.Serve(stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "missive-adapter: %v\n", err)
		return 1
	}
	return 0
}
