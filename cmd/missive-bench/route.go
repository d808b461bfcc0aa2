package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/wire"
)

// sendPeriod is the gap between the sends of one device at full speed:
// just under the server's send rate limit (SEND_RATE, section 13.1), so a
// device is never refused for its rate.
var sendPeriod = time.Second * 100 / (server.SendRate * 96)

// phaseResult is one measured phase of messaging.
type phaseResult struct {
	delivered, accepted float64 // per second in the measured window
	// The server's CPU and system calls per delivery in the measured
	// window; noCost when the server shares this process.
	cost                      cost
	endToEnd, accept, sendLag *histogram
	// storeWait is how long each envelope's enqueue waited for the store
	// in the measured window; nil when the server is not in this process.
	storeWait *histogram
	counts    counts
	settled   bool
}

// messaging is a set of connected devices that send to each other.
type messaging struct {
	b     *bench
	fleet fleet
	peers []*peer
	tr    *traffic
}

func (b *bench) startMessaging(f fleet, ctLen, window int) *messaging {
	m := &messaging{b: b, fleet: f, tr: newTraffic(ctLen)}
	for _, d := range f {
		m.peers = append(m.peers, m.tr.start(d, window))
	}
	return m
}

func (m *messaging) close() {
	for _, p := range m.peers {
		p.finish()
	}
	m.fleet.close()
	for _, p := range m.peers {
		<-p.done
	}
}

// phase runs one timed phase: every sender i sends a message with
// send(ctx, i, at) each period, with at most window sends unanswered;
// the first warm of it is not measured. Then it waits for every message to
// be answered and delivered.
func (m *messaging) phase(name string, senders []int, send func(ctx context.Context, i int, at int64) error, period time.Duration, window int, open bool, warm, dur time.Duration) phaseResult {
	tr := m.tr
	before := tr.counts()
	for _, i := range senders {
		m.peers[i].setWindow(window)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := since()
	tr.measureFrom(start + int64(warm))
	for _, i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			one := func(ctx context.Context, at int64) error { return send(ctx, i, at) }
			pace(ctx, one, period, time.Duration(rand.Int64N(int64(period))), 0, open)
		}()
	}
	var (
		t0 = time.Now()
		c0 = tr.counts()
	)
	m.b.prog.phase(func() string {
		c := tr.counts()
		el := time.Since(t0).Seconds()
		return fmt.Sprintf("%.0fs, %s msg/s delivered, %d unanswered, %d refused", el,
			number(float64(c.Delivered-c0.Delivered)/max(el, 1e-3)), c.Unanswered, c.Refused)
	}, "%s", name)
	time.Sleep(warm)
	timed := m.b.t.timed
	if timed != nil {
		timed.restart()
	}
	t0, c0 = time.Now(), tr.counts()
	u0, measured := m.b.t.usage()
	time.Sleep(dur)
	t1, c1 := time.Now(), tr.counts()
	u1, _ := m.b.t.usage()
	var storeWait *histogram
	if timed != nil {
		storeWait = timed.restart()
	}
	cancel()
	wg.Wait()
	m.b.prog.phase(nil, "%s: waiting for the last deliveries", name)
	settled := tr.settle(30 * time.Second)
	after := tr.counts()
	el := t1.Sub(t0).Seconds()
	r := phaseResult{
		delivered: float64(c1.Delivered-c0.Delivered) / el,
		accepted:  float64(c1.Accepted-c0.Accepted) / el,
		endToEnd:  tr.endToEnd.Load(), accept: tr.acceptLat.Load(), sendLag: tr.sendLag.Load(),
		storeWait: storeWait,
		counts:    diffCounts(after, before), settled: settled,
		cost: noCost,
	}
	if measured {
		r.cost = perItem(u0, u1, c1.Delivered-c0.Delivered)
	}
	return r
}

func diffCounts(a, b counts) counts {
	c := counts{
		Sent: a.Sent - b.Sent, Accepted: a.Accepted - b.Accepted, Refused: a.Refused - b.Refused,
		Delivered: a.Delivered - b.Delivered, Duplicates: a.Duplicates - b.Duplicates, Acked: a.Acked - b.Acked,
	}
	c.Unanswered = c.Sent - c.Accepted - c.Refused
	for k, v := range a.Errors {
		if d := v - b.Errors[k]; d > 0 {
			if c.Errors == nil {
				c.Errors = map[string]uint64{}
			}
			c.Errors[k] = d
		}
	}
	return c
}

