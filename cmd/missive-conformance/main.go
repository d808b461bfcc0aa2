// Command missive-conformance validates an implementation of Missive
// through its adapter: it runs the test vectors and the scenarios against
// it and reports per suite, scenario and requirement.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/missive-protocol/missive/conformance"
	"github.com/missive-protocol/missive/spec"
)

const usage = `missive-conformance checks an implementation of Missive against the specification.

Usage:
    missive-conformance [-adapter CMD] [flags] [SUITE...]
    missive-conformance coverage [-allow FILE]

Suites (default: vectors and client, and server when a server is given):
    vectors    every test vector through the adapter
    client     the adapter as a client among reference clients and a reference server
    server     reference clients against the server under test (-server or -server-cmd)

Flags:
    -adapter CMD       the adapter's command line (required for vectors and client)
    -server ADDR       the server under test, at ADDR (server suite)
    -server-cmd CMD    a command that starts the server under test; {addr}, {data} and
                       {clock} in it are replaced by a loopback address, a data directory
                       and a file holding how far the server's clock must run ahead
                       (such as 31d, or 1h30m0s in Go's syntax; the scenarios of
                       expiry need it); {store-fail}, when present, by a file that
                       exists while the server's store must fail to queue any
                       envelope (store_failure, SRV-017, is skipped without it)
    -expect FILE       known gaps: lines "pattern: reason", pattern a glob over suite/group/id
    -json FILE         write the report as JSON ("-" for standard output, the summary
                       then going to standard error)
    -junit FILE        write the report as JUnit XML ("-" as for -json)
    -timeout D         the longest wait for one response (default 30s)
    -run REGEXP        run only the scenarios and vector families that match
    -strict            exit 1 when any result is unimplemented or skipped too, not only
                       when one fails (for an implementation that means to be complete)
    -v                 print every result, not only failures

The exit code is 0 when every result is a pass, unimplemented, skipped or
expected (with -strict: a pass or expected); 1 on any other result; 2 on a
usage error (a -run that matches no scenario or vector family of the
suites is one); 130 when a Ctrl-C (SIGINT, or SIGTERM, SIGHUP) stopped the
run, whose report then holds the tests that ended before it.

Example:
    $ go build -o bin/ ./cmd/...
    $ bin/missive-conformance -adapter bin/missive-adapter vectors
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "coverage" {
		return coverage(args[1:], stdout, stderr)
	}
	fl := flag.NewFlagSet("missive-conformance", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	adapter := fl.String("adapter", "", "")
	expectFile := fl.String("expect", "", "")
	jsonFile := fl.String("json", "", "")
	junitFile := fl.String("junit", "", "")
	timeout := fl.Duration("timeout", conformance.DefaultTimeout, "")
	verbose := fl.Bool("v", false, "")
	strict := fl.Bool("strict", false, "")
	serverAddr := fl.String("server", "", "")
	serverCmd := fl.String("server-cmd", "", "")
	match := fl.String("run", "", "")
	version := fl.Bool("version", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *version {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "missive-conformance %s (specification %s)\n", v, spec.Version)
		return 0
	}
	suites := fl.Args()
	if len(suites) == 0 {
		// The server suite tests a server: without one, it would test
		// this program's own.
		suites = []string{"vectors", "client"}
		if *serverAddr != "" || *serverCmd != "" {
			suites = append(suites, "server")
		}
	}
	for _, s := range suites {
		if s != "vectors" && s != "client" && s != "server" {
			fmt.Fprintf(stderr, "missive-conformance: unknown suite %q (want vectors, client or server)\n", s)
			return 2
		}
		if s == "server" && *serverAddr == "" && *serverCmd == "" {
			fmt.Fprint(stderr, "missive-conformance: the server suite needs the server under test: -server ADDR or -server-cmd CMD\n")
			return 2
		}
	}
	if *serverCmd != "" && !strings.Contains(*serverCmd, "{addr}") {
		fmt.Fprint(stderr, "missive-conformance: -server-cmd has no {addr}: the runner chooses the address the server listens on\n")
		return 2
	}
	if *serverCmd != "" && !strings.Contains(*serverCmd, "{clock}") {
		fmt.Fprint(stderr, "missive-conformance: warning: -server-cmd has no {clock}: the scenarios of expiry cannot run the server's clock ahead, and will fail\n")
	}
	if *jsonFile == "-" && *junitFile == "-" {
		fmt.Fprint(stderr, "missive-conformance: -json - and -junit - cannot share standard output\n")
		return 2
	}
	// With a report on standard output, the summary goes to standard error.
	summary := stdout
	if *jsonFile == "-" || *junitFile == "-" {
		summary = stderr
	}
	if *adapter == "" && conformance.NeedsAdapter(suites) {
		fmt.Fprint(stderr, "missive-conformance: -adapter is required for the vectors and client suites, such as: -adapter \"missive-adapter\"\n")
		return 2
	}
	var expect conformance.Expectations
	if *expectFile != "" {
		b, err := os.ReadFile(*expectFile)
		if err == nil {
			expect, err = conformance.ParseExpectations(string(b))
		}
		if err != nil {
			fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
			return 2
		}
	}
	// The adapter and a server under test run in process groups of their
	// own, which a terminal's hang-up or a CI job's stop does not reach:
	// the runner stops them on those signals too.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	go func() {
		// After the first signal, a second one stops the runner at once,
		// as it would without this handler.
		<-ctx.Done()
		cancel()
	}()
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile(*match); err != nil {
			fmt.Fprintf(stderr, "missive-conformance: -run: %v\n", err)
			return 2
		}
	}
	rep, err := conformance.Run(ctx, conformance.Options{
		Adapter: *adapter, Timeout: *timeout, Suites: suites, Expect: expect,
		Progress: progress(stderr, *verbose), ServerCommand: *serverCmd, ServerAddr: *serverAddr, Match: re,
	})
	interrupted := errors.Is(err, conformance.ErrInterrupted)
	if errors.Is(err, conformance.ErrNoMatch) {
		fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
		return 2
	}
	if err != nil && !interrupted {
		fmt.Fprintf(stderr, "\nmissive-conformance: %v\n", err)
		return 1
	}
	if isTerminal(stderr) {
		fmt.Fprint(stderr, "\r\033[K")
	}
	rep.WriteSummary(summary)
	for _, out := range []struct {
		file  string
		write func(io.Writer) error
	}{{*jsonFile, rep.WriteJSON}, {*junitFile, rep.WriteJUnit}} {
		if out.file == "" {
			continue
		}
		w := stdout
		if out.file != "-" {
			f, err := os.Create(out.file)
			if err != nil {
				fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
				return 1
			}
			defer f.Close()
			w = f
		}
		if err := out.write(w); err != nil {
			fmt.Fprintf(stderr, "missive-conformance: %v\n", err)
			return 1
		}
	}
	if interrupted {
		// 128 + SIGINT, as a shell reports a command that a Ctrl-C stopped.
		fmt.Fprintf(stderr, "missive-conformance: interrupted: the report holds the %d tests that ended before; the others did not run\n", len(rep.Results))
		return 130
	}
	if rep.Failed() {
		return 1
	}
	if n := rep.Incomplete(); *strict && n > 0 {
		fmt.Fprintf(stderr, "missive-conformance: -strict: %d of %d tests unimplemented or skipped\n", n, len(rep.Results))
		return 1
	}
	return 0
}

// progress returns the live progress line: counts so far, and each failure
// (each result with -v) on a line of its own.
func progress(w io.Writer, verbose bool) func(conformance.Result) {
	var n, fails int
	last := time.Now()
	live := isTerminal(w)
	return func(r conformance.Result) {
		n++
		if r.Outcome == conformance.Fail {
			fails++
		}
		if r.Outcome == conformance.Fail || verbose {
			detail := r.Detail
			if i := strings.LastIndex(detail, "\n"); i >= 0 && !verbose {
				detail = detail[i+1:]
			}
			clear := ""
			if live {
				clear = "\r\033[K"
			}
			fmt.Fprintf(w, "%s%-13s %s %s\n", clear, strings.ToUpper(string(r.Outcome)), r.Name(), detail)
		}
		if live && (time.Since(last) > 100*time.Millisecond || r.Outcome == conformance.Fail) {
			fmt.Fprintf(w, "\r\033[K%d tests, %d failed: %s", n, fails, r.Name())
			last = time.Now()
		}
	}
}

// isTerminal reports whether w is a terminal, where the progress line can
// be rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
