package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/lifecycle"
	"github.com/couponq/couponq/lock"
)

// Config configures a Throttle. Zero values take the defaults documented on
// each field.
type Config struct {
	// Campaign supplies the ID, BatchSize and Interval. Required.
	Campaign couponq.Campaign
	// Queue is the line entries are leased from. Required.
	Queue couponq.Leaser
	// Dispatcher receives each batch. Required.
	Dispatcher couponq.Dispatcher
	// Locker holds the leader lease that keeps one active throttle per
	// campaign across processes. Required (lock.NewMemory() within one process).
	Locker lock.Locker
	// LeaderTTL is how long the leader lease outlives a leader that stops
	// refreshing it; a standby takes over within LeaderTTL + Interval.
	// Zero means max(3×Interval, 2s).
	LeaderTTL time.Duration
	// LeaseTTL is how long a leased batch may take to be dispatched before
	// its entries return to the line. Zero means 30s.
	LeaseTTL time.Duration
	// HandoffTimeout is how long after a successful dispatch an entry's
	// result may take before the entry is dispatched again (the Store absorbs
	// the duplicate). Zero means 5m.
	HandoffTimeout time.Duration
	// DispatchTimeout bounds one Dispatch call. Zero means LeaseTTL/2.
	DispatchTimeout time.Duration
	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// OnTick, if set, is called after every tick in which this throttle led
	// (a metrics hook).
	OnTick func(TickEvent)
	// Tracer, if set, starts a couponq.StageDispatch span per moved entry,
	// a child of the trace the entry was admitted with (Entry.Trace), and
	// sends the entry on carrying the span's trace. Nil means no tracing.
	Tracer couponq.Tracer
	// MaxInFlightBatches, if positive, bounds the campaign's entries in
	// flight to MaxInFlightBatches × BatchSize, as
	// SchedulerConfig.MaxInFlightBatches does (see there). The Queue must
	// implement couponq.LineStatser. Zero means no bound.
	MaxInFlightBatches int
}

// TickEvent describes one leading tick.
type TickEvent struct {
	Campaign string
	// Leased is how many entries came out of the line.
	Leased int
	// Failed is how many of them the Dispatcher did not take (back in line).
	Failed int
	// Err is the tick's error, if any (lease, dispatch as a whole, ack).
	Err      error
	Duration time.Duration
	// Rested is set by the Scheduler when the tick leased nothing and the
	// campaign came off the Agenda (its line and flight were empty).
	Rested bool
	// Held is set when the tick moved less than BatchSize (or nothing)
	// because of MaxInFlightBatches: the campaign had that many batches'
	// worth in flight.
	Held bool
	// PreQueue is set when the tick moved nothing because the campaign's
	// pre-queue is not seated yet (before OpensAt, or seating failed).
	PreQueue bool
	// Seating is the record of the campaign's pre-queue seating, on the
	// tick that found it done (once per process): an audit keeps it, and
	// couponq.SeatOrder(Seating.Seed, Seating.Entries) replays the order.
	Seating *couponq.Seating
}

// Throttle is the "dam": every Interval it moves at most BatchSize of the
// oldest entries from the Queue to the Dispatcher. Only the throttle holding
// the campaign's leader lease moves entries; the others stand by. It drives
// one fixed campaign; a Scheduler drives all of them, idle ones for free.
type Throttle struct {
	cfg    Config
	mv     mover
	key    string
	log    *slog.Logger
	runner lifecycle.Runner
	leader lock.Lock // touched only by the Run goroutine
	seats  seats
}

