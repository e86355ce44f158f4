// Package locktest is the conformance suite every lock.Locker must pass:
//
//	func TestMyLocker(t *testing.T) {
//		locktest.Run(t, func(t *testing.T) lock.Locker { return newMyLocker(t) })
//	}
//
// Each test uses fresh keys, so a factory may hand out one shared backend.
package locktest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/lock"
)

// Run runs the suite; newLocker is called once per subtest.
func Run(t *testing.T, newLocker func(t *testing.T) lock.Locker) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l lock.Locker, key string)
	}{
		{"ObtainIsExclusive", testExclusive},
		{"ReleaseFreesTheKey", testRelease},
		{"ExpiryFreesTheKey", testExpiry},
		{"RefreshExtends", testRefresh},
		{"LostLockCannotRefreshOrRelease", testLost},
		{"KeysAreIndependent", testIndependent},
		{"MutualExclusionUnderContention", testContention},
		{"AcquireWaitsForRelease", testAcquire},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newLocker(t), keyName())
		})
	}
}

var seq atomic.Int64

func keyName() string { return fmt.Sprintf("lt-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)) }

const ttl = 400 * time.Millisecond

func obtain(t *testing.T, l lock.Locker, key string, d time.Duration) lock.Lock {
	t.Helper()
	lk, err := l.Obtain(context.Background(), key, d)
	require.NoError(t, err)
	require.NotNil(t, lk)
	return lk
}

func testExclusive(t *testing.T, l lock.Locker, key string) {
	obtain(t, l, key, time.Minute)
	_, err := l.Obtain(context.Background(), key, time.Minute)
	assert.ErrorIs(t, err, lock.ErrNotObtained)
}

func testRelease(t *testing.T, l lock.Locker, key string) {
	lk := obtain(t, l, key, time.Minute)
	require.NoError(t, lk.Release(context.Background()))
	obtain(t, l, key, time.Minute)
	assert.ErrorIs(t, lk.Release(context.Background()), lock.ErrLockLost, "releasing twice, or another's lock, fails")
}

func testExpiry(t *testing.T, l lock.Locker, key string) {
	obtain(t, l, key, ttl)
	time.Sleep(ttl + 200*time.Millisecond)
	obtain(t, l, key, time.Minute)
}

func testRefresh(t *testing.T, l lock.Locker, key string) {
	lk := obtain(t, l, key, ttl)
	time.Sleep(ttl / 2)
	require.NoError(t, lk.Refresh(context.Background(), 2*time.Second))
	time.Sleep(ttl)
	_, err := l.Obtain(context.Background(), key, time.Minute)
	assert.ErrorIs(t, err, lock.ErrNotObtained, "the refreshed lock outlives its first TTL")
	require.NoError(t, lk.Release(context.Background()))
}

func testLost(t *testing.T, l lock.Locker, key string) {
	lk := obtain(t, l, key, ttl)
	time.Sleep(ttl + 200*time.Millisecond)
	other := obtain(t, l, key, time.Minute)
	assert.ErrorIs(t, lk.Refresh(context.Background(), time.Minute), lock.ErrLockLost)
	assert.ErrorIs(t, lk.Release(context.Background()), lock.ErrLockLost)
	_, err := l.Obtain(context.Background(), key, time.Minute)
	assert.ErrorIs(t, err, lock.ErrNotObtained, "the stale holder's calls must not free the new holder's lock")
	require.NoError(t, other.Release(context.Background()))
}

func testIndependent(t *testing.T, l lock.Locker, key string) {
	obtain(t, l, key+"-a", time.Minute)
	obtain(t, l, key+"-b", time.Minute)
}

func testContention(t *testing.T, l lock.Locker, key string) {
	var inside, maxInside, done atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				lk, err := lock.Acquire(context.Background(), l, key, 5*time.Second, 10*time.Second, lock.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond})
				if !assert.NoError(t, err) {
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				done.Add(1)
				assert.NoError(t, lk.Release(context.Background()))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), maxInside.Load(), "two holders at once")
	assert.Equal(t, int64(160), done.Load())
}

func testAcquire(t *testing.T, l lock.Locker, key string) {
	lk := obtain(t, l, key, time.Minute)
	_, err := lock.Acquire(context.Background(), l, key, time.Minute, 0, lock.Backoff{})
	assert.ErrorIs(t, err, lock.ErrNotObtained, "wait 0 tries once")
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = lk.Release(context.Background())
	}()
	start := time.Now()
	got, err := lock.Acquire(context.Background(), l, key, time.Minute, 5*time.Second, lock.Backoff{})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	_, err = lock.Acquire(context.Background(), l, key, time.Minute, 150*time.Millisecond, lock.Backoff{})
	assert.ErrorIs(t, err, lock.ErrNotObtained, "Acquire gives up after wait")
	require.NoError(t, got.Release(context.Background()))
}

func testCancelled(t *testing.T, l lock.Locker, key string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Obtain(ctx, key, time.Minute)
	assert.Error(t, err)
	obtain(t, l, key, time.Minute)
}
