package issuing_test

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
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/issuer"
)

// countingStore is a BatchStore that counts its calls.
type countingStore struct {
	*memory.Store
	single, batches atomic.Int64
	failBatches     atomic.Int64 // fail this many IssueBatch calls first
}

func (s *countingStore) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	s.single.Add(1)
	return s.Store.Issue(ctx, r)
}

func (s *countingStore) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	s.batches.Add(1)
	if s.failBatches.Add(-1) >= 0 {
		return nil, errors.New("injected batch failure")
	}
	return s.Store.IssueBatch(ctx, rs)
}

func TestHandleBatchMixedOutcomes(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 3}, couponq.Campaign{ID: "d", Stock: 1})
	store := &countingStore{Store: f.store}
	var events []issuer.Event
	i := f.issuer(t, store, func(cfg *issuing.Config) {
		cfg.Locker = nil
		cfg.OnIssue = func(e issuer.Event) { events = append(events, e) }
	})
	ctx := context.Background()
	require.NoError(t, i.Handle(ctx, entry("c", "held", 1)), "held already holds one before the batch")

	batch := []couponq.Entry{
		entry("c", "a", 2), entry("c", "held", 3), entry("d", "x", 1), entry("c", "b", 4),
		entry("c", "a", 2), // the same entry twice in one batch
		entry("c", "late", 5), entry("d", "y", 2), entry("bad campaign!", "u", 1),
	}
	require.NoError(t, i.HandleBatch(ctx, batch))
	assert.EqualValues(t, 1, store.batches.Load(), "one Store call for the whole batch")

	want := map[string]couponq.Status{
		"c/a":    {State: couponq.StateIssued},
		"c/held": {State: couponq.StateIssued}, // a duplicate never replaces an issued status
		"c/b":    {State: couponq.StateIssued},
		"c/late": {State: couponq.StateRejected, Reason: couponq.CodeSoldOut},
		"d/x":    {State: couponq.StateIssued},
		"d/y":    {State: couponq.StateRejected, Reason: couponq.CodeSoldOut},
	}
	for k, w := range want {
		var camp, user string
		_, _ = fmt.Sscanf(k, "%1s/%s", &camp, &user)
		st := status(t, f.queue, camp, user)
		assert.Equal(t, w.State, st.State, k)
		assert.Equal(t, w.Reason, st.Reason, k)
	}
	assert.EqualValues(t, 3, issued(f.store, "c"))
	assert.EqualValues(t, 1, issued(f.store, "d"))
	// The invalid campaign ID was dead-lettered; every other entry has an event.
	assert.Len(t, events, 1+len(batch), "one event per entry (the bad ID as dead-lettered), after the first Handle's")

	_, err := f.queue.Admit(ctx, couponq.Admission{Campaign: "c", User: "newcomer"})
	assert.ErrorIs(t, err, couponq.ErrSoldOut, "the batch that sold c out marked it sold out")

	// A redelivered batch changes nothing.
	require.NoError(t, i.HandleBatch(ctx, batch))
	assert.EqualValues(t, 3, issued(f.store, "c"))
}

func TestHandleBatchFallsBackToSingleCalls(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 10})
	store := &countingStore{Store: f.store}
	store.failBatches.Store(1000)
	i := f.issuer(t, store, func(cfg *issuing.Config) { cfg.Locker = nil; cfg.MaxAttempts = 3 })
	batch := []couponq.Entry{entry("c", "a", 1), entry("c", "b", 2)}
	require.NoError(t, i.HandleBatch(context.Background(), batch))
	assert.EqualValues(t, 3, store.batches.Load(), "MaxAttempts batch calls")
	assert.EqualValues(t, 2, store.single.Load(), "then one call per entry")
	assert.Equal(t, couponq.StateIssued, status(t, f.queue, "c", "a").State)
	assert.Equal(t, couponq.StateIssued, status(t, f.queue, "c", "b").State)
}

func TestHandleBatchCancelledLeavesBatchForRedelivery(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 10})
	store := &countingStore{Store: f.store}
	store.failBatches.Store(1000)
	i := f.issuer(t, store, func(cfg *issuing.Config) { cfg.Locker = nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	assert.Error(t, i.HandleBatch(ctx, []couponq.Entry{entry("c", "a", 1)}))
	assert.Zero(t, store.single.Load(), "no fallback while stopping")
	_, err := f.queue.Status(context.Background(), "c", "a")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "nothing recorded")
}

