package adminsession

import (
	"sync"
	"time"
)

// defaultMaxClients bounds the login limiter's table of client addresses.
const defaultMaxClients = 4096

// limiter is a token bucket per client address: burst attempts at once,
// then one per every. Its table holds at most max clients: when it is full,
// the clients whose buckets have refilled go, and if none has, newcomers
// share one overflow bucket, so a flood of addresses cannot grow the table
// nor get more attempts than one client.
type limiter struct {
	burst   float64
	every   time.Duration
	max     int
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// overflow is the key the clients share when the table is full; no address
// prints as it.
const overflow = "(overflow)"

func newLimiter(burst int, every time.Duration, max int) *limiter {
	return &limiter{burst: float64(burst), every: every, max: max, buckets: make(map[string]*bucket)}
}

// refill brings b up to now.
func (l *limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(l.every))
		b.last = now
	}
}

// allow takes one attempt from client's bucket, or reports how long until
// the next.
func (l *limiter) allow(client string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.max {
			for k, x := range l.buckets {
				if l.refill(x, now); x.tokens >= l.burst {
					delete(l.buckets, k)
				}
			}
		}
		if len(l.buckets) >= l.max {
			client = overflow
		}
		if b, ok = l.buckets[client]; !ok {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[client] = b
		}
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.every))
	}
	b.tokens--
	return true, 0
}
