package lock

import (
	"context"
	"fmt"
	"time"
)

// Keep runs fn while keeping lk alive: it refreshes lk to ttl every ttl/3
// and, if a refresh fails, cancels the context fn runs with (its cause wraps
// ErrLockLost). It returns fn's error, or, if fn succeeded but the lock was
// lost while it ran, an error wrapping ErrLockLost. Keep does not release lk.
func Keep(ctx context.Context, lk Lock, ttl time.Duration, fn func(ctx context.Context) error) error {
	if ttl <= 0 {
		return fmt.Errorf("lock: ttl must be > 0, got %s", ttl)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	lost := make(chan error, 1)
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := lk.Refresh(runCtx, ttl); err != nil {
					if runCtx.Err() != nil {
						return // fn finished or the caller gave up; not a loss
					}
					err = fmt.Errorf("%w: refresh failed: %w", ErrLockLost, err)
					lost <- err
					cancel(err)
					return
				}
			}
		}
	}()
	err := fn(runCtx)
	close(done)
	cancel(nil)
	select {
	case lerr := <-lost:
		if err == nil {
			return lerr
		}
		return fmt.Errorf("%w (%w)", err, lerr)
	default:
		return err
	}
}
