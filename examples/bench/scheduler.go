package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/lock/redislocker"
)

// The scheduler sections: what campaigns cost while nobody is in line (one
// scheduler.Scheduler per process), and whether one Scheduler keeps 100
// busy campaigns at their configured rates.

// idleSchedulerCounts is the default of -idle-campaigns.
var idleSchedulerCounts = []int{10, 1_000, 10_000}

const (
	// idleWarmup lets a process start before its window: the first obtain,
	// a new leader's sweep, the connection handshakes.
	idleWarmup = 2 * time.Second
	// busyCampaigns is how many campaigns the busy section drives at once.
	busyCampaigns = 100
	// busyWarmup covers a new leader's first move of each campaign, which
	// waits one Interval (up to 1 s here) after it won the lease.
	busyWarmup = 2 * time.Second
)

// IdleResult is what N campaigns with nobody in line cost under one
// Scheduler per process, the campaigns in the Redis registry. Two processes
// run, each with its own Redis client: the first (which leads) alone for
// one window, then with the second (standing by) for another.
type IdleResult struct {
	Campaigns int
	WindowSec float64
	// Commands each process's client sent per second (a go-redis hook;
	// connection handshakes, HELLO and CLIENT, left out), in the window with
	// both running.
	LeaderSentPerSec, StandbySentPerSec float64
	// Commands Redis executed per second (INFO stats total_commands_processed,
	// less the INFO calls): the leader alone in the first window, both in the
	// second, and the difference. Redis counts the commands a Lua script runs
	// as well as the EVALSHA that runs it.
	ServerLeaderPerSec, ServerBothPerSec, ServerStandbyPerSec float64
	// Per second by command: sent by each process (hook), and executed by
	// Redis (INFO commandstats) with both running.
	LeaderSent, StandbySent, ServerCommands map[string]float64
	// Goroutines and heap (HeapAlloc after GC) each process added.
	LeaderGoroutines, StandbyGoroutines int
	LeaderHeapKiB, StandbyHeapKiB       float64
}

// BusyResult is 100 campaigns with full lines driven at once, each at its
// own BatchSize per Interval, for a window after a warm-up.
type BusyResult struct {
	Dispatcher string // "kafka" or "count" (a dispatcher that only counts)
	Workers    int    // the Scheduler's
	// CatalogTTLms is the TTL of the catalog cache the Scheduler reads.
	CatalogTTLms int64
	WindowSec    float64
	Campaigns    []BusyCampaign
	// Entries dispatched per second over the window, configured and achieved.
	ConfiguredPerSec, AchievedPerSec float64
	// Commands per second over the window: sent by the leading and the
	// standing-by process (hook), executed by Redis (INFO, scripts' inner
	// commands included), and by command (INFO commandstats).
	LeaderSentPerSec, StandbySentPerSec, ServerPerSec float64
	ServerCommands                                    map[string]float64
	// Moves (lease, dispatch, ack) in the window: how many, their duration,
	// and their summed time over the window (a Scheduler's worker pool is
	// saturated at Workers).
	Moves                    int
	MoveP50ms, MoveP99ms     float64
	MoveMaxms, BusyWorkerAvg float64
}

// BusyCampaign is one campaign's rate over the window, measured over whole
// ticks: the entries of every batch in the window but the first, over the
// time from the first batch to the last. LatenessMs is how much longer than
// Interval a tick took on average ((last-first)/(ticks-1) - Interval).
type BusyCampaign struct {
	ID                   string
	BatchSize            int
	IntervalMs           int64
	Configured, Achieved float64
	Ticks                int
	LatenessMs           float64
	// The mean Catalog read at the start of a tick and the mean delay of a
	// tick's start past its due time; they add up to the lateness (give or
	// take the window's edges).
	CatalogMs, StartDelayMs float64
}

// Ratio is achieved over configured rate.
func (c BusyCampaign) Ratio() float64 { return c.Achieved / c.Configured }

// within2 tells whether a ratio is within ±2% of 1.
func within2(r float64) bool { return math.Abs(r-1) <= 0.02 }

// commandCounter is a go-redis hook counting the commands a client sends.
type commandCounter struct {
	mu    sync.Mutex
	names map[string]int
}

