package scheduler

import (
	"math"
	"testing"
	"time"
)

// TestInFlightLimitSaturates: MaxInFlightBatches × BatchSize saturates
// instead of wrapping (issue 20: 2^61 × 4 wrapped to 0 and held every tick
// at 0, so the line never moved); what a tick may move is at least 1
// whenever the bound is not reached.
func TestInFlightLimitSaturates(t *testing.T) {
	for _, tc := range []struct {
		batch, batches int
		inFlight       int64
		want           int
	}{
		{10, 2, 0, 10},
		{10, 2, 15, 5},
		{10, 2, 20, 0},
		{10, 2, 25, 0},
		{10, 2, -3, 10}, // a count below 0 counts as 0
		{1 << 61, 4, 0, 1 << 61},
		{4, 1 << 62, 0, 4},
		{1 << 16, 1 << 48, 0, 1 << 16},      // exactly 2^64: wrapped to 0 before
		{5000, math.MaxInt / 4999, 0, 5000}, // just past MaxInt64: wrapped negative before
		{100_000, math.MaxInt, math.MaxInt64 - 1, 1},
		{math.MaxInt, math.MaxInt, math.MaxInt64, 0},
		{math.MaxInt, 1, 0, math.MaxInt},
		{0, 5, 0, 0},
		{10, 0, 0, 0},
	} {
		if got := inFlightLimit(tc.batch, tc.batches, tc.inFlight); got != tc.want {
			t.Errorf("inFlightLimit(batch %d, batches %d, in flight %d) = %d, want %d", tc.batch, tc.batches, tc.inFlight, got, tc.want)
		}
	}
}

// TestUndecidedSaturates: Stock − issued − in flight never wraps around.
func TestUndecidedSaturates(t *testing.T) {
	for _, tc := range []struct {
		stock, issued, inFlight, want int64
	}{
		{10, 3, 2, 5},
		{10, 10, 0, 0},
		{10, 12, 3, -5},
		{10, -4, -1, 10}, // counts below 0 count as 0
		{1e15, 0, 0, 1e15},
		{math.MaxInt64, 0, 0, math.MaxInt64},
		{1, math.MaxInt64, math.MaxInt64, math.MinInt64},
		{math.MinInt64, 1, 0, math.MinInt64},
		{math.MinInt64 + 5, 3, 3, math.MinInt64},
	} {
		if got := undecided(tc.stock, tc.issued, tc.inFlight); got != tc.want {
			t.Errorf("undecided(%d, %d, %d) = %d, want %d", tc.stock, tc.issued, tc.inFlight, got, tc.want)
		}
	}
	r := room{known: true, stock: 1, units: math.MinInt64 + 1}
	r.spend(5)
	if r.units != math.MinInt64 {
		t.Errorf("spend below the least int64: %d", r.units)
	}
}

// TestRestBackoffSaturates: Interval × 1, 2, 4, 8, 16, never negative.
func TestRestBackoffSaturates(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		fails    int
		want     time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 5, 16 * time.Second},
		{time.Second, 50, 16 * time.Second},
		{time.Second, 0, time.Second},
		{time.Hour, 9, 16 * time.Hour},
		{9223372036854 * time.Millisecond, 1, 9223372036854 * time.Millisecond},
		{9223372036854 * time.Millisecond, 2, math.MaxInt64},
		{math.MaxInt64 >> 4, 5, (math.MaxInt64 >> 4) << 4},
		{math.MaxInt64>>4 + 1, 5, math.MaxInt64},
	} {
		if got := restBackoff(tc.interval, tc.fails); got != tc.want {
			t.Errorf("restBackoff(%s, %d) = %s, want %s", tc.interval, tc.fails, got, tc.want)
		}
	}
}
