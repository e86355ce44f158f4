package shard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/shard"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

type fixture struct {
	base  *memline.Queue
	q     *shard.Queue
	clk   *clock
	c     couponq.Campaign
	users []string // in admission order
}

func newFixture(t *testing.T, shards int, lag time.Duration) *fixture {
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	c := couponq.Campaign{ID: "drop", Stock: 1000, Shards: shards}
	cat, err := memline.NewRegistry(c, couponq.Campaign{ID: "plain", Stock: 10})
	require.NoError(t, err)
	base := memline.NewQueue(clk.now)
	q, err := shard.New(shard.Config{Queue: base, Catalog: cat, Lag: lag, Now: clk.now})
	require.NoError(t, err)
	return &fixture{base: base, q: q, clk: clk, c: c}
}

// admit admits users u0..u(n-1), one millisecond apart.
func (f *fixture) admit(t *testing.T, n int) {
	for i := range n {
		u := fmt.Sprintf("u%04d", len(f.users))
		at := f.clk.add(time.Millisecond)
		tk, err := f.q.Admit(context.Background(), couponq.Admission{Campaign: f.c.ID, User: u, PerUserLimit: 1, At: at})
		require.NoError(t, err, i)
		require.False(t, tk.Repeat)
		require.Equal(t, f.c.ID, tk.Campaign)
		require.Equal(t, shard.Of(u, f.c.Shards), int(tk.Entry%int64(f.c.Shards)), "the entry number names the sub-line")
		f.users = append(f.users, u)
	}
}

func TestNewValidates(t *testing.T) {
	cat := catalog.Func(func(context.Context, string) (couponq.Campaign, error) { return couponq.Campaign{}, nil })
	_, err := shard.New(shard.Config{Catalog: cat})
	require.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = shard.New(shard.Config{Queue: memline.NewQueue(nil)})
	require.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = shard.New(shard.Config{Queue: memline.NewQueue(nil), Catalog: cat, StatsTTL: -1})
	require.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

func TestSubLineNames(t *testing.T) {
	assert.Equal(t, "gold@@3", shard.SubLine("gold", 3))
	p, ok := shard.Parent("gold@@3")
	assert.True(t, ok)
	assert.Equal(t, "gold", p)
	_, ok = shard.Parent("gold")
	assert.False(t, ok)
	_, ok = shard.Parent("gold@@x")
	assert.False(t, ok)
	require.NoError(t, couponq.ValidateID(shard.SubLine("g", shard.Of("u", 64))))
	// Users spread over sub-lines: each of 6 gets 1/6 of 60,000 within 3%.
	counts := make([]int, 6)
	for i := range 60000 {
		counts[shard.Of(fmt.Sprintf("user-%d", i), 6)]++
	}
	for k, n := range counts {
		assert.InDelta(t, 10000, n, 300, "sub-line %d", k)
	}
	assert.Equal(t, 0, shard.Of("anyone", 1))
}

// Leasing merges the sub-lines back into admission order exactly when
// admission times are distinct and all older than the watermark.
func TestLeaseMergesInAdmissionOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4, 50*time.Millisecond)
	f.admit(t, 400)
	f.clk.add(time.Second)
	var got []string
	seen := map[int64]bool{}
	for {
		es, err := f.q.Lease(ctx, f.c.ID, 37, time.Minute)
		require.NoError(t, err)
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			require.Equal(t, f.c.ID, e.Campaign)
			require.False(t, seen[e.Number], "entry %d twice", e.Number)
			seen[e.Number] = true
			got = append(got, e.User)
		}
		require.NoError(t, f.q.Ack(ctx, f.c.ID, es, time.Minute))
	}
	require.Equal(t, f.users, got)
	st, err := f.q.LineStats(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, couponq.LineStats{Admitted: 400, InFlight: 400}, st)
	// What was not taken went back to the sub-lines' heads, not into flight.
	for k := range 4 {
		s, err := f.base.LineStats(ctx, shard.SubLine(f.c.ID, k))
		require.NoError(t, err)
		assert.Zero(t, s.Waiting, "sub-line %d", k)
		assert.Positive(t, s.InFlight, "sub-line %d", k)
	}
}