func countCommands(c *redis.Client) *commandCounter {
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

// take returns the counts so far, by command, handshakes (HELLO, CLIENT)
// left out, and starts again from zero.
func (c *commandCounter) take() (total int, names map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names, c.names = c.names, map[string]int{}
	delete(names, "hello")
	delete(names, "client")
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

// serverStats is one INFO stats+commandstats reading.
type serverStats struct {
	at    time.Time
	total int64
	calls map[string]int64
	cpu   float64 // used_cpu_user + used_cpu_sys, seconds
}

func (b *backends) serverStats(ctx context.Context) (serverStats, error) {
	s := serverStats{calls: map[string]int64{}}
	info, err := b.rdb.Info(ctx, "stats", "commandstats", "cpu").Result()
	s.at = time.Now()
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(info, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "total_commands_processed:"); ok {
			s.total, _ = strconv.ParseInt(v, 10, 64)
		}
		for _, name := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(l, name); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.cpu += f
			}
		}
		if rest, ok := strings.CutPrefix(l, "cmdstat_"); ok {
			name, fields, _ := strings.Cut(rest, ":")
			for _, f := range strings.Split(fields, ",") {
				if v, ok := strings.CutPrefix(f, "calls="); ok {
					s.calls[name], _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	}
	if s.total == 0 {
		return s, fmt.Errorf("INFO stats without total_commands_processed: %q", info)
	}
	return s, nil
}

// since returns the commands Redis executed per second between s0 and s, the
// INFO calls left out, in total and by command.
func (s serverStats) since(s0 serverStats) (perSec float64, byName map[string]float64) {
	sec := s.at.Sub(s0.at).Seconds()
	byName = map[string]float64{}
	for name, n := range s.calls {
		if d := n - s0.calls[name]; d > 0 && name != "info" {
			byName[name] = float64(d) / sec
		}
	}
	infos := s.calls["info"] - s0.calls["info"]
	return float64(s.total-s0.total-infos) / sec, byName
}

func perSec(names map[string]int, sec float64) map[string]float64 {
	out := map[string]float64{}
	for k, n := range names {
		out[k] = float64(n) / sec
	}
	return out
}

// window measures a time window: Redis's counters and each hook's.
type window struct {
	b      *backends
	hooks  []*commandCounter
	s0     serverStats
	start  time.Time
	sec    float64
	server float64
	byName map[string]float64
	sent   []int
	names  []map[string]int
	// CPU seconds over the window: Redis's (INFO cpu) and this process's.
	redisCPU, selfCPU float64
	self0             float64
}

func (b *backends) openWindow(ctx context.Context, hooks ...*commandCounter) (*window, error) {
	w := &window{b: b, hooks: hooks}
	for _, h := range hooks {
		h.take()
	}
	var err error
	w.s0, err = b.serverStats(ctx)
	w.start = time.Now()
	w.self0 = selfCPU()
	return w, err
}

func (w *window) close(ctx context.Context) error {
	s1, err := w.b.serverStats(ctx)
	if err != nil {
		return err
	}
	w.sec = time.Since(w.start).Seconds()
	w.selfCPU, w.redisCPU = selfCPU()-w.self0, s1.cpu-w.s0.cpu
	for _, h := range w.hooks {
		n, names := h.take()
		w.sent, w.names = append(w.sent, n), append(w.names, names)
	}
	w.server, w.byName = s1.since(w.s0)
	return nil
}

// memNow is the heap in use after a collection, and the goroutine count.
func memNow() (heap int64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), runtime.NumGoroutine()
}

// process is one worker process of the group: its own Redis client and a
// Scheduler.
type process struct {
	rdb   *redis.Client
	cmds  *commandCounter
	sched *scheduler.Scheduler
}

func (b *backends) newProcess() *process {
	c := redis.NewClient(&redis.Options{Addr: b.o.redis})
	return &process{rdb: c, cmds: countCommands(c)}
}

// schedOpts tunes a process's Scheduler; zero values are the defaults.
type schedOpts struct {
	workers    int
	catalogTTL time.Duration                         // the catalog cache's TTL
	catalog    func(catalog.Catalog) catalog.Catalog // wraps the cache, if set
	onTick     func(dispatch.TickEvent)
}

// startScheduler builds and starts the process's Scheduler over prefix,
// reading campaigns from the Redis registry through a catalog cache, as a
// worker node does.
func (p *process) startScheduler(ctx context.Context, prefix string, d couponq.Dispatcher, so schedOpts) error {
	reg, err := redisline.NewRegistry(redisline.RegistryConfig{Client: p.rdb, Prefix: prefix})
	if err != nil {
		return err
	}
	cache, err := catalog.NewCache(reg, catalog.CacheConfig{TTL: so.catalogTTL})
	if err != nil {
		return err
	}
	var catalog catalog.Catalog = cache
	if so.catalog != nil {
		catalog = so.catalog(cache)
	}
	q, err := redisline.New(redisline.Config{Client: p.rdb, Prefix: prefix})
	if err != nil {
		return err
	}
	l, err := redislocker.New(p.rdb, prefix)
	if err != nil {
		return err
	}
	p.sched, err = scheduler.New(scheduler.Config{Catalog: catalog, Agenda: q, Queue: q, Dispatcher: d, Locker: l,
		Workers: so.workers, OnTick: so.onTick})
	if err != nil {
		return err
	}
	return p.sched.Start(ctx)
}

func (p *process) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.sched != nil {
		_ = p.sched.Stop(ctx)
	}
	_ = p.rdb.Close()
}

