package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/memline"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingSource is a Catalog over a Campaigns that counts its calls, and
// can be made to fail or to hold calls until released.
type countingSource struct {
	reg   *memline.Registry
	calls atomic.Int64
	mu    sync.Mutex
	err   error                  // answered instead of the campaign, if set
	hold  chan struct{}          // if set, calls wait for it to close (or ctx)
	held  chan struct{}          // receives one value per call that starts holding
	read  func(couponq.Campaign) // sees the value read before holding
}

func newSource(t *testing.T, cs ...couponq.Campaign) *countingSource {
	reg, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	return &countingSource{reg: reg}
}

func (s *countingSource) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	s.calls.Add(1)
	s.mu.Lock()
	err, hold, held := s.err, s.hold, s.held
	s.mu.Unlock()
	if err != nil {
		return couponq.Campaign{}, err
	}
	c, err := s.reg.Campaign(ctx, id) // read before holding: a slow reply carries what was read
	if hold != nil {
		if held != nil {
			held <- struct{}{}
		}
		select {
		case <-hold:
		case <-ctx.Done():
			return couponq.Campaign{}, ctx.Err()
		}
	}
	return c, err
}

func (s *countingSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// holdCalls makes the next calls wait until the returned func is called.
func (s *countingSource) holdCalls() (started <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold, held := make(chan struct{}), make(chan struct{}, 100)
	s.hold, s.held = hold, held
	return held, func() {
		s.mu.Lock()
		s.hold, s.held = nil, nil
		s.mu.Unlock()
		close(hold)
	}
}

func (s *countingSource) setStock(t *testing.T, id string, stock int64) {
	t.Helper()
	_, err := (&catalog.Ops{Registry: s.reg}).Modify(context.Background(), id, func(c *couponq.Campaign) error { c.Stock = stock; return nil })
	require.NoError(t, err)
}

func newCache(t *testing.T, src catalog.Catalog, clock *fakeClock, mut func(*catalog.CacheConfig)) *catalog.Cache {
	t.Helper()
	cfg := catalog.CacheConfig{Now: clock.Now}
	if mut != nil {
		mut(&cfg)
	}
	k, err := catalog.NewCache(src, cfg)
	require.NoError(t, err)
	return k
}

func stockOf(t *testing.T, k catalog.Catalog, id string) int64 {
	t.Helper()
	c, err := k.Campaign(context.Background(), id)
	require.NoError(t, err, "Campaign(%s)", id)
	return c.Stock
}

var bg = context.Background()

func TestCatalogCacheConfig(t *testing.T) {
	_, err := catalog.NewCache(nil, catalog.CacheConfig{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "nil source")
	_, err = catalog.NewCache(newSource(t), catalog.CacheConfig{TTL: -time.Second})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "negative TTL")
	_, err = catalog.NewCache(newSource(t), catalog.CacheConfig{NegativeTTL: -1, MaxStale: -1})
	assert.NoError(t, err, "negative NegativeTTL and MaxStale turn those off")
}

func TestCatalogCacheServesWithinTTL(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10}, couponq.Campaign{ID: "b", Stock: 20})
	k := newCache(t, src, clock, nil) // TTL 1s by default

	for range 100 {
		assert.Equal(t, int64(10), stockOf(t, k, "a"))
	}
	assert.Equal(t, int64(1), src.calls.Load(), "100 lookups within TTL make one source call")

	src.setStock(t, "a", 11)
	clock.Add(999 * time.Millisecond)
	assert.Equal(t, int64(10), stockOf(t, k, "a"), "a change is not seen before TTL")
	clock.Add(time.Millisecond)
	assert.Equal(t, int64(11), stockOf(t, k, "a"), "a change is seen once TTL has passed")
	assert.Equal(t, int64(2), src.calls.Load())

	// Campaigns are cached independently, and idle ones cost nothing.
	assert.Equal(t, int64(20), stockOf(t, k, "b"))
	clock.Add(time.Hour)
	assert.Equal(t, int64(3), src.calls.Load(), "nothing is refreshed unless asked for")
}

func TestCatalogCacheSingleFlight(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, nil)
	started, release := src.holdCalls()

	const n = 50
	var wg sync.WaitGroup
	stocks := make(chan int64, n)
	for range n {
		wg.Go(func() {
			c, err := k.Campaign(bg, "a")
			assert.NoError(t, err)
			stocks <- c.Stock
		})
	}
	<-started
	release()
	wg.Wait()
	close(stocks)
	for s := range stocks {
		assert.Equal(t, int64(10), s)
	}
	assert.Equal(t, int64(1), src.calls.Load(), "%d concurrent misses must make one source call", n)
}

