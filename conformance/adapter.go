// Package conformance is the Missive conformance runner: it drives an
// implementation under test, through its adapter (conformance/adapterpb),
// over the test vectors and the scenarios of testscripts/, checks every
// output itself, and reports per suite, scenario and requirement.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/spec"
)

// DefaultTimeout is how long the runner waits for one response.
const DefaultTimeout = 30 * time.Second

// maxLine is the longest response line the runner reads: a longer one is
// cut there, and fails to decode.
const maxLine = 64 << 20

// waitDelay is how long the runner waits for an adapter's or a server's
// output to close once the process it started has exited or was killed:
// a process it started may hold it (exec.Cmd.WaitDelay).
const waitDelay = 5 * time.Second

// ErrAdapter reports an adapter that broke the protocol: it crashed, hung,
// printed something that is not a response, or answered out of order.
// After it, the adapter is dead and every call fails.
var ErrAdapter = errors.New("adapter broke the protocol")

// Adapter is a running adapter process.
type Adapter struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	lines   chan []byte
	timeout time.Duration
	stderr  *limitedBuffer

	exited chan struct{} // closed once the process has exited and its output closed

	mu        sync.Mutex
	next      uint64
	dead      error
	abandoned map[uint64]bool // calls whose context ended before their answer

	// Hello is what the adapter said of itself.
	Hello *pb.HelloResult
}

// limitedBuffer keeps the first bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p[:min(len(p), 1<<20-b.buf.Len())])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// splitCommand splits a command line into words, honouring double and
// single quotes.
func splitCommand(s string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("conformance: unbalanced quote in %q", s)
	}
	if in {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, errors.New("conformance: empty adapter command")
	}
	return out, nil
}

// StartAdapter starts an adapter command, says hello, and checks that an
// unknown method is answered UNIMPLEMENTED.
func StartAdapter(ctx context.Context, command string, timeout time.Duration) (*Adapter, error) {
	words, err := splitCommand(command)
	if err != nil {
		return nil, err
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	cmd := exec.Command(words[0], words[1:]...)
	ownGroup(cmd)
	cmd.WaitDelay = waitDelay
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// The runner owns the pipe of the adapter's output, so that Wait,
	// which returns when the adapter exits, never closes it before its
	// last line is read: the reader reads to the end of it.
	out, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = outW
	a := &Adapter{cmd: cmd, in: in, lines: make(chan []byte, 1), timeout: timeout, stderr: &limitedBuffer{},
		exited: make(chan struct{}), abandoned: map[uint64]bool{}}
	cmd.Stderr = a.stderr
	err = cmd.Start()
	outW.Close() // the adapter's copy is its own
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("conformance: starting the adapter: %w", err)
	}
	go func() {
		cmd.Wait()
		close(a.exited)
	}()
	go a.read(out)
	resp, err := a.Call(ctx, &pb.Request{Method: "hello", Params: &pb.Request_Hello{Hello: &pb.HelloParams{Runner: "missive-conformance"}}})
	if err != nil {
		a.Close()
		return nil, err
	}
	if resp.Status != pb.Status_OK || resp.GetHello() == nil {
		a.Close()
		return nil, fmt.Errorf("conformance: hello answered %v: %s", resp.Status, resp.Detail)
	}
	a.Hello = resp.GetHello()
	if !slices.Contains(a.Hello.GetProtocolVersions(), spec.ProtocolVersion) {
		a.Close()
		return nil, fmt.Errorf("conformance: the adapter implements protocol versions %v, and these suites test version %d", a.Hello.GetProtocolVersions(), spec.ProtocolVersion)
	}
	probe, err := a.Call(ctx, &pb.Request{Method: "missive.no-such-method"})
	if err != nil {
		a.Close()
		return nil, err
	}
	if probe.Status != pb.Status_UNIMPLEMENTED {
		a.Close()
		return nil, fmt.Errorf("conformance: an unknown method was answered %v, want UNIMPLEMENTED: %w", probe.Status, ErrAdapter)
	}
	return a, nil
}

