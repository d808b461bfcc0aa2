package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/errcode"
)

// killPids kills the processes whose ids the fake adapter or the server
// wrapper wrote to pidfile: processes this test started.
func killPids(t *testing.T, pidfile string) {
	b, _ := os.ReadFile(pidfile)
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestRunnerAdapterBehindWrapper: an adapter started through a wrapper
// ("sh -c ...", "go run ...", "npm run ...") whose implementation hangs.
// The runner must kill the whole process group after -timeout and return,
// not wait for the hung child's output to close.
func TestRunnerAdapterBehindWrapper(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	t.Setenv("REVIEW_PIDFILE", pidfile)
	wrapped := `sh -c "` + fakeCommand(t, "hang") + `; exit $?"`
	returnsWithin(t, pidfile, "an adapter that hangs (timeout 1s)", func() error {
		_, err := Run(context.Background(), Options{Adapter: wrapped, Suites: []string{"vectors"}, Timeout: time.Second})
		return err
	})
}

// returnsWithin runs run, which must return within a minute; when it does
// not, the test kills the processes of pidfile, which it was waiting for.
func returnsWithin(t *testing.T, pidfile, what string, run func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: Run failed: %v", what, err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("%s: Run has not returned after 60 s; want it to end", what)
		killPids(t, pidfile)
		select {
		case <-done:
			t.Logf("Run returned once the test killed the wrapper's child: it was waiting for it")
		case <-time.After(10 * time.Second):
		}
	}
}

// TestRunnerServerBehindWrapper: a server under test started through a
// wrapper. At the end of the scenario the runner must stop the server too,
// and return.
func TestRunnerServerBehindWrapper(t *testing.T) {
	_, server := buildTools(t)
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pids")
	wrapper := filepath.Join(dir, "server.sh")
	script := "#!/bin/sh\n# a wrapper, as go run, npm start or a launch script are: the server is its child\n" +
		server + " \"$@\" &\necho $! >> " + pidfile + "\nwait $!\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	returnsWithin(t, pidfile, "one scenario of about a second, server behind a wrapper", func() error {
		rep, err := Run(context.Background(), Options{Suites: []string{"server"}, Match: regexp.MustCompile("^online_delivery$"),
			ServerCommand: wrapper + " -listen {addr} -data {data} -clock {clock}"})
		if err == nil && rep.Failed() {
			err = fmt.Errorf("the scenario failed: %s", rep.Results[0].Detail)
		}
		return err
	})
}

// TestRunnerEndlessLine: an adapter that prints an endless line costs the
// runner at most maxLine (64 MiB) of memory, and is adapter-broken.
func TestRunnerEndlessLine(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	t.Setenv("REVIEW_PIDFILE", pidfile)
	defer killPids(t, pidfile)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > max {
				max = m.HeapAlloc
			}
			select {
			case <-stop:
				peak <- max
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "hugeline"), Suites: []string{"vectors"}, Timeout: 2 * time.Second})
	close(stop)
	grew := (max(<-peak, before.HeapAlloc) - before.HeapAlloc) >> 20
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Kind != AdapterBroken {
		t.Errorf("first result: got %s %s, want adapter-broken", rep.Results[0].Outcome, rep.Results[0].Kind)
	}
	if grew > 256 {
		t.Errorf("the runner's heap grew by %d MiB on one garbage line; want at most 256 MiB (maxLine is 64 MiB)", grew)
	}
}

// TestRunnerMarkerInAdapterText: a refusal whose free-text detail holds
// the runner's "[skip]" marker is a failure, not "unimplemented": only the
// runner's own marker classifies a result.
func TestRunnerMarkerInAdapterText(t *testing.T) {
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "proxy:skip-detail"), Suites: []string{"client"},
		Match: regexp.MustCompile("^online_delivery$")})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Outcome != Fail || rep.Failed() == false {
		t.Errorf("online_delivery with every message.send refused: got %s (%s), report failed %v; want fail (unexpected-failure)", r.Outcome, r.Detail, rep.Failed())
	}
}

// TestRunnerRunSelectsVectors: -run selects vector families too.
func TestRunnerRunSelectsVectors(t *testing.T) {
	adapter, _ := buildTools(t)
	rep, err := Run(context.Background(), Options{Adapter: adapter, Suites: []string{"vectors"}, Match: regexp.MustCompile("^xeddsa$")})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, r := range rep.Results {
		groups[r.Group]++
	}
	if len(groups) != 1 {
		t.Errorf("-run ^xeddsa$ vectors: got results of %d families (%v), want xeddsa only", len(groups), groups)
	}
}

