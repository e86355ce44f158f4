package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/ratelimit"
	"github.com/couponq/couponq/internal/redistest"
)

// newRedis returns a Redis limiter under a prefix unique to the test, whose
// keys are deleted when it ends.
func newRedis(t *testing.T, c redis.UniversalClient, r ratelimit.Rate) (*ratelimit.Redis, string) {
	t.Helper()
	prefix := fmt.Sprintf("cqtest-rl:%d", time.Now().UnixNano())
	t.Cleanup(func() { redistest.Purge(c, "rate:"+prefix) })
	l, err := ratelimit.NewRedis(c, r, prefix)
	require.NoError(t, err)
	return l, prefix
}

func TestRedisBurstThenLimited(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		l, prefix := newRedis(t, c, ratelimit.Rate{Events: 1, Per: time.Minute, Burst: 3})
		for i := range 3 {
			ok, retry := allow(t, l, "ann")
			assert.True(t, ok, "request %d is within the burst", i+1)
			assert.Zero(t, retry)
		}
		ok, retry := allow(t, l, "ann")
		assert.False(t, ok)
		assert.InDelta(t, float64(time.Minute), float64(retry), float64(2*time.Second), "one a minute")
		ok, _ = allow(t, l, "bob")
		assert.True(t, ok, "keys are limited apart")

		// The bucket is one key under the prefix, with an expiry.
		ttl, err := c.TTL(context.Background(), "rate:"+prefix+":ann").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, time.Duration(0))
		assert.LessOrEqual(t, ttl, 3*time.Minute)
	})
}

func TestRedisRefill(t *testing.T) {
	l, _ := newRedis(t, redistest.Client(t), ratelimit.Rate{Events: 10, Per: time.Second, Burst: 2})
	allow(t, l, "k")
	allow(t, l, "k")
	ok, retry := allow(t, l, "k")
	require.False(t, ok)
	assert.LessOrEqual(t, retry, 100*time.Millisecond)
	time.Sleep(retry + 20*time.Millisecond)
	ok, _ = allow(t, l, "k")
	assert.True(t, ok, "a token back after the retry time")
}

// Two processes sharing one Redis share one limit.
func TestRedisSharedAcrossLimiters(t *testing.T) {
	c := redistest.Client(t)
	a, prefix := newRedis(t, c, ratelimit.Rate{Events: 1, Per: time.Hour, Burst: 20})
	b, err := ratelimit.NewRedis(c, ratelimit.Rate{Events: 1, Per: time.Hour, Burst: 20}, prefix)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for _, l := range []*ratelimit.Redis{a, b, a, b} {
		wg.Go(func() {
			for range 10 {
				ok, _, err := l.Allow(context.Background(), "ann")
				assert.NoError(t, err)
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 20, allowed, "exactly the burst, whichever process asked")
}

func TestRedisDoesNotCloseClient(t *testing.T) {
	c := redistest.Client(t)
	l, _ := newRedis(t, c, ratelimit.PerSecond(5))
	allow(t, l, "k")
	require.NoError(t, c.Ping(context.Background()).Err())
}

// Redis unreachable: the limiter errors, and the middleware lets requests
// through (or answers 503 when failing closed).
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = c.Close() }()
	l, err := ratelimit.NewRedis(c, ratelimit.PerSecond(5), "x")
	require.NoError(t, err)
	_, _, err = l.Allow(context.Background(), "k")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ratelimit: redis:")

	open, served := behind(t, ratelimit.Config{Limiter: l, Key: ratelimit.ByHeader("X-User")})
	assert.Equal(t, http.StatusOK, get(open, "ann").Code)
	assert.Equal(t, int64(1), served.Load())
	closed, served := behind(t, ratelimit.Config{Limiter: l, Key: ratelimit.ByHeader("X-User"), FailClosed: true})
	assert.Equal(t, http.StatusServiceUnavailable, get(closed, "ann").Code)
	assert.Zero(t, served.Load())
}

func TestNewRedisValidation(t *testing.T) {
	_, err := ratelimit.NewRedis(nil, ratelimit.PerSecond(1), "x")
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer func() { _ = c.Close() }()
	_, err = ratelimit.NewRedis(c, ratelimit.Rate{}, "x")
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}