// read passes the adapter's output to Call, a line at a time, holding at
// most maxLine bytes of one line: an adapter that prints without end
// costs the runner no more memory than that.
func (a *Adapter) read(out io.ReadCloser) {
	defer out.Close()
	r := bufio.NewReaderSize(out, 1<<16)
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag[:min(len(frag), maxLine-len(line))]...)
		if err == bufio.ErrBufferFull {
			if len(line) < maxLine {
				continue
			}
			// Cut: the rest of the line is read and dropped below.
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
		}
		if len(bytes.TrimSpace(line)) > 0 {
			a.lines <- line
		}
		line = nil
		if err != nil {
			close(a.lines)
			return
		}
	}
}

// Call sends a request, filling in its id, and returns the response. It
// fails with ErrAdapter when the adapter crashes, stops reading, hangs
// past the timeout (beyond the wait the request itself asks for), prints
// a line that is not a response, or answers with an id it was not asked.
// A call whose ctx ends first fails with ctx's error, and the adapter's
// late answer to it is dropped when it comes.
func (a *Adapter) Call(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dead != nil {
		return nil, a.dead
	}
	a.next++
	req.Id = a.next
	line, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	wait := a.timeout + requestedWait(req)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	// The write has the same deadline as the answer: an adapter that
	// stops reading in the middle of a large request cannot hold the
	// runner (killing it closes the pipe, which ends the write).
	written := make(chan error, 1)
	go func() {
		_, err := a.in.Write(append(line, '\n'))
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			return nil, a.die("it stopped reading its input: %v", err)
		}
	case <-timer.C:
		return nil, a.die("it did not read the request %s within %v", req.Method, wait)
	case <-ctx.Done():
		return nil, a.die("%s interrupted while it was written: %v", req.Method, ctx.Err())
	}
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				return nil, a.die("it exited during %s", req.Method)
			}
			var resp pb.Response
			if err := protojson.Unmarshal(l, &resp); err != nil {
				return nil, a.die("it printed a line that is not a response to %s (%v): %.120q", req.Method, err, l)
			}
			if a.abandoned[resp.Id] {
				delete(a.abandoned, resp.Id)
				continue // the late answer to a call whose context ended
			}
			if resp.Id != req.Id {
				return nil, a.die("it answered request %d while %d (%s) was waiting", resp.Id, req.Id, req.Method)
			}
			return &resp, nil
		case <-timer.C:
			return nil, a.die("no answer to %s within %v", req.Method, wait)
		case <-ctx.Done():
			a.abandoned[req.Id] = true
			return nil, fmt.Errorf("conformance: %s interrupted: %w", req.Method, ctx.Err())
		}
	}
}

// requestedWait is how long a request asks the adapter to wait before it
// answers: the runner's timeout runs on top of it.
func requestedWait(req *pb.Request) time.Duration {
	ms := max(req.GetMessagesReceive().GetWaitMs(), req.GetLinkComplete().GetWaitMs())
	return time.Duration(ms) * time.Millisecond
}

// die marks the adapter dead and stops it, with what it started. The
// error ends with the last lines of its standard error, where a crash
// leaves its trace.
func (a *Adapter) die(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	signalGroup(a.cmd, os.Kill)
	select { // its last words are written once it has gone
	case <-a.exited:
	case <-time.After(waitDelay + time.Second):
	}
	if tail := lastLines(strings.TrimSpace(a.stderr.String()), 5); tail != "" {
		msg += "; its standard error ends:\n" + tail
	}
	a.dead = fmt.Errorf("%w: %s", ErrAdapter, msg)
	return a.dead
}

// Dead returns why the adapter broke the protocol, or nil.
func (a *Adapter) Dead() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dead
}

// Stderr returns the start of what the adapter wrote to its standard error.
func (a *Adapter) Stderr() string { return a.stderr.String() }

// Implements reports whether the adapter listed a feature or method.
func (a *Adapter) Implements(feature string) bool {
	for _, f := range a.Hello.GetFeatures() {
		if f == feature {
			return true
		}
	}
	return false
}

// Close stops the adapter, and what it started.
func (a *Adapter) Close() error {
	a.in.Close()
	select {
	case <-a.exited:
	case <-time.After(5 * time.Second):
		signalGroup(a.cmd, os.Kill)
		<-a.exited
	}
	return nil
}
