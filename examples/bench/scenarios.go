package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
	"github.com/couponq/couponq/node"
)

// The HTTP scenarios, in report order. v2 is the default configuration
// (the Redis backend coalesces concurrent admissions); v2-uncoalesced sets
// redisq.Config.DisableCoalescing, one script call per admission.
var httpScenarios = []string{"noop", "v2", "v2-uncoalesced", "v1-user-lock", "v1-campaign-lock"}

// oneConnScenarios are also measured at one connection: coalescing must
// not add latency when nothing runs concurrently.
var oneConnScenarios = []string{"v2", "v2-uncoalesced"}

// oneConnRounds is how many interleaved one-connection runs of each the
// p50 ratio's target is judged on (their medians).
const oneConnRounds = 3

type backends struct {
	o      options
	rdb    *redis.Client
	prefix string
	cm     kafka.ConfigMap
	topic  string
	// prod is the Kafka transport to b.topic; only its producing side is
	// used (nothing consumes b.topic).
	prod *kafkadispatch.Transport
	seq  atomic.Int64
}

func newBackends(ctx context.Context, o options) (*backends, error) {
	b := &backends{o: o, prefix: fmt.Sprintf("bench%d", time.Now().Unix())}
	b.rdb = redis.NewClient(&redis.Options{Addr: o.redis, PoolSize: 1100})
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	b.cm = kafka.ConfigMap{"bootstrap.servers": o.brokers, "broker.address.family": "v4", "linger.ms": 5}
	b.topic = b.prefix + "-entries"
	if err := createTopic(ctx, b.cm, b.topic, 8); err != nil {
		return nil, err
	}
	var err error
	b.prod, err = kafkadispatch.New(kafkadispatch.Config{Topic: b.topic, ConfigMap: b.cm})
	return b, err
}

func (b *backends) close() {
	b.prod.Close()
	iter := b.rdb.Scan(context.Background(), 0, b.prefix+":*", 1000).Iterator()
	for iter.Next(context.Background()) {
		b.rdb.Unlink(context.Background(), iter.Val())
	}
	_ = b.rdb.Close()
}

func createTopic(ctx context.Context, cm kafka.ConfigMap, topic string, partitions int) error {
	admin, err := kafka.NewAdminClient(&cm)
	if err != nil {
		return err
	}
	defer admin.Close()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		return err
	}
	if res[0].Error.Code() != kafka.ErrNoError {
		return res[0].Error
	}
	return nil
}

func (b *backends) campaign(mode couponq.Mode) couponq.Campaign {
	// The run's prefix keeps IDs apart from earlier runs' rows in a persistent Store.
	return couponq.Campaign{ID: fmt.Sprintf("%s-c%d", b.prefix, b.seq.Add(1)), Stock: 1 << 40, Mode: mode}
}

// handler builds the scenario's server side: for all but noop, the public
// handler of a node as a host runs it, with the API role, the Redis
// backend on rdb under prefix and the Kafka transport (V1 publishes each
// admission to it), the campaign created through the node. lockWaits
// collects V1's lock waits; observer, if set, is the V2 node's Observer
// (the Prometheus probe). n is the node (nil for noop); stop stops it.
func (b *backends) handler(ctx context.Context, sc string, c couponq.Campaign, lockWaits *durations, observer node.Observer,
	rdb redis.UniversalClient, prefix string) (h http.Handler, n *node.Node, stop func(), err error) {
	if sc == "noop" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
		}), nil, func() {}, nil
	}
	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: prefix, DisableCoalescing: sc == "v2-uncoalesced"})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := node.Config{Roles: node.RoleAPI, Backend: backend, Transport: b.prod, Observer: observer} // the workers hold the Store
	if strings.HasPrefix(sc, "v1") {
		if sc == "v1-campaign-lock" {
			cfg.LockScope = couponq.LockPerCampaign
		}
		cfg.Observer = lockWaitObserver{lockWaits}
	}
	if n, err = node.New(cfg); err != nil {
		return nil, nil, nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, nil, nil, err
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = n.Stop(sctx)
	}
	if _, err := n.CreateCampaign(ctx, c); err != nil {
		stop()
		return nil, nil, nil, err
	}
	if h, err = n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User")}); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return h, n, stop, nil
}

// lockWaitObserver collects the lock wait of every V1 admission.
type lockWaitObserver struct{ waits *durations }

