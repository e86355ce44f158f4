package scheduler_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/lock/redislocker"
)

// servers dials a new client (a process of its own) to each Redis setup.
var servers = []struct {
	name string
	dial func(testing.TB) redis.UniversalClient
}{
	{"standalone", redistest.Client},
	{"cluster", redistest.Cluster},
}

// commandCounter is a go-redis hook counting the commands a client sends.
type commandCounter struct {
	mu    sync.Mutex
	names map[string]int
}

func countCommands(c redis.UniversalClient) *commandCounter {
	cc := &commandCounter{names: map[string]int{}}
	c.AddHook(cc)
	return cc
}

func (c *commandCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		c.names[cmd.Name()]++
	}
}

// take returns the counts so far, by command, and starts again from zero.
func (c *commandCounter) take() (total int, names map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names, c.names = c.names, map[string]int{}
	for _, n := range names {
		total += n
	}
	return total, names
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds...)
		return next(ctx, cmds)
	}
}

// redisProcess is one scheduler process: its own client, queue and locker
// over the shared prefix.
type redisProcess struct {
	name  string
	sched *scheduler.Scheduler
	cmds  *commandCounter
}

func newRedisProcess(t *testing.T, dial func(testing.TB) redis.UniversalClient, prefix, name string,
	catalog catalog.Catalog, d couponq.Dispatcher, crash bool, mut func(*scheduler.Config)) *redisProcess {
	t.Helper()
	c := dial(t)
	p := &redisProcess{name: name, cmds: countCommands(c)}
	q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
	require.NoError(t, err)
	l, err := redislocker.New(c, prefix)
	require.NoError(t, err)
	var locker lock.Locker = l
	if crash {
		locker = crashy{l}
	}
	cfg := scheduler.Config{Catalog: catalog, Agenda: q, Queue: q, Dispatcher: d, Locker: locker}
	if mut != nil {
		mut(&cfg)
	}
	p.sched, err = scheduler.New(cfg)
	require.NoError(t, err)
	return p
}

// Several processes' schedulers over one Redis: the leader is killed twice
// mid-run (its lease left behind, as a crash leaves it), a standby takes
// over each time, every admitted entry is dispatched, and no campaign is
// ever moved faster than BatchSize per Interval or by two movers at once.
func TestSchedulerRedisFailover(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) { testRedisFailover(t, srv.dial) })
	}
}

