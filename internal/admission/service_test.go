package admission_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
)

type env struct {
	svc       *admission.Service
	queue     *memline.Queue
	tally     *memline.Tally
	locker    *lock.Memory
	transport *dispatch.Memory
	now       time.Time
}

func newEnv(t *testing.T, mut func(*admission.Config), cs ...couponq.Campaign) *env {
	t.Helper()
	cat, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	tr, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	require.NoError(t, err)
	e := &env{queue: memline.NewQueue(nil), tally: memline.NewTally(), locker: lock.NewMemory(), transport: tr,
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	cfg := admission.Config{Catalog: cat, Queue: e.queue, Tally: e.tally, Locker: e.locker, Dispatcher: tr,
		Now: func() time.Time { return e.now }}
	if mut != nil {
		mut(&cfg)
	}
	e.svc, err = admission.New(cfg)
	require.NoError(t, err)
	return e
}

func req(campaign, user string) couponq.Request {
	return couponq.Request{Campaign: campaign, User: user}
}

func TestNewValidates(t *testing.T) {
	_, err := admission.New(admission.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	cat, _ := memline.NewRegistry()
	_, err = admission.New(admission.Config{Catalog: cat})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "Queue is required")
	_, err = admission.New(admission.Config{Catalog: cat, Queue: memline.NewQueue(nil), LockScope: 9})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

func TestV2AdmitAndStatus(t *testing.T) {
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 10, BatchSize: 2, Interval: time.Second})
	ctx := context.Background()
	for i, u := range []string{"a", "b", "c", "d", "e"} {
		tk, err := e.svc.Admit(ctx, req("c", u))
		require.NoError(t, err)
		assert.Equal(t, int64(i+1), tk.Entry)
		assert.Equal(t, int64(i+1), tk.Position)
	}
	st, err := e.svc.Status(ctx, "c", "e")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateWaiting, st.State)
	assert.Equal(t, 3*time.Second, st.EstimatedWait, "position 5 at 2 per second: third tick")
	tk, err := e.svc.Admit(ctx, req("c", "a"))
	require.NoError(t, err, "a waiting user asking again gets the same ticket")
	assert.True(t, tk.Repeat)
	assert.Equal(t, int64(1), tk.Entry)
	assert.Equal(t, time.Second, tk.EstimatedWait)

	_, err = e.svc.Status(ctx, "c", "nobody")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
	_, err = e.svc.Status(ctx, "nope", "a")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
}

func TestV2ServedUserGetsErrorWithTicket(t *testing.T) {
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 1})
	ctx := context.Background()
	_, err := e.svc.Admit(ctx, req("c", "a"))
	require.NoError(t, err)
	_, err = e.svc.Admit(ctx, req("c", "b"))
	require.NoError(t, err)
	got, err := e.queue.Lease(ctx, "c", 2, time.Minute)
	require.NoError(t, err)
	require.NoError(t, e.queue.Record(ctx, "c",
		couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "x"},
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	require.NoError(t, e.queue.MarkSoldOut(ctx, "c"))

	tk, err := e.svc.Admit(ctx, req("c", "a"))
	assert.ErrorIs(t, err, couponq.ErrDuplicate)
	assert.Equal(t, couponq.StateIssued, tk.State)
	tk, err = e.svc.Admit(ctx, req("c", "b"))
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
	assert.Equal(t, int64(2), tk.Entry)
	_, err = e.svc.Admit(ctx, req("c", "new"))
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
}

func TestBadInputNeverWrites(t *testing.T) {
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 10})
	ctx := context.Background()
	for _, r := range []couponq.Request{
		{Campaign: "c", User: ""},
		{Campaign: "c", User: strings.Repeat("x", couponq.MaxIDLen+1)},
		{Campaign: "c", User: "a b"},
		{Campaign: "c", User: "{c}"},
		{Campaign: "c", User: "ü"},
		{Campaign: "c", User: "ok", RequestID: "no/slash"},
		{Campaign: "", User: "ok"},
	} {
		_, err := e.svc.Admit(ctx, r)
		assert.ErrorIs(t, err, couponq.ErrInvalidID, "%q", r)
	}
	_, err := e.svc.Admit(ctx, req("missing", "u"))
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	assert.Equal(t, memline.Stats{}, e.queue.Stats("c"))
	_, err = e.svc.Status(ctx, "c", "")
	assert.ErrorIs(t, err, couponq.ErrInvalidID)
}