func (o lockWaitObserver) OnAdmit(ev couponq.AdmitEvent) { o.waits.add(ev.LockWait) }
func (lockWaitObserver) OnTick(dispatch.TickEvent)       {}
func (lockWaitObserver) OnIssue(issuer.Event)            {}
func (lockWaitObserver) OnStoreCall(issuer.StoreCall)    {}
func (lockWaitObserver) OnOverIssue(issuer.OverIssue)    {}

// statusPollScenario is the status poll: wrk drives GET
// /campaigns/{id}/entries/me for users admitted (and waiting) first,
// through the v2 node's handler.
const statusPollScenario = "status-poll"

// statusPollUsers is how many users the status poll admits first; wrk
// cycles over them.
const statusPollUsers = 100_000

// httpSpec is one HTTP run: a scenario (httpScenarios, or
// statusPollScenario) at conns connections, on the standalone Redis, or,
// with cluster set, a V2 campaign of shards sub-lines on the Redis Cluster.
type httpSpec struct {
	sc      string
	conns   int
	cluster *clusterTarget
	shards  int
	// profile, if set, receives a CPU profile of the bench process over
	// the run (profile.go).
	profile io.Writer
}

// clusterTarget is the Redis Cluster a run's node uses, and its masters.
type clusterTarget struct {
	cc     *redis.ClusterClient
	layout *clusterLayout
}

// standalone is the standalone Redis as a one-master layout, for its
// INFO readings (not to be closed: its client is b.rdb).
func (b *backends) standalone() *clusterLayout {
	return &clusterLayout{addrs: []string{b.o.redis}, clients: []*redis.Client{b.rdb}}
}

// runHTTP serves one scenario on a loopback port and drives it with wrk.
func (b *backends) runHTTP(ctx context.Context, sc string, conns int) (HTTPResult, error) {
	return b.runHTTPSpec(ctx, httpSpec{sc: sc, conns: conns})
}

