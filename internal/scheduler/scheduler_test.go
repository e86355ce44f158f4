package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
)

// sink is a Dispatcher that keeps every batch per campaign with who sent it
// and when, flags a campaign dispatched by two movers at once, and, if
// decide is set, records each entry as issued at once (a fast issuer), so
// lines and flights empty and campaigns rest.
type sink struct {
	decide couponq.Recorder

	mu       sync.Mutex
	batches  map[string][]sent // by campaign
	moving   map[string]int
	overlaps []string
	seen     map[string]bool // campaign/user
}

func newSink(decide couponq.Recorder) *sink {
	return &sink{decide: decide, batches: map[string][]sent{}, moving: map[string]int{}, seen: map[string]bool{}}
}

func (s *sink) as(name string) couponq.Dispatcher {
	return couponq.DispatcherFunc(func(ctx context.Context, b []couponq.Entry) error {
		if len(b) == 0 {
			return nil
		}
		c := b[0].Campaign
		s.mu.Lock()
		s.moving[c]++
		if s.moving[c] > 1 {
			s.overlaps = append(s.overlaps, c)
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond) // a dispatch takes a while, so overlaps would show
		var err error
		if s.decide != nil {
			rs := make([]couponq.Result, len(b))
			for i, e := range b {
				rs[i] = couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "i" + e.User}
			}
			err = s.decide.Record(ctx, c, rs...)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.moving[c]--
		if err != nil {
			return err
		}
		st := sent{by: name, at: time.Now()}
		for _, e := range b {
			st.numbers = append(st.numbers, e.Number)
			s.seen[c+"/"+e.User] = true
		}
		s.batches[c] = append(s.batches[c], st)
		return nil
	})
}

func (s *sink) of(campaign string) []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches[campaign])
}

func (s *sink) count(campaign string) int {
	n := 0
	for _, b := range s.of(campaign) {
		n += len(b.numbers)
	}
	return n
}

func (s *sink) has(campaign, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[campaign+"/"+user]
}

// checkPace asserts the campaign's batches keep to BatchSize per Interval:
// none larger than BatchSize, at most k+1 in any k Intervals, never two at
// once.
func (s *sink) checkPace(t *testing.T, c couponq.Campaign) {
	t.Helper()
	batches := s.of(c.ID)
	var ats []time.Time
	for i, b := range batches {
		assert.LessOrEqual(t, len(b.numbers), c.BatchSize, "%s batch %d", c.ID, i)
		ats = append(ats, b.at)
	}
	sort.Slice(ats, func(i, j int) bool { return ats[i].Before(ats[j]) })
	for _, k := range []int{1, 4} {
		assert.LessOrEqual(t, pipelinetest.MaxInWindow(ats, time.Duration(k)*c.Interval), k+1,
			"%s: more than %d batches in %d Intervals: two movers?", c.ID, k+1, k)
	}
	s.mu.Lock()
	assert.Empty(t, s.overlaps, "campaigns dispatched by two movers at once")
	s.mu.Unlock()
}

// world is one process's (or a test's) admission and scheduling over
// shared in-memory backends.
type world struct {
	catalog *memline.Registry
	queue   *memline.Queue
	svc     *admission.Service
	locker  lock.Locker
	sink    *sink
}

func newWorld(t *testing.T, cs ...couponq.Campaign) *world {
	t.Helper()
	cat, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	require.NoError(t, err)
	return &world{catalog: cat, queue: q, svc: svc, locker: lock.NewMemory(), sink: newSink(q)}
}

func (w *world) scheduler(t *testing.T, name string, mut func(*scheduler.Config)) *scheduler.Scheduler {
	t.Helper()
	cfg := scheduler.Config{Catalog: w.catalog, Agenda: w.queue, Queue: w.queue, Dispatcher: w.sink.as(name),
		Locker: w.locker, LeaderTTL: 300 * time.Millisecond, PollInterval: 10 * time.Millisecond}
	if mut != nil {
		mut(&cfg)
	}
	s, err := scheduler.New(cfg)
	require.NoError(t, err)
	return s
}

func start(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
}

