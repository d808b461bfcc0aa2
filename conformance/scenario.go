package conformance

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
	"github.com/missive-protocol/missive/testscripts"
)

// ScenarioOptions configure the scenario suites.
type ScenarioOptions struct {
	// Adapter plays the actors created with "impl" in the client suite.
	Adapter *Adapter
	// ServerCommand starts the server under test (server suite); with
	// ServerAddr it is reached there instead; with neither, the reference
	// server runs in the runner.
	ServerCommand string
	ServerAddr    string
	// Match selects scenarios by name; nil runs them all.
	Match *regexp.Regexp
	// FailFast runs no scenario after the first that fails (Options).
	FailFast bool
}

// waitLong bounds how long a scenario step waits for something to happen
// (a message shown, a status reached): the step polls until then. How long
// one request to the adapter may take is the run's timeout (-timeout), on
// top of it: a step's context ends waitLong, one timeout and a margin after
// the step starts, so that the last request of a poll, or a single slow
// request of any step, fails for the adapter's timeout (adapter-broken)
// rather than for the step's.
var waitLong = 15 * time.Second // a variable for the tests

// pollKey is the context key of a step's poll deadline.
type pollKey struct{}

// stepContext returns the context of a scenario step.
func (w *world) stepContext() (context.Context, context.CancelFunc) {
	timeout := DefaultTimeout
	if w.a != nil {
		timeout = w.a.timeout
	}
	ctx, cancel := context.WithTimeout(w.ctx, waitLong+timeout+2*time.Second)
	return context.WithValue(ctx, pollKey{}, time.Now().Add(waitLong)), cancel
}

// pollDeadline is when a step that polls an actor gives up: waitLong after
// the step started, so that its last request ends before the step's
// context does, which would cut the adapter off in the middle of a request.
func pollDeadline(ctx context.Context) time.Time {
	if d, ok := ctx.Value(pollKey{}).(time.Time); ok {
		return d
	}
	return time.Now().Add(waitLong)
}

// scenarioHeader is what a scenario file says of itself in its comments.
type scenarioHeader struct {
	requirements []string
	suites       []string
	waits        time.Duration // how long it waits on the spec's timeouts; the suites run the longest last
}

// covers reports whether the scenario covers one of the requirements.
func (h scenarioHeader) covers(requirements []string) bool {
	return slices.ContainsFunc(requirements, func(id string) bool { return slices.Contains(h.requirements, id) })
}

var headerRE = regexp.MustCompile(`(?m)^#\s*(requirements|suites|waits):\s*(.*)$`)

func parseHeader(data []byte) scenarioHeader {
	h := scenarioHeader{suites: []string{"client", "server"}}
	for _, m := range headerRE.FindAllSubmatch(data, -1) {
		fields := strings.Fields(string(m[2]))
		switch string(m[1]) {
		case "requirements":
			h.requirements = append(h.requirements, fields...)
		case "suites":
			h.suites = fields
		case "waits":
			h.waits = -1 // refused by Scenarios
			if len(fields) == 1 {
				if d, err := time.ParseDuration(fields[0]); err == nil && d >= 0 {
					h.waits = d
				}
			}
		}
	}
	return h
}

// Scenarios returns the scenario files with their headers.
func Scenarios() (map[string]scenarioHeader, error) {
	names, err := fs.Glob(testscripts.FS, "*.txtar")
	if err != nil {
		return nil, err
	}
	out := map[string]scenarioHeader{}
	for _, n := range names {
		data, err := testscripts.FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		h := parseHeader(data)
		if h.waits < 0 {
			return nil, fmt.Errorf("conformance: scenario %s: a waits header that is not one duration such as 95s", n)
		}
		out[strings.TrimSuffix(n, ".txtar")] = h
	}
	return out, nil
}

