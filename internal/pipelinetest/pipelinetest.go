// Package pipelinetest runs the pipeline's end-to-end invariants over any
// set of backends: the in-memory ones, Redis, Kafka.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/lock/redislocker"
)

// Backends are what a run plugs in; the Store is always the in-memory one
// (with injected failures) so its counts can be checked.
type Backends struct {
	Queue  couponq.Queue
	Tally  couponq.Tally
	Locker lock.Locker
	// Wrap, if set, returns the Queue every part uses, built on Queue and
	// the run's catalog (shard.New).
	Wrap func(t *testing.T, catalog catalog.Catalog, q couponq.Queue) couponq.Queue
}

var seq atomic.Int64

// Run checks the pipeline's invariants end to end, V1 and V2, with a flaky
// Store and deliveries whose commit is lost (so entries come twice):
//   - issued == min(stock, distinct users), never more;
//   - no user is issued twice;
//   - every admitted user's entry reaches a terminal status, and the issued
//     statuses match the Store;
//   - no batch handed downstream is larger than BatchSize.
//
// The scheduler, woken by admission, moves the line.
func Run(t *testing.T, newBackends func(t *testing.T) Backends) {
	RunSharded(t, 0, newBackends)
}

// RunSharded is Run with a campaign of the given Shards (Campaign.Shards);
// for shards > 1 only the V2 cases run, V1 having no sharded line, and
// Backends.Wrap builds the sharded queue.
func RunSharded(t *testing.T, shards int, newBackends func(t *testing.T) Backends) {
	for _, tc := range []struct {
		name         string
		mode         couponq.Mode
		scope        couponq.LockScope
		users, stock int
		batch        bool // the issuer's batch path (no per-user lock)
	}{
		{"V2/oversubscribed", couponq.QueueFirst, 0, 3000, 500, false},
		{"V2/undersubscribed", couponq.QueueFirst, 0, 300, 1000, false},
		{"V2-batch/oversubscribed", couponq.QueueFirst, 0, 3000, 500, true},
		{"V2-batch/undersubscribed", couponq.QueueFirst, 0, 300, 1000, true},
		{"V1-user-lock/oversubscribed", couponq.ValidateFirst, couponq.LockPerUser, 3000, 500, false},
		{"V1-campaign-lock/oversubscribed", couponq.ValidateFirst, couponq.LockPerCampaign, 1000, 300, false},
		{"V1-user-lock/undersubscribed", couponq.ValidateFirst, couponq.LockPerUser, 300, 1000, false},
	} {
		if shards > 1 && tc.mode != couponq.QueueFirst {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			b := newBackends(t)
			runPipeline(t, b, tc.mode, tc.scope, tc.users, int64(tc.stock), tc.batch, shards)
		})
	}
}

// flakyStore fails one call in before before deciding, and one batch call
// in after after deciding (the error a lost reply looks like).
type flakyStore struct {
	s             *memory.Store
	before, after int
	errs          atomic.Int64
}

func (f *flakyStore) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	if rand.IntN(f.before) == 0 {
		f.errs.Add(1)
		return couponq.Issuance{}, errors.New("injected store failure")
	}
	return f.s.Issue(ctx, r)
}

func (f *flakyStore) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	if rand.IntN(f.before) == 0 {
		f.errs.Add(1)
		return nil, errors.New("injected store failure")
	}
	out, err := f.s.IssueBatch(ctx, rs)
	if err == nil && rand.IntN(f.after) == 0 {
		f.errs.Add(1)
		return nil, errors.New("injected failure after deciding")
	}
	return out, err
}

// lossyConsumer loses one commit in every: the handler succeeded, yet its
// entries are delivered again, and the Store must absorb them.
type lossyConsumer struct {
	t     *dispatch.Memory
	every int
	lost  atomic.Int64
}

func (l *lossyConsumer) lose() bool {
	if rand.IntN(l.every) == 0 {
		l.lost.Add(1)
		return true
	}
	return false
}

func (l *lossyConsumer) Consume(ctx context.Context, h couponq.Handler) error {
	return l.t.Consume(ctx, func(ctx context.Context, e couponq.Entry) error {
		err := h(ctx, e)
		if err == nil && l.lose() {
			return errors.New("commit lost")
		}
		return err
	})
}

func (l *lossyConsumer) ConsumeBatches(ctx context.Context, max int, h couponq.BatchHandler) error {
	return l.t.ConsumeBatches(ctx, max, func(ctx context.Context, b []couponq.Entry) error {
		err := h(ctx, b)
		if err == nil && l.lose() {
			return errors.New("commit lost")
		}
		return err
	})
}

// runner is the scheduler or the issuer.
type runner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

