package admission_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
)

// With stock 3, users at positions 4 and 5 are told their place is beyond
// the stock, with no wait estimate; as stock is claimed (issued or in
// flight), positions further up the line become beyond it too.
func TestBeyondStock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 3, BatchSize: 1, Interval: time.Second})
	for i := 1; i <= 5; i++ {
		tk, err := e.svc.Admit(ctx, couponq.Request{Campaign: "c", User: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
		assert.Equal(t, i > 3, tk.BeyondStock, "position %d of stock 3", i)
		if i > 3 {
			assert.Zero(t, tk.EstimatedWait, "no estimate for a place that will not be served")
		} else {
			assert.Equal(t, time.Duration(i)*time.Second, tk.EstimatedWait)
		}
	}
	// Two leave the line for the downstream: u3 is first in line now, with
	// one unit unclaimed.
	got, err := e.queue.Lease(ctx, "c", 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 2)
	st, err := e.svc.Status(ctx, "c", "u3")
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Position)
	assert.False(t, st.BeyondStock, "1 unit left for position 1")
	st, err = e.svc.Status(ctx, "c", "u4")
	require.NoError(t, err)
	assert.EqualValues(t, 2, st.Position)
	assert.True(t, st.BeyondStock, "1 unit left, position 2")
	assert.Zero(t, st.EstimatedWait)
	// An entry in flight that is rejected frees its claim.
	require.NoError(t, e.queue.Record(ctx, "c", couponq.Result{Entry: got[0], State: couponq.StateRejected, Reason: couponq.CodeDuplicate}))
	st, err = e.svc.Status(ctx, "c", "u4")
	require.NoError(t, err)
	assert.False(t, st.BeyondStock, "2 units left, position 2")
}

// A campaign's MaxWaiting caps its line through Service.
func TestLineCapThroughService(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, couponq.Campaign{ID: "c", Stock: 100, MaxWaiting: 2})
	for _, u := range []string{"a", "b"} {
		_, err := e.svc.Admit(ctx, couponq.Request{Campaign: "c", User: u})
		require.NoError(t, err)
	}
	_, err := e.svc.Admit(ctx, couponq.Request{Campaign: "c", User: "late"})
	assert.ErrorIs(t, err, couponq.ErrLineFull)
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
	_, err = e.svc.Status(ctx, "c", "late")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
}

// After a campaign is deleted from the catalog, its kept outcomes are still
// answered; a user with no final outcome hears the campaign is unknown.
func TestStatusOfADeletedCampaign(t *testing.T) {
	ctx := context.Background()
	cat, err := memline.NewRegistry()
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	require.NoError(t, err)
	c, err := cat.Create(ctx, couponq.Campaign{ID: "gone", Stock: 1})
	require.NoError(t, err)
	for _, u := range []string{"a", "b"} {
		_, err := svc.Admit(ctx, couponq.Request{Campaign: "gone", User: u})
		require.NoError(t, err)
	}
	got, err := q.Lease(ctx, "gone", 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, "gone", couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "x1"}))
	require.NoError(t, cat.Delete(ctx, "gone", c.Version))

	st, err := svc.Status(ctx, "gone", "a")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateIssued, st.State)
	assert.Equal(t, "x1", st.IssuanceID)
	_, err = svc.Status(ctx, "gone", "b")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "still waiting in a deleted campaign: no final answer to give")
}
