package redisq_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/internal/redistest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkAdmit measures admissions through the Go API on the standalone
// node at COUPONQ_BENCH_CONC concurrent callers (default 50), each admission
// a new user; with COUPONQ_BENCH_COALESCE set, admissions are coalesced.
// scripts/bench-redis.sh compares it with redis-benchmark running the same
// single-user script at the same concurrency.
func BenchmarkAdmit(b *testing.B) {
	c := redistest.Client(b)
	q, err := redisq.New(redisq.Config{Client: c, Prefix: redistest.Prefix(b, c), Coalesce: os.Getenv("COUPONQ_BENCH_COALESCE") != ""})
	require.NoError(b, err)
	conc := envInt("COUPONQ_BENCH_CONC", 50)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				_, err := q.Admit(ctx, couponq.Admission{Campaign: "bench", User: "user:" + strconv.FormatInt(i, 10), At: time.Now()})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "admissions/s")
}

// TestMemoryPerWaitingEntry fills one campaign's line with
// COUPONQ_REDIS_MEMORY_ENTRIES waiting users (set it, e.g. to 1000000; the
// test skips without it) and reports Redis's used_memory per entry. It fails
// only past 200 bytes per entry; the aim is 100.
func TestMemoryPerWaitingEntry(t *testing.T) {
	n := envInt("COUPONQ_REDIS_MEMORY_ENTRIES", 0)
	if n == 0 {
		t.Skip("set COUPONQ_REDIS_MEMORY_ENTRIES (e.g. 1000000) to measure")
	}
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	q, err := redisq.New(redisq.Config{Client: c, Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	before := usedMemory(t, c)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				// User IDs as a host would have them: "user-" and 7 digits.
				_, err := q.Admit(ctx, couponq.Admission{Campaign: "mem", User: fmt.Sprintf("user-%07d", i), At: time.Now()})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	after := usedMemory(t, c)
	card, err := c.ZCard(ctx, redisq.KeysFor(prefix, "mem").Line).Result()
	require.NoError(t, err)
	require.Equal(t, int64(n), card)
	per := float64(after-before) / float64(n)
	t.Logf("waiting entries=%d used_memory before=%d after=%d bytes/entry=%.1f", n, before, after, per)
	fmt.Printf("redis memory per waiting entry: %.1f bytes (%d entries, user IDs of 12 bytes)\n", per, n)
	require.Less(t, per, 200.0)
}

func usedMemory(t *testing.T, c redis.UniversalClient) int64 {
	info, err := c.InfoMap(context.Background(), "memory").Result()
	require.NoError(t, err)
	v, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	require.NoError(t, err)
	return v
}
