package redisline_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/registrytest"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

func newRegistry(t *testing.T, c redis.UniversalClient, prefix string) *redisline.Registry {
	t.Helper()
	r, err := redisline.NewRegistry(redisline.RegistryConfig{Client: c, Prefix: prefix})
	require.NoError(t, err)
	return r
}

func TestRegistryConformance(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		// One prefix for the whole suite: the registry is shared, as it is
		// between a host's processes.
		prefix := redistest.Prefix(t, c)
		registrytest.Run(t, func(t *testing.T) couponq.Registry { return newRegistry(t, c, prefix) })
	})
}

func TestNewRegistryValidates(t *testing.T) {
	_, err := redisline.NewRegistry(redisline.RegistryConfig{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "no client")
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err = redisline.NewRegistry(redisline.RegistryConfig{Client: c, Prefix: "a{b}"})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "prefix with a hash tag")
}

// The stored layout and encoding are a format other processes (and other
// versions) read: this pins them.
func TestRegistryLayout(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		r := newRegistry(t, c, prefix)
		opens := time.Date(2031, 3, 1, 18, 0, 0, 5, time.FixedZone("UTC+9", 9*3600))
		_, err := r.Create(ctx, couponq.Campaign{ID: "spring:sale", Stock: 1000, OpensAt: opens,
			ClosesAt: opens.Add(24 * time.Hour), Mode: couponq.ValidateFirst, MaxWaiting: 10_000, Paused: true})
		require.NoError(t, err)
		_, err = r.Create(ctx, couponq.Campaign{ID: "bare", Stock: 5})
		require.NoError(t, err)
		_, err = r.Create(ctx, couponq.Campaign{ID: "wide", Stock: 5, Shards: 4})
		require.NoError(t, err)
		_, err = r.Create(ctx, couponq.Campaign{ID: "early", Stock: 5, OpensAt: opens, PreQueue: 10 * time.Minute})
		require.NoError(t, err)

		key := prefix + ":{spring:sale}:campaign"
		rec, err := c.HGetAll(ctx, key).Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"v": "1",
			"c": `{"id":"spring:sale","stock":1000,"per_user_limit":1,` +
				`"opens_at":"2031-03-01T09:00:00.000000005Z","closes_at":"2031-03-02T09:00:00.000000005Z",` +
				`"batch_size":100,"interval_ms":1000,"mode":"validate_first","max_waiting":10000,"paused":true}`,
			"s": "1",
			"n": "1",
		}, rec)
		rec, err = c.HGetAll(ctx, prefix+":{bare}:campaign").Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"v": "1",
			"c": `{"id":"bare","stock":5,"per_user_limit":1,"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false}`,
			"s": "1",
			"n": "1",
		}, rec, "zero times, no line cap, no shards and no pre-queue are left out")
		rec, err = c.HGetAll(ctx, prefix+":{wide}:campaign").Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"v": "1",
			"c": `{"id":"wide","stock":5,"per_user_limit":1,"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false,"shards":4}`,
			"s": "4",
			"n": "1",
		}, rec, "the shard count, in the JSON and on its own")
		rec, err = c.HGetAll(ctx, prefix+":{early}:campaign").Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"v": "1",
			"c": `{"id":"early","stock":5,"per_user_limit":1,"opens_at":"2031-03-01T09:00:00.000000005Z",` +
				`"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false,"pre_queue_ms":600000}`,
			"s": "1",
			"n": "1",
		}, rec, "the pre-queue in milliseconds")
		members, err := c.ZRangeWithScores(ctx, prefix+":campaigns", 0, -1).Result()
		require.NoError(t, err)
		assert.Equal(t, []redis.Z{{Score: 0, Member: "bare"}, {Score: 0, Member: "early"}, {Score: 0, Member: "spring:sale"},
			{Score: 0, Member: "wide"}}, members)

		got, err := r.Campaign(ctx, "spring:sale")
		require.NoError(t, err)
		assert.Equal(t, time.UTC, got.OpensAt.Location(), "times come back in UTC")
		assert.True(t, got.OpensAt.Equal(opens))
		assert.EqualValues(t, 10_000, got.MaxWaiting)

		// Delete removes the record and the index entry.
		require.NoError(t, r.Delete(ctx, "bare", 1))
		n, err := c.Exists(ctx, prefix+":{bare}:campaign").Result()
		require.NoError(t, err)
		assert.Zero(t, n, "record deleted")
		members, err = c.ZRangeWithScores(ctx, prefix+":campaigns", 0, -1).Result()
		require.NoError(t, err)
		assert.Equal(t, []redis.Z{{Score: 0, Member: "early"}, {Score: 0, Member: "spring:sale"}, {Score: 0, Member: "wide"}},
			members, "index entry removed")
		created, err := c.Get(ctx, prefix+":{bare}:incarnation").Result()
		require.NoError(t, err)
		assert.Equal(t, "1", created, "the creation counter outlives the record")
		again, err := r.Create(ctx, couponq.Campaign{ID: "bare", Stock: 5})
		require.NoError(t, err)
		assert.EqualValues(t, 2, again.Incarnation, "a re-created ID is the next incarnation")
		n1, err := c.HGet(ctx, prefix+":{bare}:campaign", "n").Result()
		require.NoError(t, err)
		assert.Equal(t, "2", n1)

		// A record from before incarnations (no "n", no counter) is
		// incarnation 1, and its ID's next creation is 2.
		require.NoError(t, c.HSet(ctx, prefix+":{old}:campaign", "v", "3", "s", "1",
			"c", `{"id":"old","stock":5,"per_user_limit":1,"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false}`).Err())
		old, err := r.Campaign(ctx, "old")
		require.NoError(t, err)
		assert.EqualValues(t, 1, old.Incarnation, "a record without n")
		old.Stock = 6
		old, err = r.Update(ctx, old)
		require.NoError(t, err)
		assert.EqualValues(t, 1, old.Incarnation, "Update of a record without n")
		require.NoError(t, r.Delete(ctx, "old", old.Version))
		old, err = r.Create(ctx, couponq.Campaign{ID: "old", Stock: 5})
		require.NoError(t, err)
		assert.EqualValues(t, 2, old.Incarnation, "re-creation of an ID first created before incarnations")

		if cc, ok := c.(*redis.ClusterClient); ok {
			// The record lives in the slot of the campaign's queue keys.
			a, err := cc.ClusterKeySlot(ctx, key).Result()
			require.NoError(t, err)
			b, err := cc.ClusterKeySlot(ctx, redisline.KeysFor(prefix, "spring:sale").Line).Result()
			require.NoError(t, err)
			assert.Equal(t, b, a, "record and queue keys share a slot")
			b, err = cc.ClusterKeySlot(ctx, prefix+":{spring:sale}:incarnation").Result()
			require.NoError(t, err)
			assert.Equal(t, b, a, "record and creation counter share a slot")
		}
	})
}

