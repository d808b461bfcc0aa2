package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// serverDir holds the missive-server binary that TestMain builds for the
// scripts; Setup puts it first on their PATH.
var serverDir string

// The scripts run "missive" as this test binary (testscript.Main) and
// "missive-server" as the real command, built once here: its main is in
// another package main, which a test cannot import.
func TestMain(m *testing.M) {
	testscript.Main(withServer{m}, map[string]func(){
		"missive": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// withServer builds missive-server before the tests run. It runs only in
// the test process itself, not when the binary runs as "missive".
type withServer struct{ m *testing.M }

func (w withServer) Run() int {
	dir, err := os.MkdirTemp("", "missive-server-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildServer(dir); err != nil {
		fmt.Fprintf(os.Stderr, "building missive-server for the scripts: %v\n", err)
		return 1
	}
	serverDir = dir
	return w.m.Run()
}

// buildServer builds cmd/missive-server into dir, with the race detector
// when this test binary has it.
func buildServer(dir string) error {
	args := []string{"build", "-o", filepath.Join(dir, "missive-server")}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	args = append(args, "github.com/missive-protocol/missive/cmd/missive-server")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return nil
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", serverDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			if env.Getenv("GORACE") == "" {
				// Under -race, each command would otherwise wait 1 s as it exits.
				env.Setenv("GORACE", "atexit_sleep_ms=0")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeport":  cmdFreeport,
			"waitport":  cmdWaitport,
			"clock":     cmdClock,
			"exitcode":  cmdExitcode,
			"until":     cmdUntil,
			"stdoutvar": cmdStdoutvar,
			"mkfile":    cmdMkfile,
			"waitfile":  cmdWaitfile,
		},
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// waitTimeout bounds every wait of the custom commands: long enough for a
// loaded machine, short enough that a hang fails with a message.
const waitTimeout = 30 * time.Second

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // ports handed out, never handed out twice
)

// freePort returns a free TCP port on 127.0.0.1 that no other script of
// this process got.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !ports[port] {
			ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// freeport NAME sets the environment variable NAME to a free port of
// 127.0.0.1.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	port, err := freePort()
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(port))
}

// waitport ADDR waits until something accepts TCP connections at ADDR, a
// loopback address.
func cmdWaitport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport ADDR")
	}
	if host, _, err := net.SplitHostPort(args[0]); err != nil || host != "127.0.0.1" {
		ts.Fatalf("waitport: %q is not an address on 127.0.0.1", args[0])
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitport: nothing accepts connections at %s after %v: %v", args[0], waitTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clockReread is how long a server started with -clock FILE may take to
// see a new FILE: it re-reads FILE on the first reading of its clock 50 ms
// or more after the previous one.
const clockReread = 50 * time.Millisecond

// clock FILE DURATION sets the offset of a server started with -clock FILE,
// and returns once any later reading of the server's clock has it.
func cmdClock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: clock FILE DURATION")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(args[1]+"\n"), 0o644))
	time.Sleep(2 * clockReread)
}

// exitcode CODE PROG ARGS... runs PROG and checks that it exits with CODE;
// stdout and stderr are then those of PROG.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not an exit code", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// until REGEXP PROG ARGS... runs PROG again until its stdout matches
// REGEXP, for a condition that a script can only poll for.
func cmdUntil(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: until REGEXP PROG [ARGS...]")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	ts.Check(err)
	deadline := time.Now().Add(waitTimeout)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			ts.Fatalf("until: %v", err)
		}
		if time.Now().After(deadline) {
			ts.Fatalf("until: %s did not print %q within %v (last error: %v)", args[1], args[0], waitTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stdoutvar NAME REGEXP sets the environment variable NAME to the first
// group of REGEXP in the last command's stdout.
func cmdStdoutvar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: stdoutvar NAME REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("stdoutvar: no match for %q (with a group) in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdWaitfile waits until a file exists and is not empty, and sets the
// environment variable NAME to its first line: waitfile FILE NAME. A
// command in the background writes FILE for the script to go on.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE NAME")
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		if line, _, _ := strings.Cut(string(b), "\n"); err == nil && line != "" {
			ts.Setenv(args[1], line)
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s not written after %v", args[0], waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdMkfile writes a file of a given size with a fixed pattern: mkfile
// NAME BYTES. Scripts use it for attachments too large to hold in the
// script.
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile NAME BYTES")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		ts.Fatalf("mkfile: %q is not a size", args[1])
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*31 + 7) % 251)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}
