package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/missive-protocol/missive/conformance"
)

// coverage prints what covers each requirement and fails when a MUST is
// covered by nothing and not listed, with a reason, in the allow file.
func coverage(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("coverage", flag.ContinueOnError)
	fl.SetOutput(stderr)
	allowFile := fl.String("allow", "conformance/uncovered.txt", "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	reqs, cov, err := conformance.ComputeCoverage()
	if err != nil {
		fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
		return 1
	}
	allowed := conformance.Allowed{}
	if *allowFile != "" {
		b, err := os.ReadFile(*allowFile)
		if err != nil {
			fmt.Fprintf(stderr, "missive-conformance: the allow list: %v (run from the repository's root, or give -allow FILE, or -allow \"\" for none)\n", err)
			return 2
		}
		if allowed, err = conformance.ParseAllowed(string(b)); err != nil {
			fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
			return 2
		}
	}
	conformance.WriteCoverage(stdout, reqs, cov, allowed)
	if problems := conformance.CheckCoverage(reqs, cov, allowed); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "missive-conformance: %s\n", p)
		}
		return 1
	}
	return 0
}