// RunScenarios runs the scenarios of a suite ("client" or "server"). It
// fails with ErrNoMatch when o.Match selects none of them.
func RunScenarios(ctx context.Context, suite string, o ScenarioOptions, emit func(Result)) ([]Result, error) {
	headers, err := Scenarios()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "missive-scenarios-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The scenarios that wait longest on the spec's timeouts run last, so
	// that a run that stops at its first failure (FailFast, the mutants)
	// rarely waits for them.
	var files []string
	for _, name := range slices.SortedFunc(maps.Keys(headers), func(a, b string) int {
		return cmp.Or(cmp.Compare(headers[a].waits, headers[b].waits), cmp.Compare(a, b))
	}) {
		h := headers[name]
		if !slices.Contains(h.suites, suite) || (o.Match != nil && !o.Match.MatchString(name)) {
			continue
		}
		data, _ := testscripts.FS.ReadFile(name + ".txtar")
		f := filepath.Join(dir, name+".txtar")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	n := len(files)
	if n == 0 && o.Match != nil {
		return nil, fmt.Errorf("%w in the %s suite", ErrNoMatch, suite)
	}
	if n == 0 {
		return nil, fmt.Errorf("conformance: no %s scenarios", suite)
	}
	root := &scriptT{suite: suite, headers: headers, emit: emit, failFast: o.FailFast}
	testscript.RunT(root, testscript.Params{
		Files:               files,
		Setup:               func(env *testscript.Env) error { return setupWorld(ctx, env, suite, o) },
		Cmds:                commands(),
		RequireExplicitExec: true,
	})
	return root.results, nil
}

// scriptT is the testscript.T of the runner: each script runs as a
// subtest, and its outcome becomes a Result.
type scriptT struct {
	suite   string
	headers map[string]scenarioHeader
	emit    func(Result)

	mu       sync.Mutex
	results  []Result
	failFast bool // run nothing after a failure
	failed1  bool // a scenario has failed

	// A subtest's state.
	name    string
	log     bytes.Buffer
	failed  bool
	skipped string
	world   *world // set by setupWorld
}

func (t *scriptT) Skip(args ...any) {
	t.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (t *scriptT) Fatal(args ...any) {
	t.Log(args...)
	t.FailNow()
}

func (t *scriptT) FailNow() {
	t.failed = true
	runtime.Goexit()
}

func (t *scriptT) Parallel() {}

func (t *scriptT) Log(args ...any) { fmt.Fprintln(&t.log, args...) }

func (t *scriptT) Verbose() bool { return false }

func (t *scriptT) Run(name string, f func(testscript.T)) {
	t.mu.Lock()
	stop := t.failFast && t.failed1
	t.mu.Unlock()
	if stop {
		return
	}
	sub := &scriptT{suite: t.suite, name: name}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(sub)
	}()
	<-done
	if !sub.failed && sub.skipped == "" && sub.world != nil {
		// What devices did in the background during the last step,
		// which no later step's checks saw.
		if msg := sub.world.checks(); msg != "" {
			fmt.Fprintf(&sub.log, "FAIL: %s.txtar:0: [%s] after the last step: %s\n", name, WrongOutput, msg)
			sub.failed = true
		}
	}
	r := Result{Suite: t.suite, Group: "scenarios", ID: name, Requirements: t.headers[name].requirements, Duration: time.Since(start)}
	log := sub.log.String()
	// The marker is the first word of the message that stopped the
	// scenario ("FAIL: file:line: [kind] ..."): text that an adapter
	// reported, later in a message, is never taken for one.
	var marker, rest string
	if m := failLine.FindStringSubmatch(log); m != nil {
		marker, rest = m[1], m[2]
	}
	var skip []string
	if marker == "skip" {
		skip = []string{"", rest}
	}
	switch {
	case sub.failed && skip != nil && strings.HasPrefix(skip[1], "unimplemented:"):
		r.Outcome, r.Detail = Unimplemented, skip[1]
	case sub.failed && skip != nil:
		r.Outcome, r.Detail = Skipped, skip[1]
	case sub.failed:
		r.Outcome, r.Kind, r.Detail = Fail, failKind(marker), lastLines(log, 12)
	case sub.skipped != "":
		r.Outcome, r.Detail = Skipped, sub.skipped
	default:
		r.Outcome = Pass
	}
	t.mu.Lock()
	t.results = append(t.results, r)
	t.failed1 = t.failed1 || r.Outcome == Fail
	t.mu.Unlock()
	if t.emit != nil {
		t.emit(r)
	}
}

// failLine is the line of a scenario's log that stopped it, with the
// marker a command of the runner wrote first in its message.
var failLine = regexp.MustCompile(`(?m)^FAIL: .*?\.txtar:\d+: \[([a-z-]+)\] (.*)$`)

// failKind classifies a scenario failure from the marker a command wrote.
func failKind(marker string) FailKind {
	for _, k := range []FailKind{AdapterBroken, UnexpectedSuccess, WrongError, WrongOutput, UnexpectedFailure} {
		if marker == string(k) {
			return k
		}
	}
	return UnexpectedFailure
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// world is one scenario's server and actors.
type world struct {
	// ns ends every account name on the wire when the server is one
	// already running (-server ADDR), which serves every scenario of a
	// run: each scenario then has accounts of its own. Empty otherwise.
	ns    string
	ctx   context.Context
	suite string
	dir   string
	clock *clock
	// fetchStart is what server group-fetches start noted.
	fetchStart fetchMark
	server     serverControl
	a          *Adapter
	actors     map[string]actor
	seen       map[string]map[string]bool // actor -> message ids shown
	inbox      map[string][]received      // actor -> shown, not yet expected
	sent       map[string][]byte          // text -> id of the message sent with it
	author     map[string]string          // text -> the account that sent it
	sends      map[string]int             // text -> how many messages were sent with it
	shownN     map[string]int             // actor, account and text -> how many times shown
	// shownIDs holds the ids of the messages each actor was shown from
	// each account, in the order shown (actor + "\x00" + account).
	shownIDs map[string][][]byte
	linked   map[string]string       // companion actor -> its primary actor
	groups   map[string][]byte       // "@name" -> group id
	media    map[string]sentMedia    // caption -> what was sent with it
	blobs    map[string]*blob        // name -> a blob uploaded by hand
	keys     map[string]keysUploaded // name -> prekeys uploaded by a connection of the runner's own (raw prekeys-upload)
}

func setupWorld(ctx context.Context, env *testscript.Env, suite string, o ScenarioOptions) error {
	if err := ctx.Err(); err != nil {
		return err // the run was interrupted: the scenario does not start
	}
	w := &world{ctx: ctx, suite: suite, dir: env.WorkDir, clock: &clock{}, a: o.Adapter,
		actors: map[string]actor{}, seen: map[string]map[string]bool{}, inbox: map[string][]received{},
		sent: map[string][]byte{}, author: map[string]string{}, sends: map[string]int{}, shownN: map[string]int{}, shownIDs: map[string][][]byte{}, linked: map[string]string{}, groups: map[string][]byte{},
		media: map[string]sentMedia{}, blobs: map[string]*blob{}, keys: map[string]keysUploaded{}}
	var err error
	switch {
	case suite == "server" && o.ServerCommand != "":
		w.server, err = newProcess(o.ServerCommand, filepath.Join(env.WorkDir, "server"))
	case suite == "server" && o.ServerAddr != "":
		w.server = &external{addr: o.ServerAddr}
		b := make([]byte, 5)
		rand.Read(b)
		w.ns = "-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
		w.ns = strings.ToLower(w.ns)
	default:
		var e *embedded
		if e, err = newEmbedded(filepath.Join(env.WorkDir, "server"), w.clock); err == nil {
			e.watch = suite == "client"
			w.server = e
		}
	}
	if err != nil {
		return err
	}
	env.Values["world"] = w
	if st, ok := env.T().(*scriptT); ok {
		st.world = w // for the checks after its last step
	}
	env.Defer(func() {
		for _, a := range w.actors {
			a.close()
		}
		w.server.close()
	})
	return nil
}

// external is a server already running at an address: it cannot be
// started, stopped or inspected.
type external struct{ addr string }

func (e *external) address() string                       { return e.addr }
func (e *external) start() error                          { return nil }
func (e *external) stop() error                           { return errUnsupported }
func (e *external) kill() error                           { return errUnsupported }
func (e *external) moveClock(*clock, time.Duration) error { return errUnsupported }
func (e *external) duplicate(bool) error                  { return errUnsupported }
func (e *external) forget(bool) error                     { return errUnsupported }
func (e *external) rekey(bool) error                      { return errUnsupported }
func (e *external) queue(store.Address) (int, error)      { return 0, errUnsupported }
func (e *external) quota(int) error                       { return errUnsupported }
func (e *external) storeFail(bool) error                  { return errUnsupported }
func (e *external) forge(store.Address, store.Address, string) error {
	return errUnsupported
}
func (e *external) close() {}

// actorNames are the names scripts may give actors; the account is the
// name without its trailing digits.
var actorNames = []string{"alice", "bob", "carol", "dave", "erin", "frank"}

func commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"server": cmdServer,
		"clock":  cmdClock,
	}
	for _, n := range actorNames {
		cmds[n] = actorCmd(n)
		for i := 2; i <= 6; i++ {
			cmds[n+strconv.Itoa(i)] = actorCmd(n + strconv.Itoa(i))
		}
	}
	for name, f := range cmds {
		cmds[name] = watched(f)
	}
	return cmds
}

