package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/couponq/storetest"
	"github.com/couponq/couponq/internal/redistest"
)

func TestConformance(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		storetest.Run(t, func(t *testing.T) couponq.Store {
			s, err := redisstore.New(redisstore.Config{Client: c, Prefix: redistest.Prefix(t, c)})
			require.NoError(t, err)
			return s
		})
	})
}

func TestConfig(t *testing.T) {
	_, err := redisstore.New(redisstore.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = redisstore.New(redisstore.Config{Client: redis.NewClient(&redis.Options{}), Prefix: "a{b}"})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

// A batch across campaigns on the cluster runs one script per campaign; each
// campaign's keys stay in its slot.
func TestBatchAcrossCampaignsOnCluster(t *testing.T) {
	c := redistest.Cluster(t)
	s, err := redisstore.New(redisstore.Config{Client: c, Prefix: redistest.Prefix(t, c)})
	require.NoError(t, err)
	var rs []couponq.IssueRequest
	for i := range 30 {
		camp := fmt.Sprintf("camp-%d", i%3)
		e := couponq.Entry{Campaign: camp, User: fmt.Sprintf("u%d", i), Number: int64(i + 1)}
		rs = append(rs, couponq.IssueRequest{Campaign: camp, User: e.User, Key: e.Key(), Stock: 4, PerUserLimit: 1})
	}
	out, err := s.IssueBatch(context.Background(), rs)
	require.NoError(t, err)
	got := map[string]int{}
	for i, iss := range out {
		if iss.Outcome == couponq.Issued {
			got[rs[i].Campaign]++
		}
	}
	assert.Equal(t, map[string]int{"camp-0": 4, "camp-1": 4, "camp-2": 4}, got)
	for i := range 3 {
		n, err := s.IssuedCount(context.Background(), fmt.Sprintf("camp-%d", i))
		require.NoError(t, err)
		assert.EqualValues(t, 4, n)
	}
}

func TestCheckDurability(t *testing.T) {
	c := redistest.Client(t)
	s, err := redisstore.New(redisstore.Config{Client: c})
	require.NoError(t, err)
	// The test server runs without AOF, so it is not durable.
	assert.ErrorIs(t, s.CheckDurability(context.Background()), redisstore.ErrNotDurable)
}
