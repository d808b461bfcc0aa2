package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func buildAdapter(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../missive-adapter").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return filepath.Join(dir, "missive-adapter")
}

// TestCLIJSONToStdout: with -json -, standard output is the JSON report
// alone (the summary goes to standard error).
func TestCLIJSONToStdout(t *testing.T) {
	adapter := buildAdapter(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-adapter", adapter, "-json", "-", "-run", "^online_delivery$", "client"}, &stdout, &stderr)
	var v map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Errorf("-json -: exit %d, standard output is not JSON (%v); it starts %q", code, err, strings.SplitN(stdout.String(), "\n", 2)[0])
	}
}

// TestCLINoServerNoServerSuite: with no suite named and no server given,
// the runner does not run the server suite against its own server.
func TestCLINoServerNoServerSuite(t *testing.T) {
	adapter := buildAdapter(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-adapter", adapter, "-run", "^online_delivery$"}, &stdout, &stderr)
	if m := regexp.MustCompile(`(?m)^server\s+scenarios\s+(\d+)`).FindStringSubmatch(stdout.String()); m != nil && m[1] != "0" {
		t.Errorf("no server under test given: exit %d, got %s server-suite passes (the reference server tested by reference clients), want the server suite skipped or a usage error\n%s", code, m[1], stdout.String())
	}
}

// TestCLIRunAcrossSuites: a -run that selects a vector family and no
// scenario runs that family with the default suites (vectors and client)
// and writes its report; one that selects nothing in any suite is a usage
// error, not a green run of no test.
func TestCLIRunAcrossSuites(t *testing.T) {
	adapter := buildAdapter(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-run", "^xeddsa$"}, 0},
		{[]string{"-run", "^xedsa$", "vectors"}, 2},
		{[]string{"-run", "^xedsa$"}, 2},
	} {
		out := filepath.Join(t.TempDir(), "r.json")
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"-adapter", adapter, "-json", out}, c.args...), &stdout, &stderr)
		if code != c.code {
			t.Errorf("%v: got exit %d, want %d\n%s%s", c.args, code, c.code, stdout.String(), stderr.String())
			continue
		}
		if c.code != 0 {
			continue
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Errorf("%v: no report: %v", c.args, err)
			continue
		}
		var rep struct {
			Results []struct{ Suite, Group string }
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) == 0 {
			t.Errorf("%v: got no results in the report, want the xeddsa vectors", c.args)
		}
		for _, r := range rep.Results {
			if r.Suite != "vectors" || r.Group != "xeddsa" {
				t.Errorf("%v: got a result of %s/%s, want vectors/xeddsa only", c.args, r.Suite, r.Group)
				break
			}
		}
	}
}

// TestCLICoverageAllowFile: missive-conformance coverage, run anywhere but
// the repository root or with a mistyped -allow, names the allow list it
// could not read.
func TestCLICoverageAllowFile(t *testing.T) {
	for _, args := range [][]string{{"coverage"}, {"coverage", "-allow", "no/such/file.txt"}} {
		wd, _ := os.Getwd()
		os.Chdir(t.TempDir())
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		os.Chdir(wd)
		n := strings.Count(stderr.String(), "is a MUST that no vector or scenario covers")
		if code != 0 && !strings.Contains(stderr.String(), "uncovered.txt") && !strings.Contains(stderr.String(), "file.txt") {
			t.Errorf("%v outside the repository: exit %d with %d MUSTs reported uncovered and no word of the allow file it could not read; want the list found, or its absence reported", args, code, n)
		}
	}
}

// TestCLIServerCmdPlaceholders: a -server-cmd without {addr} is a usage
// error, and one without {clock} is run with a warning.
func TestCLIServerCmdPlaceholders(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-server-cmd", "my-server -data {data}", "server"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "{addr}") {
		t.Errorf("-server-cmd without {addr}: got exit %d, %q; want 2 and a word of {addr}", code, stderr.String())
	}
	stderr.Reset()
	code := run([]string{"-server-cmd", "/no/such/server -listen {addr} -data {data}", "-run", "^no-such-scenario$", "server"}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), "{clock}") {
		t.Errorf("-server-cmd without {clock}: got exit %d, %q; want a warning about {clock}", code, stderr.String())
	}
}

// TestCLIInterrupt: a Ctrl-C (SIGINT) stops the runner, which reports the
// tests that ended before, says it was interrupted and exits with 130, as
// a shell reports a command a Ctrl-C stopped; no test is reported failed
// for the interruption.
func TestCLIInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send on windows")
	}
	adapter := buildAdapter(t)
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "missive-conformance"), "-v", "-adapter", adapter,
		"-run", "^(online_delivery|offline_queue|duplicate_delivery|receipts_from_impl)$", "client")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		errText.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "PASS") {
			cmd.Process.Signal(os.Interrupt)
			break
		}
	}
	for sc.Scan() {
		errText.WriteString(sc.Text() + "\n")
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code after SIGINT: got %d, want 130\nstderr:\n%s", code, errText.String())
	}
	if !strings.Contains(errText.String(), "interrupted") || !strings.Contains(stdout.String(), "interrupted") {
		t.Errorf("after SIGINT: got stderr\n%s\nand summary\n%s\nwant both to say the run was interrupted", errText.String(), stdout.String())
	}
	if strings.Contains(errText.String(), "FAIL") {
		t.Errorf("after SIGINT: got failures\n%s\nwant none for the interruption", errText.String())
	}
}

// TestCLIStrict: an adapter that implements nothing (it answers hello,
// and UNIMPLEMENTED to everything else) passes by default, all its results
// unimplemented; with -strict an unimplemented result fails the run.
func TestCLIStrict(t *testing.T) {
	dir := t.TempDir()
	// An adapter that answers hello and UNIMPLEMENTED to everything else.
	script := filepath.Join(dir, "none.sh")
	body := "#!/bin/sh\nwhile read -r line; do\n" +
		"  id=$(printf '%s' \"$line\" | sed -E 's/.*\"id\": *\"?([0-9]+)\"?.*/\\1/')\n" +
		"  case \"$line\" in\n" +
		"  *'\"hello\"'*) printf '{\"id\":\"%s\",\"status\":\"OK\",\"hello\":{\"name\":\"none\",\"version\":\"0\",\"protocolVersions\":[1]}}\\n' \"$id\" ;;\n" +
		"  *) printf '{\"id\":\"%s\",\"status\":\"UNIMPLEMENTED\"}\\n' \"$id\" ;;\n" +
		"  esac\ndone\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-adapter", script, "-run", "^xeddsa$", "vectors"}, 0},
		{[]string{"-adapter", script, "-strict", "-run", "^xeddsa$", "vectors"}, 1},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != c.code {
			t.Errorf("%v: got exit %d, want %d\n%s%s", c.args[2:], code, c.code, stdout.String(), stderr.String())
		}
	}
}