// Redis keeps Interval in whole milliseconds: a finer one is refused, not
// rounded, and nothing is written.
func TestRegistryRefusesSubMillisecondInterval(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	_, err := r.Create(ctx, couponq.Campaign{ID: "fine", Stock: 1, Interval: 1500 * time.Microsecond})
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	n, err := c.Exists(ctx, prefix+":{fine}:campaign", prefix+":campaigns").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing written")

	ok, err := r.Create(ctx, couponq.Campaign{ID: "fine", Stock: 1, Interval: 2 * time.Millisecond})
	require.NoError(t, err)
	ok.Interval = time.Millisecond + time.Nanosecond
	_, err = r.Update(ctx, ok)
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
}

// Redis keeps PreQueue in whole milliseconds too: a finer one is refused,
// not rounded, and nothing is written.
func TestRegistryRefusesSubMillisecondPreQueue(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	opens := time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)
	_, err := r.Create(ctx, couponq.Campaign{ID: "fine", Stock: 1, OpensAt: opens, PreQueue: time.Minute + time.Microsecond})
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	n, err := c.Exists(ctx, prefix+":{fine}:campaign", prefix+":campaigns").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing written")

	ok, err := r.Create(ctx, couponq.Campaign{ID: "fine", Stock: 1, OpensAt: opens, PreQueue: time.Minute})
	require.NoError(t, err)
	ok.PreQueue = time.Minute + time.Nanosecond
	_, err = r.Update(ctx, ok)
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	got, err := r.Campaign(ctx, "fine")
	require.NoError(t, err)
	assert.Equal(t, time.Minute, got.PreQueue)
	assert.EqualValues(t, 1, got.Version)
}