// watching returns the client suite's server, which watches what devices
// send; a step that needs it is skipped elsewhere.
func watching(ts *testscript.TestScript, what string) *embedded {
	e, ok := getWorld(ts).server.(*embedded)
	if !ok || !e.watch {
		ts.Fatalf("[skip] %s: needs the client suite's server", what)
	}
	return e
}

// watched runs a step, then fails the scenario if a device broke a rule
// that the client suite's server checks at every connection (checks).
// What a device does in the background is checked after the step that
// follows it, or once the scenario's last step has ended (scriptT.Run).
func watched(f func(ts *testscript.TestScript, neg bool, args []string)) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		f(ts, neg, args)
		if msg := getWorld(ts).checks(); msg != "" {
			fail(ts, WrongOutput, "%s", msg)
		}
	}
}

// checks reports, once, what devices did since the last call that a
// watching embedded server (the client suite's) found against the rules
// it checks at every connection: a frame after the hello before the
// welcome (TRN-013), a request with the id of one of its connection that
// the server had not answered (MSG-005). It is empty when nothing was.
func (w *world) checks() string {
	e, ok := w.server.(*embedded)
	if !ok || !e.watch {
		return ""
	}
	if early := e.earlyFrames(); len(early) > 0 {
		return fmt.Sprintf("%s/%d sent a frame after its hello before the server's welcome (TRN-013; %d connections did)",
			early[0].Account, early[0].Device, len(early))
	}
	if r := e.reusedPrekeyIDs(); len(r) > 0 {
		k, where := r[0], fmt.Sprintf("in its upload %d", r[0].first)
		if k.first == k.upload {
			where = "in the same upload"
		}
		return fmt.Sprintf("%s/%d gave %s id %d to a second key in its upload %d, an id it gave another key %s (PQX-002; %d such ids)",
			k.addr.Account, k.addr.Device, k.kind, k.id, k.upload, where, len(r))
	}
	if r := e.reusedIDs(); len(r) > 0 {
		return fmt.Sprintf("%s/%d sent a request with id %d while its request of that id on the same connection was unanswered (MSG-005; %d reuses in all)",
			r[0].addr.Account, r[0].addr.Device, r[0].id, len(r))
	}
	return ""
}

func getWorld(ts *testscript.TestScript) *world { return ts.Value("world").(*world) }

// fail stops a scenario with a failure of a kind.
func fail(ts *testscript.TestScript, kind FailKind, format string, args ...any) {
	ts.Fatalf("[%s] %s", kind, fmt.Sprintf(format, args...))
}

// must handles the error of a step: unimplemented skips the scenario, an
// unsupported server step too, a broken adapter fails it as such.
func must(ts *testscript.TestScript, what string, err error) {
	if err == nil {
		return
	}
	var un unimplemented
	switch {
	case errors.As(err, &un):
		ts.Fatalf("[skip] unimplemented: %s", un.method)
	case errors.Is(err, errUnsupported):
		ts.Fatalf("[skip] %s: %v", what, err)
	case errors.Is(err, ErrAdapter):
		fail(ts, AdapterBroken, "%s: %v", what, err)
	default:
		fail(ts, UnexpectedFailure, "%s: %v", what, err)
	}
}

// parseAddr reads an address of a script, ACCOUNT/DEVICE.
func parseAddr(ts *testscript.TestScript, s string) store.Address {
	acct, dev, ok := strings.Cut(s, "/")
	d, err := strconv.ParseUint(dev, 10, 32)
	if !ok || err != nil {
		ts.Fatalf("address %q: want ACCOUNT/DEVICE", s)
	}
	return store.Address{Account: acct, Device: uint32(d)}
}

