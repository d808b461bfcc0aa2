package server

import (
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// TestLimitsKept checks that a device's rate limits (SRV-016) outlive its
// connections for limitsKeep, are the same limits when it connects again
// within that time, and are forgotten after it, looking only at the
// devices that went idle (a device that connected again meanwhile keeps
// them, whatever its earlier idle time said).
func TestLimitsKept(t *testing.T) {
	s := &Server{limits: map[store.Address]*limits{}}
	a := store.Address{Account: "alice", Device: 1}
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	first := s.limitsOf(a)
	s.limitsIdle(a, t0)
	s.dropLimits(t0.Add(limitsKeep - time.Second))
	if got := s.limitsOf(a); got != first {
		t.Fatalf("connecting again within limitsKeep: got new limits, want the device's")
	}
	t1 := t0.Add(limitsKeep - time.Second)
	s.limitsIdle(a, t1)
	s.dropLimits(t0.Add(limitsKeep + time.Second)) // the first idle time is past; the device went idle again since
	if len(s.limits) != 1 {
		t.Fatalf("after the first idle time passed: got %d limits, want the device's kept", len(s.limits))
	}
	s.dropLimits(t1.Add(limitsKeep + time.Second))
	if len(s.limits) != 0 || len(s.idle) != 0 {
		t.Fatalf("limitsKeep after the last connection: got %d limits and %d idle marks, want none", len(s.limits), len(s.idle))
	}
	if got := s.limitsOf(a); got == first {
		t.Error("connecting after limitsKeep: got the old limits, want new ones")
	}
}