// A waiter does not inherit the leader's cancellation: it asks again.
func TestCatalogCacheLeaderCancelled(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, nil)
	started, release := src.holdCalls()

	lctx, cancel := context.WithCancel(bg)
	leader := make(chan error, 1)
	go func() { _, err := k.Campaign(lctx, "a"); leader <- err }()
	<-started // the leader holds the call

	waiter := make(chan int64, 1)
	go func() {
		c, err := k.Campaign(bg, "a")
		assert.NoError(t, err, "a waiter must not get the leader's cancellation")
		waiter <- c.Stock
	}()
	// The waiter either joins the held call or, if it comes late, leads
	// its own; either way it must end with the campaign.
	cancel()
	assert.ErrorIs(t, <-leader, context.Canceled)
	release()
	assert.Equal(t, int64(10), <-waiter)

	// A waiter's own ctx ends its wait.
	clock.Add(time.Hour)
	started, release = src.holdCalls()
	defer release()
	go func() { _, _ = k.Campaign(bg, "a") }()
	<-started
	wctx, wcancel := context.WithTimeout(bg, 10*time.Millisecond)
	defer wcancel()
	_, err := k.Campaign(wctx, "a")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCatalogCacheNegative(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t)
	k := newCache(t, src, clock, nil)
	for range 10 {
		_, err := k.Campaign(bg, "late")
		assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	}
	assert.Equal(t, int64(1), src.calls.Load(), "an unknown ID is remembered for NegativeTTL")

	_, err := src.reg.Create(bg, couponq.Campaign{ID: "late", Stock: 3})
	require.NoError(t, err)
	clock.Add(500 * time.Millisecond)
	_, err = k.Campaign(bg, "late")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "still remembered as unknown within NegativeTTL")
	clock.Add(500 * time.Millisecond)
	assert.Equal(t, int64(3), stockOf(t, k, "late"), "found once NegativeTTL has passed")

	off := newCache(t, src, clock, func(c *catalog.CacheConfig) { c.NegativeTTL = -1 })
	before := src.calls.Load()
	for range 3 {
		_, err := off.Campaign(bg, "never")
		assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	}
	assert.Equal(t, before+3, src.calls.Load(), "negative NegativeTTL: every lookup asks")
}

func TestCatalogCacheErrorsNotCached(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, nil)
	boom := errors.New("source down")
	src.fail(boom)
	for range 3 {
		_, err := k.Campaign(bg, "a")
		assert.ErrorIs(t, err, boom)
	}
	assert.Equal(t, int64(3), src.calls.Load(), "errors are not cached")
	src.fail(nil)
	assert.Equal(t, int64(10), stockOf(t, k, "a"))
}

func TestCatalogCacheServesStaleOnSourceFailure(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10}, couponq.Campaign{ID: "b", Stock: 20})
	var logs bytes.Buffer
	k := newCache(t, src, clock, func(c *catalog.CacheConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	assert.Equal(t, int64(10), stockOf(t, k, "a"))
	assert.Equal(t, int64(20), stockOf(t, k, "b"))

	boom := errors.New("source down")
	src.fail(boom)
	clock.Add(time.Second)
	calls := src.calls.Load()
	assert.Equal(t, int64(10), stockOf(t, k, "a"), "served stale when the source fails")
	assert.Equal(t, int64(20), stockOf(t, k, "b"), "served stale when the source fails")
	assert.Equal(t, calls+2, src.calls.Load())
	for range 10 {
		stockOf(t, k, "a")
	}
	assert.Equal(t, calls+2, src.calls.Load(), "a failing source is asked again only after TTL")
	clock.Add(time.Second)
	assert.Equal(t, int64(10), stockOf(t, k, "a"))
	assert.Equal(t, calls+3, src.calls.Load(), "asked again after TTL")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "the outage is logged once:\n%s", logs.String())

	// Never older than MaxStale (30s after the last good read).
	clock.Add(27*time.Second + 999*time.Millisecond)
	assert.Equal(t, int64(10), stockOf(t, k, "a"), "just under MaxStale")
	clock.Add(time.Millisecond)
	_, err := k.Campaign(bg, "a")
	assert.ErrorIs(t, err, boom, "past MaxStale the source's error is returned")

	src.fail(nil)
	src.setStock(t, "a", 12)
	assert.Equal(t, int64(12), stockOf(t, k, "a"))
	assert.Contains(t, logs.String(), "answers again", "recovery is logged")

	// The next outage is logged again.
	src.fail(boom)
	clock.Add(time.Second)
	stockOf(t, k, "a")
	assert.Equal(t, 2, strings.Count(logs.String(), "level=WARN"), "a new outage is logged:\n%s", logs.String())
}