func (w *world) admit(t *testing.T, campaign string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := w.svc.Admit(context.Background(), couponq.Request{Campaign: campaign, User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
	}
}

func (w *world) awake(t *testing.T) []string {
	ids, err := w.queue.Awake(context.Background())
	require.NoError(t, err)
	return ids
}

func TestSchedulerServesWokenCampaignsAtTheirPace(t *testing.T) {
	cs := []couponq.Campaign{
		{ID: "a", Stock: 1000, BatchSize: 5, Interval: 20 * time.Millisecond},
		{ID: "b", Stock: 1000, BatchSize: 10, Interval: 30 * time.Millisecond},
		{ID: "c", Stock: 1000, BatchSize: 3, Interval: 15 * time.Millisecond},
		{ID: "idle", Stock: 1000},
	}
	w := newWorld(t, cs...)
	var rests atomic.Int64
	s := w.scheduler(t, "s", func(c *scheduler.Config) {
		c.OnTick = func(ev dispatch.TickEvent) {
			if ev.Rested {
				rests.Add(1)
			}
		}
	})
	start(t, s)
	users := map[string]int{"a": 60, "b": 80, "c": 30}
	for id, n := range users {
		w.admit(t, id, 0, n)
	}
	require.Eventually(t, func() bool {
		return w.sink.count("a") == 60 && w.sink.count("b") == 80 && w.sink.count("c") == 30
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, 5*time.Millisecond,
		"every campaign rests once its line and flight are empty")
	assert.Equal(t, int64(3), rests.Load())
	for _, c := range cs[:3] {
		w.sink.checkPace(t, c)
		var order []int64
		for _, b := range w.sink.of(c.ID) {
			order = append(order, b.numbers...)
		}
		for i, n := range order {
			require.Equal(t, int64(i+1), n, "%s: FIFO by entry number", c.ID)
		}
	}
	assert.Empty(t, w.sink.of("idle"))

	// A later admission wakes a rested campaign again.
	w.admit(t, "a", 60, 70)
	require.Eventually(t, func() bool { return w.sink.count("a") == 70 }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, 5*time.Millisecond)
	w.sink.checkPace(t, cs[0])
}

func TestSchedulerServesCampaignAddedAtRuntime(t *testing.T) {
	w := newWorld(t)
	start(t, w.scheduler(t, "s", nil))
	time.Sleep(30 * time.Millisecond)
	c := couponq.Campaign{ID: "new", Stock: 10, BatchSize: 4, Interval: 10 * time.Millisecond}
	require.NoError(t, w.catalog.Put(c))
	w.admit(t, c.ID, 0, 10)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 10 }, 5*time.Second, 5*time.Millisecond)
	w.sink.checkPace(t, c)
}

func TestSchedulerPauseAndResume(t *testing.T) {
	c := couponq.Campaign{ID: "p", Stock: 1000, BatchSize: 2, Interval: 10 * time.Millisecond}
	w := newWorld(t, c)
	start(t, w.scheduler(t, "s", nil))
	w.admit(t, c.ID, 0, 200)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) >= 10 }, 5*time.Second, time.Millisecond)

	paused := c
	paused.Paused = true
	require.NoError(t, w.catalog.Put(paused))
	time.Sleep(3 * c.Interval) // the change applies at the next tick
	before := w.sink.count(c.ID)
	time.Sleep(20 * c.Interval)
	assert.Equal(t, before, w.sink.count(c.ID), "a paused campaign moves nobody")
	assert.Equal(t, []string{c.ID}, w.awake(t), "a paused campaign stays awake")
	assert.Less(t, before, 200)

	require.NoError(t, w.catalog.Put(c))
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 200 }, 10*time.Second, time.Millisecond, "resumed")
	w.sink.checkPace(t, c)
}

func TestSchedulerAppliesNewBatchSizeAndInterval(t *testing.T) {
	c := couponq.Campaign{ID: "r", Stock: 1000, BatchSize: 2, Interval: 10 * time.Millisecond}
	w := newWorld(t, c)
	start(t, w.scheduler(t, "s", nil))
	w.admit(t, c.ID, 0, 300)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) >= 10 }, 5*time.Second, time.Millisecond)
	faster := c
	faster.BatchSize = 20
	require.NoError(t, w.catalog.Put(faster))
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 300 }, 5*time.Second, time.Millisecond)
	biggest := 0
	for _, b := range w.sink.of(c.ID) {
		biggest = max(biggest, len(b.numbers))
	}
	assert.Equal(t, 20, biggest, "the new batch size applies")
	w.sink.checkPace(t, faster)
}

