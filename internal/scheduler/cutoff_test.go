package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/scheduler"
)

// lastFirst is a Dispatcher whose downstream decides each batch in reverse
// entry order, later, on its own goroutine: the worst order the Store can
// see the last units asked for in (a partition or a consumer running ahead
// of the others).
type lastFirst struct {
	t     *testing.T
	w     *world
	store *memory.Store
	wg    sync.WaitGroup
	mu    sync.Mutex
	moved []int // batch sizes, in order
}

func (d *lastFirst) Dispatch(ctx context.Context, b []couponq.Entry) error {
	d.mu.Lock()
	d.moved = append(d.moved, len(b))
	d.mu.Unlock()
	b = slices.Clone(b)
	d.wg.Go(func() {
		ctx := context.Background()
		for _, e := range slices.Backward(b) {
			c, err := d.w.catalog.Campaign(ctx, e.Campaign)
			if !assert.NoError(d.t, err) {
				return
			}
			iss, err := d.store.Issue(ctx, couponq.IssueRequest{Campaign: e.Campaign, User: e.User, Key: e.Key(), Stock: c.Stock, PerUserLimit: 1})
			if !assert.NoError(d.t, err) {
				return
			}
			res := couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeSoldOut}
			switch iss.Outcome {
			case couponq.Issued:
				res.State, res.Reason, res.IssuanceID = couponq.StateIssued, "", iss.ID
			case couponq.Duplicate:
				res.Reason = couponq.CodeDuplicate
			}
			assert.NoError(d.t, d.w.queue.Record(ctx, e.Campaign, res))
			if iss.SoldOut {
				assert.NoError(d.t, d.w.queue.MarkSoldOut(ctx, e.Campaign))
			}
		}
	})
	return nil
}

// cutoffRun is one sale: users u0..u(users-1) join a paused campaign's
// line, the first `holders` of every 40 already hold a unit from the Store
// (a key that is not the line's), then the campaign resumes.
type cutoffRun struct {
	stock, batch, users, holders int
	noCutoff, queueCount         bool
}

type cutoffResult struct {
	issued, inversions, soldOut, duplicates int
	moved                                   []int
}

func (r cutoffRun) run(t *testing.T) cutoffResult {
	t.Helper()
	c := couponq.Campaign{ID: "sale", Stock: int64(r.stock), BatchSize: r.batch, Interval: 2 * time.Millisecond, Paused: true}
	w := newWorld(t, c)
	store := memory.NewStore()
	d := &lastFirst{t: t, w: w, store: store}
	held := map[string]bool{}
	for i := range r.users {
		if i%40 < r.holders {
			u := fmt.Sprintf("u%d", i)
			_, err := store.Issue(context.Background(), couponq.IssueRequest{Campaign: c.ID, User: u, Key: "earlier/" + u, Stock: c.Stock, PerUserLimit: 1})
			require.NoError(t, err)
			held[u] = true
		}
	}
	w.admit(t, c.ID, 0, r.users)
	s := w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.Dispatcher = d
		cfg.NoCutoff = r.noCutoff
		if !r.queueCount {
			cfg.Issued = store
		}
	})
	start(t, s)
	c.Paused, c.Version = false, 1
	_, err := w.catalog.Update(context.Background(), c)
	require.NoError(t, err)

	var out cutoffResult
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := w.queue.LineStats(context.Background(), c.ID)
		require.NoError(ct, err)
		assert.Zero(ct, st.Waiting+st.InFlight)
	}, 20*time.Second, 5*time.Millisecond, "every entry decided")
	d.wg.Wait()
	lastIssued, status := int64(0), map[string]couponq.Status{}
	for i := range r.users {
		u := fmt.Sprintf("u%d", i)
		st, err := w.svc.Status(context.Background(), c.ID, u)
		require.NoError(t, err)
		require.True(t, st.State.Terminal(), "%s: %+v", u, st)
		status[u] = st
		if st.State == couponq.StateIssued {
			out.issued++
			lastIssued = max(lastIssued, st.Entry)
		}
		if held[u] {
			assert.NotEqual(t, couponq.StateIssued, st.State, "%s held a unit already", u)
		}
	}
	for _, st := range status {
		switch st.Reason {
		case couponq.CodeSoldOut:
			out.soldOut++
			if st.Entry < lastIssued {
				out.inversions++
			}
		case couponq.CodeDuplicate:
			out.duplicates++
		}
	}
	n, err := store.IssuedCount(context.Background(), c.ID)
	require.NoError(t, err)
	assert.EqualValues(t, r.stock, n, "the Store issued the whole stock")
	d.mu.Lock()
	out.moved = slices.Clone(d.moved)
	d.mu.Unlock()
	return out
}