func cmdServer(ts *testscript.TestScript, neg bool, args []string) {
	w := getWorld(ts)
	if len(args) == 0 {
		ts.Fatalf("usage: server start|stop|kill|restart|duplicate on|off|queue ACCOUNT/DEVICE N|quota ENTRIES|forge FROM TO TEXT|welcome-delay DURATION|answer-delay DURATION|repeat-bundles ACCOUNT/DEVICE whole|kem|ec|old-signed|old-last-resort|taken|off|take-bundles ACCOUNT/DEVICE N|rotated ACCOUNT/DEVICE|group-fetches ACCOUNT/DEVICE start|bounded|forge-list ACCOUNT on|off|drain-prekeys ACCOUNT/DEVICE|uploaded ACCOUNT/DEVICE|store-fail on|off|drop-send ACCOUNT/DEVICE ACCOUNT|drop-sends ACCOUNT/DEVICE ACCOUNT|off|dropped ACCOUNT/DEVICE|lose-answer ACCOUNT/DEVICE ACCOUNT|answer-lost ACCOUNT/DEVICE|resent ACCOUNT/DEVICE")
	}
	switch args[0] {
	case "start":
		must(ts, "server start", w.server.start())
	case "stop":
		must(ts, "server stop", w.server.stop())
	case "kill":
		must(ts, "server kill", w.server.kill())
	case "restart":
		must(ts, "server stop", w.server.stop())
		must(ts, "server start", w.server.start())
	case "duplicate":
		must(ts, "server duplicate", w.server.duplicate(len(args) > 1 && args[1] == "on"))
	case "forget-accepted":
		must(ts, "server forget-accepted", w.server.forget(len(args) > 1 && args[1] == "on"))
	case "rekey":
		must(ts, "server rekey", w.server.rekey(len(args) > 1 && args[1] == "back"))
	case "forge":
		if len(args) != 4 {
			ts.Fatalf("usage: server forge ACCOUNT/DEVICE ACCOUNT/DEVICE TEXT")
		}
		must(ts, "server forge", w.server.forge(parseAddr(ts, args[1]), parseAddr(ts, args[2]), args[3]))
	case "welcome-delay", "answer-delay":
		// How long the client suite's server holds each welcome back, to
		// see what a device sends before it (TRN-013), or each answer to
		// a request, so that a device has requests unanswered while it
		// makes others (MSG-005); from its next start (a running server
		// restarts).
		d, err := time.ParseDuration(args[len(args)-1])
		if len(args) != 2 || err != nil || d <= 0 {
			ts.Fatalf("usage: server %s DURATION", args[0])
		}
		e := watching(ts, "server "+args[0])
		if args[0] == "welcome-delay" {
			e.hold = d
		} else {
			e.answer = d
		}
		must(ts, "server "+args[0], e.restart())
	case "repeat-bundles":
		// The client suite's server hands out the one-time prekeys of a
		// device's first bundle again: the whole bundle, the bundle
		// without its one-time EC prekey (kem), or fresh keys with its
		// one-time EC prekey (ec), so that a later sender uses one-time
		// prekeys that a prekey message used already (PQX-010); at once.
		// old-signed hands out fresh keys with the device's first signed
		// prekey, and old-last-resort the current signed prekey with its
		// first last-resort KEM prekey and no one-time key, once it has
		// replaced them (PQX-013).
		// taken hands out the bundles take-bundles took, one a fetch, then
		// fresh ones (PQX-015).
		modes := map[string]int{"off": repeatOff, "whole": repeatWhole, "kem": repeatKEM, "ec": repeatEC,
			"old-signed": repeatOldSigned, "old-last-resort": repeatOldLastResort, "taken": repeatTaken}
		m, ok := modes[args[len(args)-1]]
		if len(args) != 3 || !ok {
			ts.Fatalf("usage: server repeat-bundles ACCOUNT/DEVICE whole|kem|ec|old-signed|old-last-resort|taken|off")
		}
		e := watching(ts, "server repeat-bundles")
		must(ts, "server repeat-bundles", e.repeatBundles(parseAddr(ts, args[1]), m))
	case "take-bundles":
		// The client suite's server takes N bundles of a device, as
		// fetches would, and keeps them for repeat-bundles taken: the
		// device learns from its next welcome that they were handed out
		// (PQX-015).
		n, err := strconv.Atoi(args[len(args)-1])
		if len(args) != 3 || err != nil || n < 1 {
			ts.Fatalf("usage: server take-bundles ACCOUNT/DEVICE N")
		}
		must(ts, "server take-bundles", watching(ts, "server take-bundles").takeBundles(w.ctx, parseAddr(ts, args[1]), n))
	case "group-fetches":
		// start notes a device's get-group requests so far; bounded waits
		// a second, then checks that it has sent at most one since, and
		// one more for each GROUP_UPDATE_INTERVAL that has passed (GRP-017:
		// the steps between send it group-update contents that the server
		// serves no state for, from one account).
		if len(args) != 3 || (args[2] != "start" && args[2] != "bounded") {
			ts.Fatalf("usage: server group-fetches ACCOUNT/DEVICE start|bounded")
		}
		e, a := watching(ts, "server group-fetches"), parseAddr(ts, args[1])
		if args[2] == "start" {
			w.fetchStart = fetchMark{at: time.Now(), n: e.getGroups(a)}
			break
		}
		time.Sleep(time.Second)
		most := 1 + int(time.Since(w.fetchStart.at)/(wire.GroupUpdateInterval*time.Second))
		if n := e.getGroups(a) - w.fetchStart.n; n > most {
			fail(ts, WrongOutput, "%s sent %d get-group requests for the group-update contents of one account whose states the server does not hold, in %v; want at most %d, one a GROUP_UPDATE_INTERVAL (GRP-017)",
				args[1], n, time.Since(w.fetchStart.at).Round(time.Millisecond), most)
		}
	case "rotated":
		// Until a device has replaced its first signed and last-resort
		// prekeys, and the server serves the new signed prekey (PQX-012:
		// within PREKEY_ROTATION_SLACK of its connection, which the step
		// before made; 2 s more for the runner), or fails.
		if len(args) != 2 {
			ts.Fatalf("usage: server rotated ACCOUNT/DEVICE")
		}
		if !watching(ts, "server rotated").awaitRotation(w.ctx, parseAddr(ts, args[1]), wire.PrekeyRotationSlack*time.Second+2*time.Second) {
			fail(ts, WrongOutput, "%s has not replaced its first signed prekey and last-resort KEM prekey, PREKEY_ROTATION old, after connecting (PQX-012)", args[1])
		}
	case "drain-prekeys":
		// The client suite's server takes a device's one-time prekeys
		// from its store, as fetches would, until the next fetch leaves
		// fewer than PREKEY_LOW of a kind, so that it sends the device
		// notice(prekeys-low) (PQX-002: the device's next upload).
		if len(args) != 2 {
			ts.Fatalf("usage: server drain-prekeys ACCOUNT/DEVICE")
		}
		e := watching(ts, "server drain-prekeys")
		_, err := e.drainPrekeys(w.ctx, parseAddr(ts, args[1]))
		must(ts, "server drain-prekeys", err)
	case "uploaded":
		// Until a device has uploaded prekeys since its last
		// drain-prekeys. A device need not upload on
		// notice(prekeys-low): one that has not after the step's wait
		// skips the scenario, which can show PQX-002 only over several
		// uploads.
		if len(args) != 2 {
			ts.Fatalf("usage: server uploaded ACCOUNT/DEVICE")
		}
		e := watching(ts, "server uploaded")
		if !e.awaitUpload(w.ctx, parseAddr(ts, args[1]), waitLong) {
			ts.Fatalf("[skip] %s uploaded no prekeys after notice(prekeys-low), which no rule asks", args[1])
		}
	case "drop-send", "drop-sends":
		// The client suite's server loses the device's next send to the
		// account (drop-sends: every such send, until drop-sends
		// ACCOUNT/DEVICE off): it closes the device's connection instead,
		// the send unanswered and not stored, as a connection lost before
		// the send reached it (DEV-022).
		if len(args) != 3 {
			ts.Fatalf("usage: server %s ACCOUNT/DEVICE ACCOUNT|off", args[0])
		}
		to := args[2]
		if args[0] == "drop-sends" && to == "off" {
			to = ""
		}
		watching(ts, "server "+args[0]).dropSend(parseAddr(ts, args[1]), to, args[0] == "drop-sends")
	case "dropped":
		// Until a send drop-send or drop-sends asked to lose has come, and
		// been lost.
		if len(args) != 2 {
			ts.Fatalf("usage: server dropped ACCOUNT/DEVICE")
		}
		if !watching(ts, "server dropped").awaitDrop(w.ctx, parseAddr(ts, args[1]), waitLong) {
			fail(ts, WrongOutput, "%s sent nothing to the account that server drop-send names", args[1])
		}
	case "lose-answer":
		// The client suite's server stores the device's next send to the
		// account, then closes the connection instead of answering it, as
		// a connection lost before the answer reached the device.
		if len(args) != 3 {
			ts.Fatalf("usage: server lose-answer ACCOUNT/DEVICE ACCOUNT")
		}
		watching(ts, "server lose-answer").loseAnswerTo(parseAddr(ts, args[1]), args[2])
	case "answer-lost", "resent":
		// Until the answer lose-answer asked about has been lost; or until
		// the device has sent that envelope again, with the same message
		// id and sent-at (DEV-022: a resend, which the server stores once,
		// SRV-008, not another message).
		if len(args) != 2 {
			ts.Fatalf("usage: server %s ACCOUNT/DEVICE", args[0])
		}
		resent := args[0] == "resent"
		if !watching(ts, "server "+args[0]).awaitLost(w.ctx, parseAddr(ts, args[1]), resent, waitLong) {
			if resent {
				fail(ts, WrongOutput, "%s did not send again, with its message id and sent-at, the envelope whose answer was lost (DEV-022)", args[1])
			}
			fail(ts, WrongOutput, "%s sent nothing to the account that server lose-answer names", args[1])
		}
	case "forge-list":
		// The client suite's server lies about an account's device list
		// (a new primary key, a second device) in the answer to every send
		// to it, or stops (DEV-014).
		if len(args) != 3 || (args[2] != "on" && args[2] != "off") {
			ts.Fatalf("usage: server forge-list ACCOUNT on|off")
		}
		e := watching(ts, "server forge-list")
		must(ts, "server forge-list", e.forgeList(args[1], args[2] == "on"))
	case "store-fail":
		// The server's store fails to queue any envelope, or works again
		// (SRV-017): a server under test started with {store-fail}.
		if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
			ts.Fatalf("usage: server store-fail on|off")
		}
		must(ts, "server store-fail", w.server.storeFail(args[1] == "on"))
	case "quota":
		n, err := strconv.Atoi(args[len(args)-1])
		if len(args) != 2 || err != nil || n < 0 {
			ts.Fatalf("usage: server quota ENTRIES (0: the server's own)")
		}
		must(ts, "server quota", w.server.quota(n))
	case "queue":
		if len(args) != 3 {
			ts.Fatalf("usage: server queue ACCOUNT/DEVICE N")
		}
		// Until the queue holds N entries, or the step's wait ends: a
		// device may acknowledge a while after it takes a delivery.
		want, _ := strconv.Atoi(args[2])
		for deadline := time.Now().Add(waitLong); ; time.Sleep(50 * time.Millisecond) {
			n, err := w.server.queue(parseAddr(ts, args[1]))
			must(ts, "server queue", err)
			if n == want {
				break
			}
			if time.Now().After(deadline) {
				fail(ts, WrongOutput, "the server holds %d entries for %s, want %d", n, args[1], want)
			}
		}
	default:
		ts.Fatalf("unknown server command %q", args[0])
	}
}

