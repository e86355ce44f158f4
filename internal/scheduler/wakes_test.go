package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
)

// wakeBound is how soon a woken campaign must be moved, against a
// PollInterval of an hour: only the Agenda's announcement can bring it.
const wakeBound = 2 * time.Second

// A campaign woken while the leader is running is moved at once, not at
// the leader's next poll of the Agenda (an hour away here): the first
// campaign proves the leader polled already and lets its line rest; the
// second wakes after that.
func TestSchedulerMovesAWokenCampaignAtOnce(t *testing.T) {
	cs := []couponq.Campaign{
		{ID: "first", Stock: 100, BatchSize: 10, Interval: 10 * time.Millisecond},
		{ID: "later", Stock: 100, BatchSize: 10, Interval: 10 * time.Millisecond},
	}
	t.Run("memory", func(t *testing.T) {
		w := newWorld(t, cs...)
		start(t, w.scheduler(t, "s", func(c *scheduler.Config) { c.PollInterval = time.Hour }))
		w.admit(t, "first", 0, 5) // before or after the first poll: seen either way
		require.Eventually(t, func() bool { return w.sink.count("first") == 5 && len(w.awake(t)) == 0 },
			5*time.Second, 5*time.Millisecond)
		w.admit(t, "later", 0, 5)
		require.Eventually(t, func() bool { return w.sink.count("later") == 5 }, wakeBound, 5*time.Millisecond)
	})
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) { testRedisWakeAtOnce(t, srv.dial, cs) })
	}
}

func testRedisWakeAtOnce(t *testing.T, dial func(testing.TB) redis.UniversalClient, cs []couponq.Campaign) {
	admin := dial(t)
	prefix := redistest.Prefix(t, admin)
	catalog, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	api, err := redisline.New(redisline.Config{Client: dial(t), Prefix: prefix})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: catalog, Queue: api})
	require.NoError(t, err)
	sk := newSink(api)
	p := newRedisProcess(t, dial, prefix, "p", catalog, sk.as("p"), false, func(c *scheduler.Config) { c.PollInterval = time.Hour })
	start(t, p.sched)
	admit := func(campaign string) {
		for i := range 5 {
			_, err := svc.Admit(context.Background(), couponq.Request{Campaign: campaign, User: fmt.Sprintf("u%d", i)})
			require.NoError(t, err)
		}
	}
	admit("first")
	require.Eventually(t, func() bool {
		ids, err := api.Awake(context.Background())
		return err == nil && sk.count("first") == 5 && len(ids) == 0
	}, 10*time.Second, 5*time.Millisecond)
	admit("later")
	require.Eventually(t, func() bool { return sk.count("later") == 5 }, wakeBound, 5*time.Millisecond)
}
