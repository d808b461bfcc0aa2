package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/transport"
)

// target is the server under measurement: one started in this process, one
// started as a child process (for memory per connection, and so that the
// server has a file descriptor limit of its own), or one at an address.
type target struct {
	kind string // "in-process", "child" or "external"
	addr string
	key  []byte // the server's static public key, which devices pin (IK)
	sink string // the reconnect scenario's TCP baseline (sink.go), "" until started

	sinkLn net.Listener // a sink in this process, for a server not started here
	pid    int          // the server's process, for VmRSS; 0 when unknown

	// in-process
	srv   *server.Server
	store queueStore
	timed *timedStore // store, timed (storewait.go)
	dir   string

	// child
	cmd   *exec.Cmd
	ctlIn io.WriteCloser
	ctl   *bufio.Reader
}

// serverLabels mark the goroutines of an in-process server, and so
// everything they start, in CPU profiles: go tool pprof -tagfocus
// side=server shows the server's share.
var (
	serverLabels = pprof.Labels("side", "server")
	toolLabels   = pprof.Labels("side", "tool")
)

// queueStore is the store of an in-process server: bolt, or the in-memory
// store with -store mem.
type queueStore interface {
	store.Store
	TotalEntries(context.Context) (int, error)
}

// storeEnv names the environment variable that passes -store to the child.
const storeEnv = "MISSIVE_BENCH_STORE"

// openStore opens the store that kind names in dir: "bolt" (the default)
// or "mem", the in-memory store, which keeps nothing across a restart and
// writes nothing to disk: it shows what the server costs without its
// store's synced writes.
func openStore(kind, dir string) (queueStore, error) {
	switch kind {
	case "", "bolt":
		return bolt.Open(filepath.Join(dir, "store.db"))
	case "mem":
		return mem.New(), nil
	}
	return nil, fmt.Errorf("-store %q: bolt or mem", kind)
}

// startInProcess starts the reference server with the store that kind
// names, in a new temporary directory, listening on a free port of
// 127.0.0.1.
func startInProcess(kind string) (*target, error) {
	dir, err := os.MkdirTemp("", "missive-bench-")
	if err != nil {
		return nil, err
	}
	t := &target{kind: "in-process", dir: dir, pid: os.Getpid()}
	if err := t.serve(kind, dir, "127.0.0.1:0", true); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// serve opens the store in dir and serves on listen; with timed, the
// server's store is wrapped to time its enqueues (timedStore). A child
// process serves its store as it is: its costs are those of the server
// alone.
func (t *target) serve(kind, dir, listen string, timed bool) error {
	st, err := openStore(kind, dir)
	if err != nil {
		return err
	}
	var served store.Store = st
	if timed {
		if t.timed, err = newTimedStore(st); err != nil {
			st.Close()
			return err
		}
		served = t.timed
	}
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		st.Close()
		return err
	}
	// The tool registers every account it uses from this machine, more
	// than REGISTER_BURST for the idle connections (SRV-026).
	srv, err := server.New(server.Config{Store: served, Static: static, Logger: slog.New(slog.DiscardHandler), RegisterBurst: -1})
	if err != nil {
		st.Close()
		return err
	}
	ln, err := transport.Listen(listen)
	if err != nil {
		st.Close()
		return err
	}
	t.srv, t.store, t.addr, t.key = srv, st, ln.Addr().String(), srv.PublicKey()
	pprof.Do(context.Background(), serverLabels, func(context.Context) {
		go srv.Serve(ln)
	})
	return nil
}

// external is a server at addr. Without key, one XX handshake learns it,
// as a device's first contact does (TRN-004).
func external(addr, keyHex string, pid int) (*target, error) {
	t := &target{kind: "external", addr: addr, pid: pid}
	if keyHex != "" {
		k, err := hex.DecodeString(keyHex)
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("-server-key: want 64 hex digits, the server's static public key")
		}
		t.key = k
		return t, nil
	}
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	tc, err := transport.Client(nc, &transport.ClientConfig{Static: static})
	if err != nil {
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	t.key = tc.RemoteStatic()
	return t, nil
}

// childEnv names the environment variable that makes this program (or its
// test binary) run as the child server; its value is the data directory.
const childEnv = "MISSIVE_BENCH_SERVE"

// childProfileEnv names the environment variable that makes the child
// server write a CPU profile of itself to the file it names.
const childProfileEnv = "MISSIVE_BENCH_CPUPROFILE"

// startChild starts this program again as a server in a process of its own
// and waits until it listens; with cpuprofile, the child writes a CPU
// profile of itself there until it ends.
func startChild(kind, cpuprofile string) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "missive-bench-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childProfileEnv+"="+cpuprofile, storeEnv+"="+kind)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &target{kind: "child", dir: dir, cmd: cmd, ctlIn: in, ctl: bufio.NewReader(out), pid: cmd.Process.Pid}
	line, err := t.ctl.ReadString('\n')
	if err != nil {
		t.close()
		return nil, fmt.Errorf("child server: %w", err)
	}
	var hello struct {
		Addr string `json:"addr"`
		Key  string `json:"key"`
		Sink string `json:"sink"`
	}
	if err := json.Unmarshal([]byte(line), &hello); err != nil {
		t.close()
		return nil, fmt.Errorf("child server said %q", line)
	}
	t.addr, t.sink = hello.Addr, hello.Sink
	t.key, _ = hex.DecodeString(hello.Key)
	return t, nil
}

