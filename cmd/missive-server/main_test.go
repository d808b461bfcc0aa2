package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The scripts, and the crash test, run "missive-server" as this test
// binary: testscript.Main runs run when the binary is started under that
// name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"missive-server": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			if env.Getenv("GORACE") == "" {
				// Under -race, each command would otherwise wait 1 s as it exits.
				env.Setenv("GORACE", "atexit_sleep_ms=0")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeport": cmdFreeport,
			"waitport": cmdWaitport,
			"exitcode": cmdExitcode,
		},
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// waitTimeout bounds every wait for the server: long enough for a loaded
// machine, short enough that a hang fails with a message.
const waitTimeout = 30 * time.Second

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // ports handed out, never handed out twice
)

// freePort returns a free TCP port on 127.0.0.1 that no other test of this
// process got.
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

// waitListening waits until something accepts TCP connections at addr, or
// until exited is closed (the server stopped) or waitTimeout passes.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited before it listened")
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// waitport ADDR waits until something accepts TCP connections at ADDR, an
// address on 127.0.0.1.
func cmdWaitport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport ADDR")
	}
	if host, _, err := net.SplitHostPort(args[0]); err != nil || host != "127.0.0.1" {
		ts.Fatalf("waitport: %q is not an address on 127.0.0.1", args[0])
	}
	if err := waitListening(args[0], nil); err != nil {
		ts.Fatalf("waitport: nothing accepts connections at %s after %v: %v", args[0], waitTimeout, err)
	}
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
