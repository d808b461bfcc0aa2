package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
)

// The crash tests kill the real server (this test binary run as
// missive-server, a process of its own) with SIGKILL and start it again on
// the same data directory. Whatever the server acknowledged with a
// send-result before it died must reach the recipient, and nothing may be
// shown twice (SRV-006, SRV-013, CLI-001).

// crashN is the number of messages of each burst: more than the last kill
// point, and within the send burst of the rate limit (SEND_BURST, 100).
const crashN = 80

// quiet is how long a recipient must receive nothing, after it has every
// message it waits for, before the test stops listening: a duplicate would
// come right behind the original.
const quiet = time.Second

// serverProc is a missive-server process.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string // where it listens
	exited chan struct{}
}

// serverOutput appends a server's output to its log file, and reports the
// address of its "listening on" line.
type serverOutput struct {
	mu        sync.Mutex
	f         *os.File
	line      []byte
	listening chan string
}

func (w *serverOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Write(p)
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		if addr, ok := strings.CutPrefix(string(w.line[:i]), "missive-server listening on "); ok {
			select {
			case w.listening <- addr:
			default:
			}
		}
		w.line = w.line[i+1:]
	}
}

// startServer starts missive-server listening on listen (127.0.0.1:0 for
// a free port) with its state in data and its output appended to logPath,
// and waits until it says where it listens. The server is killed when the
// test ends, if it still runs.
func startServer(t *testing.T, listen, data, logPath string) *serverProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out := &serverOutput{f: logf, listening: make(chan string, 1)}
	cmd := exec.Command(exe, "-listen", listen, "-data", data)
	cmd.Args[0] = "missive-server" // TestMain runs the server under this name
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case p.addr = <-out.listening:
	case <-p.exited:
		t.Fatalf("the server exited before it listened on %s:\n%s", listen, readLog(logPath))
	case <-time.After(waitTimeout):
		t.Fatalf("the server did not listen on %s within %v:\n%s", listen, waitTimeout, readLog(logPath))
	}
	return p
}

// kill kills the server with SIGKILL, at once, without waiting.
func (p *serverProc) kill() { p.cmd.Process.Kill() }

// wait waits until the server process has exited.
func (p *serverProc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("the server did not exit within %v", waitTimeout)
	}
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// crashEnv is a server's data directory and address, and two devices.
type crashEnv struct {
	t       *testing.T
	addr    string
	data    string
	logPath string
	alice   *client.Device // the sender
	bob     *client.Device // the recipient
}

// newCrashEnv starts a server on a free port of 127.0.0.1, and makes the
// devices of alice and bob for it.
func newCrashEnv(t *testing.T) (*crashEnv, *serverProc) {
	t.Helper()
	dir := t.TempDir()
	e := &crashEnv{t: t, data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", readLog(e.logPath))
		}
	})
	srv := startServer(t, "127.0.0.1:0", e.data, e.logPath)
	e.addr = srv.addr
	e.alice = newDevice(t, filepath.Join(dir, "alice"), "alice", e.addr)
	e.bob = newDevice(t, filepath.Join(dir, "bob"), "bob", e.addr)
	return e, srv
}

// restart starts the server again, on the same address and data
// directory.
func (e *crashEnv) restart() *serverProc { return startServer(e.t, e.addr, e.data, e.logPath) }

func newDevice(t *testing.T, dir, account, addr string) *client.Device {
	t.Helper()
	d, err := client.Init(dir, account, addr, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func connect(t *testing.T, d *client.Device) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := d.Connect(ctx)
	if err != nil {
		t.Fatalf("%s connects: %v", d.Account, err)
	}
	return c
}

// sent is one message of a burst.
type sent struct {
	text  string
	id    string // hex; empty when Send failed before storing it
	acked bool   // Send returned without error: the server sent send-result
	err   error
	// resent: sent again with its id (Conn.Resend) after the restart.
	resent bool
}

// burst sends n messages to account on c: the first alone (it creates the
// session), the others from workers at once. It stops taking new messages
// once the connection has ended. onAck is called after each send-result
// with the number of them so far.
func burst(c *client.Conn, account string, n, workers int, onAck func(acked int)) []sent {
	out := make([]sent, n)
	var acked atomic.Int32
	send := func(i int) {
		out[i].text = fmt.Sprintf("message %d", i)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		m, err := c.Send(ctx, account, out[i].text)
		if m != nil {
			out[i].id = hex.EncodeToString(m.ID)
		}
		out[i].err = err
		if err == nil {
			out[i].acked = true
			onAck(int(acked.Add(1)))
		}
	}
	send(0)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				send(i)
			}
		})
	}
feed:
	for i := 1; i < n; i++ {
		select {
		case <-c.Done():
			break feed
		case next <- i:
		}
	}
	close(next)
	wg.Wait()
	return out
}