func testRedisFailover(t *testing.T, dial func(testing.TB) redis.UniversalClient) {
	ctx := context.Background()
	admin := dial(t)
	prefix := redistest.Prefix(t, admin)
	var cs []couponq.Campaign
	for i := range 4 {
		cs = append(cs, couponq.Campaign{ID: fmt.Sprintf("camp-%d", i), Stock: 100000,
			BatchSize: 4 + i, Interval: time.Duration(30+10*i) * time.Millisecond})
	}
	catalog, err := memline.NewRegistry(cs...)
	require.NoError(t, err)

	// The API process admits; its queue also records the sink's results.
	api, err := redisline.New(redisline.Config{Client: dial(t), Prefix: prefix})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: catalog, Queue: api})
	require.NoError(t, err)
	sk := newSink(api)

	var procs []*redisProcess
	for i := range 3 {
		name := fmt.Sprintf("p%d", i)
		procs = append(procs, newRedisProcess(t, dial, prefix, name, catalog, sk.as(name), true, func(c *scheduler.Config) {
			c.LeaderTTL, c.PollInterval = 600*time.Millisecond, 20*time.Millisecond
		}))
	}
	for _, p := range procs {
		require.NoError(t, p.sched.Start(ctx))
		t.Cleanup(func() { require.NoError(t, p.sched.Stop(context.Background())) })
	}

	// Users arrive in waves while leaders die.
	var admitted sync.Map
	stopAdmitting := make(chan struct{})
	var admitters sync.WaitGroup
	admitters.Go(func() {
		for wave := 0; ; wave++ {
			for _, c := range cs {
				for i := range 8 {
					user := fmt.Sprintf("w%d-u%d", wave, i)
					if _, err := svc.Admit(ctx, couponq.Request{Campaign: c.ID, User: user}); err != nil {
						t.Errorf("admit: %v", err)
						return
					}
					admitted.Store(c.ID+"/"+user, true)
				}
			}
			select {
			case <-stopAdmitting:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	leader := func() *redisProcess {
		var found *redisProcess
		require.Eventually(t, func() bool {
			for _, p := range procs {
				if p.sched.Leading() {
					found = p
					return true
				}
			}
			return false
		}, 5*time.Second, time.Millisecond)
		return found
	}
	movedBy := func(name string) bool {
		for _, c := range cs {
			for _, b := range sk.of(c.ID) {
				if b.by == name {
					return true
				}
			}
		}
		return false
	}
	killed := map[string]bool{}
	for kill := 0; ; kill++ {
		l := leader()
		require.False(t, killed[l.name], "a standby took over")
		require.Eventually(t, func() bool { return movedBy(l.name) }, 5*time.Second, time.Millisecond, "%s moves", l.name)
		time.Sleep(300 * time.Millisecond)
		if kill == 2 {
			break
		}
		require.NoError(t, l.sched.Stop(ctx)) // its lease is left behind
		killed[l.name] = true
		t.Logf("killed leader %s", l.name)
	}
	close(stopAdmitting)
	admitters.Wait()

	var users []string
	admitted.Range(func(k, _ any) bool { users = append(users, k.(string)); return true })
	require.Eventually(t, func() bool {
		for _, u := range users {
			c, user, _ := strings.Cut(u, "/")
			if !sk.has(c, user) {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "every admitted entry is dispatched")
	require.Eventually(t, func() bool {
		ids, err := api.Awake(ctx)
		return err == nil && len(ids) == 0
	}, 10*time.Second, 10*time.Millisecond, "every campaign rests once served")

	movers := map[string]bool{}
	total := 0
	for _, c := range cs {
		sk.checkPace(t, c)
		for _, b := range sk.of(c.ID) {
			movers[b.by] = true
			total += len(b.numbers)
		}
	}
	assert.Len(t, movers, 3, "each process led in turn")
	t.Logf("%d users admitted, %d entries dispatched (resends after a kill included), movers %v",
		len(users), total, slices.Sorted(maps.Keys(movers)))
}

// A new leader sweeps: entries that reached the line without a wake (a
// process that died between admitting and waking, or lines from before the
// scheduler) are found and served. IDs may contain ':'.
func TestSchedulerRedisSweep(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			admin := srv.dial(t)
			prefix := redistest.Prefix(t, admin)
			cs := []couponq.Campaign{
				{ID: "shop:spring-1", Stock: 100, BatchSize: 5, Interval: 10 * time.Millisecond},
				{ID: "b", Stock: 100, BatchSize: 5, Interval: 10 * time.Millisecond},
			}
			catalog, err := memline.NewRegistry(cs...)
			require.NoError(t, err)
			q, err := redisline.New(redisline.Config{Client: admin, Prefix: prefix})
			require.NoError(t, err)
			for _, c := range cs {
				for i := range 12 {
					_, err := q.Admit(ctx, couponq.Admission{Campaign: c.ID, User: fmt.Sprintf("u%d", i), At: time.Now()})
					require.NoError(t, err)
				}
			}
			ids, err := q.Awake(ctx)
			require.NoError(t, err)
			require.Empty(t, ids, "nobody woke them")
			sk := newSink(q)
			p := newRedisProcess(t, srv.dial, prefix, "p", catalog, sk.as("p"), false, func(c *scheduler.Config) {
				c.PollInterval = 10 * time.Millisecond
			})
			require.NoError(t, p.sched.Start(ctx))
			defer func() { require.NoError(t, p.sched.Stop(ctx)) }()
			for _, c := range cs {
				require.Eventually(t, func() bool { return sk.count(c.ID) == 12 }, 10*time.Second, 5*time.Millisecond, c.ID)
			}
			require.Eventually(t, func() bool {
				ids, err := q.Awake(ctx)
				return err == nil && len(ids) == 0
			}, 10*time.Second, 10*time.Millisecond)
		})
	}
}

// The idle cost: 10,000 campaigns exist, nobody is in line; a leader and a
// standby (each its own client, counted by a hook, since the test server is
// shared) with the default timings send at most 2 commands a second each.
func TestSchedulerRedisIdleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 7s")
	}
	ctx := context.Background()
	admin := redistest.Client(t)
	prefix := redistest.Prefix(t, admin)
	cs := make([]couponq.Campaign, 10_000)
	for i := range cs {
		cs[i] = couponq.Campaign{ID: fmt.Sprintf("idle-%05d", i), Stock: 100}
	}
	catalog, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	var procs []*redisProcess
	for _, name := range []string{"first", "second"} {
		procs = append(procs, newRedisProcess(t, redistest.Client, prefix, name, catalog, newSink(nil).as(name), false, nil))
	}
	begin := time.Now()
	for _, p := range procs {
		require.NoError(t, p.sched.Start(ctx))
		defer func() { require.NoError(t, p.sched.Stop(ctx)) }()
	}
	require.Eventually(t, func() bool { return procs[0].sched.Leading() || procs[1].sched.Leading() }, 5*time.Second, time.Millisecond)
	time.Sleep(time.Second) // past the start: first obtains, the new leader's sweep
	for _, p := range procs {
		n, names := p.cmds.take()
		t.Logf("%s: %d commands in its first %s (leading=%v): %v", p.name, n, time.Since(begin).Round(time.Millisecond), p.sched.Leading(), names)
	}
	// A connection's handshake (HELLO, CLIENT SETINFO) is paid once per
	// pooled connection, not per second: counted apart.
	handshake := func(names map[string]int) int { return names["hello"] + names["client"] }
	const window = 5 * time.Second
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start)
	for _, p := range procs {
		n, names := p.cmds.take()
		n -= handshake(names)
		rate := float64(n) / elapsed.Seconds()
		role := "standby"
		if p.sched.Leading() {
			role = "leader"
		}
		t.Logf("%s (%s): %d commands in %s = %.2f/s (besides connection handshakes): %v", p.name, role, n, elapsed.Round(time.Millisecond), rate, names)
		assert.LessOrEqual(t, rate, 2.0, "%s (%s) idle commands per second", p.name, role)
	}
}
