package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fileClock is the clock of -clock FILE: the system time plus an offset
// read from FILE, which tests change to move the server's time forward
// (time-to-live expiry) without waiting. FILE holds a duration such as
// "31d", "2h30m" or "0".
type fileClock struct {
	path    string
	mu      sync.Mutex
	offset  time.Duration
	mod     time.Time
	checked time.Time
}

func (c *fileClock) Now() time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.checked) >= 50*time.Millisecond {
		c.checked = now
		if fi, err := os.Stat(c.path); err == nil && !fi.ModTime().Equal(c.mod) {
			if b, err := os.ReadFile(c.path); err == nil {
				if d, err := ParseDuration(strings.TrimSpace(string(b))); err == nil {
					c.offset, c.mod = d, fi.ModTime()
				}
			}
		}
	}
	return now.Add(c.offset)
}

// ParseDuration parses a Go duration, also accepting a number of days with
// the unit "d" ("31d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}