// TestRunnerLinkFailureIsTheImplementations: an implementation whose
// primary device shows a malformed link code (its adapter answers
// link.complete with ERROR after wait_ms = 15000, as the protocol says)
// fails link_three_devices as the implementation's failure, and the
// adapter, still alive, passes the next scenario.
func TestRunnerLinkFailureIsTheImplementations(t *testing.T) {
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "proxy:badcode"), Suites: []string{"client"},
		Match: regexp.MustCompile("^(link_three_devices|online_delivery)$")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		t.Logf("%s: %s %s %s", r.ID, r.Outcome, r.Kind, lastLines(r.Detail, 1))
		switch r.ID {
		case "link_three_devices":
			if r.Kind == AdapterBroken {
				t.Errorf("link_three_devices: got %s, want a failure of the implementation (unexpected-failure), not of its adapter", r.Kind)
			}
		case "online_delivery":
			if r.Outcome != Pass {
				t.Errorf("online_delivery, which the implementation passes alone: got %s %s, want pass", r.Outcome, r.Kind)
			}
		}
	}
}

// TestRunnerDuplicatesWhateverTheIDs: the no-dedup mutant fails
// duplicate_delivery (CLI-001) through the plain adapter (""), and also
// when its adapter reports local ids instead of the protocol's, or returns
// from messages.receive at once instead of waiting wait_ms.
func TestRunnerDuplicatesWhateverTheIDs(t *testing.T) {
	t.Setenv("REVIEW_MUTANT", "no-dedup")
	for _, filter := range []string{"", "localids", "nowait"} {
		mode := "proxy:" + filter
		rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, mode), Suites: []string{"client"},
			Match: regexp.MustCompile("^duplicate_delivery$")})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.Outcome != Fail {
			t.Errorf("no-dedup mutant, adapter filter %q: duplicate_delivery got %s, want fail", filter, r.Outcome)
		}
	}
}

// TestRunnerReportsAdapterStderr: what a crashed adapter wrote to its
// standard error (a panic and its trace) is in the report.
func TestRunnerReportsAdapterStderr(t *testing.T) {
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "crash"), Suites: []string{"vectors"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	var b strings.Builder
	rep.WriteSummary(&b)
	rep.WriteJSON(&b)
	if !strings.Contains(b.String(), "index out of range") {
		t.Errorf("the adapter panicked; got result %s %s %q and no trace of the panic in the summary or the JSON report; want its stderr reported", r.Outcome, r.Kind, r.Detail)
	}
}

