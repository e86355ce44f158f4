package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/shard"
	"github.com/couponq/couponq/lock"
)

// FuzzCampaignMoves asserts the promise "every accepted request ends with
// an outcome" for any campaign the registry accepts (issue 20: a
// BatchSize of 2^61 was accepted, the in-flight bound's product wrapped
// negative, and the admitted users waited forever).
//
// It runs the real code path, not a model of it: the fuzzer's values
// become a Campaign, created in a memline Registry (inputs it refuses are
// skipped: Validate's bounds are what it explores); users are admitted
// through admission.Service onto a memline Queue behind the sub-line
// wrapper (shard.Queue, as a node composes them); and the leader's own
// tick (leadership.tick: the Catalog read, the pre-queue's seating, the
// exact cutoff, the MaxInFlightBatches bound, the leased move, Rest) is
// called in a loop, without timers, so a campaign of any Interval costs the
// same. Its Dispatcher decides each batch against a memory Store at once,
// or holds some entries in flight for a tick, fails their hand-off once,
// or dead-letters them, as the input says; units may already be issued
// outside the line, a user may already hold their limit, and the cutoff
// counts issued units from the Store or from the line.
//
// It asserts, on every tick, that a campaign with entries waiting and
// none in flight moves (leases one or resolves one: the cutoff's and the
// in-flight bound's arithmetic lets at least one entry through), that no
// tick moves more than BatchSize, that the campaign never rests while an
// entry waits or is in flight; and at the end, that every accepted user
// has an outcome within 3×users+6 ticks, that is within as many Intervals
// of the campaign's rate. It checks EstimatedWait and EstimateWait too:
// never negative, monotone in the position.
func FuzzCampaignMoves(f *testing.F) {
	const ms = int64(time.Millisecond)
	// stock, batch, interval (ns), max waiting, per-user limit, shards,
	// pre-queue (ns), opens at and closes at (unix s, 0 for none),
	// MaxInFlightBatches, users, units held outside the line, plan.
	f.Add(int64(10), 3, 20*ms, int64(0), 0, 0, int64(0), int64(0), int64(0), 0, uint8(5), uint8(0), uint64(0))
	// Issue 20's values: refused now (their estimates are checked, the run
	// skipped), kept as seeds.
	f.Add(int64(1000), 1<<61, int64(0), int64(0), 0, 0, int64(0), int64(0), int64(0), 4, uint8(3), uint8(0), uint64(0))
	f.Add(int64(1000), math.MaxInt64, int64(0), int64(0), 0, 0, int64(0), int64(0), int64(0), 0, uint8(3), uint8(0), uint64(0))
	f.Add(int64(1000), 0, 9223372036854*ms, int64(0), 0, 0, int64(0), int64(0), int64(0), 0, uint8(3), uint8(0), uint64(0))
	// At the bounds: the largest batch, stock and line cap, the longest
	// interval, an in-flight bound whose product with the batch overflows.
	f.Add(int64(1e15), 100_000, int64(time.Hour), int64(1e15), 1_000_000, 0, int64(0), int64(0), int64(0), math.MaxInt, uint8(7), uint8(0), uint64(0x5555))
	f.Add(int64(1<<40), 5000, ms, int64(0), 0, 0, int64(0), int64(0), int64(0), math.MaxInt/4999, uint8(7), uint8(0), uint64(0xdeadbeef))
	f.Add(int64(1<<40), 1<<16, ms, int64(0), 0, 0, int64(0), int64(0), int64(0), 1<<48, uint8(7), uint8(0), uint64(0x1))
	// The cutoff: a stock smaller than the line, units issued outside it,
	// the line's count (not the Store's), entries held in flight.
	f.Add(int64(3), 2, 5*ms, int64(0), 0, 0, int64(0), int64(0), int64(0), 1, uint8(7), uint8(2), uint64(0xaaaa_aaaa_0000_0004))
	f.Add(int64(2), 100_000, 5*ms, int64(4), 2, 0, int64(0), int64(0), int64(0), 0, uint8(7), uint8(2), uint64(0x3333_0000_0000_0006))
	// Sharded, with a line cap; a pre-queue long past; a window open now.
	f.Add(int64(5), 2, 10*ms, int64(6), 0, couponq.MaxShards, int64(0), int64(0), int64(0), 2, uint8(7), uint8(0), uint64(0x0f0f_0000_0000_0001))
	f.Add(int64(4), 1, ms, int64(0), 0, 0, int64(7*24*time.Hour), int64(1_700_000_000), int64(253_402_300_799), 0, uint8(6), uint8(1), uint64(0x0000_0000_0000_0018))
	// Paused first, then resumed.
	f.Add(int64(6), 2, ms, int64(0), 0, 0, int64(0), int64(0), int64(0), 0, uint8(4), uint8(0), uint64(0x20))

	f.Fuzz(func(t *testing.T, stock int64, batch int, interval, maxWaiting int64, perUser, shards int,
		preQueue, opensAt, closesAt int64, batches int, users, held uint8, plan uint64) {
		c := couponq.Campaign{ID: "fz", Stock: stock, BatchSize: batch, Interval: time.Duration(interval),
			MaxWaiting: maxWaiting, PerUserLimit: perUser, Shards: shards, PreQueue: time.Duration(preQueue),
			OpensAt: unixOrZero(opensAt), ClosesAt: unixOrZero(closesAt), Paused: plan&0x20 != 0}
		checkEstimates(t, c)
		if c.Validate() != nil {
			t.Skip()
		}
		newFuzzRun(t, c, batches, users, held, plan).run(t)
	})
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// checkEstimates: never negative, monotone in the position, unknown
// exactly while paused, and no longer for a known claim than for none.
func checkEstimates(t *testing.T, c couponq.Campaign) {
	var positions []int64
	for _, p := range []int64{1, 2, 99, 100, 101, int64(c.BatchSize), int64(c.BatchSize) + 1,
		c.Stock / 2, c.Stock - 1, c.Stock, c.Stock + 1, c.Stock + 2, 1 << 31, 1 << 53, math.MaxInt64 - 1, math.MaxInt64} {
		if p > 0 { // overflowed ones too
			positions = append(positions, p)
		}
	}
	slices.Sort(positions)
	claimed := max(c.Stock/2, 0)
	prev, prevKnown := time.Duration(0), time.Duration(0)
	for _, p := range positions {
		w := rateWait(c, p)
		k, known := c.EstimateWait(p, claimed)
		if w < 0 || w < prev {
			t.Fatalf("%+v: EstimateWait(%d, -1) = %s, after %s for a position ahead", c, p, w, prev)
		}
		if known == c.Paused || k < 0 || k < prevKnown {
			t.Fatalf("%+v: EstimateWait(%d, %d) = %s, %v, after %s for a position ahead", c, p, claimed, k, known, prevKnown)
		}
		if u, _ := c.EstimateWait(p, -1); known && (k > u || u != w) {
			t.Fatalf("%+v: position %d: EstimateWait %s with %d claimed, %s with none known; paced %s", c, p, k, claimed, u, w)
		}
		prev, prevKnown = w, k
	}
	if w := rateWait(c, 0); w != 0 {
		t.Fatalf("%+v: EstimateWait(0, -1) = %s", c, w)
	}
}

// fuzzRun is one campaign's sale on the in-memory backends.
type fuzzRun struct {
	c        couponq.Campaign
	reg      *memline.Registry
	line     *shard.Queue
	svc      *admission.Service
	store    *memory.Store
	d        *fuzzDispatcher
	s        *Scheduler
	users    []string // admitted
	events   []dispatch.TickEvent
	maxTicks int
}

func newFuzzRun(t *testing.T, c couponq.Campaign, batches int, users, held uint8, plan uint64) *fuzzRun {
	ctx := context.Background()
	reg, err := memline.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, c); err != nil {
		t.Fatalf("Validate accepts %+v, the registry does not: %v", c, err)
	}
	base := memline.NewQueue(nil)
	line, err := shard.New(shard.Config{Queue: base, Catalog: reg, Lag: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admission.New(admission.Config{Catalog: reg, Queue: line})
	if err != nil {
		t.Fatal(err)
	}
	r := &fuzzRun{c: c, reg: reg, line: line, svc: svc, store: memory.NewStore()}
	r.d = &fuzzDispatcher{run: r, plan: plan >> 8, tried: map[string]bool{}}
	// Units issued before, outside the line; and, if the plan says so, the
	// first user already holds their limit.
	for i := range min(int64(held), c.Stock) {
		r.issue(t, fmt.Sprintf("h%d", i), fmt.Sprintf("earlier/%d", i))
	}
	if plan&0x08 != 0 {
		for i := range min(max(c.PerUserLimit, 1), 3) {
			r.issue(t, "u0", fmt.Sprintf("earlier/u0/%d", i))
		}
	}
	cfg := Config{Catalog: reg, Agenda: line, Queue: line, Dispatcher: r.d, Locker: lock.NewMemory(),
		MaxInFlightBatches: max(batches, 0), OnTick: func(ev dispatch.TickEvent) { r.events = append(r.events, ev) }}
	if plan&0x10 == 0 {
		cfg.Issued = r.store
	}
	if r.s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	n := int(users%8) + 1
	for i := range n {
		u := fmt.Sprintf("u%d", i)
		switch _, err := svc.Admit(ctx, couponq.Request{Campaign: c.ID, User: u}); {
		case err == nil:
			r.users = append(r.users, u)
		case errors.Is(err, couponq.ErrNotOpen), errors.Is(err, couponq.ErrClosed), errors.Is(err, couponq.ErrSoldOut):
			// Not accepted (the window, a full line): no promise to keep.
		default:
			t.Fatalf("admit %s: %v", u, err)
		}
	}
	r.maxTicks = 3*len(r.users) + 6
	return r
}

func (r *fuzzRun) issue(t *testing.T, user, key string) {
	_, err := r.store.Issue(context.Background(), couponq.IssueRequest{Campaign: r.c.ID, User: user, Key: key,
		Stock: r.c.Stock, PerUserLimit: r.c.PerUserLimit})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *fuzzRun) run(t *testing.T) {
	ctx := context.Background()
	if r.c.InPreQueue(time.Now()) {
		t.Skip() // served from OpensAt on, which a fuzz run does not wait for
	}
	l := &leadership{s: r.s, since: time.Now()} // won at the zero time: a first move is due at once
	l.validFor.Store(math.MaxInt64)
	var rm room
	if r.c.Paused {
		before := r.stats(t)
		res := l.tick(ctx, r.c.ID, true, time.Now(), rm)
		if after := r.stats(t); res.leased != 0 || after.Waiting != before.Waiting || res.rested && before.Waiting > 0 {
			t.Fatalf("a paused campaign moved: %+v, %+v -> %+v", res, before, after)
		}
		resumed := r.c
		resumed.Paused, resumed.Version = false, 1
		if _, err := r.reg.Update(ctx, resumed); err != nil {
			t.Fatal(err)
		}
	}
	for tick := 1; ; tick++ {
		r.d.decideHeld(t)
		before := r.stats(t)
		if before.Waiting == 0 && before.InFlight == 0 {
			break
		}
		if tick > r.maxTicks {
			t.Fatalf("%+v: after %d ticks (%s at its rate), %d entries wait and %d are in flight; ticks: %+v",
				r.c, r.maxTicks, time.Duration(r.maxTicks)*r.c.WithDefaults().Interval, before.Waiting, before.InFlight, r.events)
		}
		n := len(r.events)
		res := l.tick(ctx, r.c.ID, true, time.Now(), rm)
		rm = res.room
		after := r.stats(t)
		var ev dispatch.TickEvent
		if len(r.events) > n {
			ev = r.events[len(r.events)-1]
		}
		switch {
		case ev.Err != nil && !errors.Is(ev.Err, errHandoff):
			t.Fatalf("tick %d: %v", tick, ev.Err)
		case ev.Leased > r.c.WithDefaults().BatchSize:
			t.Fatalf("tick %d moved %d, more than BatchSize %d", tick, ev.Leased, r.c.WithDefaults().BatchSize)
		case before.InFlight == 0 && before.Waiting > 0 && ev.Leased == 0 && after.Waiting >= before.Waiting:
			t.Fatalf("tick %d: %d entries wait, none in flight, and it moved nobody: %+v (stats %+v, Store issued %d)",
				tick, before.Waiting, ev, before, r.issued(t))
		case res.rested && (after.Waiting > 0 || after.InFlight > 0 || r.d.holding()):
			t.Fatalf("tick %d: the campaign rests with %d waiting and %d in flight", tick, after.Waiting, after.InFlight)
		}
	}
	for _, u := range r.users {
		st, err := r.svc.Status(ctx, r.c.ID, u)
		if err != nil || !st.State.Terminal() {
			t.Fatalf("%+v: accepted user %s has no outcome: %+v, %v", r.c, u, st, err)
		}
	}
	if got := r.issued(t); got > r.c.Stock {
		t.Fatalf("issued %d of a stock of %d", got, r.c.Stock)
	}
}

func (r *fuzzRun) stats(t *testing.T) couponq.LineStats {
	st, err := r.line.LineStats(context.Background(), r.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (r *fuzzRun) issued(t *testing.T) int64 {
	n, err := r.store.IssuedCount(context.Background(), r.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fuzzDispatcher decides what it is handed as the plan says, two bits per
// entry: decide it now; hold it in flight until the next tick; fail its
// hand-off (once per entry, then decide it now); or dead-letter it.
type fuzzDispatcher struct {
	run   *fuzzRun
	plan  uint64
	bit   uint
	held  []couponq.Entry
	tried map[string]bool
}

var errHandoff = errors.New("hand-off failed (injected)")

func (d *fuzzDispatcher) next() uint64 {
	v := (d.plan >> (d.bit % 56)) & 3
	d.bit += 2
	return v
}

func (d *fuzzDispatcher) holding() bool { return len(d.held) > 0 }

func (d *fuzzDispatcher) Dispatch(ctx context.Context, b []couponq.Entry) error {
	failed := map[int]error{}
	for i, e := range b {
		switch d.next() {
		case 1:
			d.held = append(d.held, e)
		case 2:
			if !d.tried[e.Key()] {
				d.tried[e.Key()] = true
				failed[i] = errHandoff
				continue
			}
			fallthrough
		case 0:
			if err := d.decide(ctx, e); err != nil {
				return err
			}
		case 3:
			res := couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeFailed}
			if err := d.run.line.Record(ctx, e.Campaign, res); err != nil {
				return err
			}
		}
	}
	if len(failed) > 0 {
		return &couponq.PartialError{Failed: failed}
	}
	return nil
}

// decide asks the Store and records the outcome, as the issuer does.
func (d *fuzzDispatcher) decide(ctx context.Context, e couponq.Entry) error {
	c := d.run.c
	iss, err := d.run.store.Issue(ctx, couponq.IssueRequest{Campaign: e.Campaign, User: e.User, Key: e.Key(),
		Stock: c.Stock, PerUserLimit: c.PerUserLimit})
	if err != nil {
		return err
	}
	res := couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeSoldOut}
	switch iss.Outcome {
	case couponq.Issued:
		res.State, res.Reason, res.IssuanceID = couponq.StateIssued, "", iss.ID
	case couponq.Duplicate:
		res.Reason = couponq.CodeDuplicate
	}
	if err := d.run.line.Record(ctx, e.Campaign, res); err != nil {
		return err
	}
	if iss.SoldOut || iss.Outcome == couponq.SoldOut {
		return d.run.line.MarkSoldOut(ctx, e.Campaign)
	}
	return nil
}

func (d *fuzzDispatcher) decideHeld(t *testing.T) {
	held := d.held
	d.held = nil
	for _, e := range held {
		if err := d.decide(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// rateWait is the wait at position counting only the pace and the whole
// Stock: EstimateWait with nothing claimed known, as if not paused.
func rateWait(c couponq.Campaign, position int64) time.Duration {
	c.Paused = false
	w, _ := c.EstimateWait(position, -1)
	return w
}
