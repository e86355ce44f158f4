package redisline_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/queuetest"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock/redislocker"
)

func TestMain(m *testing.M) {
	// go-redis keeps a pool reaper and cluster state loaders briefly alive after Close.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

func newQueue(t *testing.T, c redis.UniversalClient) *redisline.Queue {
	q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c)})
	require.NoError(t, err)
	return q
}

// The suite with every admission its own script call (DisableCoalescing).
func TestQueueConformance(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		queuetest.Run(t, func(t *testing.T) couponq.Queue {
			q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c), DisableCoalescing: true})
			require.NoError(t, err)
			return q
		})
	})
}

// The same suite with admissions coalesced into multi-user script calls
// (the default), with small batches.
func TestQueueConformanceCoalesced(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		queuetest.Run(t, func(t *testing.T) couponq.Queue {
			q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c), CoalesceMax: 16})
			require.NoError(t, err)
			return q
		})
	})
}

func TestPipelineInvariants(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		pipelinetest.Run(t, func(t *testing.T) pipelinetest.Backends { return pipelinetest.Redis(t, c) })
	})
}

// 10,000 concurrent admissions from 5,000 users, each user twice: every user
// is in line once, entry numbers are unique and gap-free.
func TestConcurrentAdmissions(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		t.Run(fmt.Sprintf("coalesce=%v", coalesce), func(t *testing.T) { testConcurrentAdmissions(t, coalesce) })
	}
}

func testConcurrentAdmissions(t *testing.T, coalesce bool) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c), DisableCoalescing: !coalesce})
		require.NoError(t, err)
		const users, requests = 5000, 10000
		campaign := "burst"
		var mu sync.Mutex
		byUser := map[string]int64{}
		var wg sync.WaitGroup
		errs := make(chan error, requests)
		start := make(chan struct{})
		for i := range requests {
			wg.Go(func() {
				<-start
				u := fmt.Sprintf("user-%d", i%users)
				tk, err := q.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: u, At: time.Now()})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := byUser[u]; ok && prev != tk.Entry {
					errs <- fmt.Errorf("%s has entries %d and %d", u, prev, tk.Entry)
				}
				byUser[u] = tk.Entry
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		nums := make([]int64, 0, users)
		for _, n := range byUser {
			nums = append(nums, n)
		}
		slices.Sort(nums)
		require.Len(t, nums, users)
		for i, n := range nums {
			require.Equal(t, int64(i+1), n, "entry numbers unique and gap-free")
		}
		leased, err := q.Lease(context.Background(), campaign, users+10, time.Minute)
		require.NoError(t, err)
		assert.Len(t, leased, users, "every user is in line exactly once")
	})
}

// Two throttles on separate clients and separate lockers: one leads, the
// batches never exceed BatchSize, and they never come closer than a tick.
func TestTwoSchedulersOneLeader(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c1 redis.UniversalClient) {
		var c2 redis.UniversalClient
		if _, ok := c1.(*redis.ClusterClient); ok {
			c2 = redistest.Cluster(t)
		} else {
			c2 = redistest.Client(t)
		}
		prefix := redistest.Prefix(t, c1)
		campaign := couponq.Campaign{ID: "dam", Stock: 1, BatchSize: 20, Interval: 50 * time.Millisecond}
		q1, err := redisline.New(redisline.Config{Client: c1, Prefix: prefix})
		require.NoError(t, err)
		q2, err := redisline.New(redisline.Config{Client: c2, Prefix: prefix})
		require.NoError(t, err)
		for i := range 400 {
			_, err := q1.Admit(context.Background(), couponq.Admission{Campaign: campaign.ID, User: fmt.Sprintf("u%d", i), At: time.Now()})
			require.NoError(t, err)
		}
		type batch struct {
			by string
			at time.Time
			n  int
		}
		var mu sync.Mutex
		var batches []batch
		rec := func(name string) couponq.Dispatcher {
			return couponq.DispatcherFunc(func(_ context.Context, b []couponq.Entry) error {
				mu.Lock()
				defer mu.Unlock()
				batches = append(batches, batch{name, time.Now(), len(b)})
				return nil
			})
		}
		l1, err := redislocker.New(c1, prefix)
		require.NoError(t, err)
		l2, err := redislocker.New(c2, prefix)
		require.NoError(t, err)
		cat := catalog.Func(func(context.Context, string) (couponq.Campaign, error) { return campaign, nil })
		th1, err := scheduler.New(scheduler.Config{Catalog: cat, Agenda: q1, Queue: q1, Dispatcher: rec("one"), Locker: l1, LeaderTTL: time.Second,
			Key: prefix + ":scheduler", PollInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		th2, err := scheduler.New(scheduler.Config{Catalog: cat, Agenda: q2, Queue: q2, Dispatcher: rec("two"), Locker: l2, LeaderTTL: time.Second,
			Key: prefix + ":scheduler", PollInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, th1.Start(context.Background()))
		require.NoError(t, th2.Start(context.Background()))
		time.Sleep(600 * time.Millisecond)
		mu.Lock()
		cut := len(batches) // a stopping leader hands over; judge the time both ran
		mu.Unlock()
		require.NoError(t, th1.Stop(context.Background()))
		require.NoError(t, th2.Stop(context.Background()))

		mu.Lock()
		defer mu.Unlock()
		batches = batches[:cut]
		require.NotEmpty(t, batches)
		total := 0
		var ats []time.Time
		for _, b := range batches {
			assert.Equal(t, batches[0].by, b.by, "one leader moves entries")
			assert.LessOrEqual(t, b.n, campaign.BatchSize)
			ats = append(ats, b.at)
			total += b.n
		}
		assert.LessOrEqual(t, pipelinetest.MaxInWindow(ats, 10*campaign.Interval), 12, "at most one batch per tick")
		assert.LessOrEqual(t, total, (len(batches))*campaign.BatchSize)
		t.Logf("%d batches, %d entries, leader %s", len(batches), total, batches[0].by)
	})
}

// A Redis that is not there makes admission fail — the handler answers 503 —
// never a false "accepted".
func TestRedisDownIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	q, err := redisline.New(redisline.Config{Client: c})
	require.NoError(t, err)
	_, err = q.Admit(context.Background(), couponq.Admission{Campaign: "c", User: "u"})
	require.Error(t, err)

	cat, err := memline.NewRegistry(couponq.Campaign{ID: "c", Stock: 1})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	require.NoError(t, err)
	_, err = svc.Admit(context.Background(), couponq.Request{Campaign: "c", User: "u"})
	assert.ErrorIs(t, err, couponq.ErrUnavailable)

	h, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User")})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/campaigns/c/entries", nil)
	req.Header.Set("X-User", "u")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Contains(t, rr.Body.String(), `"unavailable"`)
}

func TestKeysShareOneSlot(t *testing.T) {
	c := redistest.Cluster(t)
	k := redisline.KeysFor("couponq", "big-sale")
	var slots []int64
	for _, key := range []string{k.Seq, k.Line, k.Out, k.Flight, k.Held, k.Done, k.SoldOut, k.Clock, k.Issued, k.Trace, k.Seat,
		k.OrderBucket(0), k.OrderBucket(31250), k.UserBucket(0), k.UserBucket(8191), k.V1Users, k.V1Count} {
		s, err := c.ClusterKeySlot(context.Background(), key).Result()
		require.NoError(t, err)
		slots = append(slots, s)
	}
	for _, s := range slots {
		assert.Equal(t, slots[0], s)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := redisline.New(redisline.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = redisline.NewTally(nil, "")
	assert.True(t, errors.Is(err, couponq.ErrInvalidConfig))
}