// fetchMark is a device's get-group requests at a time.
type fetchMark struct {
	at time.Time
	n  int
}

func cmdClock(ts *testscript.TestScript, neg bool, args []string) {
	w := getWorld(ts)
	if len(args) != 2 || args[0] != "advance" {
		ts.Fatalf("usage: clock advance DURATION")
	}
	d, err := parseDuration(args[1])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	// The server first: the implementation's device, whose clock moves
	// after it, never sends a sent-at ahead of the server's clock.
	must(ts, "clock advance", w.server.moveClock(w.clock, d))
	if w.a != nil {
		_, err := w.a.Call(w.ctx, clockSetRequest(w.clock.now()))
		must(ts, "clock.set", err)
	}
}

// parseDuration accepts Go durations and days ("31d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func accountOf(name string) string { return strings.TrimRight(name, "0123456789") }

// acct is the account on the wire of an actor's account name.
func (w *world) acct(account string) string { return account + w.ns }

// wireArgs gives the arguments of a verb the accounts' names on the wire:
// every argument that is the account of an actor name (alice, bob, ...),
// alone or as ACCOUNT/DEVICE. Text arguments change the same way on both
// sides, so what is sent is what is expected.
func (w *world) wireArgs(args []string) []string {
	if w.ns == "" {
		return args
	}
	out := slices.Clone(args)
	for i, a := range out {
		acct, dev, _ := strings.Cut(a, "/")
		if slices.Contains(actorNames, acct) {
			out[i] = w.acct(acct)
			if dev != "" {
				out[i] += "/" + dev
			}
		}
	}
	return out
}