// The watermark keeps entries admitted within Lag in line.
func TestLeaseHoldsEntriesYoungerThanLag(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3, 100*time.Millisecond)
	f.admit(t, 50) // 1 ms apart: the last 50 ms are younger than Lag
	es, err := f.q.Lease(ctx, f.c.ID, 100, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, es)
	f.clk.add(75 * time.Millisecond) // entries 0..24 are now older than 100 ms
	es, err = f.q.Lease(ctx, f.c.ID, 100, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 25)
	for i, e := range es {
		assert.Equal(t, f.users[i], e.User)
	}
	st, err := f.q.LineStats(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(25), st.Waiting)
	assert.Equal(t, int64(25), st.InFlight)
}

func TestAdmitRepeatStatusAndRecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 5, time.Millisecond)
	f.admit(t, 100)
	u := f.users[42]
	first, err := f.q.Status(ctx, f.c.ID, u)
	require.NoError(t, err)
	require.Equal(t, couponq.StateWaiting, first.State)
	tk, err := f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: u, PerUserLimit: 1, At: f.clk.now()})
	require.NoError(t, err)
	assert.True(t, tk.Repeat, "a user maps to one sub-line, so its repeat is caught")
	assert.Equal(t, first.Entry, tk.Entry)
	// Positions are estimates, near the true place 43 (binomial error).
	assert.InDelta(t, 43, first.Position, 25)

	f.clk.add(time.Second)
	es, err := f.q.Lease(ctx, f.c.ID, 100, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 100)
	var results []couponq.Result
	for i, e := range es {
		r := couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "iss-" + e.User}
		if i%2 == 1 {
			r = couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeSoldOut}
		}
		results = append(results, r)
	}
	require.NoError(t, f.q.Record(ctx, f.c.ID, results...))
	for i, e := range es {
		st, err := f.q.Status(ctx, f.c.ID, e.User)
		require.NoError(t, err)
		assert.Equal(t, e.Number, st.Entry)
		if i%2 == 0 {
			assert.Equal(t, couponq.StateIssued, st.State)
			assert.Equal(t, "iss-"+e.User, st.IssuanceID)
		} else {
			assert.Equal(t, couponq.StateRejected, st.State)
		}
	}
	n, err := f.q.IssuedCount(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(50), n)
	ls, err := f.q.LineStats(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, couponq.LineStats{Admitted: 100, Issued: 50}, ls)
	_, err = f.q.Status(ctx, f.c.ID, "nobody")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
}

func TestPositionEstimate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 6, time.Millisecond)
	f.admit(t, 6000)
	var worst float64
	for i := 99; i < 6000; i += 500 {
		st, err := f.q.Status(ctx, f.c.ID, f.users[i])
		require.NoError(t, err)
		true_ := float64(i + 1)
		rel := (float64(st.Position) - true_) / true_
		worst = max(worst, rel, -rel)
		// Binomial error: sd about sqrt(P (n-1)); allow 4 sd.
		assert.InDelta(t, true_, float64(st.Position), 4*sqrt(true_*5)+6, "user %d", i)
	}
	t.Logf("worst relative position error over 12 users: %.3f", worst)
}

func sqrt(x float64) float64 {
	z := x
	for range 40 {
		z = (z + x/z) / 2
	}
	return z
}

func TestReleaseAndExpiryReturnEntriesToTheirSubLine(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3, time.Millisecond)
	f.admit(t, 30)
	f.clk.add(time.Second)
	es, err := f.q.Lease(ctx, f.c.ID, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 10)
	require.NoError(t, f.q.Release(ctx, f.c.ID, es[:5]))
	again, err := f.q.Lease(ctx, f.c.ID, 5, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, es[:5], again, "released entries come back first, in order")
	// Leases that run out come back too (the memory queue's clock).
	f.clk.add(2 * time.Minute)
	back, err := f.q.Lease(ctx, f.c.ID, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, es, back)
}

func TestSoldOutMarksEverySubLine(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4, time.Millisecond)
	f.admit(t, 40)
	require.NoError(t, f.q.MarkSoldOut(ctx, f.c.ID))
	for k := range 4 {
		s, err := f.base.LineStats(ctx, shard.SubLine(f.c.ID, k))
		require.NoError(t, err)
		assert.True(t, s.SoldOut, "sub-line %d", k)
	}
	_, err := f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: "late", PerUserLimit: 1, At: f.clk.now()})
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
	st, err := f.q.Status(ctx, f.c.ID, f.users[0])
	require.NoError(t, err)
	assert.Equal(t, couponq.StateRejected, st.State)
	require.NoError(t, f.q.Reopen(ctx, f.c.ID))
	_, err = f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: "late", PerUserLimit: 1, At: f.clk.now()})
	assert.NoError(t, err)
}