func TestWindow(t *testing.T) {
	opens := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 10, OpensAt: opens, ClosesAt: opens.Add(time.Hour)})
	ctx := context.Background()
	e.now = opens.Add(-time.Second)
	_, err := e.svc.Admit(ctx, req("c", "early"))
	assert.ErrorIs(t, err, couponq.ErrNotOpen)
	e.now = opens
	_, err = e.svc.Admit(ctx, req("c", "ontime"))
	assert.NoError(t, err)
	e.now = opens.Add(time.Hour)
	_, err = e.svc.Admit(ctx, req("c", "late"))
	assert.ErrorIs(t, err, couponq.ErrClosed)
	assert.Equal(t, int64(1), e.queue.Stats("c").Admitted)
}

// downQueue fails every call, as a queue whose server is unreachable.
type downQueue struct{ couponq.Queue }

var errDown = errors.New("connection refused")

func (downQueue) Admit(context.Context, couponq.Admission) (couponq.Ticket, error) {
	return couponq.Ticket{}, errDown
}
func (downQueue) Status(context.Context, string, string) (couponq.Status, error) {
	return couponq.Status{}, errDown
}

func TestBackendDownIsUnavailableNeverAccepted(t *testing.T) {
	e := newEnv(t, func(c *admission.Config) { c.Queue = downQueue{} }, couponq.Campaign{ID: "c", Stock: 1})
	tk, err := e.svc.Admit(context.Background(), req("c", "u"))
	assert.ErrorIs(t, err, couponq.ErrUnavailable)
	assert.ErrorIs(t, err, errDown)
	assert.Zero(t, tk)
	_, err = e.svc.Status(context.Background(), "c", "u")
	assert.ErrorIs(t, err, couponq.ErrUnavailable)
}

func TestV1GateDuplicateAndSoldOut(t *testing.T) {
	var events []couponq.AdmitEvent
	e := newEnv(t, func(c *admission.Config) { c.OnAdmit = func(ev couponq.AdmitEvent) { events = append(events, ev) } },
		couponq.Campaign{ID: "v1", Stock: 2, Mode: couponq.ValidateFirst})
	ctx := context.Background()
	tk, err := e.svc.Admit(ctx, req("v1", "a"))
	require.NoError(t, err)
	assert.Equal(t, couponq.StateInFlight, tk.State)
	assert.Equal(t, int64(1), tk.Entry)
	assert.Equal(t, 1, e.transport.Len(), "V1 publishes before it answers")
	st, err := e.svc.Status(ctx, "v1", "a")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateInFlight, st.State)

	_, err = e.svc.Admit(ctx, req("v1", "a"))
	assert.ErrorIs(t, err, couponq.ErrDuplicate)
	_, err = e.svc.Admit(ctx, req("v1", "b"))
	require.NoError(t, err)
	_, err = e.svc.Admit(ctx, req("v1", "c"))
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
	n, err := e.tally.Incr(ctx, "v1", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "the overflow INCR was rolled back")
	in, err := e.tally.Has(ctx, "v1", "c")
	require.NoError(t, err)
	assert.False(t, in, "the sold-out user was taken out of the set")
	assert.Equal(t, 2, e.transport.Len())
	require.Len(t, events, 4)
	assert.Equal(t, couponq.ValidateFirst, events[0].Mode)
	assert.ErrorIs(t, events[3].Err, couponq.ErrSoldOut)
}

