package redisline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
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
	q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(b, c), DisableCoalescing: os.Getenv("COUPONQ_BENCH_COALESCE") == ""})
	require.NoError(b, err)
	conc := envInt("COUPONQ_BENCH_CONC", 50)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	admitEach(b, q, "bench", int64(b.N), conc, numberedUser)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "admissions/s")
}

// TestMemoryPerWaitingEntry fills one campaign's line with
// COUPONQ_REDIS_MEMORY_ENTRIES waiting users (set it, e.g. to 1000000; the
// test skips without it) and reports Redis's used_memory per entry. It fails
// only past 200 bytes per entry (a sanity bound; the aim is 100). Then it
// times Queue.Status of COUPONQ_REDIS_STATUS_SAMPLES (default 10,000)
// random waiting users, one at a time, checks each answer (nobody was
// leased, so a user's position is their entry number) and reports p50, p99
// and the largest, and the time Redis spent per call; then it leases a
// quarter of the line, hands 1,000 of those back, and checks and times
// Status again.
func TestMemoryPerWaitingEntry(t *testing.T) {
	n := envInt("COUPONQ_REDIS_MEMORY_ENTRIES", 0)
	if n == 0 {
		t.Skip("set COUPONQ_REDIS_MEMORY_ENTRIES (e.g. 1000000) to measure")
	}
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	user := func(i int64) string { return fmt.Sprintf("user-%07d", i) } // as a host would have them: 12 bytes
	// Open the pool's connections and load the scripts first, so the delta
	// counts the line, not client buffers and the script cache.
	var warm sync.WaitGroup
	for i := range 64 {
		warm.Go(func() {
			_, err := q.Admit(ctx, couponq.Admission{Campaign: "warm", User: user(int64(i)), At: time.Now()})
			assert.NoError(t, err)
			_, err = q.Status(ctx, "mem", "nobody")
			assert.ErrorIs(t, err, couponq.ErrNotFound)
		})
	}
	warm.Wait()
	before := usedMemory(t, c)
	admitEach(t, q, "mem", int64(n), 64, user)
	after := usedMemory(t, c)
	stats, err := q.LineStats(ctx, "mem")
	require.NoError(t, err)
	require.Equal(t, couponq.LineStats{Admitted: int64(n), Waiting: int64(n), Head: 1}, stats)
	per := float64(after-before) / float64(n)
	t.Logf("waiting entries=%d used_memory before=%d after=%d bytes/entry=%.1f", n, before, after, per)
	fmt.Printf("redis memory per waiting entry: %.1f bytes (%d entries, user IDs of 12 bytes)\n", per, n)

	samples := envInt("COUPONQ_REDIS_STATUS_SAMPLES", 10_000)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	took := make([]time.Duration, 0, samples)
	calls0, usec0 := evalStats(t, c)
	for range samples {
		u := user(rng.Int64N(int64(n)) + 1)
		start := time.Now()
		st, err := q.Status(ctx, "mem", u)
		took = append(took, time.Since(start))
		require.NoError(t, err)
		require.Equal(t, couponq.StateWaiting, st.State, u)
		require.Equal(t, st.Entry, st.Position, "%s: nobody left the line, so the position is the entry number", u)
	}
	calls1, usec1 := evalStats(t, c)
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	fmt.Printf("Queue.Status at %d waiting, %d random users one at a time: p50 %v p99 %v max %v; in Redis %.1f µs a call\n",
		n, samples, pct(0.50), pct(0.99), took[len(took)-1], float64(usec1-usec0)/float64(max(calls1-calls0, 1)))
	printEncodings(t, c, prefix+":{mem}:")
	require.Less(t, per, 200.0)

	// Then at scale: lease the first quarter of the line, in calls of up
	// to 10,000, hand 1,000 of those back, and check the counts and the
	// positions of random users.
	leased := int64(n / 4)
	var out []couponq.Entry
	for int64(len(out)) < leased {
		es, err := q.Lease(ctx, "mem", int(min(10_000, leased-int64(len(out)))), time.Hour)
		require.NoError(t, err)
		require.NotEmpty(t, es)
		for i, e := range es {
			require.Equal(t, int64(len(out)+i+1), e.Number, "Lease hands out the line in order")
		}
		out = append(out, es...)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	back := out[:min(1000, len(out))]
	require.NoError(t, q.Release(ctx, "mem", back))
	var backNums []int64
	for _, e := range back {
		backNums = append(backNums, e.Number)
	}
	slices.Sort(backNums)
	stats, err = q.LineStats(ctx, "mem")
	require.NoError(t, err)
	require.Equal(t, couponq.LineStats{Admitted: int64(n), Waiting: int64(n) - leased + int64(len(back)),
		InFlight: leased - int64(len(back)), Head: backNums[0]}, stats)
	took = took[:0]
	calls0, usec0 = evalStats(t, c)
	for range samples {
		u := user(rng.Int64N(int64(n)) + 1)
		start := time.Now()
		st, err := q.Status(ctx, "mem", u)
		took = append(took, time.Since(start))
		require.NoError(t, err)
		if i, ok := slices.BinarySearch(backNums, st.Entry); ok {
			require.Equal(t, couponq.StateWaiting, st.State, u)
			require.EqualValues(t, i+1, st.Position, "%s was handed back: it waits at the head", u)
		} else if st.Entry <= leased {
			require.Equal(t, couponq.StateInFlight, st.State, u)
		} else {
			require.Equal(t, couponq.StateWaiting, st.State, u)
			require.Equal(t, int64(len(back))+st.Entry-leased, st.Position, u)
		}
	}
	calls1, usec1 = evalStats(t, c)
	slices.Sort(took)
	fmt.Printf("Queue.Status after leasing %d and handing %d back, %d random users: p50 %v p99 %v max %v; in Redis %.1f µs a call\n",
		leased, len(back), samples, pct(0.50), pct(0.99), took[len(took)-1], float64(usec1-usec0)/float64(max(calls1-calls0, 1)))
}

// printEncodings prints how many keys of each kind the line has under base
// ("prefix:{campaign}:") and the encoding of one of each, from one node.
func printEncodings(t *testing.T, c redis.UniversalClient, base string) {
	ctx := context.Background()
	for _, kind := range []string{"line", "q:*", "u:*"} {
		var keys []string
		iter := c.Scan(ctx, 0, base+kind, 10_000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		require.NoError(t, iter.Err())
		if len(keys) == 0 {
			continue
		}
		enc, err := c.ObjectEncoding(ctx, keys[0]).Result()
		require.NoError(t, err)
		fmt.Printf("  %s: %d keys, %s\n", kind, len(keys), enc)
	}
}

// evalStats returns the script calls (EVALSHA) Redis has run and the
// microseconds they took, from INFO commandstats.
func evalStats(t *testing.T, c redis.UniversalClient) (calls, usec int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
			for field := range strings.SplitSeq(rest, ",") {
				k, v, _ := strings.Cut(field, "=")
				switch k {
				case "calls":
					calls, _ = strconv.ParseInt(v, 10, 64)
				case "usec":
					usec, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	}
	return calls, usec
}

func usedMemory(t *testing.T, c redis.UniversalClient) int64 {
	info, err := c.InfoMap(context.Background(), "memory").Result()
	require.NoError(t, err)
	v, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	require.NoError(t, err)
	return v
}

// TestAdmitCPU is a lab for the admission path's CPU: it admits
// COUPONQ_ADMIT_CPU_USERS new users (set it, e.g. to 200000; the test
// skips without it) through the coalescing Go API from 256 goroutines, and
// reports the CPU time per admission of this process (the client) and of
// Redis (INFO cpu), and the mean batch per script call.
func TestAdmitCPU(t *testing.T) {
	n := envInt("COUPONQ_ADMIT_CPU_USERS", 0)
	if n == 0 {
		t.Skip("set COUPONQ_ADMIT_CPU_USERS (e.g. 200000) to measure")
	}
	c := redistest.Client(t)
	q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c)})
	require.NoError(t, err)
	ctx := context.Background()
	// Warm: scripts loaded, pool filled.
	for i := range 1000 {
		_, err := q.Admit(ctx, couponq.Admission{Campaign: "cpu", User: "warm:" + strconv.Itoa(i)})
		require.NoError(t, err)
	}
	r0, calls0 := redisline.RedisCPU(t, c)
	s0 := redisline.SelfCPU(t)
	start := time.Now()
	admitEach(t, q, "cpu", int64(n), 256, numberedUser)
	took := time.Since(start)
	r1, calls1 := redisline.RedisCPU(t, c)
	s1 := redisline.SelfCPU(t)
	t.Logf("admit cpu: %d admissions in %v (%.0f/s): client %.2f µs, Redis %.2f µs per admission; %.1f admissions per script call",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), (s1-s0)*1e6/float64(n), (r1-r0)*1e6/float64(n), float64(n)/float64(max(calls1-calls0, 1)))
}

