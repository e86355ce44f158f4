package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/lifecycle"
	"github.com/couponq/couponq/lock"
)

// Sweeper is implemented by Agendas that can find, without a list of
// campaigns, every campaign with entries in line or in flight and wake it
// (memline.Queue and redisq.Queue do). A Scheduler sweeps when it gains
// leadership, and every Config.SweepInterval if set, so an agenda
// that missed a wake is repaired.
type Sweeper interface {
	// Sweep wakes every campaign that has entries and reports how many
	// there are.
	Sweep(ctx context.Context) (int, error)
}

// DefaultKey is the leader lease key when Config.Key is
// empty.
const DefaultKey = "couponq:scheduler"

// Config configures a Scheduler. Zero values take the defaults
// documented on each field.
type Config struct {
	// Catalog supplies each campaign's BatchSize, Interval and Paused, read
	// at every tick, so changes apply at the campaign's next tick. Pass a
	// caching Catalog (catalog.NewCache) in front of a remote
	// Registry. Required.
	Catalog catalog.Catalog
	// Agenda lists the campaigns to drive; admission wakes them (see
	// admission.Service) and the Scheduler lets them rest. If it is also a
	// Sweeper, the Scheduler sweeps on gaining leadership. Required.
	Agenda couponq.Agenda
	// Queue is the line entries are leased from. Required.
	Queue couponq.Leaser
	// Dispatcher receives each batch. Required.
	Dispatcher couponq.Dispatcher
	// Locker holds the leader lease: one Scheduler of the process group
	// moves entries at a time. Required (lock.NewMemory() within one
	// process).
	Locker lock.Locker
	// Key names the leader lease; Schedulers sharing a Key and a Locker
	// form one group. Empty means DefaultKey.
	Key string
	// LeaderTTL is how long the leader lease outlives a leader that stops
	// refreshing it. The leader refreshes every LeaderTTL/3 and moves only
	// within LeaderTTL×4/5 of its last successful refresh began; a standby
	// tries to take the lease every LeaderTTL/3, so it takes over within
	// LeaderTTL×4/3 of the leader's death. Zero means 10s (an idle leader
	// then costs under 2 Redis commands a second, as Redis counts them);
	// otherwise at least 10ms.
	LeaderTTL time.Duration
	// PollInterval is how often the leader reads the Agenda for campaigns
	// that woke: the most a woken campaign waits for its first tick, unless
	// the Agenda announces wakes (the Redis and in-memory ones do; see
	// wakes.go), when the leader reads it at once. Zero means 1s.
	PollInterval time.Duration
	// Workers is how many moves run at once, across campaigns; a campaign is
	// never moved concurrently with itself. Zero means 16.
	Workers int
	// LeaseTTL is how long a leased batch may take to be dispatched before
	// its entries return to the line. Zero means 30s.
	LeaseTTL time.Duration
	// HandoffTimeout is how long after a successful dispatch an entry's
	// result may take before the entry is dispatched again (the Store absorbs
	// the duplicate). Zero means 5m.
	HandoffTimeout time.Duration
	// DispatchTimeout bounds one Dispatch call. Zero means LeaseTTL/2.
	DispatchTimeout time.Duration
	// SweepInterval is how often the leader sweeps the Agenda (if it is a
	// Sweeper) besides once when it gains leadership. Zero means only then;
	// negative means never.
	SweepInterval time.Duration
	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// OnTick, if set, is called after every tick that moved (or tried to
	// move) a campaign, from the worker that ran it: it must be safe for
	// concurrent use.
	OnTick func(dispatch.TickEvent)
	// Tracer, if set, starts a couponq.StageDispatch span per moved entry,
	// a child of the trace the entry was admitted with (Entry.Trace), and
	// sends the entry on carrying the span's trace. Nil means no tracing.
	Tracer couponq.Tracer
	// MaxInFlightBatches, if positive, bounds what a campaign may have in
	// flight (handed downstream, not yet decided) to MaxInFlightBatches ×
	// BatchSize entries: a tick moves at most that bound minus what is in
	// flight, read from the Queue's LineStats. When consumers stall (a
	// worker killed, a partition without a leader), the backlog then waits
	// in the line instead of piling up in the transport, and when they come
	// back the Store sees at most this many entries at once on top of the
	// regular pace: in any k Intervals, at most (k+1) × BatchSize plus this
	// bound. The price is one LineStats read per tick, and a campaign whose
	// results are lost (never recorded) waits for HandoffTimeout to put
	// them back in line before it moves again. The Queue must implement
	// couponq.LineStatser (redisq and memory do). Zero means no bound: every
	// tick moves up to BatchSize whatever is in flight.
	MaxInFlightBatches int
	// Issued counts each campaign's issued units for the exact cutoff (see
	// package dispatch's doc, "First come, first served"): the Store's own
	// count when it has one (pgstore, redisstore and memory do), which
	// includes units the line never saw. It is asked for the campaign's
	// store name (couponq.Campaign.StoreCampaign). Nil means the Queue's count of
	// entries recorded as issued (LineStats.Issued).
	Issued couponq.IssuedCounter
	// NoCutoff turns the exact cutoff off: every tick moves up to BatchSize
	// whatever stock remains undecided, and the Store gives the last units
	// to whichever entries in flight reach it first. It exists as the
	// benchmark's baseline for the cutoff's price and for tests of the
	// Store's own sold-out answers; nodes never set it.
	NoCutoff bool
}