// A record written before the shard count had a field of its own (no "s")
// counts one line: an update keeping one line passes and writes the
// field, one asking for more is refused with ErrInvalidCampaign, naming
// the counts, and writes nothing.
func TestRegistryRecordWithoutShardCountIsOneLine(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	key := prefix + ":{old}:campaign"
	require.NoError(t, c.HSet(ctx, key, "v", "3",
		"c", `{"id":"old","stock":5,"per_user_limit":1,"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false}`).Err())
	old, err := r.Campaign(ctx, "old")
	require.NoError(t, err)
	more := old
	more.Shards = 2
	_, err = r.Update(ctx, more)
	require.ErrorIs(t, err, couponq.ErrInvalidCampaign)
	assert.ErrorContains(t, err, "shards are fixed once created (1, not 2)")
	s, err := c.HGet(ctx, key, "v").Result()
	require.NoError(t, err)
	assert.Equal(t, "3", s, "nothing written")

	same := old
	same.Shards = 1
	got, err := r.Update(ctx, same)
	require.NoError(t, err)
	assert.EqualValues(t, 4, got.Version)
	s, err = c.HGet(ctx, key, "s").Result()
	require.NoError(t, err)
	assert.Equal(t, "1", s, "the update writes the field")
}

// A writer that does not know Shards (an older couponq) rewrites the
// campaign's JSON without it, but leaves "s": readers still see the
// sub-line count, so no process routes a sharded campaign to one line.
func TestRegistryShardCountSurvivesAWriterThatDoesNotKnowIt(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	_, err := r.Create(ctx, couponq.Campaign{ID: "hot", Stock: 5, Shards: 3})
	require.NoError(t, err)
	key := prefix + ":{hot}:campaign"
	require.NoError(t, c.HSet(ctx, key, "v", "2",
		"c", `{"id":"hot","stock":9,"per_user_limit":1,"batch_size":100,"interval_ms":1000,"mode":"queue_first","paused":false}`).Err())
	got, err := r.Campaign(ctx, "hot")
	require.NoError(t, err)
	assert.Equal(t, 3, got.Shards)
	assert.EqualValues(t, 9, got.Stock)
	all, err := r.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, 3, all[0].Shards)
}

// A Create that indexed the ID and then failed leaves an index entry without
// a record: List skips it, and Create fills it.
func TestRegistryIndexWithoutRecord(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	require.NoError(t, c.ZAdd(ctx, prefix+":campaigns", redis.Z{Member: "half"}).Err())
	_, err := r.Create(ctx, couponq.Campaign{ID: "whole", Stock: 1})
	require.NoError(t, err)
	all, err := r.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "whole", all[0].ID)
	_, err = r.Campaign(ctx, "half")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	_, err = r.Create(ctx, couponq.Campaign{ID: "half", Stock: 1})
	require.NoError(t, err)
	all, err = r.List(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 2)
}

// A record that does not decode is an error, not an unknown campaign.
func TestRegistryCorruptRecord(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	require.NoError(t, c.HSet(ctx, prefix+":{bad}:campaign", "v", "1", "c", `{"id":"bad","mode":"sideways"}`).Err())
	require.NoError(t, c.ZAdd(ctx, prefix+":campaigns", redis.Z{Member: "bad"}).Err())
	_, err := r.Campaign(ctx, "bad")
	require.Error(t, err)
	assert.NotErrorIs(t, err, couponq.ErrUnknownCampaign)
	assert.Contains(t, err.Error(), "corrupt record")
	_, err = r.List(ctx)
	assert.ErrorContains(t, err, "corrupt record")
}

// roundTrips counts what a client sends about keys under prefix: one per
// command, one per pipeline. (Connection set-up, which the client sends
// through the same hooks, is not the registry's cost.)
type roundTrips struct {
	prefix string
	n      atomic.Int64
}

