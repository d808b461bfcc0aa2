package conformance

// Helpers of the review tests: the test binary plays a misbehaving adapter
// when REVIEW_FAKE is set (the runner starts os.Args[0] as the adapter).

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/conformance/refadapter"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv("REVIEW_FAKE"); mode != "" {
		fakeAdapter(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeCommand is the adapter command line of a fake adapter in mode.
func fakeCommand(t *testing.T, mode string) string {
	t.Helper()
	t.Setenv("REVIEW_FAKE", mode)
	return os.Args[0] + " -test.run=^$"
}

// answer writes one JSON response line.
func answer(w io.Writer, v map[string]any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// fakeAdapter is a misbehaving adapter:
//
//	hang       answers hello and the probe, then never answers and never exits
//	hugeline   answers hello and the probe, then prints one endless line
//	crash      answers hello and the probe, then panics (a trace on stderr)
//	version99  answers hello with protocol version 99 only
//	proxy:F    the reference adapter (REVIEW_MUTANT), with filter F on its lines
func fakeAdapter(mode string) {
	if f := os.Getenv("REVIEW_PIDFILE"); f != "" {
		pf, _ := os.OpenFile(f, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		fmt.Fprintln(pf, os.Getpid())
		pf.Close()
	}
	in := bufio.NewReader(os.Stdin)
	out := os.Stdout
	if filter, ok := strings.CutPrefix(mode, "proxy:"); ok {
		proxy(in, out, filter)
		return
	}
	for n := 1; ; n++ {
		line, err := in.ReadBytes('\n')
		if err != nil {
			select {} // never exits, even at the end of its input
		}
		var req map[string]any
		json.Unmarshal(line, &req)
		switch n {
		case 1:
			versions := []int{1}
			if mode == "version99" {
				versions = []int{99}
			}
			answer(out, map[string]any{"id": req["id"], "status": "OK", "hello": map[string]any{"name": "fake", "version": "0", "protocolVersions": versions}})
		case 2:
			answer(out, map[string]any{"id": req["id"], "status": "UNIMPLEMENTED"})
		default:
			switch mode {
			case "hang":
				select {}
			case "crash":
				fmt.Fprintln(os.Stderr, "panic: runtime error: index out of range [7] with length 3\n\ngoroutine 1 [running]:\nmy-impl/xeddsa.Verify(...)")
				os.Exit(2)
			case "hugeline":
				chunk := []byte(strings.Repeat("A", 1<<20))
				for {
					if _, err := out.Write(chunk); err != nil {
						os.Exit(1)
					}
				}
			}
		}
	}
}

// proxy runs the reference adapter in this process and applies filter to
// each request and response.
func proxy(in *bufio.Reader, out io.Writer, filter string) {
	a, err := refadapter.New(os.Getenv("REVIEW_MUTANT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() { a.Serve(reqR, respW); respW.Close() }()
	var mu sync.Mutex
	methods := map[string]string{} // id -> method
	go func() {
		for {
			if filter == "stall-media" {
				// A streaming reader: the adapter reads a request's first
				// bytes, dispatches on its method, and its media handler
				// blocks before it reads the rest (the plaintext): the
				// adapter stops reading in the middle of a request.
				// It blocks on large attachments only (no end of line in
				// the first bytes buffered).
				in.Peek(1)
				head, _ := in.Peek(in.Buffered())
				if strings.Contains(string(head), `"method":"media.encrypt"`) && !strings.Contains(string(head), "\n") {
					select {}
				}
			}
			line, err := in.ReadBytes('\n')
			if err != nil {
				reqW.Close()
				return
			}
			var req map[string]any
			json.Unmarshal(line, &req)
			id := fmt.Sprint(req["id"])
			m, _ := req["method"].(string)
			mu.Lock()
			methods[id] = m
			mu.Unlock()
			if filter == "nowait" && m == "messages.receive" {
				// The adapter returns what it has at once instead of
				// waiting wait_ms.
				req["messagesReceive"].(map[string]any)["waitMs"] = 0
				line, _ = json.Marshal(req)
				line = append(line, '\n')
			}
			reqW.Write(line)
		}
	}()
	r := bufio.NewReaderSize(respR, 1<<20)
	n := 0
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var resp map[string]any
		json.Unmarshal(line, &resp)
		id := fmt.Sprint(resp["id"])
		mu.Lock()
		m := methods[id]
		mu.Unlock()
		switch {
		case filter == "slow-send" && m == "message.send":
			// A correct implementation whose sends are slow: it answers
			// after REVIEW_DELAY.
			d, _ := time.ParseDuration(os.Getenv("REVIEW_DELAY"))
			time.Sleep(d)
		case filter == "skip-detail" && m == "message.send":
			// A refusal whose free-text detail (never parsed, says the
			// proto) happens to hold the runner's skip marker.
			resp = map[string]any{"id": resp["id"], "status": "ERROR", "errorCode": 1, "detail": "[skip] unimplemented: sorry"}
		case filter == "badcode" && m == "link.open":
			// The primary shows a malformed link code (a bug of the
			// implementation, not of its adapter): the companion cannot
			// join, and the primary's link.complete waits its wait_ms,
			// then answers ERROR, as the protocol says.
			if lo, ok := resp["linkOpen"].(map[string]any); ok {
				lo["code"] = "not-a-code"
			}
		case filter == "wrongcode" && m == "transport.run":
			// The implementation refuses the bad segment, with another
			// registered code (decode.truncated) than the vector's.
			if tr, ok := resp["transportRun"].(map[string]any); ok {
				if segs, ok := tr["segments"].([]any); ok {
					for _, x := range segs {
						if sm := x.(map[string]any); sm["errorCode"] != nil {
							sm["errorCode"] = 1002
						}
					}
				}
			}
		case filter == "localids" && m == "messages.receive":
			// The implementation reports its own local ids for what it
			// shows, not the protocol's message ids.
			if mr, ok := resp["messagesReceive"].(map[string]any); ok {
				if ms, ok := mr["messages"].([]any); ok {
					for _, x := range ms {
						n++
						x.(map[string]any)["messageId"] = base64.StdEncoding.EncodeToString([]byte("local-" + strconv.Itoa(n)))
					}
				}
			}
		}
		b, _ := json.Marshal(resp)
		out.Write(append(b, '\n'))
	}
}