// runHTTPSpec serves one run's scenario on a loopback port, drives it with
// wrk, and measures the CPU every process used over wrk's run.
func (b *backends) runHTTPSpec(ctx context.Context, spec httpSpec) (HTTPResult, error) {
	sc, conns := spec.sc, spec.conns
	mode := couponq.QueueFirst
	if strings.HasPrefix(sc, "v1") {
		mode = couponq.ValidateFirst
	}
	c := b.campaign(mode)
	var rdb redis.UniversalClient = b.rdb
	// Each run has keys of its own, removed after it, so every run starts
	// on the same Redis.
	prefix, masters := fmt.Sprintf("%sh%d", b.prefix, b.seq.Add(1)), b.standalone()
	defer func() { masters.purge(prefix) }()
	if spec.cluster != nil {
		if !strings.HasPrefix(sc, "v2") {
			return HTTPResult{}, fmt.Errorf("%s: only V2 runs on the Cluster", sc)
		}
		prefix = fmt.Sprintf("%scl%d", b.prefix, b.seq.Add(1))
		rdb, masters = spec.cluster.cc, spec.cluster.layout
		var err error
		// The sub-lines spread evenly over the masters, as the sharded-line section picks them.
		if c.ID, _, _, _, err = pickHotID(prefix, spec.shards, len(masters.addrs), masters.masterOf); err != nil {
			return HTTPResult{}, err
		}
		if spec.shards > 1 {
			c.Shards = spec.shards
		}
	}
	var waits durations
	var probe *promProbe
	var observer node.Observer
	if strings.HasPrefix(sc, "v2") {
		var err error
		if probe, err = newPromProbe(); err != nil {
			return HTTPResult{}, err
		}
		defer probe.close()
		observer = probe.metrics
	}
	hsc := sc
	if sc == statusPollScenario {
		hsc = "v2"
	}
	h, n, stop, err := b.handler(ctx, hsc, c, &waits, observer, rdb, prefix)
	if err != nil {
		return HTTPResult{}, err
	}
	defer stop()
	script, args := b.o.script, []string{c.ID}
	if sc == statusPollScenario {
		// Users p1..pN wait in the line; wrk asks for their status.
		if err := parallel(ctx, statusPollUsers, 200, func(i int) error {
			_, err := n.Admit(ctx, couponq.Request{Campaign: c.ID, User: "p" + strconv.Itoa(i+1)})
			return err
		}); err != nil {
			return HTTPResult{}, fmt.Errorf("status poll: admitting its users: %w", err)
		}
		script, args = filepath.Join(filepath.Dir(b.o.script), "status.lua"), []string{strconv.Itoa(statusPollUsers)}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return HTTPResult{}, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if spec.profile != nil {
		if err := pprof.StartCPUProfile(spec.profile); err != nil {
			return HTTPResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	url := "http://" + ln.Addr().String() + "/campaigns/" + c.ID + "/entries"
	if sc == statusPollScenario {
		url += "/me"
	}
	cmd := exec.CommandContext(ctx, "wrk", append([]string{fmt.Sprintf("-t%d", min(2, conns)), fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(b.o.duration.Seconds())),
		"--timeout", "5s", "-s", script, url, "--"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var before int64
	if probe != nil {
		if before, err = probe.admissions(ctx); err != nil {
			return HTTPResult{}, err
		}
	}
	// What an earlier run left busy (Redis freeing keys, Kafka, Postgres)
	// settles first.
	quietWait, settled := waitQuiet(ctx, 30*time.Second)
	// The bench process idle, the server up: the noise in its CPU below.
	// So is Redis: anyone else's load on it would count in its CPU below.
	meter := newCPUMeter()
	ri0, err := masters.stats(ctx)
	if err != nil {
		return HTTPResult{}, err
	}
	idle0 := meter.read()
	time.Sleep(cpuIdleWindow)
	cpu0 := meter.read()
	idle := cpu0.since(idle0)
	rs0, err := masters.stats(ctx)
	if err != nil {
		return HTTPResult{}, err
	}
	icmds, icpu, _ := deltas(ri0, rs0)
	box0, _ := boxCPU()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return HTTPResult{}, fmt.Errorf("wrk: %w", err)
	}
	// Two scrapes while wrk runs, a fifth of the duration after its start
	// and before its end, so neither the ramp-up nor the requests still in
	// flight when wrk stops counting are in the window.
	var scraped scrapeWindow
	if probe != nil {
		scraped, err = probe.window(ctx, start, b.o.duration)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return HTTPResult{}, err
		}
	}
	if err := cmd.Wait(); err != nil {
		return HTTPResult{}, fmt.Errorf("wrk: %w: %s", err, errb.String())
	}
	wall := time.Since(start)
	cpu := meter.read().since(cpu0)
	box1, _ := boxCPU()
	rs1, err := masters.stats(ctx)
	if err != nil {
		return HTTPResult{}, err
	}
	var whole int64
	if probe != nil {
		time.Sleep(time.Second) // let the requests wrk left in flight finish
		n, err := probe.admissions(ctx)
		if err != nil {
			return HTTPResult{}, err
		}
		whole = n - before
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var w wrkJSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &w); err != nil {
		return HTTPResult{}, fmt.Errorf("wrk output %q: %w", out.String(), err)
	}
	r := HTTPResult{Scenario: sc, Conns: conns, Requests: w.Requests, Seconds: float64(w.DurationUS) / 1e6,
		P50ms: w.P50 / 1e3, P95ms: w.P95 / 1e3, P99ms: w.P99 / 1e3, MaxMs: w.Max / 1e3, MeanMs: w.Mean / 1e3,
		S2xx: w.S2xx, S409: w.S409, S410: w.S410, S503: w.S503, SOther: w.SOther,
		Timeouts: w.ErrTimeout, ConnErrors: w.ErrConnect + w.ErrRead + w.ErrWrite, ScrapedAdmissions: scraped.admissions, ScrapedSeconds: scraped.seconds, ScrapedWhole: whole}
	r.RPS = float64(r.Requests) / r.Seconds
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.LoadCPUShare = cpu.Seconds() / wall.Seconds() / float64(numCPU())
		r.LoadCPUSec = cpu.Seconds()
	}
	r.CPUWallSec, r.ServerCPUSec, r.KafkaCPUSec = cpu.Wall, cpu.Self, cpu.Kafka
	r.IdleCPUPerSec = idle.Self / idle.Wall
	r.BoxCPUSec, r.QuietWaitSec, r.QuietShare = box1-box0, quietWait.Seconds(), settled
	for i := range icpu {
		r.IdleRedisCPUPerSec += icpu[i] / idle.Wall
		r.IdleRedisCmdsPerSec += float64(icmds[i]) / idle.Wall
	}
	if r.IdleRedisCmdsPerSec > shardBusyPerSec {
		progress("   warning: another client used Redis before the run (%.0f commands/s, %.1f ms of CPU a second): its CPU figures include that load",
			r.IdleRedisCmdsPerSec, 1e3*r.IdleRedisCPUPerSec)
	}
	if spec.cluster != nil {
		r.Shards, r.Cluster = spec.shards, true
	}
	cmds, rcpu, scripts := deltas(rs0, rs1)
	r.RedisMasterCPUSec = rcpu
	for i := range rcpu {
		r.RedisCPUSec += rcpu[i]
		r.RedisCommands += cmds[i]
		r.RedisScripts += scripts[i]
	}
	if n := waits.len(); n > 0 {
		r.LockWaitP50ms, r.LockWaitP99ms, r.LockWaitMeanMs = waits.ms(0.50), waits.ms(0.99), waits.meanMs()
	}
	return r, nil
}

// cpuIdleWindow is how long the bench process's idle CPU is read before
// each HTTP run.
const cpuIdleWindow = 500 * time.Millisecond

type wrkJSON struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	ErrConnect int64   `json:"err_connect"`
	ErrRead    int64   `json:"err_read"`
	ErrWrite   int64   `json:"err_write"`
	ErrTimeout int64   `json:"err_timeout"`
	S2xx       int64   `json:"s2xx"`
	S409       int64   `json:"s409"`
	S410       int64   `json:"s410"`
	S503       int64   `json:"s503"`
	SOther     int64   `json:"sother"`
	P50        float64 `json:"p50_us"`
	P95        float64 `json:"p95_us"`
	P99        float64 `json:"p99_us"`
	Max        float64 `json:"max_us"`
	Mean       float64 `json:"mean_us"`
}

// runRedisCeiling compares admissions/s through the Go API with
// redis-benchmark running the same single-user script, at conns each.
func (b *backends) runRedisCeiling(ctx context.Context, conns, n int) (RedisResult, error) {
	res := RedisResult{Conns: conns, Admissions: n}
	sha, err := b.rdb.ScriptLoad(ctx, redisline.AdmitScript()).Result()
	if err != nil {
		return res, err
	}
	k := redisline.KeysFor(b.prefix, fmt.Sprintf("rb%d", b.seq.Add(1)))
	host, port, _ := net.SplitHostPort(b.o.redis)
	args := []string{"-h", host, "-p", port, "-c", fmt.Sprint(conns), "-n", fmt.Sprint(n), "-r", "100000000", "-q",
		"EVALSHA", sha, fmt.Sprint(len(k.AdmitKeys()))}
	args = append(args, k.AdmitKeys()...)
	args = append(args, "user:__rand_int__", "1", "1700000000000", "0") // user, limit, now, no line cap
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	fields := strings.Fields(strings.ReplaceAll(string(out), "\r", "\n"))
	for i, f := range fields {
		if f == "requests" && i > 0 {
			res.RedisBenchmark, _ = parseFloat(fields[i-1])
		}
	}
	if res.RedisBenchmark == 0 {
		return res, fmt.Errorf("redis-benchmark output not understood: %s", out)
	}
	for _, coalesce := range []bool{false, true} {
		q, err := redisline.New(redisline.Config{Client: b.rdb, Prefix: b.prefix, DisableCoalescing: !coalesce})
		if err != nil {
			return res, err
		}
		campaign := fmt.Sprintf("go%d", b.seq.Add(1))
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := time.Now()
		for range conns {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					if _, err := q.Admit(ctx, couponq.Admission{Campaign: campaign, User: fmt.Sprintf("user:%d", i), At: time.Now()}); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		rate := float64(n) / time.Since(start).Seconds()
		if failed.Load() > 0 {
			return res, fmt.Errorf("%d go api admissions failed", failed.Load())
		}
		if coalesce {
			res.GoAPICoalesced = rate
		} else {
			res.GoAPI = rate
		}
	}
	return res, nil
}

// fill admits n users into a fresh campaign's line.
func (b *backends) fill(ctx context.Context, c couponq.Campaign, n int) (*redisline.Queue, error) {
	q, err := redisline.New(redisline.Config{Client: b.rdb, Prefix: b.prefix})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Int64
	for range 200 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := q.Admit(ctx, couponq.Admission{Campaign: c.ID, User: fmt.Sprintf("u%d", i), At: time.Now()}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return nil, fmt.Errorf("%d admissions failed", failed.Load())
	}
	return q, nil
}

// counting wraps the Kafka dispatcher to count what it accepted, and when.
type counting struct {
	d     couponq.Dispatcher
	mu    sync.Mutex
	n     int64
	first time.Time
	last  time.Time
	marks []mark
}

type mark struct {
	at time.Time
	n  int64
}

func (c *counting) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	err := c.d.Dispatch(ctx, batch)
	ok := int64(len(batch))
	for _, bad := range couponq.FailedEntries(err, len(batch)) {
		if bad {
			ok--
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.n == 0 {
		c.first = now
	}
	c.n += ok
	c.last = now
	c.marks = append(c.marks, mark{now, c.n})
	return err
}

func (c *counting) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// runThrottle measures one campaign moved by a mover (a scheduler of its
// own) to Kafka: a drain as fast as it goes, then a throttled rate. Both
// time from the mover's first move, which comes one Interval after its
// start.
func (b *backends) runThrottle(ctx context.Context) (ThrottleResult, error) {
	var res ThrottleResult
	// Unthrottled: a batch as large as the line, every millisecond.
	const drainN = 50_000
	c := b.campaign(couponq.QueueFirst)
	c.BatchSize, c.Interval = 5000, time.Millisecond
	q, err := b.fill(ctx, c, drainN)
	if err != nil {
		return res, err
	}
	locker, err := redislocker.New(b.rdb, b.prefix)
	if err != nil {
		return res, err
	}
	cd := &counting{d: b.prod}
	th, err := newMover(c, q, cd, locker, nil)
	if err != nil {
		return res, err
	}
	if err := th.Start(ctx); err != nil {
		return res, err
	}
	start, err := th.waitFirstMove(10 * time.Second)
	if err != nil {
		_ = th.Stop(ctx)
		return res, err
	}
	for cd.count() < drainN && time.Since(start) < 2*time.Minute {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	_ = th.Stop(ctx)
	res.DrainEntries = cd.count()
	res.DrainPerSec = float64(res.DrainEntries) / elapsed.Seconds()

	// Throttled: 100 every 100 ms, configured 1,000/s, measured over the
	// 10 s from the first move.
	c = b.campaign(couponq.QueueFirst)
	c.BatchSize, c.Interval = 100, 100*time.Millisecond
	q, err = b.fill(ctx, c, 20_000)
	if err != nil {
		return res, err
	}
	cd = &counting{d: b.prod}
	th, err = newMover(c, q, cd, locker, nil)
	if err != nil {
		return res, err
	}
	if err := th.Start(ctx); err != nil {
		return res, err
	}
	if start, err = th.waitFirstMove(10 * time.Second); err != nil {
		_ = th.Stop(ctx)
		return res, err
	}
	time.Sleep(time.Until(start.Add(10*time.Second + 50*time.Millisecond)))
	_ = th.Stop(ctx)
	cd.mu.Lock()
	defer cd.mu.Unlock()
	// Rate over whole ticks: entries after the first batch, over the time since it.
	window := cd.last.Sub(cd.first)
	res.ConfiguredPerSec = float64(c.BatchSize) / c.Interval.Seconds()
	res.AchievedPerSec = float64(cd.n-int64(c.BatchSize)) / window.Seconds()
	maxBatch := int64(0)
	prev := int64(0)
	for _, m := range cd.marks {
		maxBatch = max(maxBatch, m.n-prev)
		prev = m.n
	}
	res.MaxBatch = maxBatch
	res.Ticks = len(cd.marks)
	return res, nil
}

// durations collects samples safely.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *durations) add(x time.Duration) { d.mu.Lock(); d.d = append(d.d, x); d.mu.Unlock() }
func (d *durations) len() int            { d.mu.Lock(); defer d.mu.Unlock(); return len(d.d) }
func (d *durations) ms(q float64) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := slices.Clone(d.d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / 1e6
}
func (d *durations) meanMs() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sum time.Duration
	for _, x := range d.d {
		sum += x
	}
	return float64(sum) / float64(len(d.d)) / 1e6
}
