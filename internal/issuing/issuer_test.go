package issuing_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fast = lock.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}

type fixture struct {
	catalog *memline.Registry
	queue   *memline.Queue
	store   *memory.Store
	locker  *lock.Memory
}

func newFixture(t *testing.T, cs ...couponq.Campaign) fixture {
	cat, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	return fixture{catalog: cat, queue: memline.NewQueue(nil), store: memory.NewStore(), locker: lock.NewMemory()}
}

func (f fixture) issuer(t *testing.T, store couponq.Store, mut func(*issuing.Config)) *issuing.Issuer {
	cfg := issuing.Config{
		Consumer: couponq.ConsumerFunc(func(context.Context, couponq.Handler) error { return nil }),
		Store:    store, Catalog: f.catalog, Recorder: f.queue, Locker: f.locker, Backoff: fast,
	}
	if mut != nil {
		mut(&cfg)
	}
	i, err := issuing.New(cfg)
	require.NoError(t, err)
	return i
}

func entry(campaign, user string, n int64) couponq.Entry {
	return couponq.Entry{Campaign: campaign, User: user, Number: n, AdmittedAt: time.Now()}
}

func status(t *testing.T, q *memline.Queue, campaign, user string) couponq.Status {
	st, err := q.Status(context.Background(), campaign, user)
	require.NoError(t, err)
	return st
}

func TestHandleOutcomes(t *testing.T) {
	c := couponq.Campaign{ID: "c", Stock: 2}
	f := newFixture(t, c)
	var events []issuer.Event
	i := f.issuer(t, f.store, func(cfg *issuing.Config) { cfg.OnIssue = func(e issuer.Event) { events = append(events, e) } })
	ctx := context.Background()

	require.NoError(t, i.Handle(ctx, entry("c", "a", 1)))
	a := status(t, f.queue, "c", "a")
	assert.Equal(t, couponq.StateIssued, a.State)
	assert.NotEmpty(t, a.IssuanceID)

	require.NoError(t, i.Handle(ctx, entry("c", "a", 1)), "redelivery")
	assert.Equal(t, a, status(t, f.queue, "c", "a"), "a redelivery changes nothing")
	assert.Equal(t, int64(1), issued(f.store, "c"))

	require.NoError(t, i.Handle(ctx, entry("c", "a", 5)))
	assert.Equal(t, couponq.StateIssued, status(t, f.queue, "c", "a").State, "a's issuance stands")
	assert.Equal(t, int64(1), issued(f.store, "c"))

	require.NoError(t, i.Handle(ctx, entry("c", "b", 2)))
	assert.Equal(t, couponq.StateIssued, status(t, f.queue, "c", "b").State)
	_, err := f.queue.Admit(ctx, couponq.Admission{Campaign: "c", User: "newcomer"})
	assert.ErrorIs(t, err, couponq.ErrSoldOut, "the last issuance marks the campaign sold out")

	require.NoError(t, i.Handle(ctx, entry("c", "d", 3)))
	d := status(t, f.queue, "c", "d")
	assert.Equal(t, couponq.StateRejected, d.State)
	assert.Equal(t, couponq.CodeSoldOut, d.Reason)
	require.Len(t, events, 5)
	assert.Equal(t, couponq.CodeDuplicate, events[2].Result.Reason)
}

func TestHandleRetriesStoreThenSucceeds(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	var calls atomic.Int64
	flaky := couponq.StoreFunc(func(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
		if calls.Add(1) <= 3 {
			return couponq.Issuance{}, errors.New("db hiccup")
		}
		return f.store.Issue(ctx, r)
	})
	var ev issuer.Event
	i := f.issuer(t, flaky, func(cfg *issuing.Config) { cfg.OnIssue = func(e issuer.Event) { ev = e } })
	require.NoError(t, i.Handle(context.Background(), entry("c", "u", 1)))
	assert.Equal(t, couponq.StateIssued, status(t, f.queue, "c", "u").State)
	assert.Equal(t, 4, ev.Attempts)
}

