package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

var (
	// ErrNotObtained is returned by Locker.Obtain when another holder has the
	// lock, and by Acquire when it gave up waiting.
	ErrNotObtained = errors.New("lock: not obtained")
	// ErrLockLost is returned by Lock.Refresh and Lock.Release when the lock
	// expired or another holder took it.
	ErrLockLost = errors.New("lock: lost")
)

// Locker hands out lease locks with a TTL. In couponq a lock cuts
// contention; it is never what keeps stock and duplicates right (the Store is).
type Locker interface {
	// Obtain tries once to take key for ttl. It returns an error wrapping
	// ErrNotObtained when another holder has it. Use Acquire to wait.
	Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error)
}

// Lock is a held lease lock.
type Lock interface {
	// Refresh extends the lock to ttl from now; ErrLockLost if it expired or
	// another holder took it.
	Refresh(ctx context.Context, ttl time.Duration) error
	// Release gives the lock up; ErrLockLost if it was no longer held.
	Release(ctx context.Context) error
}

// Backoff bounds Acquire's waiting between attempts. The zero value waits
// 5ms after the first failed attempt, doubling up to 200ms, each wait
// jittered to between half and all of it.
type Backoff struct {
	Min, Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 5 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = max(200*time.Millisecond, b.Min)
	}
	return b
}

// Acquire obtains key for ttl, retrying with backoff while another holder
// has it, for at most wait (wait <= 0 means a single attempt) and never past
// ctx. It gives up with an error wrapping ErrNotObtained; a Locker failure
// other than contention is returned at once.
func Acquire(ctx context.Context, l Locker, key string, ttl, wait time.Duration, b Backoff) (Lock, error) {
	b = b.withDefaults()
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	delay := b.Min
	for attempt := 1; ; attempt++ {
		lk, err := l.Obtain(ctx, key, ttl)
		if err == nil {
			return lk, nil
		}
		if !errors.Is(err, ErrNotObtained) {
			return nil, err
		}
		sleep := delay/2 + rand.N(delay/2+1)
		if wait <= 0 || time.Now().Add(sleep).After(deadline) {
			return nil, fmt.Errorf("%w: %s after %d attempts", ErrNotObtained, key, attempt)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %s: %w", ErrNotObtained, key, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, b.Max)
	}
}