// The last units go to the earliest entries even when the downstream
// decides each batch last entry first, users who already hold a unit
// sitting among them: no inversions, the whole stock issued. The same
// sale without the cutoff inverts, so the check can fail.
func TestCutoffIsExact(t *testing.T) {
	for _, r := range []cutoffRun{
		{stock: 1050, batch: 100, users: 1400, holders: 2},
		{stock: 537, batch: 100, users: 800, holders: 1},
		{stock: 537, batch: 100, users: 800, queueCount: true},
	} {
		name := fmt.Sprintf("%d/%d", r.stock, r.batch)
		if r.queueCount {
			name += "/QueueCount"
		}
		t.Run(name, func(t *testing.T) {
			got := r.run(t)
			assert.Zero(t, got.inversions, "inversions")
			holders := r.users / 40 * r.holders
			assert.Equal(t, r.stock-holders, got.issued, "line entries issued: the stock less the units held before")
			assert.Equal(t, r.users, got.issued+got.duplicates+got.soldOut)
			if r.holders > 0 {
				assert.Positive(t, got.duplicates, "holders ahead of the cutoff hear Duplicate")
			}
			for i, m := range got.moved {
				assert.LessOrEqual(t, m, r.batch, "move %d", i)
			}
			t.Logf("stock %d batch %d: moves %v", r.stock, r.batch, got.moved)
		})
	}
	t.Run("NoCutoff", func(t *testing.T) {
		got := cutoffRun{stock: 1050, batch: 100, users: 1400, holders: 2, noCutoff: true}.run(t)
		assert.Positive(t, got.inversions, "without the cutoff the reversed last batch inverts")
	})
}

// A line whose counts say the stock is gone (here every unit is held
// before the sale) moves its head alone; the Store's sold-out answer marks
// the line and the rest resolve in bulk: nothing waits for ever.
func TestCutoffProbesAnExhaustedStock(t *testing.T) {
	got := cutoffRun{stock: 40, batch: 10, users: 200, holders: 8}.run(t)
	// Users u0..u7 of every 40 hold the 40 units; u0, the line's head,
	// holds one: the probe hears Duplicate, and that no stock remains.
	assert.Zero(t, got.inversions)
	assert.Zero(t, got.issued)
	assert.Equal(t, []int{1}, got.moved, "the head alone, then the line resolves sold out")
}

// The cutoff reports itself in TickEvent.Cutoff and keeps the campaign
// awake while it holds entries back.
func TestCutoffTickEvent(t *testing.T) {
	c := couponq.Campaign{ID: "few", Stock: 3, BatchSize: 10, Interval: 2 * time.Millisecond}
	w := newWorld(t, c)
	store := memory.NewStore()
	events := make(chan dispatch.TickEvent, 1000)
	held := make(chan []couponq.Entry, 10)
	s := w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.Issued = store
		cfg.Dispatcher = couponq.DispatcherFunc(func(_ context.Context, b []couponq.Entry) error {
			held <- slices.Clone(b)
			return nil
		})
		cfg.OnTick = func(ev dispatch.TickEvent) {
			select {
			case events <- ev:
			default:
			}
		}
	})
	w.admit(t, c.ID, 0, 8)
	start(t, s)
	b := <-held
	require.Len(t, b, 3, "the first move carries the stock, not the batch")
	for ev := range events {
		if ev.Leased == 0 {
			assert.True(t, ev.Cutoff, "a tick held at the cutoff says so: %+v", ev)
			assert.False(t, ev.Rested)
			break
		}
	}
	select {
	case more := <-held:
		t.Fatalf("moved %d entries past the stock with 3 undecided", len(more))
	default:
	}
}
