package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/node"
)

// Issue 20, item 6: a campaign retired (retention 0) and created again is
// its ID's next incarnation, which pgstore counts under a name of its own:
// the new users are issued, not sold out on the old counter row, and the
// old incarnation's count stays.
func TestRecreatedCampaignOnPostgres(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	n, err := node.New(node.Config{Backend: memory.New(), Store: store})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(t.Context())) }()
	id := campaign("again")

	admit := func(users int) (issued int) {
		t.Helper()
		for i := range users {
			user := fmt.Sprintf("u%d", i)
			_, err := n.Admit(ctx, couponq.Request{Campaign: id, User: user})
			require.NoError(t, err, "%s", user)
		}
		for i := range users {
			user := fmt.Sprintf("u%d", i)
			var st couponq.Status
			require.Eventually(t, func() bool {
				st, err = n.Status(ctx, id, user)
				return err == nil && st.State.Terminal()
			}, 10*time.Second, 5*time.Millisecond, "%s never reached an outcome", user)
			if st.State == couponq.StateIssued {
				issued++
			} else {
				assert.Equal(t, couponq.CodeSoldOut, st.Reason, "%s", user)
			}
		}
		return issued
	}

	first, err := n.CreateCampaign(ctx, couponq.Campaign{ID: id, Stock: 5, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 5, admit(8), "the first incarnation sells out")
	require.Eventually(t, func() bool { // the sold-out line resolves its last entries in bulk
		st, err := n.LineStats(ctx, id)
		return err == nil && st.Waiting == 0 && st.InFlight == 0
	}, 10*time.Second, 5*time.Millisecond, "the line never emptied")
	require.NoError(t, n.RetireCampaign(ctx, id, first.Version, 0))

	again, err := n.CreateCampaign(ctx, couponq.Campaign{ID: id, Stock: 10, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	assert.EqualValues(t, 2, again.Incarnation)
	assert.Equal(t, 10, admit(12), "the re-created campaign issues its whole stock, old users included")

	old, err := store.IssuedCount(ctx, first.StoreCampaign())
	require.NoError(t, err)
	assert.EqualValues(t, 5, old, "the old incarnation's count stays")
	now, err := store.IssuedCount(ctx, again.StoreCampaign())
	require.NoError(t, err)
	assert.EqualValues(t, 10, now, "the new incarnation counts apart")
}
