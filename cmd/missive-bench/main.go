// Command missive-bench measures a Missive server (spec chapters 12 and 13)
// with simulated devices over real transport connections: online routing,
// durable enqueue and drain, idle connections, reconnect storms and group
// fan-out, each
// against a baseline measured in the same run, so that every figure comes
// with a ratio. See spec/appendix-performance.md for the method and the
// figures of the reference server.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/missive-protocol/missive/ref/wire"
)

const usage = `missive-bench measures a Missive server with simulated devices.

Usage:
    missive-bench [flags] [scenario ...]

Scenarios (all available ones when none is named):
    route       online routing: devices in a ring send 256-byte envelopes to each
                other at full speed (msg/s), then at half that rate (latency p50,
                p99, p99.9); then a search (six more phases) for the highest rate
                whose p99 stays under 20 ms; with the server in this process, also
                how long each envelope waited for the store; baseline: a plain
                loopback relay of the same frames
    enqueue     offline enqueue and drain: sends to offline devices, each answered
                after the store has synced it, then the devices drain their queues;
                baseline: bbolt's DB.Batch with fsync
    idle        idle connections: as many authenticated connections as the machine
                allows, and the server's memory per connection (server in a child
                process, or -server with -server-pid)
    reconnect   reconnect storm: connect, hello, close, over and over (conn/s), server
                in a child process; baseline: X25519 op/s on this machine over the
                10 of a handshake, and the same with the cost of a bare TCP
                connection added (connect, the handshake's bytes, reset)
    group       group fan-out: groups of members each sending group messages (one
                ciphertext each) that the server fans out to every other member
                (deliveries/s, latency); baseline: a loopback relay fanning out
                the same frames

The list is extensible: a scenario is a name, a description and a function.

Flags:
    -server ADDR       measure the server at ADDR (a 127.0.0.0/8 or ::1 address)
                       instead of one started in this process; start it with
                       -register-burst -1, since the tool registers more accounts
                       from this machine than REGISTER_BURST lets one source
    -server-key HEX    its static public key (default: learn it with one XX handshake)
    -server-pid PID    its process, to read its memory (VmRSS) in the idle scenario
    -runs N            repeat each measurement N times and report medians (default 3)
    -duration D        length of each measured phase (default 10s)
    -warmup D          unmeasured start of each phase (default 2s)
    -devices N         route: devices (default 2500)
    -window N          unanswered sends per device at most (default 8)
    -size N            envelope size in bytes (default 256)
    -rate N            route: msg/s of the latency phase (default: half the full speed)
    -messages N        enqueue: messages per run (default 200000)
    -senders N         enqueue: sending devices (default 2000)
    -recipients N      enqueue: offline devices (default 100)
    -group-size N      group: members per group, one device each (default 50)
    -groups N          group: groups (default 20)
    -idle N            idle: connections to open (default 500000; fewer if limits say so)
    -hold D            idle: how long to hold them before measuring (default 5s)
    -src LIST          source addresses of connections, such as 127.0.0.2-127.0.0.40,127.0.1.1
                       (default 127.0.0.1; the ephemeral ports of one address run out)
    -workers N         reconnect: devices reconnecting at once (default 64)
    -child             route, enqueue, group: start the server in a child process too,
                       and report its CPU time and read and write system calls
                       per message (from /proc)
    -store KIND        the store of a server this program starts: bolt (default) or
                       mem, the in-memory store, which syncs nothing: what the
                       server costs without its store's writes (not a durable figure)
    -json FILE         write the report as JSON
    -svg FILE          write the latency curves as an SVG plot
    -cpuprofile FILE   write a CPU profile (the server's goroutines carry side=server)
    -memprofile FILE   write a heap profile at the end
    -child-cpuprofile FILE
                       idle, reconnect: write a CPU profile of the server in its
                       child process
    -blockprofile FILE write a profile of where goroutines waited (channels, locks,
                       select), sampled every 10 µs of waiting
    -q                 no progress line
    -version           print the version

Every connection goes to 127.0.0.0/8 or ::1 only.

Example:
    $ missive-bench -runs 5 -json bench.json -svg latency.svg route enqueue
`

