package redisline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

// Keys.All is what Archive puts away: it must name every key of Keys, so a
// key added to the layout cannot be left behind for ever.
func TestKeysAllNamesEveryKey(t *testing.T) {
	k := redisline.KeysFor("p", "c")
	var want []string
	v := reflect.ValueOf(k)
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.String {
			want = append(want, v.Field(i).String())
		}
	}
	all := k.All()
	assert.ElementsMatch(t, want, all)
	assert.Equal(t, []string{k.Line, k.Flight}, all[:2], "the archive script reads line and flight first")
}

// campaignKeys lists every key under prefix:{campaign}: with its PTTL
// (-1: no expiry), on whichever node holds the campaign's slot.
func campaignKeys(t *testing.T, c redis.UniversalClient, prefix, campaign string) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	out := map[string]time.Duration{}
	scan := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, prefix+":{"+campaign+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			out[iter.Val()] = 0
		}
		return iter.Err()
	}
	switch cc := c.(type) {
	case *redis.ClusterClient:
		require.NoError(t, cc.ForEachMaster(ctx, scan))
	case *redis.Client:
		require.NoError(t, scan(ctx, cc))
	}
	for key := range out {
		d, err := c.PTTL(ctx, key).Result()
		require.NoError(t, err)
		out[key] = d
	}
	return out
}

// Archive sets every key of the campaign, the V1 counters included, to
// expire after the retention (and deletes them for 0), leaves the
// Registry's record alone, writes nothing for a busy campaign, and takes
// the campaign off the agenda.
func TestArchiveExpiresEveryKey(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		tally, err := redisline.NewTally(c, prefix)
		require.NoError(t, err)
		reg, err := redisline.NewRegistry(redisline.RegistryConfig{Client: c, Prefix: prefix})
		require.NoError(t, err)
		const id = "drop"
		_, err = reg.Create(ctx, couponq.Campaign{ID: id, Stock: 2})
		require.NoError(t, err)
		record := prefix + ":{" + id + "}:campaign"
		created := prefix + ":{" + id + "}:incarnation" // the Registry's creation counter

		for _, u := range []string{"a", "b", "d"} {
			_, err := q.Admit(ctx, couponq.Admission{Campaign: id, User: u, At: time.Now()})
			require.NoError(t, err)
		}
		require.NoError(t, q.Wake(ctx, id))
		_, err = tally.Add(ctx, id, "v1user")
		require.NoError(t, err)
		_, err = tally.Incr(ctx, id, 1)
		require.NoError(t, err)
		got, err := q.Lease(ctx, id, 2, time.Minute)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.NoError(t, q.Record(ctx, id, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i"}))
		require.NoError(t, q.MarkSoldOut(ctx, id))

		err = q.Archive(ctx, id, time.Hour)
		require.ErrorIs(t, err, couponq.ErrCampaignBusy)
		assert.Contains(t, err.Error(), "1 waiting and 1 in flight")
		for key, ttl := range campaignKeys(t, c, prefix, id) {
			assert.Equal(t, time.Duration(-1), ttl, "a refused Archive set no expiry on %s", key)
		}

		_, err = q.Lease(ctx, id, 10, time.Minute) // resolves d as sold out
		require.NoError(t, err)
		require.NoError(t, q.Record(ctx, id, couponq.Result{Entry: got[1], State: couponq.StateIssued, IssuanceID: "j"}))
		require.NoError(t, q.Archive(ctx, id, time.Hour+time.Microsecond))
		keys := campaignKeys(t, c, prefix, id)
		k := redisline.KeysFor(prefix, id)
		for _, want := range []string{k.Seq, k.Done, k.SoldOut, k.Clock, k.Issued, k.V1Users, k.V1Count, record} {
			assert.Contains(t, keys, want)
		}
		for key, ttl := range keys {
			if key == record || key == created {
				assert.Equal(t, time.Duration(-1), ttl, "the Registry's keys are not the Queue's to expire")
				continue
			}
			assert.Greater(t, ttl, time.Hour-time.Minute, "%s expires after the retention", key)
			assert.LessOrEqual(t, ttl, time.Hour+time.Millisecond, key)
		}
		awake, err := q.Awake(ctx)
		require.NoError(t, err)
		assert.NotContains(t, awake, id, "off the agenda")
		st, err := q.Status(ctx, id, "d")
		require.NoError(t, err)
		assert.Equal(t, couponq.StateRejected, st.State)

		require.NoError(t, q.Archive(ctx, id, 0))
		assert.Equal(t, map[string]time.Duration{record: -1, created: -1}, campaignKeys(t, c, prefix, id),
			"retention 0 deletes every key but the Registry's record and creation counter")
	})
}

// Delete costs two round trips: the compare-and-delete script and the ZREM.
func TestRegistryDeleteRoundTrips(t *testing.T) {
	c := redistest.Client(t).(*redis.Client)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	r := newRegistry(t, c, prefix)
	for _, id := range []string{"warm", "a"} {
		_, err := r.Create(ctx, couponq.Campaign{ID: id, Stock: 1})
		require.NoError(t, err)
	}
	// Load the script first: its first use on a server costs an extra
	// round trip (EVALSHA, then EVAL).
	require.NoError(t, r.Delete(ctx, "warm", 1))
	h := &roundTrips{prefix: prefix}
	c.AddHook(h)
	require.NoError(t, r.Delete(ctx, "a", 1))
	assert.EqualValues(t, 2, h.n.Load())
}

// The admin handler's DELETE on Redis: the Queue's keys are set to expire,
// the Registry's record and index entry are gone.
func TestAdminDeleteOnRedis(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		reg := newRegistry(t, c, prefix)
		_, err = reg.Create(ctx, couponq.Campaign{ID: "drop", Stock: 1, MaxWaiting: 50})
		require.NoError(t, err)
		_, err = q.Admit(ctx, couponq.Admission{Campaign: "drop", User: "a"})
		require.NoError(t, err)
		got, err := q.Lease(ctx, "drop", 1, time.Minute)
		require.NoError(t, err)
		require.NoError(t, q.Record(ctx, "drop", couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i"}))
		require.NoError(t, q.MarkSoldOut(ctx, "drop"))

		h, err := httpapi.NewAdmin(httpapi.AdminConfig{Campaigns: &catalog.Ops{Registry: reg, Lines: q},
			Authorize: func(*http.Request) error { return nil }})
		require.NoError(t, err)
		defer h.Close()
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, err := http.NewRequest("DELETE", srv.URL+"/campaigns/drop?version=1&retention=24h", nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)

		_, err = reg.Campaign(ctx, "drop")
		assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
		n, err := c.ZCard(ctx, prefix+":campaigns").Result()
		require.NoError(t, err)
		assert.Zero(t, n, "index entry removed")
		keys := campaignKeys(t, c, prefix, "drop")
		assert.NotEmpty(t, keys)
		for key, ttl := range keys {
			if key == prefix+":{drop}:incarnation" {
				assert.Equal(t, time.Duration(-1), ttl, "the Registry's creation counter stays, for the next incarnation")
				continue
			}
			assert.Greater(t, ttl, 23*time.Hour, "%s expires after the retention", key)
		}
		st, err := q.Status(ctx, "drop", "a")
		require.NoError(t, err)
		assert.Equal(t, couponq.StateIssued, st.State)
	})
}