func addCounts(a, b counts) counts {
	c := counts{
		Sent: a.Sent + b.Sent, Accepted: a.Accepted + b.Accepted, Refused: a.Refused + b.Refused,
		Unanswered: a.Unanswered + b.Unanswered, Delivered: a.Delivered + b.Delivered,
		Duplicates: a.Duplicates + b.Duplicates, Acked: a.Acked + b.Acked,
	}
	for _, m := range []map[string]uint64{a.Errors, b.Errors} {
		for k, v := range m {
			if c.Errors == nil {
				c.Errors = map[string]uint64{}
			}
			c.Errors[k] += v
		}
	}
	return c
}

// Targets of issue 8 for this machine.
const (
	targetRoute     = 100_000
	targetRouteP99  = 20.0 // ms, at half the target rate
	targetEnqueue   = 40_000
	targetIdle      = 500_000
	targetIdleBytes = 16 << 10
	targetReconnect = 0.8 // of the X25519 bound
)

// runRoute is the online routing scenario: devices connected in a ring,
// each sending to the next, at full speed and then at half the rate
// reached, against a plain relay of the same frames.
func (b *bench) runRoute(s *scenarioReport) error {
	cfg := b.cfg
	ctLen, envSize, err := ciphertextFor(cfg.size)
	if err != nil {
		return err
	}
	n := cfg.devices
	f, err := makeFleet(b.run+"r", n, b.srcs)
	if err != nil {
		return err
	}
	b.prog.phase(nil, "route: registering %d devices", n)
	if err := f.setup(context.Background(), b.t, true, b.prog); err != nil {
		f.close()
		return err
	}
	m := b.startMessaging(f, ctLen, cfg.window)
	defer m.close()
	sizes := frameSizes(ctLen)
	ring := func(ctx context.Context, i int, at int64) error { return m.peers[i].send(ctx, m.fleet[(i+1)%n], at) }
	fan := make([][]int, n)
	for i := range fan {
		fan[i] = []int{(i + 1) % n}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	var maxRuns, relayRuns, halfRuns, p99Runs, halfRates []float64
	var costRuns, halfCostRuns []cost
	maxLat, halfLat, relayLat, lagLat, storeLat := new(histogram), new(histogram), new(histogram), new(histogram), new(histogram)
	s.Counts = map[string]counts{}
	halfRate := cfg.rate
	for run := 1; run <= cfg.runs; run++ {
		r := m.phase(fmt.Sprintf("route run %d/%d: full speed", run, cfg.runs), all, ring, sendPeriod, cfg.window, false, cfg.warmup, cfg.duration)
		maxRuns = append(maxRuns, r.delivered)
		costRuns = append(costRuns, r.cost)
		maxLat.Merge(r.endToEnd)
		s.Counts["full speed"] = addCounts(s.Counts["full speed"], r.counts)
		if !r.settled {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: not every message was answered and delivered within 30 s after the full-speed phase", run))
		}

		b.prog.phase(nil, "route run %d/%d: loopback relay baseline", run, cfg.runs)
		rr, err := relayPhase(fan, sizes, cfg.window, cfg.warmup, cfg.duration, b.prog)
		if err != nil {
			return fmt.Errorf("relay baseline: %w", err)
		}
		relayRuns = append(relayRuns, rr.rate)
		relayLat.Merge(rr.lat)

		if cfg.rate == 0 {
			halfRate = median(maxRuns) / 2
		}
		halfRates = append(halfRates, halfRate)
		period := time.Duration(float64(n) / max(halfRate, 1) * float64(time.Second))
		h := m.phase(fmt.Sprintf("route run %d/%d: latency at %s msg/s", run, cfg.runs, number(halfRate)), all, ring, max(period, sendPeriod), inflightRing, true, cfg.warmup, cfg.duration)
		halfRuns = append(halfRuns, h.delivered)
		halfCostRuns = append(halfCostRuns, h.cost)
		p99Runs = append(p99Runs, ms(h.endToEnd.Quantile(0.99)))
		halfLat.Merge(h.endToEnd)
		lagLat.Merge(h.sendLag)
		if h.storeWait != nil {
			storeLat.Merge(h.storeWait)
		}
		s.Counts["latency"] = addCounts(s.Counts["latency"], h.counts)
		if !h.settled {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: not every message was answered and delivered within 30 s after the latency phase", run))
		}
	}
	// The latency phases' rate: each run's is half the full speed of the
	// runs so far, so the search starts from their median, with the
	// medians of what they delivered and of their p99.
	within := b.withinBound(m, all, ring, median(halfRates), median(halfRuns), median(p99Runs))
	p99 := newFigure("latency p99 at half speed", "ms", p99Runs, "", nil)
	if median(halfRuns) >= targetRoute/2*0.95 {
		p99.atMost(targetRouteP99, fmt.Sprintf("< 20 ms at %s msg/s", number(targetRoute/2)))
	} else {
		p99.Target = fmt.Sprintf("< 20 ms at %s msg/s (not measurable: that rate was not reached)", number(targetRoute/2))
	}
	s.Figures = append(s.Figures,
		newFigure("online routing, full speed", "msg/s", maxRuns, "loopback relay", relayRuns).atLeast(targetRoute, ">= 100,000 msg/s"),
		p99,
		newFigure("half-speed rate reached", "msg/s", halfRuns, "", nil),
		newFigure(fmt.Sprintf("highest rate with p99 under %g ms", targetRouteP99), "msg/s", []float64{within.rate}, "", nil).
			atLeast(targetRoute/2, fmt.Sprintf(">= %s msg/s (p99 < %g ms at half the routing target)", number(targetRoute/2), targetRouteP99)),
	)
	s.Notes = append(s.Notes, within.note())
	if within.unsettled > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d phases of the search for the highest rate under the latency bound left messages unanswered or undelivered 30 s after them", within.unsettled))
	}
	s.Figures = append(s.Figures, costFigures("routed message", "routed messages", costRuns)...)
	s.Figures = append(s.Figures, costFigures("routed message in the latency phase", "routed messages in the latency phase", halfCostRuns)...)
	s.Latencies = append(s.Latencies,
		maxLat.summary("route end to end, full speed", median(maxRuns)),
		halfLat.summary("route end to end, half speed", median(halfRuns)),
		lagLat.summary("the tool's own send lag, half speed", median(halfRuns)),
		relayLat.summary("loopback relay end to end, full speed", median(relayRuns)),
	)
	if storeLat.Count() > 0 {
		s.Latencies = append(s.Latencies, storeLat.summary("the store's wait per envelope, half speed", median(halfRuns)))
	}
	s.Notes = append(s.Notes,
		fmt.Sprintf("%d devices in a ring, each sending %d-byte envelopes (%d bytes of opaque ciphertext) to the next; full speed is %s msg/s per device (the send rate limit) with %d unanswered at most",
			n, envSize, ctLen, number(float64(time.Second)/float64(sendPeriod)), cfg.window),
		fmt.Sprintf("relay frames on the wire: send %d, result %d, deliver %d, ack %d bytes, as the real segments are", sizes.send, sizes.result, sizes.deliver, sizes.ack),
	)
	if cfg.rate == 0 && median(maxRuns)/2 < targetRoute/2 {
		s.Notes = append(s.Notes, fmt.Sprintf("the latency phase ran at half the rate reached (%s msg/s), not at %s msg/s, which is above what the server reached", number(median(maxRuns)/2), number(targetRoute/2)))
	}
	return nil
}

