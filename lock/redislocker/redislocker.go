// Package redislocker is a lock.Locker on Redis, built on
// github.com/bsm/redislock. It works with a single node, Sentinel or a
// Cluster client (each lock is one key), and never closes the host's client.
//
// Obtain tries once; lock.Acquire adds bounded waiting with backoff, and
// lock.Hold keeps a lock refreshed while work runs, cancelling the work if a
// refresh fails. In couponq a lock cuts contention; the Store keeps stock
// and duplicates right.
package redislocker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/lock"
)

// Locker takes lease locks on Redis.
type Locker struct {
	client *redislock.Client
	prefix string
}

var _ lock.Locker = (*Locker)(nil)

// New returns a Locker on client. Lock keys are prefix + ":lock:" + key;
// an empty prefix means "couponq".
func New(client redis.UniversalClient, prefix string) (*Locker, error) {
	if client == nil {
		return nil, errors.New("redislocker: client is required")
	}
	if prefix == "" {
		prefix = "couponq"
	}
	return &Locker{client: redislock.New(client), prefix: prefix}, nil
}

// Obtain implements lock.Locker: one attempt, no retries.
func (l *Locker) Obtain(ctx context.Context, key string, ttl time.Duration) (lock.Lock, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("redislocker: ttl must be > 0, got %s", ttl)
	}
	lk, err := l.client.Obtain(ctx, l.prefix+":lock:"+key, ttl, &redislock.Options{RetryStrategy: redislock.NoRetry()})
	switch {
	case errors.Is(err, redislock.ErrNotObtained):
		return nil, fmt.Errorf("%w: %s", lock.ErrNotObtained, key)
	case err != nil:
		return nil, fmt.Errorf("redislocker: obtain %s: %w", key, err)
	}
	return &redisLock{lk: lk}, nil
}

type redisLock struct{ lk *redislock.Lock }

func (r *redisLock) Refresh(ctx context.Context, ttl time.Duration) error {
	err := r.lk.Refresh(ctx, ttl, nil)
	switch {
	case errors.Is(err, redislock.ErrNotObtained):
		return fmt.Errorf("%w: %s", lock.ErrLockLost, r.lk.Key())
	case err != nil:
		return fmt.Errorf("redislocker: refresh %s: %w", r.lk.Key(), err)
	}
	return nil
}

func (r *redisLock) Release(ctx context.Context) error {
	err := r.lk.Release(ctx)
	switch {
	case errors.Is(err, redislock.ErrLockNotHeld):
		return fmt.Errorf("%w: %s", lock.ErrLockLost, r.lk.Key())
	case err != nil:
		return fmt.Errorf("redislocker: release %s: %w", r.lk.Key(), err)
	}
	return nil
}