// Run takes the batch path with a BatchStore, a BatchConsumer and no
// Locker, and the single path otherwise.
func TestRunChoosesThePath(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 300})
	for _, tc := range []struct {
		name    string
		mut     func(*issuing.Config)
		batched bool
	}{
		{"batch", func(c *issuing.Config) { c.Locker = nil }, true},
		{"locker", func(c *issuing.Config) {}, false},
		{"max batch 1", func(c *issuing.Config) { c.Locker = nil; c.MaxBatch = 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := dispatch.NewMemory(dispatch.MemoryConfig{})
			require.NoError(t, err)
			store := &countingStore{Store: memory.NewStore()}
			i := f.issuer(t, store, func(cfg *issuing.Config) { cfg.Consumer = tr; tc.mut(cfg) })
			assert.Equal(t, tc.batched, i.Batching())
			camp := "c"
			es := make([]couponq.Entry, 250)
			for k := range es {
				es[k] = entry(camp, fmt.Sprintf("%s-u%d", tc.name[:1], k), int64(k+1))
			}
			require.NoError(t, tr.Dispatch(context.Background(), es))
			require.NoError(t, i.Start(context.Background()))
			require.Eventually(t, func() bool { return issued(store, camp) == 250 }, 10*time.Second, 5*time.Millisecond)
			require.NoError(t, i.Stop(context.Background()))
			if tc.batched {
				assert.Zero(t, store.single.Load())
				assert.LessOrEqual(t, store.batches.Load(), int64(10), "250 ready entries in batches of up to 100")
			} else {
				assert.Zero(t, store.batches.Load())
				assert.EqualValues(t, 250, store.single.Load())
			}
		})
	}
}

// Two issuers each with its own in-memory Store over-issue; the shared
// Recorder's count exposes it, on both paths.
func TestOverIssueDetected(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
			var mu sync.Mutex
			var reports []issuer.OverIssue
			hook := func(o issuer.OverIssue) { mu.Lock(); reports = append(reports, o); mu.Unlock() }
			workers := []*issuing.Issuer{
				f.issuer(t, memory.NewStore(), func(c *issuing.Config) { c.Locker = nil; c.OnOverIssue = hook }),
				f.issuer(t, memory.NewStore(), func(c *issuing.Config) { c.Locker = nil; c.OnOverIssue = hook }),
			}
			ctx := context.Background()
			for k := range 16 {
				e := entry("c", fmt.Sprintf("u%d", k), int64(k+1))
				w := workers[k%2]
				if batched {
					require.NoError(t, w.HandleBatch(ctx, []couponq.Entry{e}))
				} else {
					require.NoError(t, w.Handle(ctx, e))
				}
			}
			n, err := f.queue.IssuedCount(ctx, "c")
			require.NoError(t, err)
			assert.EqualValues(t, 10, n, "each worker's Store issued its own 5")
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, reports)
			assert.Equal(t, issuer.OverIssue{Campaign: "c", Issued: 6, Stock: 5}, reports[0], "reported at the first issuance past the stock")
			assert.Equal(t, issuer.OverIssue{Campaign: "c", Issued: 10, Stock: 5}, reports[len(reports)-1])
			assert.Len(t, reports, 5, "once per growth of the count: 6..10")
		})
	}
}

// One shared Store never trips the detector.
func TestNoOverIssueWithSharedStore(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	var reports atomic.Int64
	hook := func(issuer.OverIssue) { reports.Add(1) }
	a := f.issuer(t, f.store, func(c *issuing.Config) { c.Locker = nil; c.OnOverIssue = hook })
	b := f.issuer(t, f.store, func(c *issuing.Config) { c.Locker = nil; c.OnOverIssue = hook })
	for k := range 16 {
		e := entry("c", fmt.Sprintf("u%d", k), int64(k+1))
		require.NoError(t, []*issuing.Issuer{a, b}[k%2].HandleBatch(context.Background(), []couponq.Entry{e, e}))
	}
	assert.Zero(t, reports.Load())
	n, err := f.queue.IssuedCount(context.Background(), "c")
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
}
