package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// dhPerIK is the X25519 operations of one Noise IK handshake, both sides
// counted (server and tool share the machine): the device generates its
// ephemeral key and computes es, ss, ee, se; the server computes es, ss,
// generates its ephemeral key and computes ee, se. Five each.
const dhPerIK = 10

// runReconnect is the reconnect storm: devices that connect, authenticate
// (IK handshake, hello, welcome) and disconnect, over and over, as a
// network change makes every device do at once. The baseline is the
// X25519 operations per second of this machine, measured in the same run,
// over the ten operations a handshake contains.
func (b *bench) runReconnect(s *scenarioReport) error {
	cfg := b.cfg
	f, err := makeFleet(b.run+"c", cfg.workers, b.srcs)
	if err != nil {
		return err
	}
	b.prog.phase(nil, "reconnect: registering %d devices", len(f))
	if err := f.setup(context.Background(), b.child, false, b.prog); err != nil {
		f.close()
		return err
	}
	f.close()
	for _, d := range f {
		d.abort = true
	}
	sink, err := b.child.sinkAddr()
	if err != nil {
		return fmt.Errorf("TCP baseline: %w", err)
	}
	var fullRuns, hsRuns, tcpRuns, boundRuns, hsBoundRuns, dhRuns, floorRuns, hsFloorRuns []float64
	fullLat, hsLat := new(histogram), new(histogram)
	var failures []string
	for run := 1; run <= cfg.runs; run++ {
		// The baseline, X25519 on every core, just before and just after
		// each phase: the mean of the two is the phase's bound, so that a
		// change of load on a shared machine shows in both.
		dhTime := min(time.Second, cfg.duration)
		b.prog.phase(nil, "reconnect run %d/%d: X25519 baseline", run, cfg.runs)
		dh0 := x25519Rate(dhTime)
		r, lat, errs := b.storm(f, fmt.Sprintf("reconnect run %d/%d: connect, hello, close", run, cfg.runs), stormHello, "")
		fullRuns = append(fullRuns, r)
		fullLat.Merge(lat)
		failures = append(failures, errs...)
		b.prog.phase(nil, "reconnect run %d/%d: X25519 baseline", run, cfg.runs)
		dh1 := x25519Rate(dhTime)
		r, lat, errs = b.storm(f, fmt.Sprintf("reconnect run %d/%d: handshake, close", run, cfg.runs), stormHandshake, "")
		hsRuns = append(hsRuns, r)
		hsLat.Merge(lat)
		failures = append(failures, errs...)
		b.prog.phase(nil, "reconnect run %d/%d: X25519 baseline", run, cfg.runs)
		dh2 := x25519Rate(dhTime)
		r, _, errs = b.storm(f, fmt.Sprintf("reconnect run %d/%d: TCP baseline", run, cfg.runs), stormTCP, sink)
		tcpRuns = append(tcpRuns, r)
		failures = append(failures, errs...)
		dhRuns = append(dhRuns, (dh0+dh1+dh2)/3)
		boundRuns = append(boundRuns, (dh0+dh1)/2/dhPerIK)
		hsBoundRuns = append(hsBoundRuns, (dh1+dh2)/2/dhPerIK)
		floorRuns = append(floorRuns, together(boundRuns[run-1], r))
		hsFloorRuns = append(hsFloorRuns, together(hsBoundRuns[run-1], r))
	}
	full := newFigure("reconnect (IK handshake, hello, welcome)", "conn/s", fullRuns, "X25519 bound", boundRuns)
	full.Target, full.Met = ">= 0.8 of the X25519 bound", ptr(full.Ratio >= targetReconnect)
	s.Figures = append(s.Figures,
		full,
		newFigure("Noise IK handshake alone", "conn/s", hsRuns, "X25519 bound", hsBoundRuns),
		newFigure("X25519 operations", "op/s", dhRuns, "", nil),
		newFigure("TCP connect, the handshake's bytes, reset", "conn/s", tcpRuns, "", nil),
		newFigure("reconnect against X25519 and TCP together", "conn/s", fullRuns, "X25519+TCP bound", floorRuns),
		newFigure("handshake alone against X25519 and TCP together", "conn/s", hsRuns, "X25519+TCP bound", hsFloorRuns),
	)
	s.Latencies = append(s.Latencies,
		fullLat.summary("reconnect, dial to welcome", median(fullRuns)),
		hsLat.summary("handshake, dial to handshake done", median(hsRuns)))
	s.Notes = append(s.Notes, fmt.Sprintf("%d devices reconnecting at once to a server in a child process, for %s per phase, each connection ended by the device with a reset (no TIME_WAIT on the tool's side); the bound is X25519 op/s (crypto/ecdh, %d goroutines, measured for 1 s before and after each phase) / %d, the operations of one IK handshake on both sides (a device that connected lately, and its server, keep the static-static result, so a reconnect computes 8 of them); a reconnect adds the hello's XEdDSA verification, store reads and the last-seen write",
		len(f), cfg.duration, runtime.GOMAXPROCS(0), dhPerIK))
	s.Notes = append(s.Notes, fmt.Sprintf("the TCP baseline: the same devices connect to a sink in the server's process, write the %d bytes of the handshake's first message, read the %d of its second and reset the connection; the X25519+TCP bound is what a handshake would reach if it cost its X25519 operations and that connection and nothing else (1 / (1/X25519 bound + 1/TCP rate))", ikMsg1, ikMsg2))
	if len(failures) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d connections failed, first: %s", len(failures), failures[0]))
	}
	return nil
}

