package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/ratelimit"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newMemory(t *testing.T, cfg ratelimit.MemoryConfig) (*ratelimit.Memory, *fakeClock) {
	t.Helper()
	m, err := ratelimit.NewMemory(cfg)
	require.NoError(t, err)
	clock := newClock()
	m.SetNow(clock.Now)
	return m, clock
}

func allow(t *testing.T, l ratelimit.Limiter, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), key)
	require.NoError(t, err)
	return ok, retry
}

func TestMemoryBurstThenLimited(t *testing.T) {
	m, _ := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 1, Per: time.Second, Burst: 3}})
	for i := range 3 {
		ok, retry := allow(t, m, "ann")
		assert.True(t, ok, "request %d is within the burst", i+1)
		assert.Zero(t, retry)
	}
	ok, retry := allow(t, m, "ann")
	assert.False(t, ok, "the fourth at once is over the limit")
	assert.Equal(t, time.Second, retry, "one token a second")

	ok, _ = allow(t, m, "bob")
	assert.True(t, ok, "keys are limited apart")
}

func TestMemoryRefill(t *testing.T) {
	m, clock := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 10, Per: time.Second, Burst: 2}})
	allow(t, m, "k")
	allow(t, m, "k")
	ok, retry := allow(t, m, "k")
	require.False(t, ok)
	assert.Equal(t, 100*time.Millisecond, retry)

	clock.Advance(40 * time.Millisecond)
	ok, retry = allow(t, m, "k")
	assert.False(t, ok, "a refused request spends nothing, and 0.4 of a token is not one")
	assert.InDelta(t, float64(60*time.Millisecond), float64(retry), float64(time.Microsecond))

	clock.Advance(60 * time.Millisecond)
	ok, _ = allow(t, m, "k")
	assert.True(t, ok, "one token back after 100ms")
	ok, _ = allow(t, m, "k")
	assert.False(t, ok)

	clock.Advance(time.Hour)
	for range 2 {
		ok, _ = allow(t, m, "k")
		assert.True(t, ok, "refilled to the burst, no further")
	}
	ok, _ = allow(t, m, "k")
	assert.False(t, ok)
}

func TestMemoryBurstDefaultsToEvents(t *testing.T) {
	m, _ := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(5)})
	for range 5 {
		ok, _ := allow(t, m, "k")
		assert.True(t, ok)
	}
	ok, retry := allow(t, m, "k")
	assert.False(t, ok)
	assert.Equal(t, 12*time.Second, retry)
}

func TestMemoryMaxKeys(t *testing.T) {
	m, _ := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerMinute(1), MaxKeys: 100})
	for i := range 1000 {
		ok, _ := allow(t, m, fmt.Sprintf("k%d", i))
		require.True(t, ok)
		require.LessOrEqual(t, m.Len(), 100)
	}
	assert.Equal(t, 100, m.Len(), "bounded at MaxKeys")

	// The least recently used key went first: the last 100 are still limited.
	ok, _ := allow(t, m, "k999")
	assert.False(t, ok, "a recent key keeps its bucket")
	ok, _ = allow(t, m, "k0")
	assert.True(t, ok, "an evicted key starts over with a full bucket")
	assert.Equal(t, 100, m.Len())
}

func TestMemoryForgetsIdleKeys(t *testing.T) {
	// 10 a second, burst 5: an empty bucket is full again after 500ms.
	m, clock := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 10, Per: time.Second, Burst: 5}})
	for i := range 50 {
		allow(t, m, fmt.Sprintf("k%d", i))
	}
	require.Equal(t, 50, m.Len())

	clock.Advance(499 * time.Millisecond)
	allow(t, m, "fresh")
	assert.Equal(t, 51, m.Len(), "not idle long enough to have refilled")

	clock.Advance(time.Millisecond)
	allow(t, m, "fresh")
	assert.Equal(t, 1, m.Len(), "refilled buckets are forgotten as requests come; the busy key stays")

	// Forgetting is lossless: a key drained to empty and forgotten behaves
	// exactly as if it had been kept.
	for range 5 {
		allow(t, m, "drained")
	}
	clock.Advance(500 * time.Millisecond)
	allow(t, m, "other")
	for range 5 {
		ok, _ := allow(t, m, "drained")
		assert.True(t, ok)
	}
	ok, _ := allow(t, m, "drained")
	assert.False(t, ok)
}

// Many idle keys are forgotten a few at a time, never in one long sweep.
func TestMemoryForgetsInSteps(t *testing.T) {
	m, clock := newMemory(t, ratelimit.MemoryConfig{Rate: ratelimit.PerSecond(1)})
	for i := range 1000 {
		allow(t, m, fmt.Sprintf("k%d", i))
	}
	clock.Advance(time.Minute)
	allow(t, m, "busy")
	assert.Greater(t, m.Len(), 900, "one call forgets only a bounded number")
	for range 100 {
		allow(t, m, "busy")
	}
	assert.Equal(t, 1, m.Len(), "steady traffic forgets them all")
}

func TestMemoryConcurrent(t *testing.T) {
	m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 1, Per: time.Hour, Burst: 50}, MaxKeys: 8})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				key := fmt.Sprintf("k%d", g%4)
				ok, _, err := m.Allow(context.Background(), key)
				assert.NoError(t, err)
				if ok {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for k, n := range allowed {
		assert.Equal(t, 50, n, "%s: exactly the burst across goroutines", k)
	}
}

func TestMemoryConfigValidation(t *testing.T) {
	for name, cfg := range map[string]ratelimit.MemoryConfig{
		"zero rate":        {},
		"zero period":      {Rate: ratelimit.Rate{Events: 1}},
		"negative burst":   {Rate: ratelimit.Rate{Events: 1, Per: time.Second, Burst: -1}},
		"negative maxkeys": {Rate: ratelimit.PerSecond(1), MaxKeys: -1},
	} {
		_, err := ratelimit.NewMemory(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
	}
}

func TestRateString(t *testing.T) {
	assert.Equal(t, "10 per 1s (burst 10)", ratelimit.PerSecond(10).String())
	assert.Equal(t, "5 per 1m0s (burst 20)", ratelimit.Rate{Events: 5, Per: time.Minute, Burst: 20}.String())
}