func TestCatalogCacheMaxStaleOff(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, func(c *catalog.CacheConfig) { c.MaxStale = -1 })
	stockOf(t, k, "a")
	boom := errors.New("source down")
	src.fail(boom)
	assert.Equal(t, int64(10), stockOf(t, k, "a"), "fresh within TTL")
	clock.Add(time.Second)
	_, err := k.Campaign(bg, "a")
	assert.ErrorIs(t, err, boom, "MaxStale off: a failing source fails the lookup after TTL")
}

func TestCatalogCacheInvalidate(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, nil)
	k.Invalidate("unseen") // harmless
	assert.Equal(t, int64(10), stockOf(t, k, "a"))
	src.setStock(t, "a", 11)
	k.Invalidate("a")
	assert.Equal(t, int64(11), stockOf(t, k, "a"), "the writer's process sees its write at once")
	assert.Equal(t, int64(2), src.calls.Load())
	assert.Equal(t, int64(11), stockOf(t, k, "a"))
	assert.Equal(t, int64(2), src.calls.Load(), "cached again after the refresh")
}

// A source call that read the campaign before the write, and answers after
// Invalidate, neither serves the lookups that start after Invalidate nor
// stays in the cache.
func TestCatalogCacheInvalidateDuringCall(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 10})
	k := newCache(t, src, clock, nil)
	started, release := src.holdCalls()
	old := make(chan int64, 1)
	go func() { old <- stockOf(t, k, "a") }()
	<-started // a call read stock 10 and is slow to answer

	src.setStock(t, "a", 11)
	k.Invalidate("a")
	release()
	assert.Equal(t, int64(11), stockOf(t, k, "a"), "a lookup after Invalidate must not share the older call")
	assert.Equal(t, int64(10), <-old, "the older call's own caller gets what it read")
	assert.Equal(t, int64(11), stockOf(t, k, "a"), "the older answer must not be cached")
	assert.Equal(t, int64(2), src.calls.Load())
}

func TestCatalogCacheCancelledContext(t *testing.T) {
	k := newCache(t, newSource(t, couponq.Campaign{ID: "a", Stock: 1}), newFakeClock(), nil)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := k.Campaign(ctx, "a")
	assert.ErrorIs(t, err, context.Canceled)
}

// Lookups, refreshes, failures and invalidations racing each other, for the
// race detector; every answer is a stock the campaign had.
func TestCatalogCacheConcurrent(t *testing.T) {
	clock := newFakeClock()
	src := newSource(t, couponq.Campaign{ID: "a", Stock: 1}, couponq.Campaign{ID: "b", Stock: 1})
	k := newCache(t, src, clock, func(c *catalog.CacheConfig) { c.TTL = time.Millisecond })
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				id := []string{"a", "b", fmt.Sprint("none", n%5)}[n%3]
				c, err := k.Campaign(bg, id)
				if err == nil && (c.Stock < 1 || c.Stock > 1000) {
					t.Errorf("worker %d: stock %d was never set", i, c.Stock)
				}
			}
		})
	}
	for n := range 200 {
		clock.Add(time.Millisecond)
		if n%50 == 0 {
			src.fail(errors.New("blip"))
		} else {
			src.fail(nil)
		}
		src.setStock(t, "a", int64(n%1000+1))
		k.Invalidate("a")
	}
	stop.Store(true)
	wg.Wait()
}

// A source that panics releases the lookups sharing its call, and the next
// lookup asks again.
func TestCatalogCacheSourcePanics(t *testing.T) {
	var calls atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	src := catalog.Func(func(ctx context.Context, id string) (couponq.Campaign, error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
			panic("source bug")
		}
		return couponq.Campaign{ID: id, Stock: 5}, nil
	})
	k := newCache(t, src, newFakeClock(), nil)
	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		_, _ = k.Campaign(bg, "a")
	}()
	<-entered
	waiter := make(chan error, 1)
	go func() { _, err := k.Campaign(bg, "a"); waiter <- err }()
	// Give the waiter a moment to join the call; if it comes after the
	// panic it makes its own (successful) call, which is fine too.
	time.Sleep(10 * time.Millisecond)
	close(release)
	assert.Equal(t, "source bug", <-leader, "the panic goes on up the leader's stack")
	if err := <-waiter; err != nil {
		assert.ErrorContains(t, err, "panicked")
	}
	assert.Equal(t, int64(5), stockOf(t, k, "a"), "the next lookup asks again")
}
