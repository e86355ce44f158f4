package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
	"github.com/stretchr/testify/require"
)

// recorder is a Dispatcher that keeps every batch with who sent it and when.
type recorder struct {
	mu      sync.Mutex
	batches []sent
	fail    func(e couponq.Entry) bool
}

type sent struct {
	by      string
	at      time.Time
	numbers []int64
}

func (r *recorder) as(name string) couponq.Dispatcher {
	return couponq.DispatcherFunc(func(ctx context.Context, b []couponq.Entry) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		s := sent{by: name, at: time.Now()}
		failed := map[int]error{}
		for i, e := range b {
			s.numbers = append(s.numbers, e.Number)
			if r.fail != nil && r.fail(e) {
				failed[i] = errors.New("injected")
			}
		}
		r.batches = append(r.batches, s)
		if len(failed) > 0 {
			return &couponq.PartialError{Failed: failed}
		}
		return nil
	})
}

func (r *recorder) snapshot() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.batches...)
}

func (r *recorder) total() int {
	n := 0
	for _, s := range r.snapshot() {
		n += len(s.numbers)
	}
	return n
}

func fill(t *testing.T, q *memline.Queue, campaign string, n int) {
	for i := range n {
		_, err := q.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: fmt.Sprintf("u%d", i), At: time.Now()})
		require.NoError(t, err)
	}
}

type lossyAcks struct{ *memline.Queue }

func (lossyAcks) Ack(context.Context, string, []couponq.Entry, time.Duration) error {
	return errors.New("ack lost")
}

// crashy hides Release, so a stopped throttle leaves its leader lease behind
// as a crashed process would.
type crashy struct{ lock.Locker }

func (c crashy) Obtain(ctx context.Context, key string, ttl time.Duration) (lock.Lock, error) {
	lk, err := c.Locker.Obtain(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return noRelease{lk}, nil
}

type noRelease struct{ lock.Lock }

func (noRelease) Release(context.Context) error { return nil }

type flakyLock struct {
	lock.Lock
	down *atomic.Bool
}

func (f flakyLock) Refresh(ctx context.Context, ttl time.Duration) error {
	if f.down.Load() {
		return errors.New("connection reset")
	}
	return f.Lock.Refresh(ctx, ttl)
}

func (f flakyLock) Release(ctx context.Context) error {
	if f.down.Load() {
		return errors.New("connection reset")
	}
	return f.Lock.Release(ctx)
}

type flakyLocker struct {
	lock.Locker
	down *atomic.Bool
}

func (f flakyLocker) Obtain(ctx context.Context, key string, ttl time.Duration) (lock.Lock, error) {
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	lk, err := f.Locker.Obtain(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return flakyLock{lk, f.down}, nil
}