func TestMaxWaitingIsSharedOut(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4, time.Millisecond)
	full := 0
	for i := range 200 {
		_, err := f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: fmt.Sprintf("m%d", i), PerUserLimit: 1, MaxWaiting: 40, At: f.clk.now()})
		if errors.Is(err, couponq.ErrLineFull) {
			full++
			continue
		}
		require.NoError(t, err)
	}
	st, err := f.q.LineStats(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(40), st.Waiting, "each of 4 sub-lines holds its 10")
	assert.Equal(t, 160, full)
}

func TestUnshardedCampaignsPassThrough(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4, time.Second)
	tk, err := f.q.Admit(ctx, couponq.Admission{Campaign: "plain", User: "a", PerUserLimit: 1, At: f.clk.now()})
	require.NoError(t, err)
	assert.Equal(t, int64(1), tk.Entry)
	es, err := f.q.Lease(ctx, "plain", 10, time.Minute) // no watermark for one line
	require.NoError(t, err)
	require.Len(t, es, 1)
	s, err := f.base.LineStats(ctx, "plain")
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.InFlight)
	// An unknown campaign (say, deleted) is one line too.
	_, err = f.q.Status(ctx, "gone", "a")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
}

func TestCatalogFailureFails(t *testing.T) {
	boom := errors.New("registry down")
	q, err := shard.New(shard.Config{Queue: memline.NewQueue(nil),
		Catalog: catalog.Func(func(context.Context, string) (couponq.Campaign, error) { return couponq.Campaign{}, boom })})
	require.NoError(t, err)
	_, err = q.Admit(context.Background(), couponq.Admission{Campaign: "x", User: "a", PerUserLimit: 1})
	assert.ErrorIs(t, err, boom)
	_, err = q.Lease(context.Background(), "x", 1, time.Second)
	assert.ErrorIs(t, err, boom)
}

// A sharded campaign rests only when every sub-line is empty; sub-lines a
// sweep woke show up as their campaign.
func TestAgenda(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3, time.Millisecond)
	f.admit(t, 1)
	awake, err := f.q.Awake(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{f.c.ID}, awake, "the first entry of a sub-line wakes the campaign")
	rested, err := f.q.Rest(ctx, f.c.ID)
	require.NoError(t, err)
	assert.False(t, rested, "a sub-line has an entry")

	// A sweep wakes the sub-line itself; Awake reports the campaign.
	n, err := f.q.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	awake, err = f.q.Awake(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{f.c.ID}, awake)

	f.clk.add(time.Second)
	es, err := f.q.Lease(ctx, f.c.ID, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.NoError(t, f.q.Record(ctx, f.c.ID, couponq.Result{Entry: es[0], State: couponq.StateIssued, IssuanceID: "x"}))
	rested, err = f.q.Rest(ctx, f.c.ID)
	require.NoError(t, err)
	assert.True(t, rested)
	awake, err = f.q.Awake(ctx)
	require.NoError(t, err)
	assert.Empty(t, awake)
}

func TestSeatOnlyForOneLine(t *testing.T) {
	f := newFixture(t, 3, time.Millisecond)
	_, err := f.q.Seat(context.Background(), f.c.ID, 1)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

// A sub-line holding far more than its share of the oldest entries (here,
// all of them) is leased from again until the batch is full, in order.
func TestLeaseSkewedSubLine(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4, time.Millisecond)
	var users []string
	for i := 0; len(users) < 120; i++ {
		if u := fmt.Sprintf("s%d", i); shard.Of(u, 4) == 2 {
			users = append(users, u)
		}
	}
	other := "z0"
	for shard.Of(other, 4) == 2 {
		other += "x"
	}
	for _, u := range users {
		_, err := f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: u, PerUserLimit: 1, At: f.clk.add(time.Millisecond)})
		require.NoError(t, err)
	}
	_, err := f.q.Admit(ctx, couponq.Admission{Campaign: f.c.ID, User: other, PerUserLimit: 1, At: f.clk.add(time.Millisecond)})
	require.NoError(t, err)
	f.clk.add(time.Second)
	es, err := f.q.Lease(ctx, f.c.ID, 100, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 100, "the batch is filled from the one busy sub-line")
	for i, e := range es {
		assert.Equal(t, users[i], e.User)
	}
	st, err := f.q.LineStats(ctx, f.c.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(100), st.InFlight)
	assert.Equal(t, int64(21), st.Waiting, "the rest went back")
	es, err = f.q.Lease(ctx, f.c.ID, 100, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, 21)
	assert.Equal(t, other, es[20].User, "the other sub-line's later entry comes last")
}
