package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/lock"
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

func fill(t *testing.T, q *memory.Queue, campaign string, n int) {
	for i := range n {
		_, err := q.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: fmt.Sprintf("u%d", i), At: time.Now()})
		require.NoError(t, err)
	}
}

func newThrottle(t *testing.T, cfg dispatch.Config) *dispatch.Throttle {
	t.Helper()
	th, err := dispatch.New(cfg)
	require.NoError(t, err)
	return th
}

func TestThrottleBoundedFIFO(t *testing.T) {
	c := couponq.Campaign{ID: "bounded", Stock: 1, BatchSize: 25, Interval: 20 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 200)
	rec := &recorder{}
	th := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("a"), Locker: lock.NewMemory()})
	require.NoError(t, th.Start(context.Background()))
	require.Eventually(t, func() bool { return rec.total() == 200 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, th.Stop(context.Background()))
	require.NoError(t, th.Stop(context.Background()), "Stop twice is fine")

	var order []int64
	var ats []time.Time
	batches := rec.snapshot()
	for i, s := range batches {
		assert.LessOrEqual(t, len(s.numbers), c.BatchSize, "batch %d", i)
		order = append(order, s.numbers...)
		ats = append(ats, s.at)
	}
	assert.LessOrEqual(t, pipelinetest.MaxInWindow(ats, 4*c.Interval), 5, "at most one batch per tick")
	for i, n := range order {
		require.Equal(t, int64(i+1), n, "FIFO by entry number")
	}
	assert.Equal(t, memory.Stats{Admitted: 200, Waiting: 0, InFlight: 200}, q.Stats(c.ID), "all handed off, waiting for results")
}

func TestThrottleBoundsWhatIsInFlight(t *testing.T) {
	c := couponq.Campaign{ID: "stalled", Stock: 100, BatchSize: 5, Interval: 5 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 30)
	rec := &recorder{} // records nothing: consumers stalled, entries stay in flight
	th := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("a"), Locker: lock.NewMemory(),
		MaxInFlightBatches: 2})
	require.NoError(t, th.Start(context.Background()))
	require.Eventually(t, func() bool { return q.Stats(c.ID).InFlight == 10 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // 20 Intervals: without the bound, all 30 would be out
	require.NoError(t, th.Stop(context.Background()))
	assert.Equal(t, memory.Stats{Admitted: 30, Waiting: 20, InFlight: 10}, q.Stats(c.ID), "2 batches in flight, no more")
}

func TestThrottleFailedEntriesRetryWithinBudget(t *testing.T) {
	c := couponq.Campaign{ID: "retry", Stock: 1, BatchSize: 10, Interval: 10 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 50)
	failedOnce := map[int64]bool{}
	rec := &recorder{fail: func(e couponq.Entry) bool {
		if e.Number%3 == 0 && !failedOnce[e.Number] { // called under rec.mu
			failedOnce[e.Number] = true
			return true
		}
		return false
	}}
	th := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("a"), Locker: lock.NewMemory()})
	require.NoError(t, th.Start(context.Background()))
	// Done when every entry is in flight and the last retry was sent: an
	// entry is in flight from its lease on, before its dispatch, so the
	// counts alone would stop the throttle between the two.
	sends := func() (n int) {
		for _, s := range rec.snapshot() {
			n += len(s.numbers)
		}
		return n
	}
	require.Eventually(t, func() bool {
		return q.Stats(c.ID).Waiting == 0 && q.Stats(c.ID).InFlight == 50 && sends() == 50+50/3
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, th.Stop(context.Background()))
	counts := map[int64]int{}
	for _, s := range rec.snapshot() {
		assert.LessOrEqual(t, len(s.numbers), c.BatchSize, "retries spend the same budget")
		for _, n := range s.numbers {
			counts[n]++
		}
	}
	for n := int64(1); n <= 50; n++ {
		want := 1
		if n%3 == 0 {
			want = 2
		}
		assert.Equal(t, want, counts[n], "entry %d sent %d times", n, counts[n])
	}
}

// lossyAcks drops every Ack, as if the queue failed right after the dispatch.
type lossyAcks struct{ *memory.Queue }

func (lossyAcks) Ack(context.Context, string, []couponq.Entry, time.Duration) error {
	return errors.New("ack lost")
}