// Scheduler drives every campaign that has entries to move, for a whole
// process group: one Scheduler per process, one of them leading. The leader
// reads the Agenda, moves each awake campaign at most BatchSize per
// Interval (its own, from the Catalog) with a leased hand-off, and lets a campaign rest once a tick finds nothing to lease and
// its line and flight are empty. The package doc describes the design.
type Scheduler struct {
	cfg     Config
	mv      mover
	log     *slog.Logger
	runner  lifecycle.Runner
	leading atomic.Bool
	seats   seats
}

// NewScheduler validates cfg and returns a Scheduler.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Catalog == nil || cfg.Agenda == nil || cfg.Queue == nil || cfg.Dispatcher == nil || cfg.Locker == nil {
		return nil, fmt.Errorf("%w: dispatch: scheduler: Catalog, Agenda, Queue, Dispatcher and Locker are required", couponq.ErrInvalidConfig)
	}
	if cfg.LeaderTTL < 0 || cfg.PollInterval < 0 || cfg.LeaseTTL < 0 || cfg.HandoffTimeout < 0 || cfg.DispatchTimeout < 0 {
		return nil, fmt.Errorf("%w: dispatch: scheduler: durations must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.LeaderTTL > 0 && cfg.LeaderTTL < 10*time.Millisecond {
		return nil, fmt.Errorf("%w: dispatch: scheduler: LeaderTTL must be at least 10ms, got %s", couponq.ErrInvalidConfig, cfg.LeaderTTL)
	}
	if err := checkInFlightBound(cfg.Queue, cfg.MaxInFlightBatches); err != nil {
		return nil, fmt.Errorf("%w: dispatch: scheduler: %w", couponq.ErrInvalidConfig, err)
	}
	if _, ok := cfg.Queue.(couponq.LineStatser); !ok && !cfg.NoCutoff {
		return nil, fmt.Errorf("%w: dispatch: scheduler: the exact cutoff needs a Queue that implements couponq.LineStatser", couponq.ErrInvalidConfig)
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("%w: dispatch: scheduler: Workers must be >= 0, got %d", couponq.ErrInvalidConfig, cfg.Workers)
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.LeaderTTL == 0 {
		cfg.LeaderTTL = 10 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	mv := newMover(cfg.Queue, cfg.Dispatcher, cfg.Tracer, &cfg.LeaseTTL, &cfg.HandoffTimeout, &cfg.DispatchTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		cfg: cfg,
		mv:  mv,
		log: log.With("scheduler", cfg.Key),
	}, nil
}

// Run stands by for the leader lease and, while it holds it, drives the
// awake campaigns, until ctx is done; then it stops every move, gives the
// lease up and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
		}
		start := time.Now()
		lk, err := s.cfg.Locker.Obtain(ctx, s.cfg.Key, s.cfg.LeaderTTL)
		switch {
		case err == nil:
			s.lead(ctx, lk, start, time.Now())
		case !errors.Is(err, lock.ErrNotObtained) && ctx.Err() == nil:
			s.log.Warn("couponq: scheduler leader obtain", "err", err)
		}
		retry.Reset(s.cfg.LeaderTTL / 3)
	}
}