func main() {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the flags.
type config struct {
	server, serverKey                      string
	serverPID                              int
	runs                                   int
	duration, warmup, hold                 time.Duration
	devices, window, size                  int
	rate                                   float64
	messages, senders, recipients          int
	groupSize, groups                      int
	idle, workers                          int
	src                                    string
	jsonFile, svgFile, cpuprofile, memfile string
	childProfile, store                    string
	child                                  bool
	blockfile                              string
	quiet, version                         bool
}

// scenario is one measurement. A scenario whose run is nil is listed but
// not available; unavailable says why.
type scenario struct {
	name        string
	unavailable string
	run         func(*bench, *scenarioReport) error
}

var scenarios = []scenario{
	{name: "route", run: (*bench).runRoute},
	{name: "enqueue", run: (*bench).runEnqueue},
	{name: "idle", run: (*bench).runIdle},
	{name: "reconnect", run: (*bench).runReconnect},
	{name: "group", run: (*bench).runGroup},
}

// bench is one invocation.
type bench struct {
	cfg  config
	run  string // account name prefix, new for each invocation
	srcs []net.IP
	prog *progress

	t     *target // route, enqueue, group: in this process unless -server
	child *target // idle, reconnect: a child process unless -server
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("missive-bench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	var cfg config
	fl.StringVar(&cfg.server, "server", "", "")
	fl.StringVar(&cfg.serverKey, "server-key", "", "")
	fl.IntVar(&cfg.serverPID, "server-pid", 0, "")
	fl.IntVar(&cfg.runs, "runs", 3, "")
	fl.DurationVar(&cfg.duration, "duration", 10*time.Second, "")
	fl.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "")
	fl.DurationVar(&cfg.hold, "hold", 5*time.Second, "")
	fl.IntVar(&cfg.devices, "devices", 2500, "")
	fl.IntVar(&cfg.window, "window", 8, "")
	fl.IntVar(&cfg.size, "size", 256, "")
	fl.Float64Var(&cfg.rate, "rate", 0, "")
	fl.IntVar(&cfg.messages, "messages", 200000, "")
	fl.IntVar(&cfg.senders, "senders", 2000, "")
	fl.IntVar(&cfg.recipients, "recipients", 100, "")
	fl.IntVar(&cfg.groupSize, "group-size", 50, "")
	fl.IntVar(&cfg.groups, "groups", 20, "")
	fl.IntVar(&cfg.idle, "idle", 500000, "")
	fl.IntVar(&cfg.workers, "workers", 64, "")
	fl.StringVar(&cfg.src, "src", "127.0.0.1", "")
	fl.StringVar(&cfg.jsonFile, "json", "", "")
	fl.StringVar(&cfg.svgFile, "svg", "", "")
	fl.StringVar(&cfg.cpuprofile, "cpuprofile", "", "")
	fl.StringVar(&cfg.memfile, "memprofile", "", "")
	fl.StringVar(&cfg.childProfile, "child-cpuprofile", "", "")
	fl.StringVar(&cfg.store, "store", "bolt", "")
	fl.BoolVar(&cfg.child, "child", false, "")
	fl.StringVar(&cfg.blockfile, "blockprofile", "", "")
	fl.BoolVar(&cfg.quiet, "q", false, "")
	fl.BoolVar(&cfg.version, "version", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if cfg.version {
		fmt.Fprintf(stdout, "missive-bench %s\n", version())
		return 0
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "missive-bench: "+format+"\n", a...)
		return 2
	}
	chosen, err := choose(fl.Args())
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case cfg.runs < 1, cfg.devices < 2, cfg.window < 1, cfg.messages < 1, cfg.senders < 1,
		cfg.recipients < 1, cfg.idle < 1, cfg.workers < 1, cfg.duration <= 0, cfg.warmup < 0, cfg.groups < 1:
		return fail("-runs, -devices (at least 2), -window, -messages, -senders, -recipients, -idle, -workers and -duration must be positive")
	case cfg.size < 64 || cfg.size > 65536:
		return fail("-size %d: between 64 and 65536 bytes", cfg.size)
	case cfg.groupSize < 2 || cfg.groupSize > wire.MaxGroupMembers:
		return fail("-group-size %d: between 2 and %d", cfg.groupSize, wire.MaxGroupMembers)
	case cfg.window > inflightRing:
		return fail("-window %d: at most %d", cfg.window, inflightRing)
	case cfg.store != "bolt" && cfg.store != "mem":
		return fail("-store %q: bolt or mem", cfg.store)
	}
	srcs, err := parseSources(cfg.src)
	if err != nil {
		return fail("-src: %v", err)
	}
	if cfg.server != "" {
		if err := checkLoopback(cfg.server); err != nil {
			return fail("-server: %v", err)
		}
	}
	b := &bench{cfg: cfg, srcs: srcs, run: runName()}
	limit := raiseFileLimit()
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return fail("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail("%v", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if cfg.blockfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	b.prog = newProgress(stderr, cfg.quiet)
	rep := &report{
		Tool: "missive-bench", Version: version(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs: runtime.NumCPU(), Started: time.Now().UTC().Format(time.RFC3339), FileLimit: limit,
		Command: strings.Join(append([]string{"missive-bench"}, args...), " "),
		Params:  params(fl),
	}
	code := 0
	pprof.Do(context.Background(), toolLabels, func(context.Context) {
		code = b.runAll(chosen, rep, stderr)
	})
	b.prog.close()
	if b.t != nil {
		b.t.close()
	}
	if b.child != nil && b.child != b.t {
		b.child.close()
	}
	rep.Server = "ref/server with the " + cfg.store + " store in a temporary directory: in this process for route, enqueue and group, in a child process for idle and reconnect"
	if cfg.child {
		rep.Server = "ref/server with the " + cfg.store + " store in a temporary directory, in a child process"
	}
	if cfg.server != "" {
		rep.Server = "external " + cfg.server
	}
	rep.writeTable(stdout)
	if cfg.jsonFile != "" {
		if err := rep.writeJSON(cfg.jsonFile); err != nil {
			fmt.Fprintf(stderr, "missive-bench: %v\n", err)
			code = 1
		}
	}
	if cfg.svgFile != "" {
		if err := rep.writeSVG(cfg.svgFile); err != nil {
			fmt.Fprintf(stderr, "missive-bench: %v\n", err)
			code = 1
		}
	}
	if cfg.memfile != "" {
		runtime.GC()
		if err := writeProfile("allocs", cfg.memfile); err != nil {
			fmt.Fprintf(stderr, "missive-bench: %v\n", err)
			code = 1
		}
	}
	if cfg.blockfile != "" {
		if err := writeProfile("block", cfg.blockfile); err != nil {
			fmt.Fprintf(stderr, "missive-bench: %v\n", err)
			code = 1
		}
	}
	return code
}

// writeProfile writes the named runtime profile to file.
func writeProfile(name, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runAll runs the chosen scenarios in order; one that fails is reported
// as failed and the others still run.
func (b *bench) runAll(chosen []scenario, rep *report, stderr io.Writer) int {
	code := 0
	for _, sc := range chosen {
		s := &scenarioReport{Name: sc.name, Runs: b.cfg.runs}
		rep.Scenarios = append(rep.Scenarios, s)
		if sc.run == nil {
			s.Status, s.Reason = "skipped", sc.unavailable
			continue
		}
		if err := b.start(sc.name); err != nil {
			s.Status, s.Reason = "failed", err.Error()
			fmt.Fprintf(stderr, "missive-bench: %s: %v\n", sc.name, err)
			code = 1
			continue
		}
		if err := sc.run(b, s); err != nil {
			s.Status, s.Reason = "failed", err.Error()
			b.prog.clear()
			fmt.Fprintf(stderr, "missive-bench: %s: %v\n", sc.name, err)
			code = 1
			continue
		}
		s.Status = "ok"
	}
	return code
}

// childScenarios measure a server in a process of its own: idle, for the
// server's memory and file descriptors, and reconnect, whose handshakes
// would otherwise share one process's scheduler, collector and key cache
// between the server and the tool's clients (appendix A.3).
var childScenarios = map[string]bool{"idle": true, "reconnect": true}

// start makes sure the server a scenario measures is there.
func (b *bench) start(name string) error {
	var err error
	switch {
	case b.cfg.server != "" && b.t == nil:
		b.t, err = external(b.cfg.server, b.cfg.serverKey, b.cfg.serverPID)
		b.child = b.t
	case (childScenarios[name] || b.cfg.child) && b.child == nil:
		b.prog.phase(nil, "starting the server in a child process")
		b.child, err = startChild(b.cfg.store, b.cfg.childProfile)
	case !childScenarios[name] && !b.cfg.child && b.t == nil:
		b.t, err = startInProcess(b.cfg.store)
	}
	if err == nil && b.cfg.child && b.t == nil {
		b.t = b.child
	}
	return err
}

// choose returns the scenarios named, or every available one.
func choose(names []string) ([]scenario, error) {
	if len(names) == 0 || len(names) == 1 && names[0] == "all" {
		return scenarios, nil
	}
	var out []scenario
	for _, n := range names {
		i := -1
		for j, s := range scenarios {
			if s.name == n {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q%s", n, hint(n))
		}
		if scenarios[i].run == nil {
			return nil, fmt.Errorf("scenario %s is not available yet: %s", n, scenarios[i].unavailable)
		}
		out = append(out, scenarios[i])
	}
	return out, nil
}

// hint suggests a scenario whose name starts like n.
func hint(n string) string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
		if len(n) > 0 && strings.HasPrefix(s.name, n[:1]) {
			return fmt.Sprintf(" (did you mean %s?)", s.name)
		}
	}
	return " (scenarios: " + strings.Join(names, ", ") + ")"
}

// parseSources parses a list of loopback addresses and ranges of them.
func parseSources(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("%q is not an IPv4 address", lo)
		}
		b := a
		if isRange {
			if b = net.ParseIP(hi).To4(); b == nil {
				return nil, fmt.Errorf("%q is not an IPv4 address", hi)
			}
		}
		x, y := ipNum(a), ipNum(b)
		if y < x || y-x > 1<<16 {
			return nil, fmt.Errorf("%q: not a range of at most 65536 addresses", part)
		}
		for v := x; v <= y; v++ {
			ip := net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
			if !ip.IsLoopback() {
				return nil, fmt.Errorf("%s is not a loopback address (127.0.0.0/8): connections stay on this machine", ip)
			}
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no address")
	}
	return out, nil
}

func ipNum(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// checkLoopback refuses a server address that is not on this machine.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is %s, not a loopback address: the tool measures servers on this machine only", host, ip)
		}
	}
	return nil
}

// runName returns a prefix for account names that no earlier run used.
func runName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "b" + hex.EncodeToString(b)
}

func params(fl *flag.FlagSet) map[string]string {
	m := map[string]string{}
	fl.VisitAll(func(f *flag.Flag) {
		if f.Name != "version" {
			m[f.Name] = f.Value.String()
		}
	})
	return m
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
