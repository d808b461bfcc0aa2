package main

import (
	"fmt"
	"io"
)

func coverage(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "missive-conformance: coverage: not yet")
	return 2
}
