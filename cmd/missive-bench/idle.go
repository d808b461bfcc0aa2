package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// fdMargin is the file descriptors a process keeps for everything but
// connections (listeners, the store, pipes, the runtime).
const fdMargin = 64

// runIdle is the idle scenario: as many authenticated device connections
// as the machine lets one process hold, each silent but for its keepalive
// pings, and the server's memory per connection. The server runs in a
// process of its own (or is external), so its memory is its own and it has
// a file descriptor limit of its own.
func (b *bench) runIdle(s *scenarioReport) error {
	cfg := b.cfg
	t := b.child
	n := cfg.idle
	limit := raiseFileLimit()
	var limits []string
	if fdMax := int(limit) - fdMargin; n > fdMax {
		limits = append(limits, fmt.Sprintf("RLIMIT_NOFILE: this process, and the server's, may open %d files (the hard limit; raising it needs CAP_SYS_RESOURCE), one per connection", limit))
		n = fdMax
	}
	srcs := b.srcs
	if len(srcs) == 0 {
		srcs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if lo, hi, ok := portRange(); ok {
		if portMax := (hi - lo + 1) * len(srcs); n > portMax {
			limits = append(limits, fmt.Sprintf("ephemeral ports: %d per source address (ip_local_port_range %d-%d) times %d source addresses", hi-lo+1, lo, hi, len(srcs)))
			n = portMax
		}
	}
	f, err := makeFleet(b.run+"i", n, srcs)
	if err != nil {
		return err
	}
	for _, d := range f {
		d.abort = true // each run reuses the ports of the last one
	}
	// Register every device first and disconnect, so that the memory
	// measured before the connections holds the accounts already.
	b.prog.phase(nil, "idle: registering %d devices", n)
	var registered atomic.Int64
	err = parallel(n, func(i int) error {
		d := f[i]
		if err := d.connect(context.Background(), t, true); err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		d.close()
		b.prog.add(1)
		registered.Add(1)
		return nil
	})
	if err != nil {
		limits = append(limits, fmt.Sprintf("registration stopped after %d devices: %v", registered.Load(), err))
		f = f[:registered.Load()]
	}
	m0, memErr := settled(t)
	if memErr != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("no memory figures: %v", memErr))
	}
	var runs, heapRuns, held []float64
	for run := 1; run <= cfg.runs; run++ {
		b.prog.phase(nil, "idle run %d/%d: opening connections", run, cfg.runs)
		var (
			open    atomic.Int64
			stopErr error
			emu     sync.Mutex
		)
		t0 := time.Now()
		parallel(len(f), func(i int) error {
			if err := f[i].connect(context.Background(), t, false); err != nil {
				emu.Lock()
				if stopErr == nil {
					stopErr = fmt.Errorf("connection %d: %w", i, err)
				}
				emu.Unlock()
				return err
			}
			open.Add(1)
			b.prog.add(1)
			return nil
		})
		connectSecs := time.Since(t0).Seconds()
		if stopErr != nil {
			limits = append(limits, fmt.Sprintf("run %d: connecting stopped at %d connections: %v%s", run, open.Load(), stopErr, errnoHint(stopErr)))
		}
		// Hold them, with keepalives, then measure.
		stop := make(chan struct{})
		var kw sync.WaitGroup
		kw.Add(1)
		go func() { defer kw.Done(); keepalive(f, cfg.hold, stop) }()
		b.prog.phase(nil, "idle run %d/%d: holding %d connections", run, cfg.runs, open.Load())
		time.Sleep(cfg.hold)
		m1, err := t.memory()
		close(stop)
		kw.Wait()
		if memErr == nil && err != nil {
			return err
		}
		c := float64(open.Load())
		if m1.Connected >= 0 {
			c = min(c, float64(m1.Connected)) // the server may still count some that are closing
		}
		held = append(held, c)
		if c > 0 && memErr == nil {
			runs = append(runs, (float64(m1.RSS)-float64(m0.RSS))/c)
			heapRuns = append(heapRuns, (float64(m1.HeapInuse+m1.StackInuse)-float64(m0.HeapInuse+m0.StackInuse))/c)
		}
		s.Notes = append(s.Notes, fmt.Sprintf("run %d: %d connections opened in %.1f s; server RSS %s before, %s after; %d goroutines",
			run, open.Load(), connectSecs, mib(m0.RSS), mib(m1.RSS), m1.Goroutines))
		if c > 0 && m1.HeapInuse > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: per connection, Go heap %.0f B, goroutine stacks %.0f B, %.1f goroutines",
				run, (float64(m1.HeapInuse)-float64(m0.HeapInuse))/c, (float64(m1.StackInuse)-float64(m0.StackInuse))/c,
				float64(m1.Goroutines-m0.Goroutines)/c))
		}
		f.close()
		time.Sleep(time.Second) // let the server see the connections go
	}
	s.Figures = append(s.Figures, newFigure("idle connections held", "conns", held, "", nil).atLeast(targetIdle, ">= 500,000"))
	if memErr == nil {
		s.Figures = append(s.Figures,
			newFigure("server memory per idle connection (RSS)", "bytes", runs, "", nil).atMost(targetIdleBytes, "<= 16 KiB"))
		if m0.HeapInuse > 0 {
			s.Figures = append(s.Figures, newFigure("server Go heap and stacks per idle connection", "bytes", heapRuns, "", nil))
		}
	}
	if len(limits) > 0 {
		s.Notes = append(s.Notes, "what limited the count: "+strings.Join(limits, "; "))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("server: %s, pid %d; %d source addresses; kernel socket memory is not in the server's RSS", t.kind, t.pid, len(srcs)))
	return nil
}

