// Package agendatest is the conformance suite for couponq.Agenda
// implementations that watch a couponq.Queue's lines (both shipped Queues
// are their own Agenda): Wake and Awake, Rest's check of line and flight,
// the race between Rest and admission, and Sweep when the Agenda has it.
package agendatest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
)

// Backends are an Agenda and the Queue whose lines it watches.
type Backends struct {
	Agenda couponq.Agenda
	Queue  couponq.Queue
}

// sweeper is scheduler.Sweeper, named here so this package does not import
// dispatch.
type sweeper interface {
	Sweep(ctx context.Context) (int, error)
}

// Run runs the suite; newBackends returns fresh, empty backends per test.
func Run(t *testing.T, newBackends func(t *testing.T) Backends) {
	t.Run("WakeAndAwake", func(t *testing.T) { testWakeAndAwake(t, newBackends(t)) })
	t.Run("RestEmpty", func(t *testing.T) { testRestEmpty(t, newBackends(t)) })
	t.Run("RestKeepsWaiting", func(t *testing.T) { testRestKeepsWaiting(t, newBackends(t)) })
	t.Run("RestKeepsInFlight", func(t *testing.T) { testRestKeepsInFlight(t, newBackends(t)) })
	t.Run("RestRacingAdmission", func(t *testing.T) { testRestRacingAdmission(t, newBackends(t)) })
	t.Run("Sweep", func(t *testing.T) {
		b := newBackends(t)
		if _, ok := b.Agenda.(sweeper); !ok {
			t.Skip("the Agenda has no Sweep")
		}
		testSweep(t, b)
	})
}

func awake(t *testing.T, a couponq.Agenda) []string {
	t.Helper()
	ids, err := a.Awake(context.Background())
	require.NoError(t, err)
	return ids
}

func admit(t *testing.T, q couponq.Queue, campaign, user string) couponq.Ticket {
	t.Helper()
	tk, err := q.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: user, At: time.Now()})
	require.NoError(t, err)
	return tk
}

func issued(entries []couponq.Entry) []couponq.Result {
	rs := make([]couponq.Result, len(entries))
	for i, e := range entries {
		rs[i] = couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "id-" + e.User}
	}
	return rs
}

func testWakeAndAwake(t *testing.T, b Backends) {
	ctx := context.Background()
	assert.Empty(t, awake(t, b.Agenda))
	require.NoError(t, b.Agenda.Wake(ctx, "first"))
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, b.Agenda.Wake(ctx, "sec:ond"))
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, b.Agenda.Wake(ctx, "first"), "waking an awake campaign is a no-op")
	assert.Equal(t, []string{"first", "sec:ond"}, awake(t, b.Agenda), "each once, longest awake first")
	assert.ErrorIs(t, b.Agenda.Wake(ctx, "bad id"), couponq.ErrInvalidID)
}

func testRestEmpty(t *testing.T, b Backends) {
	ctx := context.Background()
	require.NoError(t, b.Agenda.Wake(ctx, "c"))
	rested, err := b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.True(t, rested, "a campaign nobody joined rests")
	assert.Empty(t, awake(t, b.Agenda))
	rested, err = b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.True(t, rested, "resting twice is fine")
}

func testRestKeepsWaiting(t *testing.T, b Backends) {
	ctx := context.Background()
	admit(t, b.Queue, "c", "u")
	rested, err := b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.False(t, rested)
	assert.Equal(t, []string{"c"}, awake(t, b.Agenda), "a campaign with people in line is (put back) on the agenda")
}

func testRestKeepsInFlight(t *testing.T, b Backends) {
	ctx := context.Background()
	admit(t, b.Queue, "c", "u1")
	admit(t, b.Queue, "c", "u2")
	require.NoError(t, b.Agenda.Wake(ctx, "c"))
	leased, err := b.Queue.Lease(ctx, "c", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, leased, 2)
	rested, err := b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.False(t, rested, "entries in flight keep the campaign awake")
	require.NoError(t, b.Queue.Ack(ctx, "c", leased, time.Minute))
	require.NoError(t, b.Queue.Record(ctx, "c", issued(leased[:1])...))
	rested, err = b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.False(t, rested, "one still awaits its result")
	assert.Equal(t, []string{"c"}, awake(t, b.Agenda))
	require.NoError(t, b.Queue.Record(ctx, "c", issued(leased[1:])...))
	rested, err = b.Agenda.Rest(ctx, "c")
	require.NoError(t, err)
	assert.True(t, rested)
	assert.Empty(t, awake(t, b.Agenda))
}

// Admissions (waking after writing the first entry of an empty line, as
// admission.Service does), a mover draining the line and Rest all race; at
// the end a campaign off the agenda has nobody in line.
func testRestRacingAdmission(t *testing.T, b Backends) {
	ctx := context.Background()
	const campaigns, users = 4, 150
	var admitters, movers sync.WaitGroup
	var stop atomic.Bool
	for c := range campaigns {
		id := fmt.Sprintf("race-%d", c)
		admitters.Go(func() {
			for i := range users {
				tk := admit(t, b.Queue, id, fmt.Sprintf("u%d", i))
				if tk.Position == 1 {
					assert.NoError(t, b.Agenda.Wake(ctx, id))
				}
			}
		})
		movers.Go(func() {
			for !stop.Load() {
				es, err := b.Queue.Lease(ctx, id, 7, time.Minute)
				if !assert.NoError(t, err) {
					return
				}
				if len(es) > 0 {
					assert.NoError(t, b.Queue.Record(ctx, id, issued(es)...))
				}
				_, err = b.Agenda.Rest(ctx, id)
				assert.NoError(t, err)
			}
		})
	}
	admitters.Wait()
	stop.Store(true)
	movers.Wait()
	on := awake(t, b.Agenda)
	for c := range campaigns {
		id := fmt.Sprintf("race-%d", c)
		if slices.Contains(on, id) {
			continue
		}
		left, err := b.Queue.Lease(ctx, id, users, time.Minute)
		require.NoError(t, err)
		assert.Empty(t, left, "%s is off the agenda with people in line", id)
	}
}

func testSweep(t *testing.T, b Backends) {
	ctx := context.Background()
	sw := b.Agenda.(sweeper)
	n, err := sw.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	admit(t, b.Queue, "in:line", "u") // waiting
	admit(t, b.Queue, "flying", "u")  // in flight
	_, err = b.Queue.Lease(ctx, "flying", 1, time.Minute)
	require.NoError(t, err)
	admit(t, b.Queue, "done", "u") // decided: nothing left
	es, err := b.Queue.Lease(ctx, "done", 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.Queue.Record(ctx, "done", issued(es)...))
	require.NoError(t, b.Agenda.Wake(ctx, "in:line"))

	n, err = sw.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.ElementsMatch(t, []string{"in:line", "flying"}, awake(t, b.Agenda))
}