// waitLeading waits until the process's Scheduler leads.
func (p *process) waitLeading() error {
	deadline := time.Now().Add(15 * time.Second)
	for !p.sched.Leading() {
		if time.Now().After(deadline) {
			return fmt.Errorf("scheduler did not lead within 15 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// createCampaigns writes cs into a redisline.Registry under prefix.
func (b *backends) createCampaigns(ctx context.Context, prefix string, cs []couponq.Campaign) error {
	reg, err := redisline.NewRegistry(redisline.RegistryConfig{Client: b.rdb, Prefix: prefix})
	if err != nil {
		return err
	}
	var next atomic.Int64
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cs) {
					return
				}
				if _, err := reg.Create(ctx, cs[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// dropPrefix deletes every key under prefix.
func (b *backends) dropPrefix(ctx context.Context, prefix string) {
	iter := b.rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			b.rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		b.rdb.Unlink(ctx, keys...)
	}
}

// nopDispatcher takes every batch and does nothing: the idle sections never
// have anything to dispatch.
var nopDispatcher = couponq.DispatcherFunc(func(context.Context, []couponq.Entry) error { return nil })

// runIdle measures n campaigns with nobody in line.
func (b *backends) runIdle(ctx context.Context, n int, win time.Duration) (IdleResult, error) {
	res := IdleResult{Campaigns: n}
	prefix := fmt.Sprintf("%s-idle-%d", b.prefix, n)
	defer b.dropPrefix(context.WithoutCancel(ctx), prefix)
	cs := make([]couponq.Campaign, n)
	for i := range cs {
		cs[i] = couponq.Campaign{ID: fmt.Sprintf("idle-%05d", i), Stock: 1000} // BatchSize 100 per Interval 1s, the defaults
	}
	if err := b.createCampaigns(ctx, prefix, cs); err != nil {
		return res, err
	}
	// cs stays live to the end, so the heap deltas are the processes' alone.
	defer runtime.KeepAlive(cs)
	start := func(p *process) error { return p.startScheduler(ctx, prefix, nopDispatcher, schedOpts{}) }

	// The processes' timers run whole seconds from their start (the
	// Scheduler's Agenda poll every 1 s, its lease refresh or obtain every
	// 3.3 s): the windows open and close half a second off them, so each
	// holds whole poll periods, and the standby starts on a whole second.
	heap0, gor0 := memNow()
	ref := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(ref.Add(d))) }
	leader := b.newProcess()
	defer leader.stop()
	if err := start(leader); err != nil {
		return res, err
	}
	if err := leader.waitLeading(); err != nil {
		return res, err
	}
	at(idleWarmup)
	heap1, gor1 := memNow()
	res.LeaderGoroutines, res.LeaderHeapKiB = gor1-gor0, float64(heap1-heap0)/1024

	// The leader alone.
	at(idleWarmup + time.Second/2)
	w, err := b.openWindow(ctx, leader.cmds)
	if err != nil {
		return res, err
	}
	at(idleWarmup + time.Second/2 + win)
	if err := w.close(ctx); err != nil {
		return res, err
	}
	res.ServerLeaderPerSec = w.server

	// With a standby, which adds what it holds to the leader's.
	heap1, gor1 = memNow()
	second := idleWarmup + win + time.Second
	at(second)
	standby := b.newProcess()
	defer standby.stop()
	if err := start(standby); err != nil {
		return res, err
	}
	at(second + idleWarmup)
	heap2, gor2 := memNow()
	res.StandbyGoroutines, res.StandbyHeapKiB = gor2-gor1, float64(heap2-heap1)/1024
	if standby.sched.Leading() {
		return res, fmt.Errorf("the standby leads")
	}
	at(second + idleWarmup + time.Second/2)
	w, err = b.openWindow(ctx, leader.cmds, standby.cmds)
	if err != nil {
		return res, err
	}
	at(second + idleWarmup + time.Second/2 + win)
	if err := w.close(ctx); err != nil {
		return res, err
	}
	if !leader.sched.Leading() {
		return res, fmt.Errorf("the leader lost its lease")
	}
	res.WindowSec = w.sec
	res.ServerBothPerSec, res.ServerCommands = w.server, w.byName
	res.ServerStandbyPerSec = res.ServerBothPerSec - res.ServerLeaderPerSec
	res.LeaderSentPerSec, res.LeaderSent = float64(w.sent[0])/w.sec, perSec(w.names[0], w.sec)
	res.StandbySentPerSec, res.StandbySent = float64(w.sent[1])/w.sec, perSec(w.names[1], w.sec)
	return res, nil
}

// busyCampaignSet is the busy section's campaigns: five Intervals from 100
// ms to 1 s, BatchSize 5 to 40, so rates from 5 to 400 entries a second.
func busyCampaignSet() []couponq.Campaign {
	intervals := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second}
	cs := make([]couponq.Campaign, busyCampaigns)
	for i := range cs {
		cs[i] = couponq.Campaign{ID: fmt.Sprintf("busy-%03d", i), Stock: 1 << 40,
			Interval: intervals[i%len(intervals)], BatchSize: 5 * (1 + (i/len(intervals))%8)}
	}
	return cs
}

func configuredRate(c couponq.Campaign) float64 { return float64(c.BatchSize) / c.Interval.Seconds() }

// fillLines admits perCampaign(c) users into each campaign's line.
func (b *backends) fillLines(ctx context.Context, prefix string, cs []couponq.Campaign, perCampaign func(couponq.Campaign) int) error {
	q, err := redisline.New(redisline.Config{Client: b.rdb, Prefix: prefix})
	if err != nil {
		return err
	}
	type job struct {
		c string
		n int
	}
	jobs := make(chan job, 1024)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for j := range jobs {
				if _, err := q.Admit(ctx, couponq.Admission{Campaign: j.c, User: fmt.Sprintf("u%d", j.n), At: time.Now()}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	// Interleave campaigns so concurrent admissions coalesce per campaign.
	most := 0
	for _, c := range cs {
		most = max(most, perCampaign(c))
	}
	for i := range most {
		for _, c := range cs {
			if i < perCampaign(c) {
				jobs <- job{c.ID, i}
			}
		}
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d admissions failed", n)
	}
	return nil
}

// batchLog records, per campaign, when each batch reached the dispatcher
// and how many entries it accepted.
type batchLog struct {
	d  couponq.Dispatcher
	mu sync.Mutex
	by map[string][]mark
}

func (l *batchLog) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	at := time.Now()
	var err error
	if l.d != nil {
		err = l.d.Dispatch(ctx, batch)
	}
	ok := int64(len(batch))
	for _, bad := range couponq.FailedEntries(err, len(batch)) {
		if bad {
			ok--
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[batch[0].Campaign] = append(l.by[batch[0].Campaign], mark{at, ok})
	return err
}

// tickLog collects the moves' durations.
type tickLog struct {
	mu  sync.Mutex
	evs []tickAt
}

type tickAt struct {
	at time.Time
	d  time.Duration
}

func (t *tickLog) onTick(ev dispatch.TickEvent) {
	if ev.Leased == 0 {
		return
	}
	t.mu.Lock()
	t.evs = append(t.evs, tickAt{time.Now(), ev.Duration})
	t.mu.Unlock()
}

// timedCatalog records when each campaign's tick read the Catalog (the
// first thing a Scheduler's tick does, so its start) and how long it took.
type timedCatalog struct {
	src catalog.Catalog
	mu  sync.Mutex
	by  map[string][]catalogRead
}

type catalogRead struct {
	at time.Time
	d  time.Duration
}

func (t *timedCatalog) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	start := time.Now()
	c, err := t.src.Campaign(ctx, id)
	d := time.Since(start)
	t.mu.Lock()
	t.by[id] = append(t.by[id], catalogRead{start, d})
	t.mu.Unlock()
	return c, err
}

// busyOpts are the busy section's knobs; zero values are the defaults.
type busyOpts struct {
	dispatcher string // "kafka" or "count"
	window     time.Duration
	workers    int           // the Scheduler's Workers
	catalogTTL time.Duration // the CatalogCache's TTL
}

// runBusy drives busyCampaigns full lines at once with one Scheduler and a
// standby, and measures each campaign's rate over the window.
func (b *backends) runBusy(ctx context.Context, bo busyOpts) (BusyResult, error) {
	win := bo.window
	res := BusyResult{Dispatcher: bo.dispatcher, WindowSec: win.Seconds()}
	prefix := fmt.Sprintf("%s-busy", b.prefix)
	defer b.dropPrefix(context.WithoutCancel(ctx), prefix)
	cs := busyCampaignSet()
	for _, c := range cs {
		res.ConfiguredPerSec += configuredRate(c)
	}
	if err := b.createCampaigns(ctx, prefix, cs); err != nil {
		return res, err
	}
	// Enough for the warm-up, the window and 3 s more, plus two batches.
	need := func(c couponq.Campaign) int {
		return int(configuredRate(c)*(busyWarmup+win+3*time.Second).Seconds()) + 2*c.BatchSize
	}
	fillStart := time.Now()
	if err := b.fillLines(ctx, prefix, cs, need); err != nil {
		return res, err
	}
	progress("   filled %d lines in %s", len(cs), time.Since(fillStart).Round(time.Millisecond))
	log := &batchLog{by: map[string][]mark{}}
	if bo.dispatcher == "kafka" {
		log.d = b.prod
	}
	ticks := &tickLog{}
	reads := &timedCatalog{by: map[string][]catalogRead{}}
	leader, standby := b.newProcess(), b.newProcess()
	defer leader.stop()
	defer standby.stop()
	// The lines were filled without admission, so nothing woke them: wake
	// them as admission would have (the new leader's sweep would find them
	// too).
	q, err := redisline.New(redisline.Config{Client: b.rdb, Prefix: prefix})
	if err != nil {
		return res, err
	}
	for _, c := range cs {
		if err := q.Wake(ctx, c.ID); err != nil {
			return res, err
		}
	}
	so := schedOpts{workers: bo.workers, catalogTTL: bo.catalogTTL, onTick: ticks.onTick,
		catalog: func(c catalog.Catalog) catalog.Catalog { reads.src = c; return reads }}
	if err := leader.startScheduler(ctx, prefix, log, so); err != nil {
		return res, err
	}
	if err := leader.waitLeading(); err != nil {
		return res, err
	}
	so.catalog = nil
	if err := standby.startScheduler(ctx, prefix, log, so); err != nil {
		return res, err
	}
	res.Workers = cmp.Or(bo.workers, 16) // 16 is the default
	res.CatalogTTLms = cmp.Or(bo.catalogTTL, catalog.DefaultTTL).Milliseconds()
	time.Sleep(busyWarmup)
	w, err := b.openWindow(ctx, leader.cmds, standby.cmds)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	time.Sleep(win)
	t1 := time.Now()
	if err := w.close(ctx); err != nil {
		return res, err
	}
	if !leader.sched.Leading() {
		return res, fmt.Errorf("the leader lost its lease during the window")
	}
	res.LeaderSentPerSec, res.StandbySentPerSec = float64(w.sent[0])/w.sec, float64(w.sent[1])/w.sec
	res.ServerPerSec, res.ServerCommands = w.server, w.byName

	inWin := func(t time.Time) bool { return !t.Before(t0) && t.Before(t1) }
	log.mu.Lock()
	defer log.mu.Unlock()
	reads.mu.Lock()
	defer reads.mu.Unlock()
	var inWindow int64
	for _, c := range cs {
		var ms []mark
		for _, m := range log.by[c.ID] {
			if inWin(m.at) {
				ms = append(ms, m)
				inWindow += m.n
			}
		}
		bc := BusyCampaign{ID: c.ID, BatchSize: c.BatchSize, IntervalMs: c.Interval.Milliseconds(),
			Configured: configuredRate(c), Ticks: len(ms)}
		if len(ms) >= 2 {
			var n int64
			for _, m := range ms[1:] {
				n += m.n
			}
			span := ms[len(ms)-1].at.Sub(ms[0].at)
			bc.Achieved = float64(n) / span.Seconds()
			bc.LatenessMs = float64(span/time.Duration(len(ms)-1)-c.Interval) / 1e6
		}
		// The gap from one tick's start (its Catalog read) to the next, less Interval, is the Catalog read (the next
		// tick is due an Interval after it returned) plus the next tick's
		// start delay past its due time.
		var rs []catalogRead
		for _, r := range reads.by[c.ID] {
			if inWin(r.at) {
				rs = append(rs, r)
			}
		}
		if len(rs) >= 2 {
			var cat, delay time.Duration
			for i := 1; i < len(rs); i++ {
				cat += rs[i-1].d
				delay += rs[i].at.Sub(rs[i-1].at) - c.Interval - rs[i-1].d
			}
			k := float64(len(rs) - 1)
			bc.CatalogMs, bc.StartDelayMs = float64(cat)/1e6/k, float64(delay)/1e6/k
		}
		res.Campaigns = append(res.Campaigns, bc)
	}
	res.AchievedPerSec = float64(inWindow) / t1.Sub(t0).Seconds()

	ticks.mu.Lock()
	defer ticks.mu.Unlock()
	var ds []time.Duration
	var sum time.Duration
	for _, t := range ticks.evs {
		if inWin(t.at) {
			ds = append(ds, t.d)
			sum += t.d
		}
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		q := func(p float64) float64 { return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / 1e6 }
		res.Moves, res.MoveP50ms, res.MoveP99ms, res.MoveMaxms = len(ds), q(0.5), q(0.99), float64(ds[len(ds)-1])/1e6
		res.BusyWorkerAvg = sum.Seconds() / t1.Sub(t0).Seconds()
	}
	return res, nil
}

// ratioStats returns the min, median and max of the campaigns' ratios and
// how many are within ±2%.
func ratioStats(cs []BusyCampaign) (lo, med, hi float64, within int) {
	if len(cs) == 0 {
		return 0, 0, 0, 0
	}
	rs := make([]float64, len(cs))
	for i, c := range cs {
		rs[i] = c.Ratio()
		if within2(rs[i]) {
			within++
		}
	}
	slices.Sort(rs)
	med = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return rs[0], med, rs[len(rs)-1], within
}

// schedulerSections runs the idle and busy sections.
func (b *backends) schedulerSections(ctx context.Context, o options) ([]IdleResult, []BusyResult, error) {
	var idle []IdleResult
	for _, n := range o.idleSched {
		progress("scheduler: idle cost, %d campaigns (2 × %s windows)", n, o.idleWindow)
		r, err := b.runIdle(ctx, n, o.idleWindow)
		if err != nil {
			return nil, nil, fmt.Errorf("idle %d: %w", n, err)
		}
		progress("   %s", idleLine(r))
		idle = append(idle, r)
	}
	if !o.busy {
		return idle, nil, nil
	}
	bo := busyOpts{dispatcher: o.busyDispatch, window: o.busyWindow, workers: o.busyWorkers, catalogTTL: o.busyCatalogTTL}
	progress("scheduler: %d busy campaigns, to %s, %s window", busyCampaigns, o.busyDispatch, o.busyWindow)
	r, err := b.runBusy(ctx, bo)
	if err != nil {
		return nil, nil, fmt.Errorf("busy: %w", err)
	}
	progress("   %s", busyLine(r))
	return idle, []BusyResult{r}, nil
}

func idleLine(r IdleResult) string {
	return fmt.Sprintf("%5d campaigns: sent/s leader %.2f standby %.2f; Redis executed/s leader %.2f standby %.2f both %.2f; goroutines +%d/+%d, heap %+.0f/%+.0f KiB",
		r.Campaigns, r.LeaderSentPerSec, r.StandbySentPerSec, r.ServerLeaderPerSec, r.ServerStandbyPerSec, r.ServerBothPerSec,
		r.LeaderGoroutines, r.StandbyGoroutines, r.LeaderHeapKiB, r.StandbyHeapKiB)
}

func busyLine(r BusyResult) string {
	lo, med, hi, in := ratioStats(r.Campaigns)
	return fmt.Sprintf("achieved/configured min %.4f median %.4f max %.4f, %d/%d within ±2%%; %.0f of %.0f entries/s; sent/s leader %.0f standby %.1f, Redis executed %.0f/s; %d moves p50 %.2f ms p99 %.2f ms max %.1f ms, %.2f moves running on average",
		lo, med, hi, in, len(r.Campaigns), r.AchievedPerSec, r.ConfiguredPerSec, r.LeaderSentPerSec, r.StandbySentPerSec, r.ServerPerSec,
		r.Moves, r.MoveP50ms, r.MoveP99ms, r.MoveMaxms, r.BusyWorkerAvg)
}

// mover drives one campaign from its line to a Dispatcher, for the
// sections that measure one campaign's pipeline: a Scheduler of its own
// (its own lease key), with the default timings, that sees only that
// campaign. It does not sweep: the campaign is woken when the mover is
// built, and a sweep would scan every key of the Redis it runs on.
//
// A Scheduler moves a campaign for the first time one Interval after it won
// its lease (it obtains its own key at once and reads the Agenda at once,
// so PollInterval plays no part): sections that time from the first move
// read it from firstMove, not from Start.
type mover struct {
	*scheduler.Scheduler
	first atomic.Int64  // when the first move began, Unix ns; 0 before
	moved chan struct{} // closed then
}

// newMover wakes c on q's Agenda and returns its mover; onTick, if set,
// sees every tick that moved or tried to move the campaign.
func newMover(c couponq.Campaign, q couponq.Queue, d couponq.Dispatcher, l lock.Locker, onTick func(dispatch.TickEvent)) (*mover, error) {
	return newMoverWith(c, q, d, l, moverOpts{onTick: onTick})
}

// moverOpts tunes a mover; zero values are newMover's.
type moverOpts struct {
	// onTick, if set, sees every tick that moved or tried to move the
	// campaign.
	onTick func(dispatch.TickEvent)
	// campaign, if set, is what the mover's Catalog answers at each tick (a
	// campaign paused, then resumed); nil answers the campaign given.
	campaign func() couponq.Campaign
	// noCutoff and issued are scheduler.Config's NoCutoff and Issued.
	noCutoff bool
	issued   couponq.IssuedCounter
}

// newMoverWith is newMover with more options.
func newMoverWith(c couponq.Campaign, q couponq.Queue, d couponq.Dispatcher, l lock.Locker, o moverOpts) (*mover, error) {
	current := o.campaign
	if current == nil {
		current = func() couponq.Campaign { return c }
	}
	onTick := o.onTick
	agenda, ok := q.(couponq.Agenda)
	if !ok {
		return nil, fmt.Errorf("the queue %T is not an Agenda", q)
	}
	if err := agenda.Wake(context.Background(), c.ID); err != nil {
		return nil, err
	}
	m := &mover{moved: make(chan struct{})}
	s, err := scheduler.New(scheduler.Config{
		Catalog: catalog.Func(func(_ context.Context, id string) (couponq.Campaign, error) {
			if id != c.ID {
				return couponq.Campaign{}, couponq.ErrUnknownCampaign
			}
			return current(), nil
		}),
		Agenda: oneCampaign{Agenda: agenda, id: c.ID}, Queue: q, Dispatcher: d, Locker: l,
		Key: "couponq:bench:mover:" + c.ID, SweepInterval: -1, NoCutoff: o.noCutoff, Issued: o.issued,
		OnTick: func(ev dispatch.TickEvent) {
			if ev.Leased > 0 && m.first.CompareAndSwap(0, time.Now().Add(-ev.Duration).UnixNano()) {
				close(m.moved)
			}
			if onTick != nil {
				onTick(ev)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	m.Scheduler = s
	return m, nil
}

// firstMove returns when the first move began; false before it.
func (m *mover) firstMove() (time.Time, bool) {
	ns := m.first.Load()
	return time.Unix(0, ns), ns != 0
}

// waitFirstMove waits for the first move, up to timeout, and returns when
// it began.
func (m *mover) waitFirstMove(timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-m.moved:
		at, _ := m.firstMove()
		return at, nil
	case <-t.C:
		return time.Time{}, fmt.Errorf("the mover made no move within %s", timeout)
	}
}

// oneCampaign is an Agenda that shows one campaign only: a line's Agenda
// lists every awake campaign under its key prefix, and a mover, whose
// Catalog knows one campaign, must leave the others alone. It is not a
// Sweeper.
type oneCampaign struct {
	couponq.Agenda
	id string
}

func (a oneCampaign) Awake(ctx context.Context) ([]string, error) {
	ids, err := a.Agenda.Awake(ctx)
	if err != nil || !slices.Contains(ids, a.id) {
		return nil, err
	}
	return []string{a.id}, nil
}
