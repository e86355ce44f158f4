package kafkadispatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/kafkatest"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock/redislocker"
)

// rig is the production shape: Redis line and locks, Kafka between the
// throttle and the issuers, a Store outside the process.
type rig struct {
	campaign couponq.Campaign
	rdb      redis.UniversalClient
	prefix   string
	brokers  string
	topic    string
	queue    *redisline.Queue
	store    *redisstore.Store
	svc      *admission.Service
	catalog  *memline.Registry
}

func newRig(t *testing.T, stock int64, batch int, interval time.Duration) *rig {
	brokers := kafkatest.Brokers(t)
	rdb := redistest.Client(t)
	r := &rig{rdb: rdb, prefix: redistest.Prefix(t, rdb), brokers: brokers, topic: kafkatest.Topic(t, brokers, 8)}
	r.campaign = couponq.Campaign{ID: "e2e", Stock: stock, BatchSize: batch, Interval: interval}
	var err error
	r.catalog, err = memline.NewRegistry(r.campaign)
	require.NoError(t, err)
	r.queue, err = redisline.New(redisline.Config{Client: rdb, Prefix: r.prefix})
	require.NoError(t, err)
	r.store, err = redisstore.New(redisstore.Config{Client: rdb, Prefix: r.prefix})
	require.NoError(t, err)
	r.svc, err = admission.New(admission.Config{Catalog: r.catalog, Queue: r.queue})
	require.NoError(t, err)
	return r
}