// New validates cfg and returns a Throttle.
func New(cfg Config) (*Throttle, error) {
	if err := cfg.Campaign.Validate(); err != nil {
		return nil, err
	}
	if cfg.Queue == nil || cfg.Dispatcher == nil || cfg.Locker == nil {
		return nil, fmt.Errorf("%w: dispatch: Queue, Dispatcher and Locker are required", couponq.ErrInvalidConfig)
	}
	if cfg.LeaderTTL < 0 || cfg.LeaseTTL < 0 || cfg.HandoffTimeout < 0 || cfg.DispatchTimeout < 0 {
		return nil, fmt.Errorf("%w: dispatch: durations must be >= 0", couponq.ErrInvalidConfig)
	}
	if err := checkInFlightBound(cfg.Queue, cfg.MaxInFlightBatches); err != nil {
		return nil, fmt.Errorf("%w: dispatch: %w", couponq.ErrInvalidConfig, err)
	}
	cfg.Campaign = cfg.Campaign.WithDefaults()
	if cfg.LeaderTTL == 0 {
		cfg.LeaderTTL = max(3*cfg.Campaign.Interval, 2*time.Second)
	}
	mv := newMover(cfg.Queue, cfg.Dispatcher, cfg.Tracer, &cfg.LeaseTTL, &cfg.HandoffTimeout, &cfg.DispatchTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Throttle{
		cfg: cfg,
		mv:  mv,
		key: "couponq:throttle:" + cfg.Campaign.ID,
		log: log.With("campaign", cfg.Campaign.ID),
	}, nil
}

// Run ticks until ctx is done, then gives up leadership and returns nil.
func (t *Throttle) Run(ctx context.Context) error {
	tk := time.NewTicker(t.cfg.Campaign.Interval)
	defer tk.Stop()
	defer t.stepDown()
	for {
		t.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}

// Start runs the throttle in a goroutine until Stop.
func (t *Throttle) Start(ctx context.Context) error { return t.runner.Start(ctx, t.Run) }

// Stop ends a run begun by Start and waits for it (or for ctx). Safe to call
// twice.
func (t *Throttle) Stop(ctx context.Context) error { return t.runner.Stop(ctx) }

func (t *Throttle) stepDown() {
	if t.leader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := t.leader.Release(ctx); err != nil && !errors.Is(err, lock.ErrLockLost) {
		t.log.Warn("couponq: throttle leader release", "err", err)
	}
	t.leader = nil
}

// lead reports whether this throttle holds the leader lease, taking or
// refreshing it.
func (t *Throttle) lead(ctx context.Context) bool {
	if t.leader != nil {
		err := t.leader.Refresh(ctx, t.cfg.LeaderTTL)
		switch {
		case err == nil:
			return true
		case errors.Is(err, lock.ErrLockLost):
			t.log.Warn("couponq: throttle lost leadership", "err", err)
			t.leader = nil
		case ctx.Err() == nil:
			// The lock backend failed: move nothing this tick, but keep the
			// handle; the next refresh tells whether the lease survived.
			t.log.Warn("couponq: throttle leader refresh", "err", err)
		}
		return false
	}
	lk, err := t.cfg.Locker.Obtain(ctx, t.key, t.cfg.LeaderTTL)
	if err != nil {
		if !errors.Is(err, lock.ErrNotObtained) && ctx.Err() == nil {
			t.log.Warn("couponq: throttle leader obtain", "err", err)
		}
		return false
	}
	t.log.Info("couponq: throttle leads")
	t.leader = lk
	return true
}

func (t *Throttle) tick(ctx context.Context) {
	if ctx.Err() != nil || !t.lead(ctx) {
		return
	}
	start := time.Now()
	ev := TickEvent{Campaign: t.cfg.Campaign.ID}
	n := t.cfg.Campaign.BatchSize
	ready, seating, err := t.seats.ready(ctx, t.cfg.Queue, t.cfg.Campaign, time.Now(), t.log)
	ev.Seating, ev.Err, ev.PreQueue = seating, err, !ready
	if !ready {
		n = 0
	}
	if t.cfg.MaxInFlightBatches > 0 && n > 0 {
		n, ev.Err = inFlightRoom(ctx, t.cfg.Queue, t.cfg.Campaign.ID, n, t.cfg.MaxInFlightBatches)
		ev.Held = ev.Err == nil && n < t.cfg.Campaign.BatchSize
	}
	if n > 0 && ev.Err == nil {
		ev.Leased, ev.Failed, ev.Err = t.mv.move(ctx, t.cfg.Campaign.ID, n)
	}
	if ev.Err != nil && ctx.Err() == nil {
		t.log.Error("couponq: throttle tick", "err", ev.Err, "leased", ev.Leased, "failed", ev.Failed)
	}
	if t.cfg.OnTick != nil {
		ev.Duration = time.Since(start)
		t.cfg.OnTick(ev)
	}
}
