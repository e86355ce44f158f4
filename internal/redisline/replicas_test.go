package redisline_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/testenv"
)

// redisPair is a master and one replica of the test's own, on free
// loopback ports, stopped when the test ends.
type redisPair struct {
	master, replica *exec.Cmd
	masterAddr      string
	replicaAddr     string
}

// startRedisPair starts a master and a replica of it (no persistence) and
// waits until the replica is online.
func startRedisPair(t testing.TB) *redisPair {
	t.Helper()
	testenv.Need(t, "COUPONQ_REDIS_ADDR", "scripts/redis.sh") // scripts/redis.sh installs redis-server too
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server (scripts/redis.sh installs it)")
	p := &redisPair{}
	var mport int
	p.master, mport = startRedisServer(t, bin, "--repl-diskless-sync-delay", "0")
	p.masterAddr = "127.0.0.1:" + strconv.Itoa(mport)
	p.replica, _ = startRedisServer(t, bin, "--replicaof", "127.0.0.1", strconv.Itoa(mport))
	p.replicaAddr = "127.0.0.1:" + strconv.Itoa(portOf(p.replica))
	p.awaitReplica(t)
	return p
}

func portOf(cmd *exec.Cmd) int {
	for i, a := range cmd.Args {
		if a == "--port" {
			n, _ := strconv.Atoi(cmd.Args[i+1])
			return n
		}
	}
	return 0
}

func startRedisServer(t testing.TB, bin string, extra ...string) (*exec.Cmd, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no", "--logfile", ""}, extra...)
	cmd := exec.Command(bin, args...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for c.Ping(ctx).Err() != nil {
		require.NoError(t, ctx.Err(), "redis-server on %d did not answer", port)
		time.Sleep(20 * time.Millisecond) // polling a process that is starting up
	}
	return cmd, port
}

// awaitReplica waits until the master counts its replica online.
func (p *redisPair) awaitReplica(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: p.masterAddr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
			return
		}
		require.NoError(t, ctx.Err(), "the replica did not come online: %s", info)
		time.Sleep(20 * time.Millisecond) // polling the master's view of its replica
	}
}

