package shard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/shard"
	"github.com/couponq/couponq/lock"
)

func wrap(t *testing.T, catalog catalog.Catalog, q couponq.Queue) couponq.Queue {
	s, err := shard.New(shard.Config{Queue: q.(shard.Base), Catalog: catalog})
	require.NoError(t, err)
	return s
}

// The pipeline's invariants (issued == min(stock, users), one unit per
// user, every admitted user decided, batches within BatchSize) hold with a
// line of 4 sub-lines, under injected Store failures and lost commits.
func TestPipelineInvariantsSharded(t *testing.T) {
	pipelinetest.RunSharded(t, 4, func(t *testing.T) pipelinetest.Backends {
		return pipelinetest.Backends{Queue: memline.NewQueue(nil), Tally: memline.NewTally(), Locker: lock.NewMemory(), Wrap: wrap}
	})
}

// The same on the real Redis Cluster, 3 sub-lines (one per master as
// their hash tags fall).
func TestPipelineInvariantsShardedOnRedisCluster(t *testing.T) {
	pipelinetest.RunSharded(t, 3, func(t *testing.T) pipelinetest.Backends {
		b := pipelinetest.Redis(t, redistest.Cluster(t))
		b.Wrap = wrap
		return b
	})
}