// What a device does in each connection of a storm.
const (
	stormHello     = iota // handshake, hello, welcome
	stormHandshake        // handshake
	stormTCP              // the TCP baseline: the handshake's bytes to the sink
)

// together is the rate of a connection that costs what one at rate a and
// one at rate b each cost: 1 / (1/a + 1/b).
func together(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return 1 / (1/a + 1/b)
}

// storm has every device reconnect over and over for the configured
// duration (after the warm-up) and returns connections per second. The
// TCP baseline's connections go to sink.
func (b *bench) storm(f fleet, name string, mode int, sink string) (float64, *histogram, []string) {
	cfg := b.cfg
	var (
		done     atomic.Int64
		measure  atomic.Bool
		lat      = new(histogram)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for _, d := range f {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				var err error
				switch mode {
				case stormHello:
					err = d.connect(context.Background(), b.child, false)
					d.close()
				case stormHandshake:
					var nc net.Conn
					if nc, err = d.dial(context.Background(), b.child); err == nil {
						_, err = d.handshake(nc, b.child)
						nc.Close()
					}
				case stormTCP:
					var nc net.Conn
					if nc, err = d.dialAddr(context.Background(), sink); err == nil {
						err = d.sinkExchange(nc)
						nc.Close()
					}
				}
				if err != nil {
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, err.Error())
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if measure.Load() {
					done.Add(1)
					lat.Record(time.Since(t0))
				}
			}
		}()
	}
	t0 := time.Now()
	b.prog.phase(func() string {
		return fmt.Sprintf("%s conn/s", number(float64(done.Load())/max(time.Since(t0).Seconds(), 1e-3)))
	}, "%s", name)
	time.Sleep(cfg.warmup)
	t0 = time.Now()
	measure.Store(true)
	time.Sleep(cfg.duration)
	n := done.Load()
	el := time.Since(t0).Seconds()
	close(stop)
	wg.Wait()
	return float64(n) / el, lat, failures
}

// x25519Rate measures X25519 operations per second with crypto/ecdh, one
// goroutine per core, for d.
func x25519Rate(d time.Duration) float64 {
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := peer.PublicKey()
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		stop atomic.Bool
	)
	t0 := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for range 16 {
					if _, err := priv.ECDH(pub); err != nil {
						return
					}
				}
				n.Add(16)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(n.Load()) / time.Since(t0).Seconds()
}