// shown counts the messages a device showed, by id.
type shown map[string]int

// collect connects d and counts the messages it shows, until it has shown
// every message of want (id to text) and then nothing for the quiet time.
// Waiting for missing messages fails after stall without any event (the
// server delivers a queue at once on connection), or after 2*waitTimeout.
func collect(t *testing.T, d *client.Device, want map[string]string, counts shown) {
	t.Helper()
	const stall = 15 * time.Second
	c := connect(t, d)
	defer c.Close()
	missing := func() []string {
		var out []string
		for id, text := range want {
			if counts[id] == 0 {
				out = append(out, text)
			}
		}
		slices.Sort(out)
		return out
	}
	n := len(missing())
	deadline := time.NewTimer(2 * waitTimeout)
	defer deadline.Stop()
	idle := time.NewTimer(quiet)
	defer idle.Stop()
	last := time.Now()
	for {
		select {
		case e, ok := <-c.Events:
			if !ok {
				t.Fatalf("%s's connection ended: %v", d.Account, c.Err())
			}
			switch e.Kind {
			case client.EventMessage:
				id := hex.EncodeToString(e.Message.ID)
				counts[id]++
				if _, ok := want[id]; ok && counts[id] == 1 {
					n--
				}
			case client.EventError:
				t.Logf("%s: %v", d.Account, e.Err)
			}
			last = time.Now()
			idle.Reset(quiet)
		case <-idle.C:
			if n == 0 {
				return
			}
			if time.Since(last) >= stall {
				t.Fatalf("%s got nothing for %v and still misses %d of %d acknowledged messages: %q", d.Account, stall, n, len(want), missing())
			}
			idle.Reset(quiet)
		case <-deadline.C:
			t.Fatalf("%s still misses %d of %d acknowledged messages after %v: %q", d.Account, n, len(want), 2*waitTimeout, missing())
		}
	}
}

// checkShown checks that every message that must arrive (acknowledged, or
// resent after the restart) was shown exactly once, live and in the
// history, and that no message was shown twice.
func checkShown(t *testing.T, bob *client.Device, msgs []sent, live shown) {
	t.Helper()
	byID := map[string]sent{}
	for _, m := range msgs {
		if m.id != "" {
			byID[m.id] = m
		}
	}
	hist, err := bob.Messages("alice")
	if err != nil {
		t.Fatal(err)
	}
	inHistory := shown{}
	texts := map[string]int{}
	for _, m := range hist {
		inHistory[hex.EncodeToString(m.ID)]++
		texts[m.Text]++
	}
	for _, m := range msgs {
		if m.acked || m.resent {
			if got := live[m.id]; got != 1 {
				t.Errorf("%q (acknowledged %v, resent %v) shown live %d times, want 1", m.text, m.acked, m.resent, got)
			}
			if got := inHistory[m.id]; got != 1 {
				t.Errorf("%q (acknowledged %v, resent %v) in the history %d times, want 1", m.text, m.acked, m.resent, got)
			}
		}
	}
	for id, n := range live {
		m, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("message %s shown, but alice never sent it", id)
		case n > 1:
			t.Errorf("%q shown live %d times, want at most 1", m.text, n)
		}
	}
	for id, n := range inHistory {
		if n > 1 {
			t.Errorf("message %s (%q) in the history %d times, want at most 1", id, byID[id].text, n)
		}
		if live[id] == 0 {
			t.Errorf("message %s (%q) in the history but never shown live", id, byID[id].text)
		}
	}
	for text, n := range texts {
		if n > 1 {
			t.Errorf("text %q in the history %d times, want at most 1", text, n)
		}
	}
}

// resend connects d again and resends, with their ids, the messages whose
// Send failed after storing them, as a device does that lost the server's
// answers, and also the last acknowledged message, as if its answer had
// been lost: the server stores each once (SRV-008, its memory of accepted
// ids survives the crash), and the recipient shows it once (CLI-001). It
// returns how many messages it resent.
func resend(t *testing.T, d *client.Device, msgs []sent) int {
	t.Helper()
	c := connect(t, d)
	defer c.Close()
	lastAcked := -1
	for i, m := range msgs {
		if m.acked {
			lastAcked = i
		}
	}
	n := 0
	for i := range msgs {
		m := &msgs[i]
		if m.id == "" || (m.acked && i != lastAcked) {
			continue
		}
		id, err := hex.DecodeString(m.id)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err = c.Resend(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("resending %q: %v", m.text, err)
		}
		m.resent = true
		n++
	}
	return n
}