// actorCmd returns the command of an actor name: NAME VERB ARGS...
func actorCmd(name string) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		w := getWorld(ts)
		if len(args) == 0 {
			ts.Fatalf("usage: %s VERB ARGS...", name)
		}
		ctx, cancel := w.stepContext()
		defer cancel()
		verb, rest := args[0], w.wireArgs(args[1:])
		if verb == "create" {
			w.create(ts, ctx, name, rest)
			return
		}
		a := w.actors[name]
		if a == nil {
			ts.Fatalf("no actor %s: create it first (%s create impl|ref)", name, name)
		}
		switch verb {
		case "send":
			var code errcode.Code
			if neg {
				code, rest = wantCode(rest) // ! NAME send [CODE] ACCOUNT|@GROUP TEXT...
			}
			if len(rest) < 2 {
				ts.Fatalf("usage: %s send ACCOUNT|@GROUP TEXT...", name)
			}
			text := strings.Join(rest[1:], " ")
			id, err := a.send(ctx, w.conv(ts, rest[0]), text)
			if neg {
				mustFail(ts, fmt.Sprintf("%s send %q to %s", name, text, rest[0]), err, code)
				return
			}
			must(ts, name+" send", err)
			w.record(text, id, name)
		case "send-crash":
			// The implementation's device sends, and crashes once the
			// message has left it (message.send_crash); it is then open
			// again and offline.
			ia, ok := a.(*implActor)
			if !ok || len(rest) < 2 {
				ts.Fatalf("usage: %s send-crash ACCOUNT TEXT..., by an actor of the implementation", name)
			}
			text := strings.Join(rest[1:], " ")
			must(ts, name+" send-crash", ia.sendCrash(ctx, w.conv(ts, rest[0]), text))
			w.record(text, nil, name)
		case "restart":
			// The implementation's device stops and is opened again from
			// its storage (device.restart); it is then offline.
			ia, ok := a.(*implActor)
			if !ok || len(rest) != 0 {
				ts.Fatalf("usage: %s restart, by an actor of the implementation", name)
			}
			must(ts, name+" restart", ia.restart(ctx))
		case "resend":
			text := strings.Join(rest, " ")
			ra, ok := a.(*refActor)
			if !ok || w.sent[text] == nil {
				ts.Fatalf("usage: %s resend TEXT, by a reference actor, of a text it sent", name)
			}
			c, err := ra.conn()
			must(ts, name+" resend", err)
			must(ts, name+" resend", c.Resend(ctx, w.sent[text]))
		case "expect":
			group, from, text := w.expectArgs(ts, name, "expect", rest)
			w.expect(ts, ctx, name, a, group, from, text)
		case "expect-none":
			wait := 2 * time.Second
			if len(rest) > 0 {
				wait, _ = parseDuration(rest[0])
			}
			got := w.collect(ts, ctx, name, a, wait)
			if len(got) > 0 {
				fail(ts, UnexpectedSuccess, "%s was shown %v, and should have been shown nothing", name, got[0])
			}
		case "read":
			if len(rest) != 1 {
				ts.Fatalf("usage: %s read ACCOUNT|@GROUP", name)
			}
			must(ts, name+" read", a.read(ctx, w.conv(ts, rest[0])))
		case "status":
			if len(rest) < 2 {
				ts.Fatalf("usage: %s status TEXT STATUS", name)
			}
			w.status(ts, ctx, name, a, strings.Join(rest[:len(rest)-1], " "), rest[len(rest)-1])
		case "knows":
			text := strings.Join(rest, " ")
			id := w.sent[text]
			if id == nil {
				ts.Fatalf("no message was sent with the text %q", text)
			}
			deadline := pollDeadline(ctx)
			for {
				st, err := a.status(ctx, id)
				must(ts, name+" status", err)
				if st.overall != "unknown" && st.overall != "" {
					return
				}
				if time.Now().After(deadline) {
					fail(ts, UnexpectedFailure, "%s does not know the sent message %q", name, text)
				}
				time.Sleep(100 * time.Millisecond)
			}
		case "keepalive":
			// The device, connected, has nothing to send: it must not be
			// silent for longer than KEEPALIVE_INTERVAL, and sends ping
			// for that (TRN-014), as the runner's server reads its frames.
			// Meanwhile a connection of the runner's own has it sent a
			// typing notice every few seconds, which asks for no answer: a
			// device that counts the silence of what it receives instead
			// of what it sends would not ping.
			e := watching(ts, name+" keepalive")
			pctx, cancel := context.WithTimeout(w.ctx, 2*(transport.KeepaliveInterval+keepaliveGrace))
			defer cancel()
			addr := store.Address{Account: w.acct(accountOf(name)), Device: a.deviceID()}
			stop, err := typeAt(pctx, w.server.address(), w.ns, addr.Account)
			must(ts, name+" keepalive: a connection of the runner's own", err)
			err = e.awaitKeepalive(pctx, addr, time.Now(), transport.KeepaliveInterval, keepaliveGrace)
			stop()
			if err != nil {
				fail(ts, WrongOutput, "%s keepalive: %v", name, err)
			}
		case "idle-closes":
			// The device, connected, must end its connection once it has
			// received nothing on it for IDLE_TIMEOUT (TRN-015): the
			// runner's server stops answering its pings, and sends it
			// nothing else meanwhile.
			e := watching(ts, name+" idle-closes")
			// The bound moves with each frame the server writes to it; a
			// device that is written to all along is given up on after
			// twice IDLE_TIMEOUT.
			ictx, cancel := context.WithTimeout(w.ctx, 2*transport.IdleTimeout+2*keepaliveGrace)
			defer cancel()
			addr := store.Address{Account: w.acct(accountOf(name)), Device: a.deviceID()}
			if err := e.awaitIdleClose(ictx, addr, transport.IdleTimeout, keepaliveGrace); err != nil {
				fail(ts, WrongOutput, "%s idle-closes: %v", name, err)
			}
		case "offline":
			must(ts, name+" offline", a.offline())
		case "online":
			must(ts, name+" online", a.online(ctx))
		case "key-refused":
			// The server's key changed: the device must not connect (TRN-005).
			// A refusal of the device's own, with or without a code.
			a.offline()
			mustFail(ts, name+" online to a server whose key changed", a.online(ctx), 0)
		case "refused":
			a.offline()
			err := a.online(ctx)
			mustFail(ts, name+" online", err, 0) // a refusal, as the adapter protocol has it
			if want := errcode.AuthUnknownDevice; errcode.Of(err) != want && !strings.Contains(err.Error(), want.String()) {
				fail(ts, WrongError, "%s refused with %v, want %v", name, err, want)
			}
		case "presence":
			if len(rest) != 2 {
				ts.Fatalf("usage: %s presence ACCOUNT STATE", name)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err := a.presence(ctx, rest[0])
				must(ts, name+" presence", err)
				if st == rest[1] {
					return
				}
				if time.Now().After(deadline) {
					fail(ts, WrongOutput, "%s sees %s %s, want %s", name, rest[0], st, rest[1])
				}
				time.Sleep(100 * time.Millisecond)
			}
		case "privacy":
			if len(rest) < 2 {
				ts.Fatalf("usage: %s privacy LASTSEEN ONLINE [CONTACT...]", name)
			}
			must(ts, name+" privacy", a.privacy(ctx, rest[0], rest[1], rest[2:]))
		case "link":
			if len(rest) < 1 {
				ts.Fatalf("usage: %s link NEWNAME [impl|ref] [CODE]", name)
			}
			w.link(ts, ctx, name, a, rest, neg)
		case "link-hold":
			// A reference companion asks for a link that the primary never
			// answers: a pending link, which counts toward the companion
			// limit (DEV-003). Its request ends with the scenario.
			if len(rest) != 1 || w.actors[rest[0]] != nil || accountOf(rest[0]) != accountOf(name) {
				ts.Fatalf("usage: %s link-hold NEWNAME (a new actor of %s's account)", name, name)
			}
			code, err := a.linkOpen(ctx)
			must(ts, name+" link-hold", err)
			go joinRef(w.ctx, filepath.Join(w.dir, "devices", rest[0]), code, w.server.address(), w.clock.now)
			time.Sleep(time.Second) // the request reaches the server
		case "message-ids":
			// MSG-002: the ids of the messages a reference device was
			// shown from an account look drawn from a random source.
			if _, ok := a.(*refActor); !ok || len(rest) != 2 {
				ts.Fatalf("usage: %s message-ids ACCOUNT N, by a reference actor shown N messages or more from ACCOUNT", name)
			}
			n, err := strconv.Atoi(rest[1])
			ids := w.shownIDs[name+"\x00"+rest[0]]
			if err != nil || n < 2 || len(ids) < n {
				ts.Fatalf("%s was shown %d messages from %s, not N = %s (N must be 2 or more)", name, len(ids), rest[0], rest[1])
			}
			if err := randomIDs(ids); err != nil {
				fail(ts, WrongOutput, "the messages %s was shown from %s: %v (MSG-002)", name, rest[0], err)
			}
		case "unlink":
			if len(rest) != 1 || w.actors[rest[0]] == nil {
				ts.Fatalf("usage: %s unlink NAME (of a linked actor)", name)
			}
			must(ts, name+" unlink", a.unlink(ctx, w.actors[rest[0]].deviceID()))
		default:
			if !w.lifecycleVerb(ts, ctx, name, a, verb, rest, neg) && !w.rawVerb(ts, ctx, name, a, verb, rest, neg) {
				ts.Fatalf("unknown verb %q", verb)
			}
		}
	}
}

