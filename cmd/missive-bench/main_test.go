package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the child server of the idle scenario,
// as the command is.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// tiny are the flags of a smoke run: every scenario with a handful of
// devices for a fraction of a second, on free ports of 127.0.0.1.
var tiny = []string{
	"-q", "-runs", "1", "-duration", "300ms", "-warmup", "100ms", "-hold", "300ms",
	"-devices", "6", "-window", "2", "-messages", "60", "-senders", "6", "-recipients", "3",
	"-idle", "20", "-workers", "3", "-group-size", "12", "-groups", "1",
}

// TestSmoke runs each scenario once with tiny counts and checks that the
// report is well formed and that its counts add up. It does not assert any
// speed.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	jsonFile, svgFile := filepath.Join(dir, "bench.json"), filepath.Join(dir, "latency.svg")
	var stdout, stderr bytes.Buffer
	args := append(append([]string{}, tiny...), "-json", jsonFile, "-svg", svgFile)
	start := time.Now()
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	t.Logf("all scenarios in %v", time.Since(start))
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rep report
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	status := map[string]*scenarioReport{}
	for _, s := range rep.Scenarios {
		status[s.Name] = s
	}
	for _, sc := range scenarios {
		s := status[sc.name]
		switch {
		case s == nil:
			t.Errorf("scenario %s is not in the report", sc.name)
		case sc.run == nil && s.Status != "skipped":
			t.Errorf("scenario %s: status %q, want skipped", sc.name, s.Status)
		case sc.run != nil && s.Status != "ok":
			t.Errorf("scenario %s: status %q (%s), want ok", sc.name, s.Status, s.Reason)
		}
		if s != nil && !strings.Contains(stdout.String(), sc.name) {
			t.Errorf("the table does not name scenario %s", sc.name)
		}
	}
	for _, s := range rep.Scenarios {
		if s.Status != "ok" {
			continue
		}
		if len(s.Figures) == 0 {
			t.Errorf("%s: no figures", s.Name)
		}
		for _, f := range s.Figures {
			if len(f.Runs) != 1 {
				t.Errorf("%s: %s: %d runs, want 1", s.Name, f.Name, len(f.Runs))
			}
			if f.Value < 0 {
				t.Errorf("%s: %s = %v", s.Name, f.Name, f.Value)
			}
			if f.Baseline != nil && (f.Baseline.Value <= 0 || f.Ratio <= 0) {
				t.Errorf("%s: %s: baseline %v, ratio %v", s.Name, f.Name, f.Baseline.Value, f.Ratio)
			}
		}
		for phase, c := range s.Counts {
			if c.Sent != c.Accepted+c.Refused+c.Unanswered {
				t.Errorf("%s %s: sent %d != accepted %d + refused %d + unanswered %d", s.Name, phase, c.Sent, c.Accepted, c.Refused, c.Unanswered)
			}
			if c.Refused != 0 || c.Unanswered != 0 || len(c.Errors) != 0 {
				t.Errorf("%s %s: %d refused (%v), %d unanswered", s.Name, phase, c.Refused, c.Errors, c.Unanswered)
			}
			perMessage := uint64(1)
			if s.Name == "group" {
				perMessage = 11 // a group of 12 (names of one and two digits): every other member
			}
			if c.Delivered != c.Accepted*perMessage {
				t.Errorf("%s %s: delivered %d, accepted %d, want %d deliveries of each", s.Name, phase, c.Delivered, c.Accepted, perMessage)
			}
			if c.Acked < c.Delivered {
				t.Errorf("%s %s: acked %d of %d delivered", s.Name, phase, c.Acked, c.Delivered)
			}
		}
	}
	if s := status["route"]; s != nil && s.Status == "ok" {
		if c := s.Counts["full speed"]; c.Sent == 0 {
			t.Error("route: nothing sent at full speed")
		}
	}
	if s := status["enqueue"]; s != nil && s.Status == "ok" {
		if c := s.Counts["enqueue and drain"]; c.Accepted != 60 || c.Delivered != 60 {
			t.Errorf("enqueue: %d accepted and %d delivered, want 60", c.Accepted, c.Delivered)
		}
	}
	if s := status["group"]; s != nil && s.Status == "ok" {
		if c := s.Counts["full speed"]; c.Accepted == 0 {
			t.Error("group: no group message accepted")
		}
	}
	if s := status["idle"]; s != nil && s.Status == "ok" {
		if f := s.Figures[0]; f.Value != 20 {
			t.Errorf("idle: the server held %v connections, want 20", f.Value)
		}
	}
	// Routing reports the tool's own lateness in its latency phases, and
	// routing and enqueue, with the server in this process, how long
	// envelopes waited for the store.
	for _, s := range rep.Scenarios {
		var wants []string
		switch s.Name {
		case "route":
			wants = []string{"the tool's own send lag", "the store's wait per envelope"}
		case "enqueue":
			wants = []string{"the store's wait per envelope"}
		}
		for _, want := range wants {
			found := false
			for _, l := range s.Latencies {
				if strings.HasPrefix(l.Label, want) {
					found = true
					if l.Count == 0 {
						t.Errorf("%s: %q has no samples", s.Name, l.Label)
					}
				}
			}
			if !found {
				t.Errorf("%s: no latency %q", s.Name, want)
			}
		}
	}
	// The plot is well-formed XML with a curve for each latency.
	svg, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Errorf("svg: %v", err)
	}
	curves := 0
	for _, s := range rep.Scenarios {
		for _, l := range s.Latencies {
			if l.Count > 0 && len(l.Percentiles) > 1 {
				curves++
			}
		}
	}
	if n := strings.Count(string(svg), "<polyline"); n != curves || n == 0 {
		t.Errorf("svg has %d curves, want %d", n, curves)
	}
}

