package ratelimit

import (
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Rate is a token bucket: Events per Per on average, and up to Burst at once
// after a quiet spell. Both limiters take it, so a host can move from one
// to the other without restating its limits.
type Rate struct {
	// Events are allowed per Per, on average. Must be positive.
	Events int
	// Per is the period Events are counted over. Must be positive.
	Per time.Duration
	// Burst is how many requests may come at once: the bucket's size. Zero
	// means Events; it must not be negative.
	Burst int
}

// PerSecond is n requests a second, n at once.
func PerSecond(n int) Rate { return Rate{Events: n, Per: time.Second} }

// PerMinute is n requests a minute, n at once.
func PerMinute(n int) Rate { return Rate{Events: n, Per: time.Minute} }

// String describes r: "10 per 1s (burst 20)".
func (r Rate) String() string {
	return fmt.Sprintf("%d per %s (burst %d)", r.Events, r.Per, r.burst())
}

func (r Rate) burst() int {
	if r.Burst == 0 {
		return r.Events
	}
	return r.Burst
}

func (r Rate) validate() error {
	if r.Events <= 0 || r.Per <= 0 || r.Burst < 0 {
		return fmt.Errorf("%w: ratelimit: rate %d per %s, burst %d: Events and Per must be positive and Burst not negative",
			couponq.ErrInvalidConfig, r.Events, r.Per, r.Burst)
	}
	return nil
}

// perSecond is the refill rate in tokens a second.
func (r Rate) perSecond() float64 { return float64(r.Events) / r.Per.Seconds() }

// fill is how long an empty bucket takes to fill up again.
func (r Rate) fill() time.Duration {
	return time.Duration(float64(r.burst()) / r.perSecond() * float64(time.Second))
}
