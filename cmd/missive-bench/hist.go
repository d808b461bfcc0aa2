package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram is a log-linear histogram of durations in nanoseconds, in the
// manner of HdrHistogram: values below 2^histSubBits are counted exactly,
// and above that each power of two is split into 2^(histSubBits-1) buckets,
// so a reported value is within 1/2^(histSubBits-1) (0.8 %) of the true
// one. Record is safe for concurrent use and does not allocate.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
}

const (
	histSubBits = 8
	histSub     = 1 << histSubBits     // values counted exactly
	histHalf    = histSub / 2          // buckets per power of two above that
	histShifts  = 63 - histSubBits + 1 // powers of two above histSub
	histBuckets = histSub + histShifts*histHalf
)

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - histSubBits
	return histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	sub := int64((i-histSub)%histHalf + histHalf)
	return (sub+1)<<shift - 1
}

// Record adds one duration.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Quantile returns the value at quantile q (0 to 1): the largest value of
// the bucket that holds it, at most the largest recorded value.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Max returns the largest recorded value.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean of the recorded values.
func (h *histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Merge adds the counts of o.
func (h *histogram) Merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// latencySummary is a histogram as the report shows it.
type latencySummary struct {
	Label string  `json:"label"`
	Count uint64  `json:"count"`
	Rate  float64 `json:"rate,omitempty"` // the offered load it was measured at, per second
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
	// Percentiles is the curve the plot draws: [percentile, ms] pairs.
	Percentiles [][2]float64 `json:"percentiles"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// summary summarizes h under label.
func (h *histogram) summary(label string, rate float64) *latencySummary {
	s := &latencySummary{
		Label: label, Count: h.Count(), Rate: math.Round(rate),
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
	// Percentiles at 1 - 10^(-k/4): evenly spaced on the plot's axis.
	for k := 0; k <= 20; k++ {
		p := 1 - math.Pow(10, -float64(k)/4)
		if k > 0 && uint64(1/(1-p)) > s.Count {
			break
		}
		s.Percentiles = append(s.Percentiles, [2]float64{math.Round(p*1e6) / 1e4, ms(h.Quantile(p))})
	}
	return s
}
