package main

import (
	"strings"
	"testing"
)

// TestCostFigures checks the server-cost figures over runs: a run with no
// items, or whose first sample lacks the system calls, adds nothing to the
// system-call figures.
func TestCostFigures(t *testing.T) {
	u0 := procUsage{cpu: 1, reads: 100, writes: 50, calls: true}
	u1 := procUsage{cpu: 1.01, reads: 300, writes: 150, calls: true}
	runs := []cost{
		perItem(u0, u1, 100),                                // 100 µs, 2 reads, 1 write
		perItem(u0, u1, 0),                                  // no items
		perItem(procUsage{cpu: 1}, u1, 100),                 // no calls at the start
		perItem(u0, procUsage{cpu: 1.01}, 100),              // no calls at the end
		perItem(u0, procUsage{cpu: 1.02, calls: true}, 100), // counters went back
	}
	figs := map[string]float64{}
	for _, f := range costFigures("m", "ms", runs) {
		figs[f.Name] = f.Value
	}
	for name, want := range map[string]float64{
		"server read system calls per m":  2,
		"server write system calls per m": 1,
	} {
		if got, ok := figs[name]; !ok || got != want {
			t.Errorf("%s: got %v (present %t), want %v", name, got, ok, want)
		}
	}
	if got := runs[1]; got != noCost {
		t.Errorf("a run with no items: got %+v, want %+v", got, noCost)
	}
}

// TestSearchBound runs the search for the highest rate under the latency
// bound against made-up latency curves.
func TestSearchBound(t *testing.T) {
	linear := func(rate float64) (float64, float64) { return rate, rate / 100 } // 20 ms at 2,000 msg/s
	tests := []struct {
		name          string
		from, p99     float64
		measure       func(float64) (float64, float64)
		want, wantP99 float64
		wantSteps     int
	}{
		{"the latency phase met it", 1000, 10, linear, 1000, 10, 1},
		{"bisected", 8000, 80, linear, 1875, 18.75, 1 + boundSteps},
		{"never met", 8000, 80, func(rate float64) (float64, float64) { return rate, 50 }, 0, 0, 1 + boundSteps},
		{"rate not reached", 8000, 80, func(rate float64) (float64, float64) { return min(rate, 900), 1 }, 875, 1, 1 + boundSteps},
		// Met below 1,300 msg/s with 97 % delivered: a bisection step
		// fails (4,000, 2,000 fail; 1,000 meets; 1,500 fails; 1,250
		// meets; 1,375 fails), and the rate reported is the one tried.
		{"bisection step fails", 8000, 50, func(rate float64) (float64, float64) {
			if rate < 1300 {
				return rate * 0.97, 10
			}
			return rate * 0.97, 50
		}, 1250, 10, 1 + boundSteps},
		// The latency phases' p99 was under the bound, but they delivered
		// only 90 % of their rate: a search.
		{"latency phases short of their rate", 1000, 10, func(rate float64) (float64, float64) { return min(rate, 900), 10 }, 937.5, 10, 1 + boundSteps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := tt.measure(tt.from)
			w := searchBound(tt.from, d, tt.p99, tt.measure)
			if w.rate != tt.want || w.p99 != tt.wantP99 {
				t.Errorf("got %v msg/s at p99 %v ms, want %v at %v", w.rate, w.p99, tt.want, tt.wantP99)
			}
			if len(w.steps) != tt.wantSteps {
				t.Errorf("got %d steps (%v), want %d", len(w.steps), w.steps, tt.wantSteps)
			}
			// A rate met without a search is only a lower bound, and
			// the note says so.
			if lower := strings.Contains(w.note(), "lower bound"); lower != (tt.wantSteps == 1) {
				t.Errorf("note %q: says lower bound %v, want %v", w.note(), lower, tt.wantSteps == 1)
			}
		})
	}
}
