package ratelimit

import "time"

// SetNow replaces the limiter's clock.
func (m *Memory) SetNow(now func() time.Time) { m.now = now }