// settled returns the server's memory once the work that the
// registrations left has ended (their last-seen times are stored a second
// or more after the devices leave, SRV-022): two readings half a second
// apart with the same goroutines and within 64 KiB of each other, after a
// second, and at most ten seconds on.
func settled(t *target) (memory, error) {
	time.Sleep(time.Second)
	m, err := t.memory()
	for deadline := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		next, err2 := t.memory()
		if err2 != nil {
			return m, err2
		}
		inuse := func(m memory) int64 { return int64(m.HeapInuse + m.StackInuse + m.RSS) }
		quiet := next.Goroutines == m.Goroutines && max(inuse(next)-inuse(m), inuse(m)-inuse(next)) < 64<<10
		m = next
		if quiet {
			break
		}
	}
	return m, err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// errnoHint says which limit an error of connect or accept means.
func errnoHint(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return " (the file descriptor limit)"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return " (ephemeral ports: add source addresses with -src)"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return " (the server closed it: its file descriptor limit?)"
	}
	return ""
}

// keepalive pings every connection once per KEEPALIVE_INTERVAL, spread
// over the interval, until stop is closed (TRN-014). The first round is
// spread over the first half of hold instead, when that is shorter, so
// that every connection has sent a ping, and the server answered it,
// before the memory is measured: the steady state of an idle connection.
func keepalive(f fleet, hold time.Duration, stop <-chan struct{}) {
	if len(f) == 0 {
		return
	}
	round := func(interval time.Duration) bool {
		gap := interval / time.Duration(len(f))
		t := time.NewTicker(max(gap, time.Millisecond))
		defer t.Stop()
		per := max(1, int(time.Millisecond/max(gap, 1)))
		for i := 0; i < len(f); {
			select {
			case <-stop:
				return false
			case <-t.C:
			}
			for j := 0; j < per && i < len(f); j++ {
				if d := f[i]; d.tc != nil {
					d.tc.Send(wire.FramePing, 0, nil)
				}
				i++
			}
		}
		return true
	}
	if !round(min(hold/2, transport.KeepaliveInterval)) {
		return
	}
	for round(transport.KeepaliveInterval) {
	}
}

// portRange reads the ephemeral port range.
func portRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && hi >= lo
}
