package scheduler_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/scheduler"
)

// A pre-queue is seated at OpensAt, in the order its recorded seed
// replays, ahead of everyone who arrives after opening; nothing moves
// before.
func TestSchedulerSeatsPreQueueAtOpening(t *testing.T) {
	opens := time.Now().Add(400 * time.Millisecond)
	c := couponq.Campaign{ID: "drop", Stock: 1000, BatchSize: 40, Interval: 10 * time.Millisecond,
		OpensAt: opens, PreQueue: time.Hour}
	w := newWorld(t, c)
	var mu sync.Mutex
	var seatings []couponq.Seating
	var early int
	s := w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.OnTick = func(ev dispatch.TickEvent) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Seating != nil {
				seatings = append(seatings, *ev.Seating)
			}
			if ev.Leased > 0 && time.Now().Before(opens) {
				early++
			}
		}
	})
	start(t, s)
	var pre []string
	for i := range 200 {
		u := fmt.Sprintf("p%03d", i)
		tk, err := w.svc.Admit(context.Background(), couponq.Request{Campaign: c.ID, User: u})
		require.NoError(t, err)
		require.True(t, tk.PreQueue)
		require.Zero(t, tk.Position)
		pre = append(pre, u)
	}
	st, err := w.svc.Status(context.Background(), c.ID, pre[7])
	require.NoError(t, err)
	assert.True(t, st.PreQueue)
	assert.Zero(t, st.Position)
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, w.sink.count(c.ID), "nothing moves before opening")

	time.Sleep(time.Until(opens))
	var post []string
	for i := range 50 {
		u := fmt.Sprintf("q%03d", i)
		tk, err := w.svc.Admit(context.Background(), couponq.Request{Campaign: c.ID, User: u})
		require.NoError(t, err)
		require.False(t, tk.PreQueue)
		post = append(post, u)
	}
	require.Eventually(t, func() bool { return w.sink.count(c.ID) == 250 }, 10*time.Second, 5*time.Millisecond)

	mu.Lock()
	require.Len(t, seatings, 1, "the seating record is reported once")
	seat := seatings[0]
	assert.Zero(t, early)
	mu.Unlock()
	assert.True(t, seat.Done)
	assert.Equal(t, int64(200), seat.Entries)

	// The dispatched order: the pre-queue as the seed replays it, then the
	// later arrivals in arrival order.
	var want []string
	for _, n := range couponq.SeatOrder(seat.Seed, seat.Entries) {
		want = append(want, pre[n-1])
	}
	want = append(want, post...)
	var got []string
	for _, b := range w.sink.of(c.ID) {
		for _, n := range b.numbers {
			got = append(got, userAt(t, w, c.ID, n))
		}
	}
	assert.Equal(t, want, got)
	w.sink.checkPace(t, c)
}

// userAt finds the user whose entry has number n (the sink keeps numbers).
func userAt(t *testing.T, w *world, campaign string, n int64) string {
	t.Helper()
	for _, p := range []string{"p", "q"} {
		for i := range 200 {
			u := fmt.Sprintf("%s%03d", p, i)
			if st, err := w.svc.Status(context.Background(), campaign, u); err == nil && st.Entry == n {
				return u
			}
		}
	}
	t.Fatalf("no user with entry %d", n)
	return ""
}

// A Queue that cannot seat is an error on every tick, and nothing moves.
func TestSchedulerPreQueueNeedsASeater(t *testing.T) {
	c := couponq.Campaign{ID: "drop", Stock: 10, BatchSize: 5, Interval: 5 * time.Millisecond,
		OpensAt: time.Now().Add(-time.Second), PreQueue: time.Hour}
	w := newWorld(t, c)
	errs := make(chan error, 100)
	s := w.scheduler(t, "s", func(cfg *scheduler.Config) {
		cfg.Queue = struct {
			couponq.Queue
			couponq.LineStatser
		}{w.queue, w.queue} // hides Seat
		cfg.OnTick = func(ev dispatch.TickEvent) {
			if ev.Err != nil {
				select {
				case errs <- ev.Err:
				default:
				}
			}
		}
	})
	require.NoError(t, w.queue.Wake(context.Background(), c.ID))
	w.admitRaw(t, c.ID, 3)
	start(t, s)
	select {
	case err := <-errs:
		assert.ErrorContains(t, err, "Seater")
	case <-time.After(5 * time.Second):
		t.Fatal("no tick error")
	}
	assert.Zero(t, w.sink.count(c.ID))
}

// admitRaw puts users straight into the line (the Service would refuse
// admission after OpensAt only for a closed campaign; this skips it).
func (w *world) admitRaw(t *testing.T, campaign string, n int) {
	t.Helper()
	for i := range n {
		_, err := w.queue.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: fmt.Sprintf("r%d", i), PerUserLimit: 1, At: time.Now()})
		require.NoError(t, err)
	}
}