// Start runs the scheduler in a goroutine until Stop.
func (s *Scheduler) Start(ctx context.Context) error { return s.runner.Start(ctx, s.Run) }

// Stop ends a run begun by Start and waits for it (or for ctx): in-flight
// moves are cancelled (what the Dispatcher took is still acked) and the
// leader lease is given up. Safe to call twice.
func (s *Scheduler) Stop(ctx context.Context) error { return s.runner.Stop(ctx) }

// Leading reports whether this Scheduler holds the leader lease now.
func (s *Scheduler) Leading() bool { return s.leading.Load() }

var (
	errLeaseLost    = errors.New("leader lease lost")
	errLeaseExpired = errors.New("leader lease not refreshed in time")
)

// leadership is one spell of holding the leader lease.
type leadership struct {
	s     *Scheduler
	lk    lock.Lock
	since time.Time // when the Obtain that won it began
	won   time.Time // when that Obtain returned
	// validFor is how long after since the lease is surely still ours: the
	// last successful refresh's start + LeaderTTL×4/5, as nanoseconds.
	validFor atomic.Int64
}

func (l *leadership) valid() bool { return time.Since(l.since) < time.Duration(l.validFor.Load()) }

// validTTL is how much of a LeaderTTL the leader trusts: the rest is margin
// for clock-rate drift and for a Lease sent just before it ends.
func (s *Scheduler) validTTL() time.Duration { return s.cfg.LeaderTTL - s.cfg.LeaderTTL/5 }

// lead drives campaigns until ctx is done or leadership ends, then waits for
// every goroutine it started and gives the lease up.
func (s *Scheduler) lead(ctx context.Context, lk lock.Lock, since, won time.Time) {
	l := &leadership{s: s, lk: lk, since: since, won: won}
	l.validFor.Store(int64(s.validTTL()))
	s.leading.Store(true)
	s.log.Info("couponq: scheduler leads")
	lctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.keep(lctx, cancel) })
	if sw, ok := s.cfg.Agenda.(Sweeper); ok && s.cfg.SweepInterval >= 0 {
		wg.Go(func() { l.sweep(lctx, sw) })
	}
	l.drive(lctx)
	cause := context.Cause(lctx)
	cancel(nil)
	wg.Wait()
	s.leading.Store(false)
	if errors.Is(cause, errLeaseLost) {
		return
	}
	if ctx.Err() == nil {
		s.log.Warn("couponq: scheduler steps down", "cause", cause)
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer rcancel()
	if err := lk.Release(rctx); err != nil && !errors.Is(err, lock.ErrLockLost) {
		s.log.Warn("couponq: scheduler leader release", "err", err)
	}
}

// keep refreshes the lease every LeaderTTL/3 (sooner after a failed
// refresh) and ends the leadership, through cancel, when the lease is lost
// or could not be refreshed before its trusted validity ran out.
func (l *leadership) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	s := l.s
	every := s.cfg.LeaderTTL / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		deadline := l.since.Add(time.Duration(l.validFor.Load()))
		rctx, rcancel := context.WithDeadline(ctx, deadline)
		err := l.lk.Refresh(rctx, s.cfg.LeaderTTL)
		rcancel()
		switch {
		case err == nil:
			l.validFor.Store(int64(start.Sub(l.since) + s.validTTL()))
			t.Reset(every)
		case errors.Is(err, lock.ErrLockLost):
			s.log.Warn("couponq: scheduler lost leadership", "err", err)
			cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
			return
		case ctx.Err() != nil:
			return
		case !l.valid():
			cancel(fmt.Errorf("%w: %w", errLeaseExpired, err))
			return
		default:
			// The lock backend failed: keep moving while the lease is surely
			// ours, and try again sooner.
			s.log.Warn("couponq: scheduler leader refresh", "err", err)
			t.Reset(min(every/3, time.Until(deadline)))
		}
	}
}

