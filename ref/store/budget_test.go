package store

import (
	"math"
	"testing"
	"time"
)

var budgetT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestBudgetTake: Burst tokens at once, then one each Every; the bucket
// fills up to Burst, no more; a refusal says when a token comes back.
func TestBudgetTake(t *testing.T) {
	b := Budget{Account: "a", Now: budgetT0, Every: time.Minute, Burst: 3}
	var full time.Time
	for i := range 3 {
		next, wait, ok := b.Take(full)
		if !ok || wait != 0 {
			t.Fatalf("token %d: got %v, %v, want one", i+1, wait, ok)
		}
		full = next
	}
	if _, wait, ok := b.Take(full); ok || wait != time.Minute {
		t.Errorf("a fourth at once: got %v, %v, want a wait of a minute", wait, ok)
	}
	b.Now = budgetT0.Add(time.Hour)
	for i := range 3 {
		next, _, ok := b.Take(full)
		if !ok {
			t.Fatalf("an hour later, token %d refused", i+1)
		}
		full = next
	}
	if _, wait, ok := b.Take(full); ok || wait != time.Minute {
		t.Errorf("an hour later, a fourth: got %v, %v, want a wait of a minute", wait, ok)
	}
}

// TestBudgetClockBack: a bucket spent while the clock was ahead (its full
// time beyond Now by more than the window, as a clock stepped back leaves
// it), a year or a millisecond, counts as spent now: refused, a token back
// Every later (with the full time the refusal returns, which its caller
// keeps), not when the clock has caught up again, nor a whole burst at
// once.
func TestBudgetClockBack(t *testing.T) {
	for _, back := range []time.Duration{365 * 24 * time.Hour, time.Millisecond} {
		ahead := Budget{Account: "a", Now: budgetT0.Add(back), Every: time.Minute, Burst: 3}
		var full time.Time
		for range 3 {
			full, _, _ = ahead.Take(full)
		}
		b := ahead
		b.Now = budgetT0
		full, wait, ok := b.Take(full)
		if ok || wait != b.Every {
			t.Errorf("the clock stepped back %v: got %v, a wait of %v; want refused, a wait of Every (%v)", back, ok, wait, b.Every)
		}
		b.Now = budgetT0.Add(b.Every)
		full, wait, ok = b.Take(full)
		if !ok {
			t.Errorf("the clock stepped back %v, Every later: refused, a token back in %v", back, wait)
		}
		if _, _, ok := b.Take(full); ok {
			t.Errorf("the clock stepped back %v, Every later: a second token, want one", back)
		}
	}
}

// TestBudgetLarge: a Burst and Every whose product is beyond a Duration
// do not wrap: a bucket never spent gives a token.
func TestBudgetLarge(t *testing.T) {
	for _, b := range []Budget{
		{Account: "a", Now: budgetT0, Every: 300 * time.Second, Burst: 1 << 40},
		{Account: "a", Now: budgetT0, Every: math.MaxInt64 / 2, Burst: 4},
	} {
		if _, wait, ok := b.Take(time.Time{}); !ok {
			t.Errorf("Burst %d, Every %v: the first token refused, a wait of %v", b.Burst, b.Every, wait)
		}
	}
}