// runChild is the child server: it serves until its standard input ends,
// and answers each line "mem" on it with its memory figures.
func runChild(dir string) int {
	raiseFileLimit()
	if file := os.Getenv(childProfileEnv); file != "" {
		f, err := os.Create(file)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "missive-bench: child server: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	t := &target{}
	if err := t.serve(os.Getenv(storeEnv), dir, "127.0.0.1:0", false); err != nil {
		fmt.Fprintf(os.Stderr, "missive-bench: child server: %v\n", err)
		return 1
	}
	sink, err := transport.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "missive-bench: child server: %v\n", err)
		t.close()
		return 1
	}
	defer sink.Close()
	go serveSink(sink)
	json.NewEncoder(os.Stdout).Encode(map[string]string{"addr": t.addr, "key": hex.EncodeToString(t.key), "sink": sink.Addr().String()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "mem" {
			json.NewEncoder(os.Stdout).Encode(t.serverMemory())
		}
	}
	t.close()
	return 0
}

// memory is what a server process holds.
type memory struct {
	RSS        uint64 `json:"rss"`         // resident set, from /proc/PID/status
	HeapInuse  uint64 `json:"heap_inuse"`  // Go heap spans in use (0 when unknown)
	StackInuse uint64 `json:"stack_inuse"` // goroutine stacks
	Goroutines int    `json:"goroutines"`
	Connected  int64  `json:"connected"` // authenticated devices connected, -1 when unknown
}

// readMemory returns the memory of process pid; with runtime true (pid is
// this process) the Go runtime's figures too, after a collection that
// returns what it frees to the system.
func readMemory(pid int, withRuntime bool) memory {
	m := memory{Connected: -1}
	if withRuntime {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.HeapInuse, m.StackInuse, m.Goroutines = ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
	}
	m.RSS = vmRSS(pid)
	return m
}

// vmRSS reads VmRSS of a process in bytes, 0 when it cannot.
func vmRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// memory returns the server's memory: for a child, from the child; in
// process, the whole process's (tool included); for an external server,
// its VmRSS when -server-pid names it.
func (t *target) memory() (memory, error) {
	switch t.kind {
	case "child":
		if _, err := io.WriteString(t.ctlIn, "mem\n"); err != nil {
			return memory{}, err
		}
		line, err := t.ctl.ReadString('\n')
		if err != nil {
			return memory{}, err
		}
		var m memory
		return m, json.Unmarshal([]byte(line), &m)
	case "in-process":
		return t.serverMemory(), nil
	}
	if t.pid == 0 {
		return memory{}, errors.New("the memory of an external server needs -server-pid")
	}
	return readMemory(t.pid, false), nil
}

// serverMemory is readMemory of this process, which runs the server, with
// the server's count of connected devices.
func (t *target) serverMemory() memory {
	m := readMemory(os.Getpid(), true)
	var buf bytes.Buffer
	t.srv.WriteMetrics(context.Background(), &buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if n, ok := strings.CutPrefix(line, "missive_devices_connected "); ok {
			m.Connected, _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return m
}

// totalEntries returns the entries queued in the store, or -1 when the
// store is not in this process.
func (t *target) totalEntries() int {
	if t.store == nil {
		return -1
	}
	n, err := t.store.TotalEntries(context.Background())
	if err != nil {
		return -1
	}
	return n
}

func (t *target) close() {
	if t.sinkLn != nil {
		t.sinkLn.Close()
	}
	if t.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.srv.Shutdown(ctx)
		cancel()
	}
	if t.store != nil {
		t.store.Close()
	}
	if t.cmd != nil {
		t.ctlIn.Close()
		done := make(chan struct{})
		go func() { t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.cmd.Process.Kill()
			<-done
		}
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}

// sinkAddr returns the address of the TCP baseline's sink: the child's,
// or, for a server this program did not start, one in this process.
func (t *target) sinkAddr() (string, error) {
	if t.sink == "" {
		ln, err := transport.Listen("127.0.0.1:0")
		if err != nil {
			return "", err
		}
		t.sinkLn, t.sink = ln, ln.Addr().String()
		go serveSink(ln)
	}
	return t.sink, nil
}

// procUsage is what the server's process has used so far: CPU time (user and
// system, in seconds) and the system calls that read and write (syscr and
// syscw of /proc/PID/io, which the kernel counts in its file read and write
// paths: read, pread, readv, write, pwrite, writev, on sockets as on files;
// not recvmsg or sendmsg, which the server does not use), when calls is set.
type procUsage struct {
	cpu           float64
	reads, writes uint64
	calls         bool // reads and writes were read
}

// usage returns the server's usage when the server has a process of its own
// that this program knows: a child, or an external server given with
// -server-pid.
func (t *target) usage() (procUsage, bool) {
	if t.kind == "in-process" || t.pid == 0 {
		return procUsage{}, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", t.pid))
	if err != nil {
		return procUsage{}, false
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start after the last ')'. utime and stime are
	// fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procUsage{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procUsage{}, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procUsage{}, false
	}
	out := procUsage{cpu: float64(u+s) / 100}
	// Reading another process's io file needs the right to trace it; without
	// it the calls stay unknown (0) and only the CPU time is reported.
	if stats, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", t.pid)); err == nil {
		out.calls = true
		for _, line := range strings.Split(string(stats), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			n, err := strconv.ParseUint(v, 10, 64)
			switch {
			case err != nil:
			case k == "syscr":
				out.reads = n
			case k == "syscw":
				out.writes = n
			}
		}
	}
	return out, true
}

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns the limit in force.
func raiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}

// noiseKey returns a fresh transport key pair.
func noiseKey() (noise.DHKey, error) { return transport.Suite.GenerateKeypair(rand.Reader) }
