package main

import "testing"

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