// sweep asks the Agenda to wake every campaign with entries, now and then
// every SweepInterval if set.
func (l *leadership) sweep(ctx context.Context, sw Sweeper) {
	s := l.s
	for {
		start := time.Now()
		n, err := sw.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("couponq: scheduler sweep", "err", err)
		case err == nil:
			s.log.Debug("couponq: scheduler swept", "busy", n, "took", time.Since(start))
		}
		if s.cfg.SweepInterval <= 0 {
			return
		}
		t := time.NewTimer(s.cfg.SweepInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// campaign is the leader's state of one campaign it drives. Only drive's
// goroutine touches it.
type campaign struct {
	id      string
	next    time.Time // when its next tick is due
	failing bool      // the Catalog failed it last time (logged once)
	// restAfter is when a tick that leases nothing may try Rest again, after
	// restFails failed tries in a row (entries in flight, still to be
	// decided, keep a campaign awake).
	restAfter time.Time
	restFails int
	// room is what the cutoff knows of the stock that remains undecided.
	room room
}

// dueHeap orders campaigns by their next tick.
type dueHeap []*campaign

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*campaign)) }
func (h *dueHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}

// tickResult is what a worker reports back about one campaign's tick.
type tickResult struct {
	id       string
	next     time.Time
	interval time.Duration
	leased   int
	tried    bool // Rest was tried
	rested   bool
	catErr   error // the Catalog's error, if it failed
	room     room  // the campaign's room after the tick
}

// drive is the leader's loop: it polls the Agenda, runs due ticks on at
// most Workers goroutines and schedules each campaign's next tick. It
// returns when ctx is done, after every tick it started has returned.
func (l *leadership) drive(ctx context.Context) {
	s := l.s
	driven := map[string]*campaign{}
	var due dueHeap
	results := make(chan tickResult, s.cfg.Workers) // running <= Workers: sends never block
	running := 0
	var ticks sync.WaitGroup
	defer ticks.Wait()

	poll := func() {
		ids, err := s.cfg.Agenda.Awake(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("couponq: scheduler agenda", "err", err)
			}
			return
		}
		now := time.Now()
		for _, id := range ids {
			if driven[id] == nil {
				c := &campaign{id: id, next: now}
				driven[id] = c
				heap.Push(&due, c)
			}
		}
	}
	// An Agenda that announces wakes has a woken campaign read at once,
	// not at the next poll (wakes.go).
	wakes, stopWakes := watchWakes(ctx, s.cfg.Agenda)
	defer stopWakes()
	poll()
	polls := time.NewTicker(s.cfg.PollInterval)
	defer polls.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		now := time.Now()
		for running < s.cfg.Workers && due.Len() > 0 && !due[0].next.After(now) {
			c := heap.Pop(&due).(*campaign)
			mayRest, dueAt, rm := !now.Before(c.restAfter), c.next, c.room
			running++
			ticks.Go(func() { results <- l.tick(ctx, c.id, mayRest, dueAt, rm) })
		}
		var wakeC <-chan time.Time
		if running < s.cfg.Workers && due.Len() > 0 {
			wake.Reset(due[0].next.Sub(now))
			wakeC = wake.C
		}
		select {
		case <-ctx.Done():
			return
		case <-polls.C:
			poll()
		case _, ok := <-wakes:
			if !ok {
				wakes = nil // the watcher ended; the polls go on
				continue
			}
			poll()
		case <-wakeC:
		case r := <-results:
			running--
			c := driven[r.id]
			if r.rested {
				delete(driven, r.id)
				continue
			}
			switch {
			case r.catErr != nil && !c.failing:
				c.failing = true
				s.log.Warn("couponq: scheduler cannot read campaign; it stays awake, unmoved", "campaign", r.id, "err", r.catErr)
			case r.catErr == nil && c.failing:
				c.failing = false
				s.log.Info("couponq: scheduler reads campaign again", "campaign", r.id)
			}
			switch {
			case r.leased > 0:
				c.restFails, c.restAfter = 0, time.Time{}
			case r.tried:
				// Entries in flight, awaiting results: try again after 1, 2,
				// 4, ... up to 16 ticks.
				c.restFails++
				c.restAfter = time.Now().Add(restBackoff(r.interval, c.restFails))
			}
			c.next, c.room = r.next, r.room
			heap.Push(&due, c)
		}
	}
}

