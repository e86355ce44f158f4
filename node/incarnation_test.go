package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/node"
)

// A campaign retired with a retention of 0 and created again is the ID's
// next incarnation: it starts with all its stock, no users and entry
// numbers from 1, in the line and in the Store, while the Store keeps the
// old incarnation's issuances under the old name (issue 20, item 6).
func TestRecreatedCampaignStartsFromZero(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		store := memory.NewStore()
		testRecreated(t, node.Config{Backend: memory.New(), Store: store}, store)
	})
	t.Run("redis", func(t *testing.T) {
		redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
			prefix := redistest.Prefix(t, c)
			backend, err := redisq.New(redisq.Config{Client: c, Prefix: prefix})
			require.NoError(t, err)
			store, err := redisstore.New(redisstore.Config{Client: c, Prefix: prefix + ":store"})
			require.NoError(t, err)
			testRecreated(t, node.Config{Backend: backend, Store: store}, store)
		})
	})
}

func testRecreated(t *testing.T, cfg node.Config, store couponq.IssuedCounter) {
	for _, mode := range []couponq.Mode{couponq.QueueFirst, couponq.ValidateFirst} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := t.Context()
			n := startNode(t, cfg)
			id := "again-" + mode.String()
			admit := func(from, to int) (issued int) {
				t.Helper()
				for i := from; i < to; i++ {
					user := fmt.Sprintf("u%d", i)
					_, err := n.Admit(ctx, couponq.Request{Campaign: id, User: user})
					if err != nil {
						require.ErrorIs(t, err, couponq.ErrSoldOut, "%s", user)
						continue
					}
					if waitTerminal(t, n, id, user).State == couponq.StateIssued {
						issued++
					}
				}
				return issued
			}

			first := createCampaign(t, n, couponq.Campaign{ID: id, Stock: 2, Interval: 5 * time.Millisecond, Mode: mode})
			assert.EqualValues(t, 1, first.Incarnation)
			assert.Equal(t, id, first.StoreCampaign())
			assert.Equal(t, 2, admit(0, 4), "the first incarnation sells out")
			closed, err := n.CloseCampaign(ctx, id, time.Now())
			require.NoError(t, err)
			require.Eventually(t, func() bool { // a sold-out line resolves its last entries in bulk
				st, err := n.LineStats(ctx, id)
				return err == nil && st.Waiting == 0 && st.InFlight == 0
			}, 10*time.Second, 5*time.Millisecond, "the line never emptied")
			require.NoError(t, n.RetireCampaign(ctx, id, closed.Version, 0))

			again := createCampaign(t, n, couponq.Campaign{ID: id, Stock: 3, Interval: 5 * time.Millisecond, Mode: mode})
			assert.EqualValues(t, 2, again.Incarnation, "a re-created ID is its next incarnation")
			assert.Equal(t, id+"~2", again.StoreCampaign())
			tk, err := n.Admit(ctx, couponq.Request{Campaign: id, User: "u0"})
			require.NoError(t, err, "a user issued by the old incarnation is new to this one")
			assert.EqualValues(t, 1, tk.Entry, "entry numbers start at 1")
			assert.Equal(t, couponq.StateIssued, waitTerminal(t, n, id, "u0").State, "not sold out, not a duplicate")
			assert.Equal(t, 2, admit(1, 5), "the other users get the rest of the new stock")

			st, err := n.LineStats(ctx, id)
			require.NoError(t, err)
			assert.EqualValues(t, 3, st.Issued, "the new line counts only its own")
			old, err := store.IssuedCount(ctx, first.StoreCampaign())
			require.NoError(t, err)
			assert.EqualValues(t, 2, old, "the Store keeps the old incarnation's issuances")
			now, err := store.IssuedCount(ctx, again.StoreCampaign())
			require.NoError(t, err)
			assert.EqualValues(t, 3, now, "the Store counts the new incarnation apart")
		})
	}
}