// TestRunnerStalledAdapterWrite: an adapter that stops reading its input
// in the middle of a request larger than the pipe's buffer (64 KiB), here
// a media.encrypt of 200,000 bytes, is adapter-broken after -timeout: the
// write has the answer's deadline.
func TestRunnerStalledAdapterWrite(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	t.Setenv("REVIEW_PIDFILE", pidfile)
	defer killPids(t, pidfile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		rep, err := Run(ctx, Options{Adapter: fakeCommand(t, "proxy:stall-media"), Suites: []string{"vectors"}, Timeout: 2 * time.Second})
		if err == nil {
			for _, r := range rep.Results {
				if r.Outcome == Fail {
					t.Logf("first failure: %s %s %s", r.Name(), r.Kind, r.Detail)
					break
				}
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return
	case <-time.After(60 * time.Second):
	}
	cancel() // as an interrupt does
	select {
	case <-done:
		t.Errorf("Run returned only when interrupted, not after -timeout 2s")
	case <-time.After(10 * time.Second):
		t.Errorf("Run has not returned 60s after the adapter stopped reading (timeout 2s), nor 10s after its context was cancelled; want adapter-broken")
	}
}

// TestRunnerTimeoutOnTopOfWait: the runner asks the adapter to wait
// (messages.receive wait_ms for expect-none 3s); -timeout runs on top of
// that wait, so the reference adapter passes with -timeout 2s.
func TestRunnerTimeoutOnTopOfWait(t *testing.T) {
	adapter, _ := buildTools(t)
	rep, err := Run(context.Background(), Options{Adapter: adapter, Suites: []string{"client"}, Timeout: 2 * time.Second,
		Match: regexp.MustCompile("^(forged_devices|online_delivery)$")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Outcome != Pass {
			t.Errorf("%s, reference adapter, -timeout 2s: got %s %s %q, want pass", r.ID, r.Outcome, r.Kind, lastLines(r.Detail, 1))
		}
	}
}

// TestRunnerClockFileDays: the clock file of -server-cmd holds whole days
// in the form the README shows ("31d").
func TestRunnerClockFileDays(t *testing.T) {
	p, err := newProcess("unused", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	if err := p.moveClock(c, 31*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p.clockFile)
	if got := strings.TrimSpace(string(b)); got != "31d" {
		t.Errorf("clock file after clock advance 31d: got %q, want %q (the documented form)", got, "31d")
	}
	if got := c.offsetAfter(0); got != 31*24*time.Hour {
		t.Errorf("the devices' clock after clock advance 31d: got an offset of %v, want 744h", got)
	}
}

// TestRunnerTransportWrongCode: a transport segment refused with another
// registered code than the vector's is wrong-error.
func TestRunnerTransportWrongCode(t *testing.T) {
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "proxy:wrongcode"), Suites: []string{"vectors"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Group == "transport" && r.ID == "transport_xx_altered_tag" {
			if r.Kind != WrongError {
				t.Errorf("%s refused with decode.truncated: got %s %s %q, want fail wrong-error", r.ID, r.Outcome, r.Kind, r.Detail)
			}
			return
		}
	}
	t.Fatal("no result for transport_xx_altered_tag")
}

// TestCheckStatus: a refusal is status ERROR with the vector's code; a
// response with no status and the right code is not one.
func TestCheckStatus(t *testing.T) {
	const want = errcode.AuthBadSignature
	for _, c := range []struct {
		status pb.Status
		code   errcode.Code
		kind   FailKind // "" for a pass
	}{
		{pb.Status_ERROR, want, ""},
		{pb.Status_ERROR, errcode.DecodeTruncated, WrongError},
		{pb.Status_OK, 0, UnexpectedSuccess},
		{pb.Status_STATUS_UNSPECIFIED, want, WrongError},
	} {
		var r Result
		check(&r, &pb.Response{Status: c.status, ErrorCode: uint32(c.code)}, want)
		if r.Kind != c.kind {
			t.Errorf("status %v, code %v: got kind %q, want %q", c.status, c.code, r.Kind, c.kind)
		}
	}
}

// TestRunnerServerAddr: the server suite against a server already running
// (-server ADDR): every scenario has accounts of its own on it, so each
// passes after the first.
func TestRunnerServerAddr(t *testing.T) {
	srv, err := newEmbedded(t.TempDir(), &clock{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	rep, err := Run(context.Background(), Options{Suites: []string{"server"}, ServerAddr: srv.address(),
		Match: regexp.MustCompile("^(offline_queue|online_delivery)$")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Outcome != Pass {
			t.Errorf("%s against the reference server at -server %s: got %s %s %q, want pass", r.ID, srv.address(), r.Outcome, r.Kind, lastLines(r.Detail, 1))
		}
	}
}

// TestRunnerFailFast: with FailFast a scenario suite ends at its first
// failure; without, every scenario runs. Nothing listens at the address,
// so each scenario fails at its first step.
func TestRunnerFailFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		failFast bool
		want     int
	}{{true, 1}, {false, 3}} {
		rep, err := Run(context.Background(), Options{Suites: []string{"server"}, ServerAddr: addr, FailFast: tc.failFast,
			Match: regexp.MustCompile("^(offline_queue|online_delivery|sender_mismatch)$")})
		if err != nil {
			t.Fatal(err)
		}
		fails := 0
		for _, r := range rep.Results {
			if r.Outcome == Fail {
				fails++
			}
		}
		if len(rep.Results) != tc.want || fails != tc.want {
			t.Errorf("FailFast %v, no server: got %d results, %d failed, want %d, all failed", tc.failFast, len(rep.Results), fails, tc.want)
		}
	}
}

// TestRunnerAnswerThenExit: an adapter that writes a large answer and then
// exits has its whole answer read: the runner reads its output to the
// end, whatever the order in which the exit and the last bytes come.
func TestRunnerAnswerThenExit(t *testing.T) {
	script := filepath.Join(t.TempDir(), "adapter.sh")
	body := `#!/bin/sh
big=$(head -c 4000000 /dev/zero | tr '\0' a)
n=0
while IFS= read -r line; do
  n=$((n+1))
  id=$(printf '%s' "$line" | sed -n 's/.*"id":"\{0,1\}\([0-9]*\).*/\1/p')
  case $n in
  1) printf '{"id":"%s","status":"OK","hello":{"name":"fake","version":"0","protocolVersions":[1]}}\n' "$id";;
  2) printf '{"id":"%s","status":"UNIMPLEMENTED"}\n' "$id";;
  *) printf '{"id":"%s","status":"OK","detail":"%s"}\n' "$id" "$big"; exit 0;;
  esac
done
`
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	const runs = 20
	lost := 0
	for range runs {
		a, err := StartAdapter(context.Background(), script, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Call(context.Background(), &pb.Request{Method: "clock.set"})
		if err != nil || resp.Status != pb.Status_OK {
			lost++
			t.Logf("lost: %v", err)
		}
		a.Close()
	}
	if lost > 0 {
		t.Errorf("an answer written just before the adapter exits: lost in %d of %d runs, want 0", lost, runs)
	}
}

// TestRunnerInterrupted: a run whose context is cancelled (Ctrl-C) stops,
// returns ErrInterrupted, and reports only the tests that ended before,
// none of them failed for the interruption; the rest do not run.
func TestRunnerInterrupted(t *testing.T) {
	adapter, _ := buildTools(t)
	for _, c := range []struct {
		name   string
		o      Options
		cancel int // after this many results
	}{
		{"in the vectors", Options{Suites: []string{"vectors", "client"}}, 50},
		{"in the scenarios", Options{Suites: []string{"client"}, Match: regexp.MustCompile("^(online_delivery|offline_queue|duplicate_delivery|receipts_from_impl)$")}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var progress []Result
			start := time.Now()
			o := c.o
			o.Adapter = adapter
			o.Progress = func(r Result) {
				progress = append(progress, r)
				if len(progress) == c.cancel {
					cancel()
				}
			}
			rep, err := Run(ctx, o)
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Run after a cancel: got error %v, want ErrInterrupted", err)
			}
			if rep == nil || !rep.Interrupted {
				t.Fatalf("report after a cancel: got %+v, want one marked interrupted", rep)
			}
			if len(rep.Results) != c.cancel || len(progress) != c.cancel {
				t.Errorf("got %d results and %d progress calls, want the %d that ended before the cancel", len(rep.Results), len(progress), c.cancel)
			}
			for _, r := range rep.Results {
				if r.Outcome == Fail {
					t.Errorf("%s: got %s (%s) %s, want no failure among the tests that ended before", r.Name(), r.Outcome, r.Kind, r.Detail)
				}
			}
			if d := time.Since(start); d > time.Minute {
				t.Errorf("the run took %v after the cancel, want it to stop", d)
			}
		})
	}
}

// TestScenarioRefusalStatus: a step that must fail passes only on a
// refusal as the adapter protocol has it, status ERROR with a registered
// code; an answer with no status and the right code is wrong-error, as it
// is for a vector (TestCheckStatus).
func TestScenarioRefusalStatus(t *testing.T) {
	adapter, _ := buildTools(t)
	script := filepath.Join(t.TempDir(), "nostatus.sh")
	body := "#!/bin/sh\n" + adapter + ` | sed -u -E 's/"status": *"ERROR", *//'` + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Adapter: script, Suites: []string{"client"},
		Match: regexp.MustCompile("^edit_not_author$")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		t.Fatal("got no results, want edit_not_author's")
	}
	for _, r := range rep.Results {
		if r.Outcome != Fail || r.Kind != WrongError {
			t.Errorf("%s with refusals that have no status: got %s %s, want fail wrong-error", r.ID, r.Outcome, r.Kind)
		}
	}
}

// TestScenarioSlowAdapter: a request of a scenario step may take up to the
// run's timeout, as the CLI's -timeout says, whatever the step's own wait
// (waitLong) is: a correct implementation whose sends take longer than
// that wait passes with a timeout that allows them.
func TestScenarioSlowAdapter(t *testing.T) {
	defer func(w time.Duration) { waitLong = w }(waitLong)
	waitLong = 3 * time.Second
	t.Setenv("REVIEW_DELAY", "4s")
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "proxy:slow-send"), Suites: []string{"client"},
		Timeout: 10 * time.Second, Match: regexp.MustCompile("^online_delivery$")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Outcome != Pass {
		t.Errorf("sends answered after 4 s, step wait 3 s, timeout 10 s: got %+v, want one pass", rep.Results)
	}
}

// TestRunnerAdapterDoesNotStart: an adapter that cannot be used (here, one
// of another protocol version) gives a report with one adapter-broken
// failure that says why, not an error and no report.
func TestRunnerAdapterDoesNotStart(t *testing.T) {
	rep, err := Run(context.Background(), Options{Adapter: fakeCommand(t, "version99"), Suites: []string{"vectors"}})
	if err != nil {
		t.Fatalf("got error %v, want a report", err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Kind != AdapterBroken || !strings.Contains(rep.Results[0].Detail, "protocol versions [99]") || !rep.Failed() {
		t.Errorf("got %+v, want one adapter-broken failure naming the versions", rep.Results)
	}
}