func runPipeline(t *testing.T, b Backends, mode couponq.Mode, scope couponq.LockScope, users int, stock int64, batch bool, shards int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := couponq.Campaign{ID: fmt.Sprintf("flash-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)),
		Stock: stock, BatchSize: 50, Interval: 2 * time.Millisecond, Mode: mode, Shards: shards}
	catalog, err := memline.NewRegistry(c)
	require.NoError(t, err)
	if b.Wrap != nil {
		b.Queue = b.Wrap(t, catalog, b.Queue)
	}
	store := memory.NewStore()
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{Workers: 8, RedeliveryDelay: time.Millisecond})
	require.NoError(t, err)

	var maxBatch, batches atomic.Int64
	sized := couponq.DispatcherFunc(func(ctx context.Context, b []couponq.Entry) error {
		batches.Add(1)
		for n := int64(len(b)); ; {
			m := maxBatch.Load()
			if n <= m || maxBatch.CompareAndSwap(m, n) {
				break
			}
		}
		return transport.Dispatch(ctx, b)
	})
	// A tenth of the Store calls fail, a twentieth of the commits are lost.
	// Batches are few (one Store call decides up to 50 entries), so the batch
	// path gets far more of each, and batch calls that fail after deciding.
	flaky := &flakyStore{s: store, before: 10, after: 1 << 30}
	lossy := &lossyConsumer{t: transport, every: 20}
	if batch {
		flaky.before, flaky.after, lossy.every = 3, 4, 4
	}

	svc, err := admission.New(admission.Config{
		Catalog: catalog, Queue: b.Queue,
		Tally: b.Tally, Locker: b.Locker, Dispatcher: sized, LockScope: scope,
		LockBackoff: lock.Backoff{Min: 100 * time.Microsecond, Max: 2 * time.Millisecond}, LockWait: 10 * time.Second,
	})
	require.NoError(t, err)
	th, err := scheduler.New(scheduler.Config{Catalog: catalog, Agenda: b.Queue.(couponq.Agenda),
		Queue: b.Queue, Dispatcher: sized, Locker: b.Locker, PollInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	icfg := issuing.Config{Consumer: lossy, Store: flaky, Catalog: catalog,
		Recorder: b.Queue, Locker: b.Locker, Backoff: lock.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond},
		MaxAttempts: 50, MaxBatch: 1}
	if batch {
		icfg.Locker, icfg.MaxBatch = nil, 0
	}
	iss, err := issuing.New(icfg)
	require.NoError(t, err)
	require.Equal(t, batch, iss.Batching())
	require.NoError(t, th.Start(ctx))
	require.NoError(t, iss.Start(ctx))
	defer func() {
		require.NoError(t, th.Stop(context.Background()))
		require.NoError(t, iss.Stop(context.Background()))
	}()

	// Users arrive with some pressing the button twice, 64 at a time.
	var admitted sync.Map
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var unexpected, busy atomic.Int64
	for i := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			user := fmt.Sprintf("u%05d", i)
			for range 1 + rand.IntN(2) {
				tk, err := svc.Admit(ctx, couponq.Request{Campaign: c.ID, User: user})
				// V1's campaign-wide lock can time out under load (HTTP 503 with
				// Retry-After); a client asks again, as this one does.
				for try := 0; errors.Is(err, couponq.ErrBusy) && try < 20; try++ {
					busy.Add(1)
					tk, err = svc.Admit(ctx, couponq.Request{Campaign: c.ID, User: user})
				}
				switch {
				case err == nil:
					admitted.Store(user, tk.Entry)
				case errors.Is(err, couponq.ErrSoldOut), errors.Is(err, couponq.ErrDuplicate):
				default:
					unexpected.Add(1)
					t.Errorf("admit %s: %v", user, err)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, unexpected.Load())

	// Every admitted user reaches a terminal status.
	var issuedStatuses int64
	var lost []string
	admitted.Range(func(k, _ any) bool {
		user := k.(string)
		var st couponq.Status
		ok := assert.Eventually(t, func() bool {
			var err error
			st, err = svc.Status(ctx, c.ID, user)
			return err == nil && st.State.Terminal()
		}, 30*time.Second, time.Millisecond)
		if !ok {
			lost = append(lost, user)
			return len(lost) < 5
		}
		if st.State == couponq.StateIssued {
			issuedStatuses++
		}
		return true
	})
	require.Empty(t, lost, "admitted users whose entries never became a result")

	want := min(stock, int64(users))
	stored, err := store.IssuedCount(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, want, stored, "issued == min(stock, distinct users)")
	assert.Equal(t, want, issuedStatuses, "issued statuses match the Store")
	for u, n := range store.Holders(c.ID) {
		assert.Equal(t, 1, n, "user %s issued %d times", u, n)
	}
	assert.LessOrEqual(t, maxBatch.Load(), int64(c.BatchSize))
	t.Logf("batches=%d max_batch=%d injected_store_errors=%d lost_commits=%d busy_retries=%d",
		batches.Load(), maxBatch.Load(), flaky.errs.Load(), lossy.lost.Load(), busy.Load())
}

// MaxInWindow returns the most of the given times that fall in any window
// of the given length. A throttle ticking every Interval puts at most k+1
// batches in a window of k Intervals, however late single ticks come; two
// leaders at once put about twice that.
func MaxInWindow(times []time.Time, window time.Duration) int {
	best := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < window; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

// Redis returns Backends on the Redis behind c (redisq's Queue and Tally,
// redislocker's Locker) under a key prefix of the test's own.
func Redis(t *testing.T, c redis.UniversalClient) Backends {
	prefix := redistest.Prefix(t, c)
	q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
	require.NoError(t, err)
	tally, err := redisline.NewTally(c, prefix)
	require.NoError(t, err)
	locker, err := redislocker.New(c, prefix)
	require.NoError(t, err)
	return Backends{Queue: q, Tally: tally, Locker: locker}
}