func (h *roundTrips) ours(cmd redis.Cmder) bool {
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.HasPrefix(s, h.prefix+":") {
			return true
		}
	}
	return false
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.ours(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && h.ours(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func TestRegistryRoundTrips(t *testing.T) {
	c := redistest.Client(t).(*redis.Client)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	// Load both scripts first: a script's first use on a server costs an
	// extra round trip (EVALSHA, then EVAL).
	w, err := r.Create(ctx, couponq.Campaign{ID: "warm", Stock: 1})
	require.NoError(t, err)
	_, err = r.Update(ctx, w)
	require.NoError(t, err)

	h := &roundTrips{prefix: prefix}
	c.AddHook(h)
	count := func(what string, want int64, fn func()) {
		t.Helper()
		before := h.n.Load()
		fn()
		assert.Equal(t, want, h.n.Load()-before, "round trips of %s", what)
	}
	var a couponq.Campaign
	count("Create", 2, func() { a, err = r.Create(ctx, couponq.Campaign{ID: "a", Stock: 1}); require.NoError(t, err) })
	count("Campaign", 1, func() { _, err = r.Campaign(ctx, "a"); require.NoError(t, err) })
	count("Update", 1, func() { _, err = r.Update(ctx, a); require.NoError(t, err) })
	for i := range 1200 {
		_, err := r.Create(ctx, couponq.Campaign{ID: fmt.Sprintf("n%04d", i), Stock: 1})
		require.NoError(t, err)
	}
	count("List of 1,202 campaigns", 6, func() {
		all, err := r.List(ctx)
		require.NoError(t, err)
		assert.Len(t, all, 1202)
	})

	// Behind a CatalogCache, lookups within TTL and idle campaigns cost
	// nothing.
	now := time.Now()
	cache, err := catalog.NewCache(r, catalog.CacheConfig{Now: func() time.Time { return now }})
	require.NoError(t, err)
	count("1,000 cached lookups of 100 campaigns", 100, func() {
		for i := range 1000 {
			_, err := cache.Campaign(ctx, fmt.Sprintf("n%04d", i%100))
			require.NoError(t, err)
		}
	})
	count("an hour of idleness", 0, func() { now = now.Add(time.Hour) })
}

// A change written by one process reaches another through its CatalogCache
// within TTL, and the writer's own process at once after Invalidate.
func TestRegistryChangeReachesOtherProcesses(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c1 redis.UniversalClient) {
		var c2 redis.UniversalClient
		if _, ok := c1.(*redis.ClusterClient); ok {
			c2 = redistest.Cluster(t)
		} else {
			c2 = redistest.Client(t)
		}
		ctx := context.Background()
		prefix := redistest.Prefix(t, c1)
		writer, reader := newRegistry(t, c1, prefix), newRegistry(t, c2, prefix)
		var now atomic.Pointer[time.Time]
		start := time.Now()
		now.Store(&start)
		clock := func() time.Time { return *now.Load() }
		mine, err := catalog.NewCache(writer, catalog.CacheConfig{Now: clock})
		require.NoError(t, err)
		theirs, err := catalog.NewCache(reader, catalog.CacheConfig{Now: clock})
		require.NoError(t, err)

		_, err = writer.Create(ctx, couponq.Campaign{ID: "sale", Stock: 10})
		require.NoError(t, err)
		for _, k := range []*catalog.Cache{mine, theirs} {
			got, err := k.Campaign(ctx, "sale")
			require.NoError(t, err)
			require.False(t, got.Paused)
		}

		_, err = (&catalog.Ops{Registry: writer}).Pause(ctx, "sale")
		require.NoError(t, err)
		mine.Invalidate("sale")
		got, err := mine.Campaign(ctx, "sale")
		require.NoError(t, err)
		assert.True(t, got.Paused, "the writer's process sees its change after Invalidate")
		got, err = theirs.Campaign(ctx, "sale")
		require.NoError(t, err)
		assert.False(t, got.Paused, "another process still serves its cached campaign within TTL")

		later := start.Add(catalog.DefaultTTL)
		now.Store(&later)
		got, err = theirs.Campaign(ctx, "sale")
		require.NoError(t, err)
		assert.True(t, got.Paused, "another process sees the change once TTL has passed")
		assert.Equal(t, couponq.CampaignPaused, got.State(later, false))
	})
}