// TestStatusCPU is a lab for status reads (it skips unless
// COUPONQ_STATUS_CPU_READS is set, e.g. to 200000): 100,000 users wait,
// then 256 goroutines read random users' status, with concurrent reads
// pipelined (the default) and each its own call (DisableCoalescing),
// interleaved twice; it reports Redis's CPU and this process's per read.
func TestStatusCPU(t *testing.T) {
	n := envInt("COUPONQ_STATUS_CPU_READS", 0)
	if n == 0 {
		t.Skip("set COUPONQ_STATUS_CPU_READS (e.g. 200000) to measure")
	}
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	ctx := context.Background()
	const waiting = 100_000
	fill, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
	require.NoError(t, err)
	admitEach(t, fill, "reads", waiting, 64, numberedUser)
	spent := map[bool][2]float64{}
	took := map[bool]time.Duration{}
	for range 2 {
		for _, single := range []bool{true, false} {
			q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix, DisableCoalescing: single})
			require.NoError(t, err)
			r0, _ := redisline.RedisCPU(t, c)
			s0, start := redisline.SelfCPU(t), time.Now()
			var done atomic.Int64
			var wg sync.WaitGroup
			for g := range 256 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for done.Add(1) <= int64(n) {
						u := "user:" + strconv.Itoa(1+rng.IntN(waiting))
						if _, err := q.Status(ctx, "reads", u); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			took[single] += time.Since(start)
			s := spent[single]
			r1, _ := redisline.RedisCPU(t, c)
			s[0] += r1 - r0
			s[1] += redisline.SelfCPU(t) - s0
			spent[single] = s
		}
	}
	per := func(single bool) string {
		reads := float64(2 * n)
		return fmt.Sprintf("Redis %.2f µs, client %.2f µs per read, %.0f reads/s", spent[single][0]*1e6/reads, spent[single][1]*1e6/reads, reads/took[single].Seconds())
	}
	t.Logf("status cpu, 100,000 waiting, 256 readers: one call each: %s; pipelined: %s", per(true), per(false))
}

// numberedUser is user i as the labs name them: "user:<i>".
func numberedUser(i int64) string { return "user:" + strconv.FormatInt(i, 10) }

// admitEach admits users 1..n of campaign, named by user, from workers
// goroutines at once; an error fails tb and stops that worker.
func admitEach(tb testing.TB, q *redisline.Queue, campaign string, n int64, workers int, user func(int64) string) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := q.Admit(ctx, couponq.Admission{Campaign: campaign, User: user(i), At: time.Now()}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