func (r *rig) throttle(t *testing.T) *scheduler.Scheduler {
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: r.topic, ConfigMap: kafkatest.Config(r.brokers)})
	require.NoError(t, err)
	t.Cleanup(d.Close)
	locker, err := redislocker.New(r.rdb, r.prefix)
	require.NoError(t, err)
	th, err := scheduler.New(scheduler.Config{Catalog: r.catalog, Agenda: r.queue, Queue: r.queue, Dispatcher: d, Locker: locker,
		Key: r.prefix + ":scheduler", PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	return th
}

// admit lines users up, some twice, 200 at a time; it returns the users who
// hold a ticket.
func (r *rig) admit(t *testing.T, users int) []string {
	var mu sync.Mutex
	var admitted []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u := fmt.Sprintf("user-%06d", i)
			ok := false
			for range 1 + rand.IntN(2) {
				_, err := r.svc.Admit(context.Background(), couponq.Request{Campaign: r.campaign.ID, User: u})
				switch {
				case err == nil:
					ok = true
				case errors.Is(err, couponq.ErrSoldOut), errors.Is(err, couponq.ErrDuplicate):
				default:
					t.Errorf("admit %s: %v", u, err)
				}
			}
			if ok {
				mu.Lock()
				admitted = append(admitted, u)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return admitted
}

// check waits for every admitted user's entry to be terminal, then checks
// the invariants against the Store.
func (r *rig) check(t *testing.T, admitted []string, want int64, wait time.Duration) {
	deadline := time.Now().Add(wait)
	var issued int64
	for _, u := range admitted {
		for {
			st, err := r.svc.Status(context.Background(), r.campaign.ID, u)
			if err == nil && st.State.Terminal() {
				if st.State == couponq.StateIssued {
					issued++
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %s never reached an outcome (last: %+v, %v)", u, st, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stored, err := r.store.IssuedCount(context.Background(), r.campaign.ID)
	require.NoError(t, err)
	holders, err := r.store.Holders(context.Background(), r.campaign.ID)
	require.NoError(t, err)
	assert.Equal(t, want, stored, "issued == min(stock, users)")
	assert.Equal(t, want, issued, "issued statuses match the Store")
	for u, n := range holders {
		assert.Equal(t, 1, n, "user %s issued %d times", u, n)
	}
	t.Logf("admitted=%d issued=%d store=%d holders=%d", len(admitted), issued, stored, len(holders))
}

func newIssuer(t testing.TB, r *rig, group string, store couponq.Store) *issuing.Issuer {
	c, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: r.topic, Group: group, ConfigMap: kafkatest.Config(r.brokers)})
	require.NoError(t, err)
	locker, err := redislocker.New(r.rdb, r.prefix)
	require.NoError(t, err)
	iss, err := issuing.New(issuing.Config{Consumer: c, Store: store, Catalog: r.catalog, Recorder: r.queue, Locker: locker})
	require.NoError(t, err)
	return iss
}

// Redis queue → throttle → Kafka → two issuers → Store: 20,000 users, some
// asking twice, for a stock of 5,000.
func TestEndToEnd(t *testing.T) {
	r := newRig(t, 5000, 1000, 20*time.Millisecond)
	ctx := context.Background()
	th := r.throttle(t)
	a, b := newIssuer(t, r, r.topic+"-workers", r.store), newIssuer(t, r, r.topic+"-workers", r.store)
	start := time.Now()
	require.NoError(t, a.Start(ctx))
	require.NoError(t, b.Start(ctx))
	require.NoError(t, th.Start(ctx))
	admitted := r.admit(t, 20000)
	admitTime := time.Since(start)
	r.check(t, admitted, 5000, 3*time.Minute)
	t.Logf("20000 users: admission %s, all outcomes after %s", admitTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	require.NoError(t, th.Stop(ctx))
	require.NoError(t, a.Stop(ctx))
	require.NoError(t, b.Stop(ctx))
}

const workerEnv = "COUPONQ_KAFKA_WORKER"

// A worker process killed with SIGKILL mid-stream and started again loses
// nothing and issues nothing twice.
func TestConsumerKilledAndRestarted(t *testing.T) {
	const users, stock = 4000, 1500
	r := newRig(t, stock, 500, 10*time.Millisecond)
	ctx := context.Background()
	admitted := r.admit(t, users) // the whole crowd waits in line first
	require.Len(t, admitted, users)
	th := r.throttle(t)
	require.NoError(t, th.Start(ctx))
	defer func() { require.NoError(t, th.Stop(ctx)) }()

	group := r.topic + "-workers"
	startWorker := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"=1",
			"W_REDIS="+os.Getenv("COUPONQ_REDIS_ADDR"), "W_PREFIX="+r.prefix, "W_BROKERS="+r.brokers,
			"W_TOPIC="+r.topic, "W_GROUP="+group, "W_STOCK="+strconv.Itoa(stock))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	first := startWorker()
	// Kill it once it has issued a few hundred, mid-stream.
	require.Eventually(t, func() bool {
		n, err := r.store.IssuedCount(ctx, r.campaign.ID)
		return err == nil && n >= 300
	}, 2*time.Minute, 2*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	atKill, err := r.store.IssuedCount(ctx, r.campaign.ID)
	require.NoError(t, err)
	require.Less(t, atKill, int64(stock), "the kill must land mid-stream")
	t.Logf("killed the worker with %d of %d issued", atKill, stock)

	second := startWorker()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	r.check(t, admitted, stock, 3*time.Minute)
}

// runWorker is the worker process: a Kafka issuer on the shared Redis and
// Store, slowed a little so a kill lands mid-stream. It runs until killed.
func runWorker() int {
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("W_REDIS")})
	stock, _ := strconv.ParseInt(os.Getenv("W_STOCK"), 10, 64)
	campaign := couponq.Campaign{ID: "e2e", Stock: stock}
	catalog, err := memline.NewRegistry(campaign)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	queue, _ := redisline.New(redisline.Config{Client: rdb, Prefix: os.Getenv("W_PREFIX")})
	inner, err := redisstore.New(redisstore.Config{Client: rdb, Prefix: os.Getenv("W_PREFIX")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	slow := couponq.StoreFunc(func(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
		time.Sleep(2 * time.Millisecond)
		return inner.Issue(ctx, r)
	})
	cm := kafkatest.Config(os.Getenv("W_BROKERS"))
	cm["session.timeout.ms"] = 6000 // the group notices the killed member sooner than the 45 s default
	c, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: os.Getenv("W_TOPIC"), Group: os.Getenv("W_GROUP"), ConfigMap: cm})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	locker, _ := redislocker.New(rdb, os.Getenv("W_PREFIX"))
	iss, err := issuing.New(issuing.Config{Consumer: c, Store: slow, Catalog: catalog, Recorder: queue, Locker: locker})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := iss.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