// TestCrashDuringSend kills the server in the middle of a burst of sends to
// an offline recipient, at several points, each on a fresh data directory.
func TestCrashDuringSend(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	cases := []struct {
		name      string
		killAfter int // send-results before the kill
		workers   int // concurrent senders after the first message
		jitter    time.Duration
	}{
		{"after-1", 1, 4, 0},
		{"after-7", 7, 4, 0},
		{"after-25", 25, 4, 0},
		{"after-60", 60, 4, 0},
		// A random moment of a burst with more senders at once: a random
		// number of send-results, then a random delay of up to two group
		// commits of the store (bbolt waits 10 ms for more writes), so that
		// the kill may fall between a commit and its send-results.
		{"random-concurrent", 2 + rng.IntN(crashN-12), 8, time.Duration(rng.Int64N(int64(20 * time.Millisecond)))},
	}
	t.Logf("random seed %d", seed)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, srv := newCrashEnv(t)
			connect(t, e.bob).Close() // registers bob, who then stays offline
			ac := connect(t, e.alice)
			defer ac.Close()

			var once sync.Once
			ackedAtKill := -1
			start := time.Now()
			msgs := burst(ac, "bob", crashN, tc.workers, func(acked int) {
				if acked >= tc.killAfter {
					once.Do(func() {
						ackedAtKill = acked
						if tc.jitter > 0 {
							time.AfterFunc(tc.jitter, srv.kill)
						} else {
							srv.kill()
						}
					})
				}
			})
			burstTime := time.Since(start)
			srv.wait(t)
			select {
			case <-ac.Done():
			case <-time.After(waitTimeout):
				t.Fatalf("alice's connection outlived the server by %v", waitTimeout)
			}
			ac.Close()

			acked, failed, untried := 0, 0, 0
			want := map[string]string{}
			for _, m := range msgs {
				switch {
				case m.acked:
					acked++
					want[m.id] = m.text
				case m.text == "":
					untried++
				default:
					failed++
				}
			}
			if acked < tc.killAfter {
				t.Fatalf("got %d send-results, want at least %d before the kill", acked, tc.killAfter)
			}

			e.restart()
			live := shown{}
			collect(t, e.bob, want, live)
			// Accepted, but the send-result died with the server.
			unackedShown := 0
			for _, m := range msgs {
				if !m.acked && live[m.id] > 0 {
					unackedShown++
				}
			}
			// alice resends what failed (also what bob may have already)
			// and the last acknowledged message; bob, on a new connection,
			// gets all of it once.
			resent := resend(t, e.alice, msgs)
			for _, m := range msgs {
				if m.resent {
					want[m.id] = m.text
				}
			}
			collect(t, e.bob, want, live)
			checkShown(t, e.bob, msgs, live)
			t.Logf("kill at send-result %d (%d at the end of the burst, %v): %d of %d sends acknowledged, %d failed, %d not tried; after the restart bob showed the %d acknowledged once each and %d unacknowledged (accepted, send-result lost); %d resent, then all %d shown once each",
				ackedAtKill, acked, burstTime.Round(time.Millisecond), acked, crashN, failed, untried, acked, unackedShown, resent, len(want))
		})
	}
}

// TestCrashDuringDelivery kills the server while the recipient is
// receiving: the acks that die with it bring redeliveries after the
// restart, which the recipient must not show again.
func TestCrashDuringDelivery(t *testing.T) {
	const n, killAfter = 40, 10
	e, srv := newCrashEnv(t)
	connect(t, e.bob).Close()
	ac := connect(t, e.alice)
	msgs := burst(ac, "bob", n, 4, func(int) {})
	ac.Close()
	want := map[string]string{}
	for _, m := range msgs {
		if !m.acked {
			t.Fatalf("%q: %v", m.text, m.err)
		}
		want[m.id] = m.text
	}

	live := shown{}
	bc := connect(t, e.bob)
	got := 0
	for got < killAfter {
		select {
		case ev, ok := <-bc.Events:
			if !ok {
				t.Fatalf("bob's connection ended: %v", bc.Err())
			}
			if ev.Kind == client.EventMessage {
				live[hex.EncodeToString(ev.Message.ID)]++
				got++
			}
		case <-time.After(waitTimeout):
			t.Fatalf("bob showed %d messages in %v, want %d", got, waitTimeout, killAfter)
		}
	}
	srv.kill()
	srv.wait(t)
	// What bob shows until his connection notices the kill counts too.
	for open := true; open; {
		select {
		case ev, ok := <-bc.Events:
			if ok && ev.Kind == client.EventMessage {
				live[hex.EncodeToString(ev.Message.ID)]++
			}
			open = ok
		case <-time.After(waitTimeout):
			t.Fatalf("bob's connection outlived the server by %v", waitTimeout)
		}
	}
	bc.Close()
	atKill := len(live)

	e.restart()
	collect(t, e.bob, want, live)
	collect(t, e.bob, nil, live)
	checkShown(t, e.bob, msgs, live)
	t.Logf("kill after bob showed %d of %d (%d by the time his connection ended); all %d shown once each after the restart", killAfter, n, atKill, n)
}
