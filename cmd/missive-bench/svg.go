package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// writeSVG draws the latency curves of the report as an SVG file: latency
// (ms, log scale) against percentile, with the percentile axis stretched
// as 1/(1-p) so that the tail gets the room, in HdrHistogram's manner.
func (r *report) writeSVG(path string) error {
	var curves []*latencySummary
	for _, s := range r.Scenarios {
		for _, l := range s.Latencies {
			if l.Count > 0 && len(l.Percentiles) > 1 {
				curves = append(curves, l)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	drawSVG(f, curves, r.Started)
	return f.Close()
}

const (
	svgW, svgH                = 900, 520
	svgLeft, svgRight         = 70, 290
	svgTop, svgBottom         = 40, 60
	svgPlotW                  = svgW - svgLeft - svgRight
	svgPlotH                  = svgH - svgTop - svgBottom
	svgMaxNines       float64 = 5 // the axis ends at 99.999 %
)

var svgColors = []string{"#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6b4e9b", "#00798c", "#8c564b", "#444444"}

func drawSVG(w io.Writer, curves []*latencySummary, title string) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, p := range c.Percentiles {
			v := max(p[1], 0.001)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if len(curves) == 0 {
		lo, hi = 0.1, 10
	}
	ymin := math.Pow(10, math.Floor(math.Log10(lo)))
	ymax := math.Pow(10, math.Ceil(math.Log10(hi)))
	if ymax <= ymin {
		ymax = ymin * 10
	}
	x := func(pct float64) float64 {
		nines := -math.Log10(max(1-pct/100, math.Pow(10, -svgMaxNines)))
		return svgLeft + nines/svgMaxNines*svgPlotW
	}
	y := func(v float64) float64 {
		v = max(v, ymin)
		return svgTop + svgPlotH - (math.Log10(v)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin))*svgPlotH
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(w, `<text x="%d" y="22" font-size="15">missive-bench latency by percentile (%s)</text>`+"\n", svgLeft, html.EscapeString(title))
	// Grid and axes.
	for k := 0.0; k <= svgMaxNines; k++ {
		pct := 100 * (1 - math.Pow(10, -k))
		px := x(pct)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px, svgTop, px, svgTop+svgPlotH)
		label := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", pct), "0"), ".") + "%"
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, svgTop+svgPlotH+18, label)
	}
	for v := ymin; v <= ymax*1.0001; v *= 10 {
		py := y(v)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", svgLeft, py, svgLeft+svgPlotW, py)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-6, py+4, strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), "."))
	}
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", svgLeft, svgTop, svgPlotW, svgPlotH)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", svgLeft+svgPlotW/2, svgH-16)
	fmt.Fprintf(w, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`+"\n", svgTop+svgPlotH/2)
	// Curves and legend.
	for i, c := range curves {
		color := svgColors[i%len(svgColors)]
		var pts []string
		for _, p := range c.Percentiles {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		ly := svgTop + 10 + i*34
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", svgW-svgRight+14, ly, svgW-svgRight+34, ly, color)
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", svgW-svgRight+40, ly+4, html.EscapeString(c.Label))
		detail := fmt.Sprintf("p50 %.2f p99 %.2f p99.9 %.2f ms", c.P50, c.P99, c.P999)
		if c.Rate > 0 {
			detail = fmt.Sprintf("%s/s: ", number(c.Rate)) + detail
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="10" fill="#555">%s</text>`+"\n", svgW-svgRight+40, ly+17, html.EscapeString(detail))
	}
	fmt.Fprintln(w, "</svg>")
}