// TestMemStore runs the enqueue scenario, the one whose figure names its
// store, against the in-memory store.
func TestMemStore(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := append(append([]string{}, tiny...), "-store", "mem", "enqueue")
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "in-memory store") {
		t.Errorf("the table does not say the store was in memory:\n%s", &stdout)
	}
}

// TestChild runs the scenarios that measure an in-process server by
// default with the server in a child process instead, and checks that
// they report the server's CPU and system calls per message.
func TestChild(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	var stdout, stderr bytes.Buffer
	args := append(append([]string{}, tiny...), "-child", "-json", jsonFile, "route", "enqueue", "group")
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 3 {
		t.Fatalf("got %d scenarios, want 3", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		// The server's CPU and its read and write system calls, per
		// message: each a figure of 0 or more.
		for _, prefix := range []string{"server CPU per ", "server read system calls per ", "server write system calls per "} {
			found := false
			for _, f := range s.Figures {
				if strings.HasPrefix(f.Name, prefix) {
					found = true
					if f.Value < 0 {
						t.Errorf("%s: %s = %v, want 0 or more", s.Name, f.Name, f.Value)
					}
				}
			}
			if !found {
				t.Errorf("%s: no figure %q...", s.Name, prefix)
			}
		}
		// Routing has them for its latency phase as well.
		if s.Name == "route" {
			n := 0
			for _, f := range s.Figures {
				if strings.Contains(f.Name, " in the latency phase") {
					n++
				}
			}
			if n != 4 {
				t.Errorf("route: got %d figures of the latency phase's cost, want 4", n)
			}
		}
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 2 {
		t.Errorf("-h: exit %d, want 2", code)
	}
	for _, s := range scenarios {
		if !strings.Contains(stderr.String(), "\n    "+s.name+" ") {
			t.Errorf("usage does not list scenario %s", s.name)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-group-size", "1", "group"}, "-group-size"},
		{[]string{"rout"}, "did you mean route?"},
		{[]string{"-server", "192.0.2.1:7350", "route"}, "not a loopback address"},
		{[]string{"-src", "10.0.0.1", "route"}, "not a loopback address"},
		{[]string{"-size", "10", "route"}, "-size"},
		{[]string{"-store", "disk", "route"}, "-store"},
	} {
		stderr.Reset()
		if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestHistogram(t *testing.T) {
	h := new(histogram)
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < 0 || d > 1.0/histHalf {
			t.Errorf("quantile %v = %v, want %v within %.1f%% above", tc.q, got, tc.want, 100.0/histHalf)
		}
	}
	if h.Count() != 100000 || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d, max %v", h.Count(), h.Max())
	}
	for v := int64(0); v < 1<<40; v = v*3/2 + 1 {
		i := histIndex(v)
		if i < 0 || i >= histBuckets || histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d of [%d, %d]", v, i, histUpper(i-1)+1, histUpper(i))
		}
	}
}

func TestParseSources(t *testing.T) {
	ips, err := parseSources("127.0.0.2-127.0.0.4, 127.0.1.1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if want := "127.0.0.2 127.0.0.3 127.0.0.4 127.0.1.1"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"", "127.0.0.9-127.0.0.1", "127.255.255.255-128.0.0.1", "::1", "x"} {
		if _, err := parseSources(bad); err == nil {
			t.Errorf("parseSources(%q) succeeded", bad)
		}
	}
}
