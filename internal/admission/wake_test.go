package admission_test

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
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
)

// countingAgenda counts Wake calls per campaign and can fail them.
type countingAgenda struct {
	couponq.Agenda
	mu    sync.Mutex
	wakes map[string]int
	fail  func(n int) error // given the number of this wake call (1-based)
	calls int
}

func (a *countingAgenda) Wake(ctx context.Context, campaign string) error {
	a.mu.Lock()
	a.calls++
	n := a.calls
	fail := a.fail
	a.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.wakes[campaign]++
	a.mu.Unlock()
	return a.Agenda.Wake(ctx, campaign)
}

func (a *countingAgenda) count(campaign string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wakes[campaign]
}

func newWakeEnv(t *testing.T) (*env, *countingAgenda) {
	q := memline.NewQueue(nil)
	ag := &countingAgenda{Agenda: q, wakes: map[string]int{}}
	e := newEnv(t, func(c *admission.Config) { c.Queue, c.Agenda = q, ag },
		couponq.Campaign{ID: "c", Stock: 10}, couponq.Campaign{ID: "d", Stock: 10})
	e.queue = q
	return e, ag
}

func awake(t *testing.T, q *memline.Queue) []string {
	ids, err := q.Awake(context.Background())
	require.NoError(t, err)
	return ids
}

func TestAdmissionWakesCampaign(t *testing.T) {
	ctx := context.Background()
	e, ag := newWakeEnv(t)

	tk, err := e.svc.Admit(ctx, req("c", "u1"))
	require.NoError(t, err)
	require.Equal(t, int64(1), tk.Position)
	assert.Equal(t, 2, ag.count("c"), "pre-mark, then the wake after writing into an empty line")
	assert.Equal(t, []string{"c"}, awake(t, e.queue))

	tk, err = e.svc.Admit(ctx, req("c", "u1"))
	require.NoError(t, err)
	require.True(t, tk.Repeat)
	tk, err = e.svc.Admit(ctx, req("c", "u2"))
	require.NoError(t, err)
	require.Equal(t, int64(2), tk.Position)
	assert.Equal(t, 2, ag.count("c"), "within the second: no pre-mark; a repeat and Position 2 wake nothing")

	e.now = e.now.Add(999 * time.Millisecond)
	_, err = e.svc.Admit(ctx, req("c", "u3"))
	require.NoError(t, err)
	assert.Equal(t, 2, ag.count("c"))
	e.now = e.now.Add(time.Millisecond) // a second after the last wake
	_, err = e.svc.Admit(ctx, req("c", "u4"))
	require.NoError(t, err)
	assert.Equal(t, 3, ag.count("c"), "one pre-mark per second")
	_, err = e.svc.Admit(ctx, req("c", "u4"))
	require.NoError(t, err)
	assert.Equal(t, 3, ag.count("c"))

	// The line emptied and the campaign rested: the next admission is at
	// Position 1 again and wakes it after writing, even within the second.
	_, err = e.queue.Lease(ctx, "c", 10, time.Minute)
	require.NoError(t, err)
	require.NoError(t, e.queue.Record(ctx, "c", result("c", "u1", 1), result("c", "u2", 2), result("c", "u3", 3), result("c", "u4", 4)))
	rested, err := e.queue.Rest(ctx, "c")
	require.NoError(t, err)
	require.True(t, rested)
	require.Empty(t, awake(t, e.queue))
	tk, err = e.svc.Admit(ctx, req("c", "u5"))
	require.NoError(t, err)
	require.Equal(t, int64(1), tk.Position)
	assert.Equal(t, 4, ag.count("c"))
	assert.Equal(t, []string{"c"}, awake(t, e.queue))
	assert.Zero(t, ag.count("d"), "campaigns are woken one by one")
}

func result(campaign, user string, n int64) couponq.Result {
	return couponq.Result{Entry: couponq.Entry{Campaign: campaign, User: user, Number: n}, State: couponq.StateIssued, IssuanceID: "x"}
}

func TestAdmissionPremarkOncePerSecondUnderConcurrency(t *testing.T) {
	e, ag := newWakeEnv(t)
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			if _, err := e.svc.Admit(context.Background(), req("c", fmt.Sprintf("u%d", i))); err == nil {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(200), admitted.Load())
	assert.Equal(t, 2, ag.count("c"), "one pre-mark and one wake after Position 1, for 200 admissions in one second")
}

func TestAdmissionWakeFailures(t *testing.T) {
	ctx := context.Background()
	down := errors.New("agenda down")

	e, ag := newWakeEnv(t)
	ag.fail = func(int) error { return down }
	tk, err := e.svc.Admit(ctx, req("c", "u1"))
	assert.ErrorIs(t, err, couponq.ErrUnavailable)
	assert.ErrorIs(t, err, down)
	assert.Zero(t, tk)
	assert.Zero(t, e.queue.Stats("c").Admitted, "a failed pre-mark admits nothing")

	ag.fail = func(n int) error {
		if n == 3 { // the wake after the admission
			return down
		}
		return nil
	}
	tk, err = e.svc.Admit(ctx, req("c", "u1"))
	require.NoError(t, err, "the failed pre-mark was given back: this admission pre-marks again")
	assert.Equal(t, int64(1), tk.Entry)
	assert.Equal(t, []string{"c"}, awake(t, e.queue), "the pre-mark covers a failed wake after admission")
}

// plainQueue hides memline.Queue's Agenda methods.
type plainQueue struct{ couponq.Queue }

func TestAdmissionWithoutAgendaWakesNothing(t *testing.T) {
	q := memline.NewQueue(nil)
	e := newEnv(t, func(c *admission.Config) { c.Queue = plainQueue{q} }, couponq.Campaign{ID: "c", Stock: 1})
	_, err := e.svc.Admit(context.Background(), req("c", "u"))
	require.NoError(t, err)
	assert.Empty(t, awake(t, q))

	// The Queue's own Agenda is used when Config.Agenda is nil.
	e = newEnv(t, func(c *admission.Config) { c.Queue = q }, couponq.Campaign{ID: "c", Stock: 1})
	_, err = e.svc.Admit(context.Background(), req("c", "v"))
	require.NoError(t, err)
	assert.Equal(t, []string{"c"}, awake(t, q))
}
