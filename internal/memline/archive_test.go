package memline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// served admits users and records them issued.
func served(t *testing.T, q *memline.Queue, campaign string, users ...string) {
	t.Helper()
	ctx := context.Background()
	for _, u := range users {
		_, err := q.Admit(ctx, couponq.Admission{Campaign: campaign, User: u})
		require.NoError(t, err)
	}
	got, err := q.Lease(ctx, campaign, len(users), time.Minute)
	require.NoError(t, err)
	for _, e := range got {
		require.NoError(t, q.Record(ctx, campaign, couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "i-" + e.User}))
	}
}

// Retention runs on the Queue's clock, and a due campaign is dropped by
// the next call to the Queue, whichever campaign it is about.
func TestArchiveRetentionFollowsTheQueuesClock(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	q := memline.NewQueue(clock.Now)
	served(t, q, "early", "a")
	served(t, q, "late", "b")
	require.NoError(t, q.Archive(ctx, "late", 2*time.Hour))
	require.NoError(t, q.Archive(ctx, "early", time.Hour))

	clock.Add(time.Hour - time.Nanosecond)
	_, err := q.Status(ctx, "early", "a")
	require.NoError(t, err, "kept until the retention has passed")
	clock.Add(time.Nanosecond)
	assert.Equal(t, memline.Stats{}, q.Stats("early"), "dropped once it has")
	_, err = q.Status(ctx, "late", "b")
	require.NoError(t, err, "a campaign archived for longer is kept")

	// Archiving again sets the retention anew, later or earlier.
	require.NoError(t, q.Archive(ctx, "late", 5*time.Hour))
	clock.Add(2 * time.Hour)
	_, err = q.Status(ctx, "late", "b")
	require.NoError(t, err, "a longer retention set anew holds")
	require.NoError(t, q.Archive(ctx, "late", time.Minute))
	clock.Add(time.Minute)
	_, err = q.Status(ctx, "late", "b")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "a shorter retention set anew holds too")
}

// Entries admitted after Archive, still waiting when the retention ends,
// are not dropped: the campaign is live again.
func TestArchiveNeverDropsLiveEntries(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	q := memline.NewQueue(clock.Now)
	served(t, q, "drop", "a")
	require.NoError(t, q.Archive(ctx, "drop", time.Minute))
	tk, err := q.Admit(ctx, couponq.Admission{Campaign: "drop", User: "late"})
	require.NoError(t, err)
	assert.EqualValues(t, 2, tk.Entry)
	clock.Add(time.Hour)
	st, err := q.Status(ctx, "drop", "late")
	require.NoError(t, err)
	assert.Equal(t, couponq.StateWaiting, st.State)
	_, err = q.Status(ctx, "drop", "a")
	require.NoError(t, err, "nothing of the campaign was dropped")
	clock.Add(time.Hour)
	assert.EqualValues(t, 1, q.Stats("drop").Waiting, "and it is archived no more")
}