// completeLink has the primary a wait for the companion of its open link,
// in the background until cancel; the wait's outcome comes on the channel.
func completeLink(ctx context.Context, a actor) (<-chan error, context.CancelFunc) {
	cctx, cancel := context.WithCancel(ctx)
	completed := make(chan error, 1)
	go func() {
		_, err := a.linkComplete(cctx)
		completed <- err
	}()
	return completed, cancel
}

// create makes a primary device for the actor's account, played by the
// implementation ("impl", in the client suite) or the reference client.
func (w *world) create(ts *testscript.TestScript, ctx context.Context, name string, args []string) {
	if w.actors[name] != nil {
		ts.Fatalf("actor %s exists", name)
	}
	impl := len(args) > 0 && args[0] == "impl" && w.suite == "client" && w.a != nil
	var (
		a   actor
		err error
	)
	if impl {
		_, err = w.a.Call(ctx, clockSetRequest(w.clock.now()))
		if err == nil {
			a, err = newImplActor(ctx, w.a, w.acct(accountOf(name)), w.server.address())
		}
	} else {
		a, err = newRefActor(ctx, filepath.Join(w.dir, "devices", name), w.acct(accountOf(name)), w.server.address(), w.clock.now)
	}
	must(ts, name+" create", err)
	w.actors[name] = a
}

// collect receives what an actor is shown during wait, failing on a
// message shown twice (CLI-001).
func (w *world) collect(ts *testscript.TestScript, ctx context.Context, name string, a actor, wait time.Duration) []received {
	// The runner keeps the time itself: an adapter that answers at once,
	// whatever wait it was asked, is asked again until the wait is over.
	deadline := time.Now().Add(wait)
	got, err := a.receive(ctx, wait)
	for err == nil && len(got) == 0 && time.Until(deadline) > 50*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		got, err = a.receive(ctx, time.Until(deadline))
	}
	must(ts, name+" receive", err)
	if w.seen[name] == nil {
		w.seen[name] = map[string]bool{}
	}
	for _, r := range got {
		if w.seen[name][string(r.id)] {
			fail(ts, WrongOutput, "%s was shown the message %q from %s twice", name, r.text, r.from)
		}
		w.seen[name][string(r.id)] = true
		k := name + "\x00" + r.from
		w.shownIDs[k] = append(w.shownIDs[k], r.id)
		// Whatever ids the adapter reports, a text the runner sent is
		// shown at most as many times as it was sent (CLI-001).
		if n := w.sends[r.text]; n > 0 && w.author[r.text] == r.from {
			k := name + "\x00" + r.from + "\x00" + r.text
			if w.shownN[k]++; w.shownN[k] > n {
				fail(ts, WrongOutput, "%s was shown the message %q from %s %d times; it was sent %d times", name, r.text, r.from, w.shownN[k], n)
			}
		}
	}
	return got
}

// record notes a message that actor name sent with text.
func (w *world) record(text string, id []byte, name string) {
	w.sent[text], w.author[text] = id, w.acct(accountOf(name))
	w.sends[text]++
}