func TestThrottleRecoversExpiredLeasesWithinBudget(t *testing.T) {
	c := couponq.Campaign{ID: "recover", Stock: 1, BatchSize: 4, Interval: 10 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 4)
	rec := &recorder{}
	th := newThrottle(t, dispatch.Config{Campaign: c, Queue: lossyAcks{q}, Dispatcher: rec.as("a"),
		Locker: lock.NewMemory(), LeaseTTL: 100 * time.Millisecond})
	require.NoError(t, th.Start(context.Background()))
	require.Eventually(t, func() bool { return len(rec.snapshot()) >= 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, th.Stop(context.Background()))
	for _, s := range rec.snapshot() {
		// With no ack, the same four come back after each lease expiry, never more at once.
		assert.Equal(t, []int64{1, 2, 3, 4}, s.numbers)
	}
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

func TestThrottleOneLeaderAndFailover(t *testing.T) {
	c := couponq.Campaign{ID: "leader", Stock: 1, BatchSize: 5, Interval: 20 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 1000)
	rec := &recorder{}
	locker := lock.NewMemory()
	leaderTTL := 300 * time.Millisecond
	a := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("a"), Locker: crashy{locker}, LeaderTTL: leaderTTL})
	b := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("b"), Locker: locker, LeaderTTL: leaderTTL})
	require.NoError(t, a.Start(context.Background()))
	require.Eventually(t, func() bool { return len(rec.snapshot()) > 0 }, 2*time.Second, time.Millisecond)
	require.NoError(t, b.Start(context.Background()))
	defer func() { require.NoError(t, b.Stop(context.Background())) }()
	time.Sleep(300 * time.Millisecond)
	for _, s := range rec.snapshot() {
		require.Equal(t, "a", s.by, "the standby must not move entries while the leader lives")
	}

	require.NoError(t, a.Stop(context.Background())) // "crash": lease left behind
	crashed := time.Now()
	require.Eventually(t, func() bool {
		s := rec.snapshot()
		return s[len(s)-1].by == "b"
	}, 3*time.Second, 5*time.Millisecond, "the standby takes over")
	var firstB time.Time
	for _, s := range rec.snapshot() {
		if s.by == "b" {
			firstB = s.at
			break
		}
	}
	took := firstB.Sub(crashed)
	assert.GreaterOrEqual(t, took, leaderTTL/2, "took over before the lease could have expired")
	assert.Less(t, took, leaderTTL+10*c.Interval, "failover took %s", took)

	var ats []time.Time
	for _, b := range rec.snapshot() {
		assert.LessOrEqual(t, len(b.numbers), c.BatchSize)
		ats = append(ats, b.at)
	}
	assert.LessOrEqual(t, pipelinetest.MaxInWindow(ats, 10*c.Interval), 12, "more batches than ticks: two leaders at once?")
}

func TestThrottleValidates(t *testing.T) {
	q := memory.NewQueue(nil)
	good := dispatch.Config{Campaign: couponq.Campaign{ID: "v", Stock: 1}, Queue: q,
		Dispatcher: (&recorder{}).as("x"), Locker: lock.NewMemory()}
	_, err := dispatch.New(good)
	require.NoError(t, err)
	for name, mut := range map[string]func(*dispatch.Config){
		"no queue":       func(c *dispatch.Config) { c.Queue = nil },
		"no dispatcher":  func(c *dispatch.Config) { c.Dispatcher = nil },
		"no locker":      func(c *dispatch.Config) { c.Locker = nil },
		"bad campaign":   func(c *dispatch.Config) { c.Campaign.Stock = 0 },
		"negative lease": func(c *dispatch.Config) { c.LeaseTTL = -1 },
		"negative bound": func(c *dispatch.Config) { c.MaxInFlightBatches = -1 },
		"bound, no stats": func(c *dispatch.Config) {
			c.MaxInFlightBatches, c.Queue = 1, struct{ couponq.Leaser }{q}
		},
	} {
		cfg := good
		mut(&cfg)
		_, err := dispatch.New(cfg)
		assert.Error(t, err, name)
	}
}

func TestThrottleStartTwice(t *testing.T) {
	th := newThrottle(t, dispatch.Config{Campaign: couponq.Campaign{ID: "s", Stock: 1}, Queue: memory.NewQueue(nil),
		Dispatcher: (&recorder{}).as("x"), Locker: lock.NewMemory()})
	require.NoError(t, th.Stop(context.Background()), "Stop before Start is fine")
	th = newThrottle(t, dispatch.Config{Campaign: couponq.Campaign{ID: "s", Stock: 1}, Queue: memory.NewQueue(nil),
		Dispatcher: (&recorder{}).as("x"), Locker: lock.NewMemory()})
	require.NoError(t, th.Start(context.Background()))
	assert.Error(t, th.Start(context.Background()))
	require.NoError(t, th.Stop(context.Background()))
}

// flakyLock fails its refreshes and releases with a backend error while
// down is set; flakyLocker fails Obtain too.
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

func TestThrottleMovesNothingWhileLeaderRefreshFails(t *testing.T) {
	c := couponq.Campaign{ID: "blip", Stock: 1, BatchSize: 5, Interval: 10 * time.Millisecond}
	q := memory.NewQueue(nil)
	fill(t, q, c.ID, 1000)
	rec := &recorder{}
	var down atomic.Bool
	th := newThrottle(t, dispatch.Config{Campaign: c, Queue: q, Dispatcher: rec.as("a"),
		Locker: flakyLocker{lock.NewMemory(), &down}, LeaderTTL: time.Minute})
	require.NoError(t, th.Start(context.Background()))
	require.Eventually(t, func() bool { return len(rec.snapshot()) > 0 }, time.Second, time.Millisecond)
	down.Store(true)
	time.Sleep(30 * time.Millisecond)
	before := len(rec.snapshot())
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, before, len(rec.snapshot()), "no batch moves without a refreshed lease")
	down.Store(false)
	require.Eventually(t, func() bool { return len(rec.snapshot()) > before }, time.Second, time.Millisecond,
		"the leader resumes once the backend is back, its lease intact")
	require.NoError(t, th.Stop(context.Background()))
}