// restBackoff is how long a campaign that failed to rest fails times in a
// row waits before it tries again: interval × 1, 2, 4, 8, then 16,
// saturating (an Interval that would overflow the shift waits the longest
// time.Duration instead of a negative one, which would try at every tick).
func restBackoff(interval time.Duration, fails int) time.Duration {
	shift := min(max(fails-1, 0), 4)
	if interval > math.MaxInt64>>shift {
		return math.MaxInt64
	}
	return interval << shift
}

// catchUpShare bounds how much of its lateness a tick makes up: the next
// tick may come up to Interval/catchUpShare early.
const catchUpShare = 20

// tick runs one tick of a campaign, due at dueAt: read its config, move
// one batch unless it is paused, and try to let it rest if there was nothing
// to lease. The next tick is due one Interval after this one was due, so a
// small lateness in starting it (waiting for a worker, reading the Catalog)
// does not lower the campaign's rate; but never sooner than
// Interval×(1-1/20) after this tick began, so two moves of a campaign always
// begin at least that far apart and a late tick is not followed by a burst.
func (l *leadership) tick(ctx context.Context, id string, mayRest bool, dueAt time.Time, rm room) tickResult {
	s := l.s
	r := tickResult{id: id, room: rm}
	start := time.Now()
	c, err := s.cfg.Catalog.Campaign(ctx, id)
	if err != nil {
		// Unknown (or unreadable) campaigns stay awake but unmoved: their
		// entries are kept until the Catalog knows them.
		if ctx.Err() == nil {
			r.catErr = err
		}
		r.next = time.Now().Add(s.cfg.PollInterval)
		return r
	}
	c = c.WithDefaults()
	r.interval = c.Interval
	now := time.Now()
	switch {
	case now.Before(l.won.Add(c.Interval)):
		// A previous leader may have moved the campaign up to the moment
		// this one took over: the first move waits one Interval.
		r.next = l.won.Add(c.Interval)
		return r
	case c.Paused || !l.valid():
		r.next = now.Add(c.Interval)
		return r
	}
	ev := dispatch.TickEvent{Campaign: id}
	n := c.BatchSize
	ready, seating, err := s.seats.ready(ctx, s.cfg.Queue, c, now, s.log)
	ev.Seating, ev.Err, ev.PreQueue = seating, err, !ready
	if !ready {
		n = 0
	}
	var stats *couponq.LineStats // read at most once per tick
	if !s.cfg.NoCutoff && n > 0 {
		n, ev.Cutoff, stats, ev.Err = s.cutoff(ctx, c, n, &r.room)
	}
	if s.cfg.MaxInFlightBatches > 0 && n > 0 && ev.Err == nil {
		var room int
		room, ev.Err = inFlightRoom(ctx, s.cfg.Queue, stats, id, c.BatchSize, s.cfg.MaxInFlightBatches)
		ev.Held = ev.Err == nil && room < n
		n = min(n, room)
	}
	if (n > 0 || ev.Cutoff) && ev.Err == nil {
		// A tick the cutoff holds at 0 still leases nothing, which returns
		// entries whose lease or hand-off ran out to the line.
		ev.Leased, ev.Failed, ev.Err = s.mv.move(ctx, id, n)
		r.room.spend(ev.Leased)
	}
	r.next, r.leased = dueAt.Add(c.Interval), ev.Leased
	if floor := start.Add(c.Interval - c.Interval/catchUpShare); r.next.Before(floor) {
		r.next = floor
	}
	if ev.Err == nil && ev.Leased == 0 && !ev.Held && !ev.Cutoff && !ev.PreQueue && mayRest {
		r.tried = true
		r.rested, ev.Err = s.cfg.Agenda.Rest(ctx, id)
		ev.Rested = r.rested
	}
	if ev.Err != nil && ctx.Err() == nil {
		s.log.Error("couponq: scheduler tick", "campaign", id, "err", ev.Err, "leased", ev.Leased, "failed", ev.Failed)
	}
	if s.cfg.OnTick != nil {
		ev.Duration = time.Since(now)
		s.cfg.OnTick(ev)
	}
	return r
}