func (p *redisPair) client(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReplicaAcksConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, cfg := range []redisline.Config{
		{Client: c, ReplicaAcks: -1},
		{Client: c, ReplicaAcks: 1, ReplicaTimeout: -time.Second},
		{Client: c, ReplicaAcks: 1, ReplicaTimeout: time.Microsecond},
	} {
		_, err := redisline.New(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := redisline.New(redisline.Config{Client: c, ReplicaAcks: 1})
	assert.NoError(t, err)
}

// TestReplicaAcks: with a live replica, replica-acknowledged admissions
// answer as the default ones do and the replica holds them; with the
// replica paused, they answer ErrNotReplicated (wrapping ErrUnavailable)
// while the entry stays on the master, also on a retry (a repeat answer
// waits for the replica too), and the default mode is unaffected; once the
// replica is back, the retry hears the repeat answer with the same entry.
func TestReplicaAcks(t *testing.T) {
	p := startRedisPair(t)
	master, replica := p.client(t, p.masterAddr), p.client(t, p.replicaAddr)
	ctx := context.Background()
	for _, coalesce := range []bool{false, true} {
		t.Run(fmt.Sprintf("coalesce=%v", coalesce), func(t *testing.T) {
			prefix := fmt.Sprintf("acks%v", coalesce)
			// A generous timeout where the replica is live (a loaded machine
			// must not fail the test), a short one where it is not.
			acked, err := redisline.New(redisline.Config{Client: master, Prefix: prefix, DisableCoalescing: !coalesce,
				ReplicaAcks: 1, ReplicaTimeout: 2 * time.Second})
			require.NoError(t, err)
			const timeout = 200 * time.Millisecond
			short, err := redisline.New(redisline.Config{Client: master, Prefix: prefix, DisableCoalescing: !coalesce,
				ReplicaAcks: 1, ReplicaTimeout: timeout})
			require.NoError(t, err)
			plain, err := redisline.New(redisline.Config{Client: master, Prefix: prefix, DisableCoalescing: !coalesce})
			require.NoError(t, err)
			onReplica, err := redisline.New(redisline.Config{Client: replica, Prefix: prefix, DisableCoalescing: true})
			require.NoError(t, err)

			// A live replica: concurrent admissions (batches, when coalescing)
			// answer normally, and every one is on the replica at once.
			var wg sync.WaitGroup
			tickets := make([]couponq.Ticket, 64)
			for i := range tickets {
				wg.Go(func() {
					var err error
					tickets[i], err = acked.Admit(ctx, couponq.Admission{Campaign: "c", User: "u" + strconv.Itoa(i)})
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			seen := map[int64]bool{}
			for i, tk := range tickets {
				require.False(t, seen[tk.Entry], "entry %d twice", tk.Entry)
				seen[tk.Entry] = true
				st, err := onReplica.Status(ctx, "c", "u"+strconv.Itoa(i))
				require.NoError(t, err)
				assert.Equal(t, couponq.StateWaiting, st.State)
				assert.Equal(t, tk.Entry, st.Entry)
			}

			// The replica paused: not acknowledged.
			require.NoError(t, p.replica.Process.Signal(syscall.SIGSTOP))
			start := time.Now()
			_, err = short.Admit(ctx, couponq.Admission{Campaign: "c", User: "late"})
			require.ErrorIs(t, err, redisline.ErrNotReplicated)
			require.ErrorIs(t, err, couponq.ErrUnavailable)
			assert.Equal(t, couponq.CodeUnavailable, couponq.Code(err))
			assert.GreaterOrEqual(t, time.Since(start), timeout)
			st, err := plain.Status(ctx, "c", "late")
			require.NoError(t, err)
			assert.Equal(t, couponq.StateWaiting, st.State, "the master wrote the entry")
			// A retry writes nothing new, and still waits for the replica.
			_, err = short.Admit(ctx, couponq.Admission{Campaign: "c", User: "late"})
			require.ErrorIs(t, err, redisline.ErrNotReplicated)
			// The default mode does not wait.
			tk, err := plain.Admit(ctx, couponq.Admission{Campaign: "c", User: "plain"})
			require.NoError(t, err)
			assert.False(t, tk.Repeat)

			require.NoError(t, p.replica.Process.Signal(syscall.SIGCONT))
			tk, err = acked.Admit(ctx, couponq.Admission{Campaign: "c", User: "late"})
			require.NoError(t, err)
			assert.True(t, tk.Repeat)
			assert.Equal(t, st.Entry, tk.Entry)
			st, err = onReplica.Status(ctx, "c", "late")
			require.NoError(t, err)
			assert.Equal(t, tk.Entry, st.Entry)
		})
	}
}

// TestReplicaAcksAbsent: a master without replicas never acknowledges; on
// the Cluster (3 masters, no replicas) the admission goes to the master of
// the campaign's slot, and the entry is there.
func TestReplicaAcksAbsent(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix, DisableCoalescing: true,
			ReplicaAcks: 1, ReplicaTimeout: 20 * time.Millisecond})
		require.NoError(t, err)
		ctx := context.Background()
		for _, campaign := range []string{"a", "b", "c", "d"} { // slots on different masters of the Cluster
			_, err = q.Admit(ctx, couponq.Admission{Campaign: campaign, User: "ann"})
			require.ErrorIs(t, err, redisline.ErrNotReplicated)
			st, err := q.Status(ctx, campaign, "ann")
			require.NoError(t, err)
			assert.Equal(t, couponq.StateWaiting, st.State)
		}
		// No replicas asked for: the same Redis admits.
		plain, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		_, err = plain.Admit(ctx, couponq.Admission{Campaign: "a", User: "bob"})
		require.NoError(t, err)
	})
}

// TestReplicaAcksCost is a lab (it skips unless
// COUPONQ_REPLICA_COST_ADMISSIONS is set, e.g. to 100000): on a master with
// one replica, 64 callers admit that many new users with and without
// ReplicaAcks: 1, each admission its own call and coalesced, interleaved
// twice; it reports admissions a second and the CPU per admission of the
// master and of this process.
func TestReplicaAcksCost(t *testing.T) {
	n := envInt("COUPONQ_REPLICA_COST_ADMISSIONS", 0)
	if n == 0 {
		t.Skip("set COUPONQ_REPLICA_COST_ADMISSIONS (e.g. 100000) to measure")
	}
	conc := envInt("COUPONQ_BENCH_CONC", 64)
	p := startRedisPair(t)
	c := p.client(t, p.masterAddr)
	ctx := context.Background()
	type mode struct {
		acks     int
		coalesce bool
	}
	type spent struct {
		redis, self float64
		took        time.Duration
		n           int
	}
	modes := []mode{{0, false}, {1, false}, {0, true}, {1, true}}
	got := map[mode]*spent{}
	var users atomic.Int64
	for round := range 2 {
		for _, m := range modes {
			q, err := redisline.New(redisline.Config{Client: c, Prefix: "cost", ReplicaAcks: m.acks, DisableCoalescing: !m.coalesce})
			require.NoError(t, err)
			campaign := fmt.Sprintf("c%d-%v-%d", m.acks, m.coalesce, round)
			r0, _ := redisline.RedisCPU(t, c)
			s0, start := redisline.SelfCPU(t), time.Now()
			var done atomic.Int64
			var wg sync.WaitGroup
			for range conc {
				wg.Go(func() {
					for done.Add(1) <= int64(n) {
						u := "user:" + strconv.FormatInt(users.Add(1), 10)
						if _, err := q.Admit(ctx, couponq.Admission{Campaign: campaign, User: u}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			s := got[m]
			if s == nil {
				s = &spent{}
				got[m] = s
			}
			s.took += time.Since(start)
			r1, _ := redisline.RedisCPU(t, c)
			s.redis += r1 - r0
			s.self += redisline.SelfCPU(t) - s0
			s.n += n
		}
	}
	var b strings.Builder
	for _, m := range modes {
		s := got[m]
		fmt.Fprintf(&b, "\n  ReplicaAcks=%d coalesced=%-5v %7.0f admissions/s, master %.2f µs, client %.2f µs per admission",
			m.acks, m.coalesce, float64(s.n)/s.took.Seconds(), s.redis*1e6/float64(s.n), s.self*1e6/float64(s.n))
	}
	t.Logf("replica-acknowledged admission, %d callers, a master with one replica (loopback), %d admissions per mode:%s", conc, 2*n, b.String())
	if os.Getenv("COUPONQ_REPLICA_COST_OUT") != "" {
		require.NoError(t, os.WriteFile(os.Getenv("COUPONQ_REPLICA_COST_OUT"), []byte(b.String()+"\n"), 0o644))
	}
}