func TestSchedulerServesClosedCampaign(t *testing.T) {
	c := couponq.Campaign{ID: "closing", Stock: 1000, BatchSize: 2, Interval: 20 * time.Millisecond,
		ClosesAt: time.Now().Add(150 * time.Millisecond)}
	w := newWorld(t, c)
	start(t, w.scheduler(t, "s", nil))
	w.admit(t, c.ID, 0, 30)
	time.Sleep(time.Until(c.ClosesAt))
	_, err := w.svc.Admit(context.Background(), couponq.Request{Campaign: c.ID, User: "late"})
	require.ErrorIs(t, err, couponq.ErrClosed)
	require.Less(t, w.sink.count(c.ID), 30, "entries still waiting when the campaign closed")
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 30 }, 5*time.Second, time.Millisecond,
		"entries admitted before the close are served")
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerDrainsSoldOutCampaign(t *testing.T) {
	c := couponq.Campaign{ID: "gone", Stock: 1000, BatchSize: 5, Interval: 10 * time.Millisecond}
	w := newWorld(t, c)
	start(t, w.scheduler(t, "s", nil))
	w.admit(t, c.ID, 0, 100)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) >= 10 }, 5*time.Second, time.Millisecond)
	require.NoError(t, w.queue.MarkSoldOut(context.Background(), c.ID))
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, time.Millisecond,
		"a sold-out campaign drains and rests")
	st := w.queue.Stats(c.ID)
	assert.Zero(t, st.Waiting)
	assert.Zero(t, st.InFlight)
	moved := w.sink.count(c.ID)
	assert.Less(t, moved, 100)
	status, err := w.svc.Status(context.Background(), c.ID, "u99")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateRejected, status.State)
	assert.Equal(t, couponq.CodeSoldOut, status.Reason)
}

func TestSchedulerKeepsUnknownCampaignAwake(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for i := range 6 {
		_, err := w.queue.Admit(ctx, couponq.Admission{Campaign: "ghost", User: fmt.Sprintf("u%d", i), At: time.Now()})
		require.NoError(t, err)
	}
	require.NoError(t, w.queue.Wake(ctx, "ghost"))
	start(t, w.scheduler(t, "s", nil))
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, w.sink.count("ghost"), "a campaign the Catalog does not know is not moved")
	assert.Equal(t, []string{"ghost"}, w.awake(t), "nor let rest: its entries are kept")

	c := couponq.Campaign{ID: "ghost", Stock: 10, BatchSize: 2, Interval: 5 * time.Millisecond}
	require.NoError(t, w.catalog.Put(c))
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 6 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerSweepsCampaignsMissingFromAgenda(t *testing.T) {
	ctx := context.Background()
	c := couponq.Campaign{ID: "stray", Stock: 10, BatchSize: 3, Interval: 5 * time.Millisecond}
	w := newWorld(t, c)
	for i := range 7 { // straight into the line: nobody woke the campaign
		_, err := w.queue.Admit(ctx, couponq.Admission{Campaign: c.ID, User: fmt.Sprintf("u%d", i), At: time.Now()})
		require.NoError(t, err)
	}
	start(t, w.scheduler(t, "s", nil))
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 7 }, 5*time.Second, time.Millisecond,
		"the new leader's sweep wakes it")
}

