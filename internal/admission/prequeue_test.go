package admission_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
)

func TestPreQueueCampaignValidation(t *testing.T) {
	opens := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		c    couponq.Campaign
		ok   bool
	}{
		{"pre-queue", couponq.Campaign{ID: "a", Stock: 1, OpensAt: opens, PreQueue: time.Hour}, true},
		{"pre-queue without OpensAt", couponq.Campaign{ID: "a", Stock: 1, PreQueue: time.Hour}, false},
		{"negative pre-queue", couponq.Campaign{ID: "a", Stock: 1, OpensAt: opens, PreQueue: -time.Second}, false},
		{"V1 pre-queue", couponq.Campaign{ID: "a", Stock: 1, OpensAt: opens, PreQueue: time.Hour, Mode: couponq.ValidateFirst}, false},
		{"pre-queue and shards", couponq.Campaign{ID: "a", Stock: 1, OpensAt: opens, PreQueue: time.Hour, Shards: 3}, false},
		{"shards", couponq.Campaign{ID: "a", Stock: 1, Shards: couponq.MaxShards}, true},
		{"too many shards", couponq.Campaign{ID: "a", Stock: 1, Shards: couponq.MaxShards + 1}, false},
		{"negative shards", couponq.Campaign{ID: "a", Stock: 1, Shards: -1}, false},
		{"V1 shards", couponq.Campaign{ID: "a", Stock: 1, Shards: 2, Mode: couponq.ValidateFirst}, false},
		{"sub-line mark in ID", couponq.Campaign{ID: "a@@1", Stock: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
			}
		})
	}
}

func TestCampaignsRefuseChangingShards(t *testing.T) {
	ctx := context.Background()
	k, err := memline.NewRegistry(couponq.Campaign{ID: "a", Stock: 10, Shards: 3})
	require.NoError(t, err)
	c, err := k.Campaign(ctx, "a")
	require.NoError(t, err)
	c.Shards = 4
	_, err = k.Update(ctx, c)
	require.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	c.Shards, c.Stock = 3, 20
	_, err = k.Update(ctx, c)
	require.NoError(t, err)
}

func TestServiceAdmitsToThePreQueue(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	opens := now.Add(30 * time.Minute)
	c := couponq.Campaign{ID: "drop", Stock: 5, OpensAt: opens, PreQueue: 10 * time.Minute}
	cat, err := memline.NewRegistry(c)
	require.NoError(t, err)
	clock := now
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: memline.NewQueue(nil), Now: func() time.Time { return clock }})
	require.NoError(t, err)

	_, err = svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "eager"})
	require.ErrorIs(t, err, couponq.ErrNotOpen, "before the pre-queue opens")
	assert.Equal(t, couponq.CampaignScheduled, c.State(clock, false))

	clock = opens.Add(-5 * time.Minute)
	assert.Equal(t, couponq.CampaignPreQueue, c.State(clock, false))
	tk, err := svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "u1"})
	require.NoError(t, err)
	assert.True(t, tk.PreQueue)
	assert.Zero(t, tk.Position)
	assert.Zero(t, tk.EstimatedWait)
	assert.False(t, tk.BeyondStock)
	again, err := svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "u1"})
	require.NoError(t, err)
	assert.True(t, again.Repeat)
	assert.True(t, again.PreQueue)
	st, err := svc.Status(ctx, "drop", "u1")
	require.NoError(t, err)
	assert.True(t, st.PreQueue)
	assert.Zero(t, st.Position)

	clock = opens
	st, err = svc.Status(ctx, "drop", "u1")
	require.NoError(t, err)
	assert.False(t, st.PreQueue, "from OpensAt the place is (being) drawn")
	tk, err = svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "u2"})
	require.NoError(t, err)
	assert.False(t, tk.PreQueue)
	assert.Equal(t, int64(2), tk.Position)
}

func TestServicePreQueueNeedsASeater(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 55, 0, 0, time.UTC)
	c := couponq.Campaign{ID: "drop", Stock: 5, OpensAt: now.Add(time.Minute), PreQueue: time.Hour}
	cat, err := memline.NewRegistry(c)
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: struct{ couponq.Queue }{memline.NewQueue(nil)},
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = svc.Admit(context.Background(), couponq.Request{Campaign: "drop", User: "u1"})
	require.True(t, errors.Is(err, couponq.ErrUnsupported), "%v", err)
}

// SeatOrder is a permutation, fixed by its seed.
func TestSeatOrderIsAReplayablePermutation(t *testing.T) {
	for _, n := range []int64{0, 1, 2, 7, 1000} {
		a := couponq.SeatOrder(42, n)
		require.Len(t, a, int(n))
		seen := make(map[int64]bool, n)
		for _, v := range a {
			require.True(t, v >= 1 && v <= n)
			require.False(t, seen[v])
			seen[v] = true
		}
		assert.Equal(t, a, couponq.SeatOrder(42, n))
	}
	assert.NotEqual(t, couponq.SeatOrder(1, 50), couponq.SeatOrder(2, 50))
	// A fixed vector, so the draw cannot change unnoticed (an audit replays
	// it): computed by a separate Python implementation of SeatSwaps' doc.
	assert.Equal(t, []int64{1, 6, 3, 8, 2, 5, 4, 7}, couponq.SeatOrder(2026, 8))
}
