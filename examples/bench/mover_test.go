package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
)

// A mover moves its own campaign only, though the line's Agenda has others
// awake, and its first move comes one Interval after its start at the
// earliest, which firstMove reports.
func TestMoverMovesItsCampaignOnly(t *testing.T) {
	ctx := t.Context()
	q := memline.NewQueue(time.Now)
	c := couponq.Campaign{ID: "mine", Stock: 100, BatchSize: 5, Interval: 20 * time.Millisecond}
	for _, id := range []string{c.ID, "other"} {
		for i := range 20 {
			_, err := q.Admit(ctx, couponq.Admission{Campaign: id, User: fmt.Sprintf("u%d", i), At: time.Now()})
			require.NoError(t, err)
		}
		require.NoError(t, q.Wake(ctx, id))
	}
	var mu sync.Mutex
	moved := map[string]int{}
	d := couponq.DispatcherFunc(func(_ context.Context, batch []couponq.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			moved[e.Campaign]++
		}
		return nil
	})
	m, err := newMover(c, q, d, lock.NewMemory(), nil)
	require.NoError(t, err)
	_, ok := m.firstMove()
	require.False(t, ok, "a first move before the start")
	before := time.Now()
	require.NoError(t, m.Start(ctx))
	defer func() { require.NoError(t, m.Stop(context.WithoutCancel(ctx))) }()

	first, err := m.waitFirstMove(5 * time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, first.Sub(before), c.Interval, "the first move came sooner than one Interval after the start")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return moved[c.ID] == 20
	}, 5*time.Second, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, moved["other"], "the mover moved another campaign")
}
