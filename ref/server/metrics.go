package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
)

// metrics are the server's counters, exposed in the Prometheus text format.
type metrics struct {
	connections       atomic.Int64
	handshakeFailures atomic.Uint64
	accepted          atomic.Uint64
	duplicates        atomic.Uint64
	deliveries        atomic.Uint64
	redeliveries      atomic.Uint64
	acked             atomic.Uint64
	expired           atomic.Uint64
	bundles           atomic.Uint64
	groupStates       atomic.Uint64
	groupAccepted     atomic.Uint64
	blobBytesIn       atomic.Uint64
	blobBytesOut      atomic.Uint64
	blobsCompleted    atomic.Uint64
	blobsExpired      atomic.Uint64
	refused           codeCounter
	latency           histogram // seconds from acceptance to acknowledgement
	fanout            histogram // group devices per accepted group message
}

func newMetrics() *metrics {
	return &metrics{
		latency: histogram{bounds: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600, 86400}},
		fanout:  histogram{bounds: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5120}},
	}
}

// codeCounter counts refusals per error code.
type codeCounter struct {
	mu sync.Mutex
	n  map[errcode.Code]uint64
}

func (c *codeCounter) inc(code errcode.Code) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[errcode.Code]uint64{}
	}
	c.n[code]++
	c.mu.Unlock()
}

// histogram is a Prometheus histogram.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64
	sum    float64
	total  uint64
}

// observe observes a duration in seconds.
func (h *histogram) observe(d time.Duration) { h.observeValue(d.Seconds()) }

func (h *histogram) observeValue(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, len(h.bounds))
	}
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.total++
}

// MetricsHandler serves the metrics in the Prometheus text format.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.WriteMetrics(r.Context(), w)
	})
}

// WriteMetrics writes the metrics in the Prometheus text format.
func (s *Server) WriteMetrics(ctx context.Context, w io.Writer) {
	m := s.metrics
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge("missive_connections", "Open device connections.", m.connections.Load())
	s.mu.Lock()
	devices := len(s.devices)
	s.mu.Unlock()
	gauge("missive_devices_connected", "Authenticated devices connected.", int64(devices))
	if n, err := s.cfg.Store.TotalEntries(ctx); err == nil {
		gauge("missive_queue_entries", "Queue entries of all devices.", int64(n))
	}
	counter("missive_handshake_failures_total", "Handshakes that failed.", m.handshakeFailures.Load())
	counter("missive_envelopes_accepted_total", "Envelopes accepted (stored, first tick).", m.accepted.Load())
	counter("missive_envelopes_duplicate_total", "Envelopes resent after acceptance and not stored again.", m.duplicates.Load())
	counter("missive_deliveries_total", "First deliveries of queue entries.", m.deliveries.Load())
	counter("missive_redeliveries_total", "Deliveries of entries delivered before.", m.redeliveries.Load())
	counter("missive_acks_total", "Queue entries acknowledged by devices.", m.acked.Load())
	counter("missive_expired_total", "Queue entries deleted undelivered at their expiry.", m.expired.Load())
	counter("missive_bundles_total", "Prekey bundles handed out.", m.bundles.Load())
	fmt.Fprintf(w, "# HELP missive_requests_refused_total Requests answered with an error, by code.\n# TYPE missive_requests_refused_total counter\n")
	m.refused.mu.Lock()
	codes := make([]errcode.Code, 0, len(m.refused.n))
	for c := range m.refused.n {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "missive_requests_refused_total{code=%q} %d\n", c.String(), m.refused.n[c])
	}
	m.refused.mu.Unlock()
	writeHistogram(w, "missive_delivery_seconds", "Time from acceptance to acknowledgement.", &m.latency)
	counter("missive_group_states_total", "Group states accepted (set-group).", m.groupStates.Load())
	counter("missive_group_envelopes_accepted_total", "Group messages accepted (send-group, stored, first tick).", m.groupAccepted.Load())
	writeHistogram(w, "missive_group_fanout_devices", "Group devices a group message was queued for.", &m.fanout)
	counter("missive_blob_bytes_received_total", "Blob bytes stored by put-blob.", m.blobBytesIn.Load())
	counter("missive_blob_bytes_served_total", "Blob bytes served by get-blob.", m.blobBytesOut.Load())
	counter("missive_blobs_completed_total", "Blobs whose upload completed with the digest announced.", m.blobsCompleted.Load())
	counter("missive_blobs_expired_total", "Blobs deleted by the expiry sweep, complete or not.", m.blobsExpired.Load())
}

// writeHistogram writes h in the Prometheus text format.
func writeHistogram(w io.Writer, name, help string, h *histogram) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for i, b := range h.bounds {
		var n uint64
		if h.counts != nil {
			n = h.counts[i]
		}
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, n)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.total, name, h.sum, name, h.total)
}
