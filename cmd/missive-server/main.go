// Command missive-server runs the reference Missive server (spec chapter
// 13) with its state in one data directory.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/spec"
)

const usage = `missive-server runs a Missive server on this machine.

Usage:
    missive-server [flags]

Flags:
    -listen ADDR     address for devices (default 127.0.0.1:7350)
    -data DIR        data directory: the server key and the store (default ./missive-data)
    -metrics ADDR    serve Prometheus metrics on ADDR/metrics (default off)
    -v               log every connection
    -register-burst N  new accounts one source address may register at once,
                     then one per 10 s (default 1000, the specification's
                     REGISTER_BURST, SRV-026); -1 lifts the limit, for a
                     deployment that creates its accounts itself, or a
                     benchmark that registers many from one machine
    -clock FILE      for tests: run the clock ahead by the duration in FILE ("31d")
    -store-fail FILE for tests: while FILE exists, the store fails to queue
                     any envelope, as a full disk would (SRV-017)
    -mutant NAME     for the conformance suite: run with a deliberate bug (-mutant list)
    -version         print the version

The server keeps its Noise static key in DIR/server.key and everything it
stores in DIR/store.db. Stop it with Ctrl-C: it finishes what it started
and tells devices to come back later.

Example:
    $ missive-server -listen 127.0.0.1:7350 -data ./missive-data
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil)) }

// run runs the server until a signal, or until stop is closed (for tests).
func run(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	fl := flag.NewFlagSet("missive-server", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	listen := fl.String("listen", "127.0.0.1:7350", "")
	data := fl.String("data", "./missive-data", "")
	metrics := fl.String("metrics", "", "")
	verbose := fl.Bool("v", false, "")
	clockFile := fl.String("clock", "", "")
	failFile := fl.String("store-fail", "", "")
	registerBurst := fl.Int("register-burst", server.RegisterBurst, "")
	mutant := fl.String("mutant", "", "")
	version := fl.Bool("version", false, "")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "missive-server: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if *version {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "missive-server %s (specification %s)\n", v, spec.Version)
		return 0
	}
	if *mutant == "list" {
		for _, f := range faults.Names() {
			if faults.ServerFaults[faults.Fault(f)] {
				fmt.Fprintf(stdout, "%-24s %s\n", f, faults.All[faults.Fault(f)])
			}
		}
		return 0
	}
	if *mutant != "" {
		if !faults.ServerFaults[faults.Fault(*mutant)] {
			fmt.Fprintf(stderr, "missive-server: unknown mutant %q (see -mutant list)\n", *mutant)
			return 2
		}
		faults.Enable(faults.Fault(*mutant))
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var clock func() time.Time
	if *clockFile != "" {
		clock = (&fileClock{path: *clockFile}).Now
	}
	if err := serve(*listen, *data, *metrics, clock, *failFile, *registerBurst, log, stdout, stop); err != nil {
		fmt.Fprintf(stderr, "missive-server: %v\n", err)
		return 1
	}
	return 0
}

func serve(listen, data, metricsAddr string, clock func() time.Time, failFile string, registerBurst int, log *slog.Logger, stdout io.Writer, stop <-chan struct{}) error {
	// Catch the stop signals before listening: one that comes as soon as
	// devices can connect stops the server cleanly instead of killing it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(data, "store.db")
	_, statErr := os.Stat(dbPath)
	static, err := loadKey(filepath.Join(data, "server.key"), statErr == nil)
	if err != nil {
		return err
	}
	st, err := bolt.Open(dbPath)
	if err != nil {
		return fmt.Errorf("%s cannot be opened (corrupt, or not a Missive store?); nothing was changed: %w", dbPath, err)
	}
	defer st.Close()
	var served store.Store = st
	if failFile != "" {
		served = &failingStore{Store: st, path: failFile}
	}
	srv, err := server.New(server.Config{Store: served, Static: static, Logger: log, Clock: clock, RegisterBurst: registerBurst})
	if err != nil {
		return err
	}
	ln, err := transport.Listen(listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "missive-server listening on %s\nserver key %x\n", ln.Addr(), srv.PublicKey())
	if metricsAddr != "" {
		mln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.MetricsHandler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(mln)
		defer hs.Close()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", mln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-sig:
	case <-stop:
	}
	fmt.Fprintln(stdout, "missive-server stopping")
	ctx, cancel := context.WithTimeout(context.Background(), 2*server.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, server.ErrClosed) {
		return err
	}
	return nil
}

// loadKey reads the server's static key, creating it on first use. A
// store without its key is refused: a new key would be a new server
// identity that every device would reject (TRN-005).
func loadKey(path string, haveStore bool) (noise.DHKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && haveStore {
		return noise.DHKey{}, fmt.Errorf("%s is missing but the data directory has a store: restore the key, or start from an empty directory", path)
	}
	if errors.Is(err, os.ErrNotExist) {
		k, err := transport.Suite.GenerateKeypair(rand.Reader)
		if err != nil {
			return noise.DHKey{}, err
		}
		if err := os.WriteFile(path, k.Private, 0o600); err != nil {
			return noise.DHKey{}, err
		}
		return k, nil
	}
	if err != nil {
		return noise.DHKey{}, err
	}
	if len(b) != 32 {
		return noise.DHKey{}, fmt.Errorf("%s: not a server key (want 32 bytes, found %d)", path, len(b))
	}
	pub, err := publicKey(b)
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: b, Public: pub}, nil
}

// failingStore is the store of -store-fail: while the file at path exists,
// every envelope the server asks it to queue fails, as on a full disk, so
// that the conformance suite can see what the server answers (SRV-017:
// policy.shutting_down with a retry time, and the connection closed). It
// keeps the store's other methods, the optional ones included.
type failingStore struct {
	*bolt.Store
	path string
}

var errStoreFail = errors.New("the store fails (the -store-fail file exists)")

func (f *failingStore) failing() bool {
	_, err := os.Stat(f.path)
	return err == nil
}

// Enqueue implements store.Store.
func (f *failingStore) Enqueue(ctx context.Context, es []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	if f.failing() {
		return time.Time{}, false, errStoreFail
	}
	return f.Store.Enqueue(ctx, es, q, forget)
}

// EnqueueMany implements store.ManyEnqueuer.
func (f *failingStore) EnqueueMany(ctx context.Context, calls []store.EnqueueCall) []store.EnqueueResult {
	if f.failing() {
		out := make([]store.EnqueueResult, len(calls))
		for i := range out {
			out[i].Err = errStoreFail
		}
		return out
	}
	return f.Store.EnqueueMany(ctx, calls)
}
