package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/lock"
)

func TestKeepRefreshesWhileWorkRuns(t *testing.T) {
	m := lock.NewMemory()
	lk, err := m.Obtain(context.Background(), "k", 90*time.Millisecond)
	require.NoError(t, err)
	err = lock.Keep(context.Background(), lk, 90*time.Millisecond, func(ctx context.Context) error {
		time.Sleep(300 * time.Millisecond) // over three TTLs
		_, err := m.Obtain(context.Background(), "k", time.Second)
		assert.ErrorIs(t, err, lock.ErrNotObtained, "the kept lock is still held")
		return ctx.Err()
	})
	require.NoError(t, err)
	require.NoError(t, lk.Release(context.Background()))
}

// stolen is a Lock whose refresh always fails, as when another holder took it.
type stolen struct{}

func (stolen) Refresh(context.Context, time.Duration) error { return lock.ErrLockLost }
func (stolen) Release(context.Context) error                { return lock.ErrLockLost }

func TestKeepCancelsWorkWhenLockIsLost(t *testing.T) {
	start := time.Now()
	err := lock.Keep(context.Background(), stolen{}, 60*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		assert.ErrorIs(t, context.Cause(ctx), lock.ErrLockLost)
		return ctx.Err()
	})
	assert.ErrorIs(t, err, lock.ErrLockLost)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), time.Second)

	err = lock.Keep(context.Background(), stolen{}, 60*time.Millisecond, func(ctx context.Context) error {
		time.Sleep(100 * time.Millisecond) // ignores ctx, finishes "successfully"
		return nil
	})
	assert.ErrorIs(t, err, lock.ErrLockLost, "work that outlived its lock is reported")
}

func TestKeepPassesWorkError(t *testing.T) {
	boom := errors.New("boom")
	err := lock.Keep(context.Background(), stolen{}, time.Minute, func(context.Context) error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, lock.ErrLockLost)
}