// expectArgs parses the arguments of a verb that expects a message:
// ACCOUNT TEXT..., or @GROUP ACCOUNT TEXT... for a group message.
func (w *world) expectArgs(ts *testscript.TestScript, name, verb string, args []string) (group []byte, from, text string) {
	if len(args) > 0 && strings.HasPrefix(args[0], "@") {
		group = w.conv(ts, args[0]).group
		args = args[1:]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: %s %s [@GROUP] ACCOUNT TEXT...", name, verb)
	}
	return group, args[0], strings.Join(args[1:], " ")
}

// expect waits until the actor is shown a message from account with text:
// in the group, when group is set; else a message of the conversation with
// the account. It returns the message.
func (w *world) expect(ts *testscript.TestScript, ctx context.Context, name string, a actor, group []byte, from, text string) received {
	deadline := pollDeadline(ctx)
	for {
		for i, r := range w.inbox[name] {
			if r.from == from && r.text == text && bytes.Equal(r.group, group) && (group != nil || !r.outgoing) {
				w.inbox[name] = slices.Delete(w.inbox[name], i, i+1)
				return r
			}
		}
		if time.Now().After(deadline) {
			where := ""
			if group != nil {
				where = " in the group"
			}
			failed := ""
			if ra, ok := a.(*refActor); ok {
				if errs := ra.failed(); len(errs) > 0 {
					failed = fmt.Sprintf("; deliveries it could not process: %v", errs)
				}
			}
			fail(ts, UnexpectedFailure, "%s was not shown %q from %s%s (shown: %v%s)", name, text, from, where, w.inbox[name], failed)
		}
		w.inbox[name] = append(w.inbox[name], w.collect(ts, ctx, name, a, 200*time.Millisecond)...)
	}
}

// status waits until the overall status of a sent message is want.
func (w *world) status(ts *testscript.TestScript, ctx context.Context, name string, a actor, text, want string) {
	id := w.sent[text]
	if id == nil {
		ts.Fatalf("no message was sent with the text %q", text)
	}
	deadline := pollDeadline(ctx)
	last := ""
	for {
		s, err := a.status(ctx, id)
		must(ts, name+" status", err)
		st := s.overall
		if st == want {
			return
		}
		if last != "" && rank(st) < rank(last) {
			fail(ts, WrongOutput, "the status of %q went from %s back to %s", text, last, st)
		}
		last = st
		if time.Now().After(deadline) || rank(st) > rank(want) {
			fail(ts, WrongOutput, "%s's message %q is %s, want %s", name, text, st, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rank(status string) int {
	return slices.Index([]string{"unknown", "pending", "sent", "delivered", "read", "played"}, status)
}

// link links a new companion to the actor's account.
func (w *world) link(ts *testscript.TestScript, ctx context.Context, name string, a actor, args []string, neg bool) {
	newName := args[0]
	if w.actors[newName] != nil || accountOf(newName) != accountOf(name) {
		ts.Fatalf("%s must be a new actor of %s's account", newName, name)
	}
	code, err := a.linkOpen(ctx)
	must(ts, name+" link", err)
	if neg {
		// The link must fail: the companion's request is refused.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var jerr error
		if len(args) > 1 && args[1] == "impl" && w.suite == "client" && w.a != nil {
			_, jerr = joinImpl(lctx, w.a, code, w.server.address())
		} else {
			_, jerr = joinRef(lctx, filepath.Join(w.dir, "devices", newName), code, w.server.address(), w.clock.now)
		}
		var want errcode.Code
		if len(args) > 2 {
			if c, ok := errcode.Parse(args[2]); ok {
				want = c
			}
		}
		mustFail(ts, newName+" link", jerr, want)
		return
	}
	impl := len(args) > 1 && args[1] == "impl" && w.suite == "client" && w.a != nil
	type result struct {
		a   actor
		err error
	}
	done := make(chan result, 1)
	go func() {
		var (
			c   actor
			err error
		)
		if impl {
			c, err = joinImpl(ctx, w.a, code, w.server.address())
		} else {
			c, err = joinRef(ctx, filepath.Join(w.dir, "devices", newName), code, w.server.address(), w.clock.now)
		}
		done <- result{c, err}
	}()
	// The primary waits for the companion; a companion that cannot join
	// (one of an implementation without link.join) ends the wait.
	completed, cancel := completeLink(ctx, a)
	defer cancel()
	var r result
	select {
	case r = <-done:
		if r.err != nil {
			if _, ok := a.(*refActor); ok {
				cancel()
			}
			<-completed
			must(ts, newName+" join", r.err)
		}
		must(ts, name+" link", <-completed)
	case err := <-completed:
		must(ts, name+" link", err)
		r = <-done
	}
	must(ts, newName+" join", r.err)
	w.actors[newName] = r.a
	w.linked[newName] = name
}

// maxIDAgreement is the most byte positions in which the ids of two
// messages of one sender may agree (MSG-002). Two ids drawn from a random
// source agree in 5 or more of their 16 positions with a probability of
// about 3.8e-9 (the sum over k >= 5 of C(16, k) p^k (1 - p)^(16 - k),
// p = 1/256), so that a check of 45 pairs fails a conforming sender less
// than once in five million runs; ids made of a clock, a counter or a
// fixed prefix agree in most of their positions. Ids made by a hash of a
// counter pass: that a source is random cannot be seen from its output,
// only that it is not this weak.
const maxIDAgreement = 4

// randomIDs checks that each id has 16 bytes (section 11.2) and that no two
// of them agree in more than maxIDAgreement byte positions.
func randomIDs(ids [][]byte) error {
	for i, id := range ids {
		if len(id) != wire.MessageIDSize {
			return fmt.Errorf("message id %x has %d bytes, want %d (section 11.2)", id, len(id), wire.MessageIDSize)
		}
		for _, other := range ids[:i] {
			same := 0
			for k := range id {
				if id[k] == other[k] {
					same++
				}
			}
			if same > maxIDAgreement {
				return fmt.Errorf("message ids %x and %x agree in %d of their %d bytes, where ids from a random source agree in at most %d (but once in 260 million pairs)",
					other, id, same, len(id), maxIDAgreement)
			}
		}
	}
	return nil
}
