package redisline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

// Concurrent status reads of one campaign go out together (one pipeline of
// the status script) and each hears its own user's answer: waiting users
// their entry and place, a user with none not found; after Redis lost its
// scripts too; a reader whose context is gone hears its context's error.
func TestConcurrentStatusReads(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c)})
	require.NoError(t, err)
	const n = 300
	for i := 1; i <= n; i++ {
		_, err := q.Admit(ctx, couponq.Admission{Campaign: "reads", User: fmt.Sprintf("u%03d", i)})
		require.NoError(t, err)
	}
	check := func() {
		var wg sync.WaitGroup
		for i := 1; i <= n+20; i++ {
			wg.Go(func() {
				user := fmt.Sprintf("u%03d", i)
				st, err := q.Status(ctx, "reads", user)
				if i > n {
					assert.ErrorIs(t, err, couponq.ErrNotFound, user)
					return
				}
				if assert.NoError(t, err, user) {
					assert.Equal(t, couponq.StateWaiting, st.State, user)
					assert.EqualValues(t, i, st.Entry, user)
					assert.EqualValues(t, i, st.Position, user)
				}
			})
		}
		wg.Wait()
	}
	check()
	require.NoError(t, c.ScriptFlush(ctx).Err())
	check()

	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Status(gone, "reads", "u001")
	assert.ErrorIs(t, err, context.Canceled)
}