// boundSteps is the number of phases of the search for the highest rate
// whose p99 stays under the latency bound.
const boundSteps = 6

// boundSearch is the outcome of that search.
type boundSearch struct {
	rate, p99 float64 // the highest rate that met the bound, and its p99 (0, 0: none did)
	// steps are the rates tried, the latency phases' own first.
	steps     []string
	unsettled int // phases after which not every message was answered and delivered in time
	// storeP99 is, for each phase the search ran, the p99 of the store's
	// wait per envelope (a server in this process only).
	storeP99 []string
}

func (w boundSearch) note() string {
	if len(w.steps) == 1 && w.rate > 0 {
		return fmt.Sprintf("highest rate with p99 under %g ms: the latency phases met the bound (rate: delivered msg/s, p99: %s); higher rates were not tried, so the figure is a lower bound",
			targetRouteP99, w.steps[0])
	}
	n := fmt.Sprintf("highest rate with p99 under %g ms: the latency phases' rate, then %d more phases (rate tried: delivered msg/s, p99): %s; the search can go no lower than 1/%d of the first rate",
		targetRouteP99, len(w.steps)-1, strings.Join(w.steps, "; "), 1<<boundSteps)
	if len(w.storeP99) > 0 {
		n += fmt.Sprintf("; the store's wait per envelope in those phases, p99: %s", strings.Join(w.storeP99, "; "))
	}
	return n
}

