package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is what a run of the tool found; -json writes it as it is.
type report struct {
	Tool      string            `json:"tool"`
	Version   string            `json:"version"`
	Go        string            `json:"go"`
	OS        string            `json:"os"`
	CPUs      int               `json:"cpus"`
	Started   string            `json:"started"`
	Command   string            `json:"command"`
	Server    string            `json:"server"` // in-process, external ADDR
	FileLimit uint64            `json:"file_limit"`
	Params    map[string]string `json:"params"`
	Scenarios []*scenarioReport `json:"scenarios"`
}

// scenarioReport is one scenario's result.
type scenarioReport struct {
	Name      string            `json:"name"`
	Status    string            `json:"status"` // ok, skipped, failed
	Reason    string            `json:"reason,omitempty"`
	Runs      int               `json:"runs"`
	Figures   []*figure         `json:"figures"`
	Latencies []*latencySummary `json:"latencies,omitempty"`
	Counts    map[string]counts `json:"counts,omitempty"` // per phase, all runs together
	Notes     []string          `json:"notes,omitempty"`
}

// figure is one measured figure: the median of its runs, with the
// baseline measured in the same runs and the median of the per-run ratios.
type figure struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Value    float64   `json:"value"`
	Runs     []float64 `json:"runs"`
	Baseline *baseline `json:"baseline,omitempty"`
	Ratio    float64   `json:"ratio,omitempty"`
	Target   string    `json:"target,omitempty"`
	Met      *bool     `json:"met,omitempty"`
}

// baseline is what a figure is measured against.
type baseline struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	Runs  []float64 `json:"runs"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(digits-1-int(math.Floor(math.Log10(math.Abs(v))))))
	return math.Round(v*p) / p
}

// newFigure makes a figure of runs, and with a baseline of the same runs
// its ratio (value over baseline, run by run, then the median).
func newFigure(name, unit string, runs []float64, base string, baseRuns []float64) *figure {
	f := &figure{Name: name, Unit: unit, Value: round(median(runs), 6)}
	for _, v := range runs {
		f.Runs = append(f.Runs, round(v, 6))
	}
	if base != "" {
		f.Baseline = &baseline{Name: base, Value: round(median(baseRuns), 6)}
		var ratios []float64
		for i, v := range baseRuns {
			f.Baseline.Runs = append(f.Baseline.Runs, round(v, 6))
			if i < len(runs) && v > 0 {
				ratios = append(ratios, runs[i]/v)
			}
		}
		f.Ratio = round(median(ratios), 3)
	}
	return f
}

// atLeast and atMost set a figure's target.
func (f *figure) atLeast(v float64, text string) *figure {
	f.Target, f.Met = text, ptr(f.Value >= v)
	return f
}

func (f *figure) atMost(v float64, text string) *figure {
	f.Target, f.Met = text, ptr(f.Value <= v)
	return f
}

func ptr[T any](v T) *T { return &v }

// number formats a figure's value for the table.
func number(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// writeTable writes the report as a table.
func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\tbaseline\tratio\ttarget\t")
	for _, s := range r.Scenarios {
		if s.Status != "ok" {
			fmt.Fprintf(tw, "%s\t%s: %s\t\t\t\t\t\n", s.Name, s.Status, s.Reason)
			continue
		}
		for _, f := range s.Figures {
			base, ratio := "", ""
			if f.Baseline != nil {
				base = fmt.Sprintf("%s %s", number(f.Baseline.Value), f.Baseline.Name)
				ratio = fmt.Sprintf("%.3g", f.Ratio)
			}
			target := f.Target
			if f.Met != nil {
				target += map[bool]string{true: " (met)", false: " (NOT met)"}[*f.Met]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t\n", s.Name, f.Name, number(f.Value), f.Unit, base, ratio, target)
		}
		for _, l := range s.Latencies {
			at := ""
			if l.Rate > 0 {
				at = fmt.Sprintf(" at %s/s", number(l.Rate))
			}
			fmt.Fprintf(tw, "%s\t%s%s\tp50 %.2f p99 %.2f p99.9 %.2f max %.2f ms\t(%d samples)\t\t\t\n",
				s.Name, l.Label, at, l.P50, l.P99, l.P999, l.Max, l.Count)
		}
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "%s: %s\n", s.Name, n)
		}
	}
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// cost is the server's usage per item over a measured window: CPU in µs
// and read and write system calls; a run without it (the server in this
// process) has cpu -1.
type cost struct {
	cpu, reads, writes float64
}

// perItem is the usage between u0 and u1 over n items; the system calls
// only when both samples have them.
func perItem(u0, u1 procUsage, n uint64) cost {
	if n == 0 {
		return noCost
	}
	c := cost{cpu: (u1.cpu - u0.cpu) / float64(n) * 1e6, reads: -1, writes: -1}
	if u0.calls && u1.calls && u1.reads >= u0.reads && u1.writes >= u0.writes {
		c.reads = float64(u1.reads-u0.reads) / float64(n)
		c.writes = float64(u1.writes-u0.writes) / float64(n)
	}
	return c
}

// noCost is a run whose server has no process of its own.
var noCost = cost{cpu: -1, reads: -1, writes: -1}

// costFigures are the figures of the server's CPU per item, with the items
// per second one core of it would then carry, and its read and write
// system calls per item, when runs have them (the server in a process of
// its own: -child or -server with -server-pid). The CPU time is counted in
// clock ticks of 10 ms, so a short run may measure 0.
func costFigures(what, plural string, runs []cost) []*figure {
	var us, perCore, reads, writes []float64
	for _, v := range runs {
		if v.cpu >= 0 {
			us = append(us, v.cpu)
		}
		if v.cpu > 0 {
			perCore = append(perCore, 1e6/v.cpu)
		}
		if v.reads >= 0 {
			reads = append(reads, v.reads)
			writes = append(writes, v.writes)
		}
	}
	if len(us) == 0 {
		return nil
	}
	out := []*figure{newFigure("server CPU per "+what, "µs", us, "", nil)}
	if len(perCore) > 0 {
		out = append(out, newFigure("the same as "+plural+" per second per server core", "/s", perCore, "", nil))
	}
	if len(reads) > 0 {
		out = append(out,
			newFigure("server read system calls per "+what, "", reads, "", nil),
			newFigure("server write system calls per "+what, "", writes, "", nil))
	}
	return out
}
