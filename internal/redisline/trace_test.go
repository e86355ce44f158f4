package redisline_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

// A traced entry's carrier lives in the campaign's trace hash while the
// entry waits or is in flight, and leaves with its outcome (or the sold-out
// drain), so untraced campaigns have no such key and decided entries cost
// nothing. Coalesced admissions store it too.
func TestTraceKeyLivesWhileUndecided(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		for _, coalesce := range []bool{false, true} {
			prefix := redistest.Prefix(t, c)
			q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix, DisableCoalescing: !coalesce})
			require.NoError(t, err)
			ctx := context.Background()
			k := redisline.KeysFor(prefix, "tr")
			exists := func() int64 { n, err := c.Exists(ctx, k.Trace).Result(); require.NoError(t, err); return n }

			admit := func(user, trace string) {
				_, err := q.Admit(ctx, couponq.Admission{Campaign: "tr", User: user, At: time.Now(), Trace: trace})
				require.NoError(t, err)
			}
			admit("plain", "")
			assert.Zero(t, exists(), "no trace hash without traced entries")
			admit("a", "ta")
			admit("b", "tb")
			assert.EqualValues(t, 1, exists())

			got, err := q.Lease(ctx, "tr", 2, time.Minute)
			require.NoError(t, err)
			require.Len(t, got, 2)
			assert.Equal(t, []string{"", "ta"}, []string{got[0].Trace, got[1].Trace})
			require.NoError(t, q.Record(ctx, "tr", couponq.Result{Entry: got[1], State: couponq.StateIssued, IssuanceID: "x"}))
			left, err := c.HKeys(ctx, k.Trace).Result()
			require.NoError(t, err)
			assert.Equal(t, []string{"b"}, left, "a's carrier left with its outcome")

			require.NoError(t, q.MarkSoldOut(ctx, "tr"))
			_, err = q.Lease(ctx, "tr", 10, time.Minute) // the sold-out drain resolves b
			require.NoError(t, err)
			assert.Zero(t, exists(), "the drain took b's carrier")
		}
	})
}