// withinBound searches for the highest rate at which routing's p99 stays
// under targetRouteP99 (the latency bound), from the latency
// phases' rate, with latency phases at the rates searchBound tries.
func (b *bench) withinBound(m *messaging, senders []int, send func(ctx context.Context, i int, at int64) error, from, delivered, p99 float64) boundSearch {
	step, unsettled := 0, 0
	var storeP99 []string
	w := searchBound(from, delivered, p99, func(rate float64) (float64, float64) {
		step++
		period := time.Duration(float64(len(senders)) / max(rate, 1) * float64(time.Second))
		h := m.phase(fmt.Sprintf("route: p99 at %s msg/s (step %d/%d)", number(rate), step, boundSteps), senders, send, max(period, sendPeriod), inflightRing, true, b.cfg.warmup, b.cfg.duration)
		if !h.settled {
			unsettled++
		}
		if h.storeWait != nil {
			storeP99 = append(storeP99, fmt.Sprintf("%s: %.1f ms", number(rate), ms(h.storeWait.Quantile(0.99))))
		}
		return h.delivered, ms(h.endToEnd.Quantile(0.99))
	})
	w.unsettled, w.storeP99 = unsettled, storeP99
	return w
}

// searchBound finds the highest rate that meets the latency bound: a
// phase meets it when its p99 is under targetRouteP99 and it delivered at
// least 95 % of its rate. The rate from was measured already (delivered
// msg/s and p99 as given); when it met the bound, that is the answer.
// Otherwise searchBound halves the rate until a phase, run by measure,
// meets the bound, then bisects between the highest rate that met it and
// the lowest that did not: boundSteps phases in all.
func searchBound(from, delivered, p99 float64, measure func(rate float64) (delivered, p99 float64)) boundSearch {
	var w boundSearch
	meets := func(rate, delivered, p99 float64) bool {
		w.steps = append(w.steps, fmt.Sprintf("%s: %s, %.1f ms", number(rate), number(delivered), p99))
		return p99 < targetRouteP99 && delivered >= 0.95*rate
	}
	if meets(from, delivered, p99) {
		w.rate, w.p99 = from, p99
		return w
	}
	lo, hi := 0.0, from // lo met the bound (0: none yet), hi did not
	for range boundSteps {
		rate := hi / 2
		if lo > 0 {
			rate = (lo + hi) / 2
		}
		d, p := measure(rate)
		if meets(rate, d, p) {
			lo, w.rate, w.p99 = rate, rate, p
		} else {
			hi = rate
		}
	}
	return w
}

// wireSizes are the bytes on the wire of each frame of one message: the
// segment length, the Noise tag, the frame length and the frame.
type wireSizes struct{ send, result, deliver, ack int }

func frameSizes(ctLen int) wireSizes {
	a, b := &device{i: 1 << 20, account: "b00000000-1000000r-1"}, &device{account: "b00000000-1000000r-2"}
	env := a.envelope(b, 1<<30, make([]byte, ctLen))
	seg := func(typ, id uint64, body wire.Message) int {
		f := &wire.Frame{Version: wire.ProtocolVersion, Type: typ}
		if id != 0 {
			f.RequestID = &id
		}
		enc, _ := wire.Marshal(body)
		f.Body = &enc
		fe, _ := wire.Marshal(f)
		return 2 + 16 + 4 + len(fe)
	}
	now := uint64(time.Now().UnixMilli())
	return wireSizes{
		send:   seg(wire.FrameSend, 1<<30, env),
		result: seg(wire.FrameResult, 1<<30, &wire.SendResult{AcceptedAt: now}),
		deliver: seg(wire.FrameDeliver, 0, &wire.Delivery{Version: 1, QueueID: 1 << 20, MessageID: env.MessageID,
			Sender: env.Sender, Type: 1, Priority: 1, Kind: 1, Ciphertext: env.Messages[0].Ciphertext,
			SentAt: now, AcceptedAt: now, ExpiresAt: now + 3600_000, Attempt: 1}),
		ack: seg(wire.FrameAck, 0, &wire.Ack{QueueIDs: []uint64{1 << 20}}),
	}
}