func TestV1DispatchFailureRollsBack(t *testing.T) {
	fail := true
	d := couponq.DispatcherFunc(func(context.Context, []couponq.Entry) error {
		if fail {
			return errors.New("broker down")
		}
		return nil
	})
	e := newEnv(t, func(c *admission.Config) { c.Dispatcher = d }, couponq.Campaign{ID: "v1", Stock: 1, Mode: couponq.ValidateFirst})
	ctx := context.Background()
	_, err := e.svc.Admit(ctx, req("v1", "a"))
	assert.ErrorIs(t, err, couponq.ErrUnavailable)
	fail = false
	tk, err := e.svc.Admit(ctx, req("v1", "a"))
	require.NoError(t, err, "after the rollback the same user can try again")
	assert.Equal(t, int64(1), tk.Entry, "and the stock the failed try took is back")
}

func TestV1LockContentionIsBusy(t *testing.T) {
	e := newEnv(t, func(c *admission.Config) {
		c.LockScope = couponq.LockPerCampaign
		c.LockWait = 30 * time.Millisecond
	}, couponq.Campaign{ID: "v1", Stock: 5, Mode: couponq.ValidateFirst})
	lk, err := e.locker.Obtain(context.Background(), "couponq:v1:v1", time.Minute)
	require.NoError(t, err)
	_, err = e.svc.Admit(context.Background(), req("v1", "a"))
	assert.ErrorIs(t, err, couponq.ErrBusy)
	require.NoError(t, lk.Release(context.Background()))
	_, err = e.svc.Admit(context.Background(), req("v1", "a"))
	assert.NoError(t, err)
}

func TestV1NeedsItsBackends(t *testing.T) {
	// Known at New: refused there.
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "v1", Stock: 5, Mode: couponq.ValidateFirst})
	require.NoError(t, err)
	_, err = admission.New(admission.Config{Catalog: cat, Queue: memline.NewQueue(nil)})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "New sees the V1 campaign and the missing backends")
	assert.ErrorContains(t, err, "campaign v1 is V1")

	// Created later: the admission says why, and writes nothing.
	later, err := memline.NewRegistry()
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: later, Queue: memline.NewQueue(nil)})
	require.NoError(t, err)
	_, err = later.Create(context.Background(), couponq.Campaign{ID: "v1", Stock: 5, Mode: couponq.ValidateFirst})
	require.NoError(t, err)
	_, err = svc.Admit(context.Background(), req("v1", "a"))
	assert.ErrorIs(t, err, couponq.ErrUnsupported)
	_, err = svc.Status(context.Background(), "v1", "a")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
}

func TestCampaignValidate(t *testing.T) {
	ok := couponq.Campaign{ID: "ok", Stock: 1}
	require.NoError(t, ok.Validate())
	d := ok.WithDefaults()
	assert.Equal(t, 1, d.PerUserLimit)
	assert.Equal(t, 100, d.BatchSize)
	assert.Equal(t, time.Second, d.Interval)
	now := time.Now()
	for name, c := range map[string]couponq.Campaign{
		"no id":        {Stock: 1},
		"bad id":       {ID: "a/b", Stock: 1},
		"no stock":     {ID: "x"},
		"neg limit":    {ID: "x", Stock: 1, PerUserLimit: -1},
		"neg batch":    {ID: "x", Stock: 1, BatchSize: -1},
		"neg tick":     {ID: "x", Stock: 1, Interval: -time.Second},
		"closes first": {ID: "x", Stock: 1, OpensAt: now, ClosesAt: now},
		"mode":         {ID: "x", Stock: 1, Mode: 7},
	} {
		assert.ErrorIs(t, c.Validate(), couponq.ErrInvalidCampaign, name)
	}
	_, err := memline.NewRegistry(ok, ok)
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "duplicate IDs")
}

func TestFailedEntries(t *testing.T) {
	assert.Equal(t, []bool{false, false}, couponq.FailedEntries(nil, 2))
	assert.Equal(t, []bool{true, true}, couponq.FailedEntries(errors.New("x"), 2))
	pe := &couponq.PartialError{Failed: map[int]error{1: errors.New("x"), 7: errors.New("out of range")}}
	assert.Equal(t, []bool{false, true, false}, couponq.FailedEntries(pe, 3))
	assert.Contains(t, pe.Error(), "2 entries")
}
