// Package redistest connects tests to the Redis servers scripts/redis.sh starts.
package redistest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/internal/testenv"
)

// poolSize is 64 connections, or COUPONQ_BENCH_CONC if larger, so a
// benchmark's callers never wait for a connection.
func poolSize() int {
	n, _ := strconv.Atoi(os.Getenv("COUPONQ_BENCH_CONC"))
	return max(64, n)
}

// Client returns a client to the standalone node, closed when the test ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.Need(t, "COUPONQ_REDIS_ADDR", "scripts/redis.sh"), PoolSize: poolSize()})
	ping(t, c)
	return c
}

// Cluster returns a client to the 3-master cluster, closed when the test ends.
func Cluster(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(testenv.Need(t, "COUPONQ_REDIS_CLUSTER", "scripts/redis.sh"), ","), PoolSize: poolSize()})
	ping(t, c)
	return c
}

// Both runs fn as a subtest against the standalone node and the cluster.
func Both(t *testing.T, fn func(t *testing.T, c redis.UniversalClient)) {
	t.Run("standalone", func(t *testing.T) { fn(t, Client(t)) })
	t.Run("cluster", func(t *testing.T) { fn(t, Cluster(t)) })
}

func ping(t testing.TB, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("redis ping: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
}

var seq atomic.Int64

// Prefix returns a key prefix unique to this test, and deletes the keys
// under it when the test ends.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	p := fmt.Sprintf("cqtest:%d:%d", time.Now().UnixNano()%1e9, seq.Add(1))
	t.Cleanup(func() { Purge(c, p) })
	return p
}

// Purge deletes every key under prefix.
func Purge(c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	purge := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				for _, k := range batch { // keys may sit in different slots
					node.Unlink(ctx, k)
				}
				batch = batch[:0]
			}
		}
		for _, k := range batch {
			node.Unlink(ctx, k)
		}
		return iter.Err()
	}
	switch cc := c.(type) {
	case *redis.ClusterClient:
		_ = cc.ForEachMaster(ctx, purge)
	case *redis.Client:
		_ = purge(ctx, cc)
	}
}
