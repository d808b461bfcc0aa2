package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress is the one updating line on stderr that says what the tool is
// doing. It draws only on a terminal, and not with -q.
type progress struct {
	w    io.Writer
	on   bool
	mu   sync.Mutex
	what string
	line func() string // the live part, or nil
	n    atomic.Int64  // a count for the live part
	stop chan struct{}
	done chan struct{}
	last int // length of the last line drawn
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok && !quiet {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.clear()
			return
		case <-t.C:
			p.draw()
		}
	}
}

// phase says what the tool does now; line, when not nil, gives live
// figures.
func (p *progress) phase(line func() string, format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.what, p.line = fmt.Sprintf(format, args...), line
	p.n.Store(0)
	p.mu.Unlock()
	p.draw()
}

// add adds to the count that a phase without a live line shows.
func (p *progress) add(n int64) {
	if p != nil {
		p.n.Add(n)
	}
}

func (p *progress) draw() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.what
	if p.line != nil {
		s += ": " + p.line()
	} else if n := p.n.Load(); n > 0 {
		s += fmt.Sprintf(": %d", n)
	}
	if len(s) > 119 {
		s = s[:119]
	}
	pad := max(p.last-len(s), 0)
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	p.last = len(s)
}

func (p *progress) clear() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
	p.last = 0
}

// close erases the line.
func (p *progress) close() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
}