func TestSchedulerEntriesInFlightKeepCampaignAwake(t *testing.T) {
	c := couponq.Campaign{ID: "slow", Stock: 10, BatchSize: 5, Interval: 5 * time.Millisecond}
	w := newWorld(t, c)
	w.sink.decide = nil // nobody records results: entries stay in flight
	start(t, w.scheduler(t, "s", nil))
	w.admit(t, c.ID, 0, 5)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 5 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, []string{c.ID}, w.awake(t), "entries awaiting results keep the campaign awake")
	rs := make([]couponq.Result, 5)
	for i := range rs {
		rs[i] = couponq.Result{Entry: couponq.Entry{Campaign: c.ID, User: fmt.Sprintf("u%d", i), Number: int64(i + 1)},
			State: couponq.StateIssued, IssuanceID: "x"}
	}
	require.NoError(t, w.queue.Record(context.Background(), c.ID, rs...))
	// Rest is retried with backoff (up to 16 Intervals) while entries are in flight.
	require.Eventually(t, func() bool { return len(w.awake(t)) == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerBoundsWhatIsInFlight(t *testing.T) {
	c := couponq.Campaign{ID: "stalled", Stock: 100, BatchSize: 5, Interval: 5 * time.Millisecond}
	w := newWorld(t, c)
	w.sink.decide = nil // consumers stalled: nothing is decided, entries stay in flight
	var held atomic.Int64
	start(t, w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.MaxInFlightBatches = 2
		cfg.OnTick = func(ev dispatch.TickEvent) {
			if ev.Held {
				held.Add(1)
			}
		}
	}))
	w.admit(t, c.ID, 0, 30)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 10 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // 20 Intervals: without the bound, all 30 would be out
	assert.Equal(t, 10, w.sink.count(c.ID), "2 batches in flight, no more")
	assert.Positive(t, held.Load(), "ticks report that they held back")
	assert.Equal(t, []string{c.ID}, w.awake(t), "a held-back campaign stays awake")

	// Consumers come back and decide three: three more may go.
	rs := make([]couponq.Result, 3)
	for i := range rs {
		rs[i] = couponq.Result{Entry: couponq.Entry{Campaign: c.ID, User: fmt.Sprintf("u%d", i), Number: int64(i + 1)},
			State: couponq.StateIssued, IssuanceID: "x"}
	}
	require.NoError(t, w.queue.Record(context.Background(), c.ID, rs...))
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 13 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 13, w.sink.count(c.ID))
	w.sink.checkPace(t, c)
}

func TestSchedulerOneLeaderAndFailover(t *testing.T) {
	cs := []couponq.Campaign{
		{ID: "x", Stock: 10000, BatchSize: 5, Interval: 20 * time.Millisecond},
		{ID: "y", Stock: 10000, BatchSize: 3, Interval: 10 * time.Millisecond},
	}
	w := newWorld(t, cs...)
	leaderTTL := 300 * time.Millisecond
	a := w.scheduler(t, "a", func(c *scheduler.Config) { c.Locker = crashy{w.locker} })
	b := w.scheduler(t, "b", nil)
	w.admit(t, "x", 0, 300)
	w.admit(t, "y", 0, 300)
	require.NoError(t, a.Start(context.Background()))
	require.Eventually(t, func() bool { return len(w.sink.of("x")) > 0 }, 2*time.Second, time.Millisecond)
	start(t, b)
	time.Sleep(200 * time.Millisecond)
	assert.True(t, a.Leading())
	assert.False(t, b.Leading())
	for _, c := range cs {
		for _, s := range w.sink.of(c.ID) {
			require.Equal(t, "a", s.by, "the standby must not move entries while the leader lives")
		}
	}

	require.NoError(t, a.Stop(context.Background())) // "crash": lease left behind
	crashed := time.Now()
	assert.False(t, a.Leading())
	firstBy := func(name string) time.Time {
		for _, s := range w.sink.of("x") {
			if s.by == name {
				return s.at
			}
		}
		return time.Time{}
	}
	require.Eventually(t, func() bool { return !firstBy("b").IsZero() }, 3*time.Second, 5*time.Millisecond, "the standby takes over")
	took := firstBy("b").Sub(crashed)
	assert.GreaterOrEqual(t, took, leaderTTL/2, "took over before the lease could have expired")
	assert.Less(t, took, leaderTTL*4/3+cs[0].Interval+100*time.Millisecond, "failover took %s", took)
	require.Eventually(t, func() bool { return w.sink.count("x") == 300 && w.sink.count("y") == 300 },
		20*time.Second, 5*time.Millisecond)
	for _, c := range cs {
		w.sink.checkPace(t, c)
	}
}

// A leader that stops gracefully releases its lease: the standby takes over
// at its next try (every LeaderTTL/3), not when the lease would have run out.
func TestSchedulerStopReleasesLeaseForStandby(t *testing.T) {
	c := couponq.Campaign{ID: "x", Stock: 10000, BatchSize: 5, Interval: 10 * time.Millisecond}
	w := newWorld(t, c)
	leaderTTL := 900 * time.Millisecond
	ttl := func(cfg *scheduler.Config) { cfg.LeaderTTL = leaderTTL }
	a := w.scheduler(t, "a", ttl)
	b := w.scheduler(t, "b", ttl)
	w.admit(t, "x", 0, 200)
	require.NoError(t, a.Start(context.Background()))
	require.Eventually(t, a.Leading, 2*time.Second, time.Millisecond)
	start(t, b)
	require.Eventually(t, func() bool { return len(w.sink.of("x")) > 0 }, 2*time.Second, time.Millisecond)

	require.NoError(t, a.Stop(context.Background()))
	stopped := time.Now()
	require.Eventually(t, b.Leading, 2*time.Second, time.Millisecond, "the standby takes over")
	took := time.Since(stopped)
	assert.Less(t, took, leaderTTL/3+150*time.Millisecond,
		"took over in %s: the lease was released, not left to expire (that takes %s or more)", took, leaderTTL*2/3)
	require.Eventually(t, func() bool { return w.sink.count("x") == 200 }, 10*time.Second, 5*time.Millisecond)
}