func TestHandleDeadLettersWhatKeepsFailing(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	down := errors.New("db down")
	broken := couponq.StoreFunc(func(context.Context, couponq.IssueRequest) (couponq.Issuance, error) {
		return couponq.Issuance{}, down
	})
	var mu sync.Mutex
	dead := map[string]error{}
	i := f.issuer(t, broken, func(cfg *issuing.Config) {
		cfg.MaxAttempts = 3
		cfg.DeadLetter = issuer.DeadLetterFunc(func(_ context.Context, e couponq.Entry, reason error) error {
			mu.Lock()
			defer mu.Unlock()
			dead[e.Key()] = reason
			return nil
		})
	})
	e := entry("c", "u", 1)
	require.NoError(t, i.Handle(context.Background(), e))
	require.Contains(t, dead, e.Key())
	assert.ErrorIs(t, dead[e.Key()], down)
	st := status(t, f.queue, "c", "u")
	assert.Equal(t, couponq.StateRejected, st.State, "a dead-lettered entry still ends with a status")
	assert.Equal(t, couponq.CodeFailed, st.Reason)

	// An entry for a campaign nobody knows goes straight to the dead letters.
	ghost := entry("nope", "u", 1)
	require.NoError(t, i.Handle(context.Background(), ghost))
	assert.ErrorIs(t, dead[ghost.Key()], couponq.ErrUnknownCampaign)
}

func TestHandleDeadLetterFailureRedelivers(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	i := f.issuer(t, f.store, func(cfg *issuing.Config) {
		cfg.DeadLetter = issuer.DeadLetterFunc(func(context.Context, couponq.Entry, error) error { return errors.New("dlq down") })
	})
	err := i.Handle(context.Background(), entry("nope", "u", 1))
	assert.Error(t, err, "if the dead letter cannot be written the delivery must come again")
}

func TestHandleHeldLockRedelivers(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	i := f.issuer(t, f.store, func(cfg *issuing.Config) { cfg.LockWait = 30 * time.Millisecond })
	lk, err := f.locker.Obtain(context.Background(), "couponq:issue:c:u", time.Minute)
	require.NoError(t, err)
	err = i.Handle(context.Background(), entry("c", "u", 1))
	assert.ErrorIs(t, err, lock.ErrNotObtained)
	assert.Equal(t, int64(0), issued(f.store, "c"))
	require.NoError(t, lk.Release(context.Background()))
	require.NoError(t, i.Handle(context.Background(), entry("c", "u", 1)))
	assert.Equal(t, int64(1), issued(f.store, "c"))
}

func TestHandleStopsRetryingOnCancel(t *testing.T) {
	f := newFixture(t, couponq.Campaign{ID: "c", Stock: 5})
	broken := couponq.StoreFunc(func(context.Context, couponq.IssueRequest) (couponq.Issuance, error) {
		return couponq.Issuance{}, errors.New("down")
	})
	var deadLettered atomic.Bool
	i := f.issuer(t, broken, func(cfg *issuing.Config) {
		cfg.Backoff = lock.Backoff{Min: 50 * time.Millisecond}
		cfg.DeadLetter = issuer.DeadLetterFunc(func(context.Context, couponq.Entry, error) error { deadLettered.Store(true); return nil })
	})
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	err := i.Handle(ctx, entry("c", "u", 1))
	assert.ErrorIs(t, err, context.DeadlineExceeded, "stopping leaves the entry for redelivery")
	assert.False(t, deadLettered.Load())
}

func TestNewValidates(t *testing.T) {
	_, err := issuing.New(issuing.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

// issued is the Store's count of the campaign's units.
func issued(s couponq.IssuedCounter, campaign string) int64 {
	n, _ := s.IssuedCount(context.Background(), campaign) // never fails
	return n
}