func TestSchedulerStopsMovingWhenLeaseCannotBeRefreshed(t *testing.T) {
	c := couponq.Campaign{ID: "blip", Stock: 10000, BatchSize: 1, Interval: 5 * time.Millisecond}
	w := newWorld(t, c)
	var down atomic.Bool
	leaderTTL := 300 * time.Millisecond
	s := w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.Locker, cfg.LeaderTTL = flakyLocker{w.locker, &down}, leaderTTL
	})
	w.admit(t, c.ID, 0, 5000)
	start(t, s)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) > 0 }, time.Second, time.Millisecond)
	down.Store(true)
	wentDown := time.Now()
	time.Sleep(leaderTTL)
	before := w.sink.count(c.ID)
	batches := w.sink.of(c.ID)
	last := batches[len(batches)-1].at
	assert.Less(t, last.Sub(wentDown), leaderTTL*4/5+50*time.Millisecond, "moves stop once the lease's validity runs out")
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, before, w.sink.count(c.ID), "no move without a refreshed lease")
	assert.False(t, s.Leading())
	down.Store(false)
	require.Eventually(t, func() bool { return w.sink.count(c.ID) > before }, 3*time.Second, time.Millisecond,
		"leads again once the backend is back")
	w.sink.checkPace(t, c)
}

func TestSchedulerValidates(t *testing.T) {
	w := newWorld(t)
	good := scheduler.Config{Catalog: w.catalog, Agenda: w.queue, Queue: w.queue, Dispatcher: w.sink.as("x"), Locker: w.locker}
	_, err := scheduler.New(good)
	require.NoError(t, err)
	for name, mut := range map[string]func(*scheduler.Config){
		"no catalog":       func(c *scheduler.Config) { c.Catalog = nil },
		"no agenda":        func(c *scheduler.Config) { c.Agenda = nil },
		"no queue":         func(c *scheduler.Config) { c.Queue = nil },
		"no dispatcher":    func(c *scheduler.Config) { c.Dispatcher = nil },
		"no locker":        func(c *scheduler.Config) { c.Locker = nil },
		"negative ttl":     func(c *scheduler.Config) { c.LeaderTTL = -1 },
		"tiny ttl":         func(c *scheduler.Config) { c.LeaderTTL = time.Millisecond },
		"negative poll":    func(c *scheduler.Config) { c.PollInterval = -1 },
		"negative workers": func(c *scheduler.Config) { c.Workers = -1 },
		"negative lease":   func(c *scheduler.Config) { c.LeaseTTL = -1 },
		"negative bound":   func(c *scheduler.Config) { c.MaxInFlightBatches = -1 },
		"bound, no stats": func(c *scheduler.Config) {
			c.MaxInFlightBatches, c.Queue = 1, struct{ couponq.Leaser }{w.queue}
		},
	} {
		cfg := good
		mut(&cfg)
		_, err := scheduler.New(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
	}
}

func TestSchedulerStartStop(t *testing.T) {
	w := newWorld(t)
	s := w.scheduler(t, "s", nil)
	require.NoError(t, s.Stop(context.Background()), "Stop before Start is fine")
	s = w.scheduler(t, "s", nil)
	require.NoError(t, s.Start(context.Background()))
	assert.Error(t, s.Start(context.Background()))
	require.Eventually(t, s.Leading, time.Second, time.Millisecond)
	require.NoError(t, s.Stop(context.Background()))
	require.NoError(t, s.Stop(context.Background()), "Stop twice is fine")
	assert.False(t, s.Leading())
	lk, err := w.locker.Obtain(context.Background(), scheduler.DefaultKey, time.Second)
	require.NoError(t, err, "a stopped leader gives its lease up")
	require.NoError(t, lk.Release(context.Background()))
}
