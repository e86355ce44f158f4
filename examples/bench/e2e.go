package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/pgstore"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
)

// e2eVariant is one configuration of the consuming end.
type e2eVariant struct {
	Name  string
	Store string // memory, redis, postgres
	Batch bool   // the issuer's batch path (no per-user lock)
	Lock  bool   // per-user Redis lock around each Store call
}

// The end-to-end variants, in report order. The first is the configuration
// that landed before the batch path, the baseline the others are compared to.
var e2eVariants = []e2eVariant{
	{Name: "memory, per entry + Redis lock", Store: "memory", Lock: true},
	{Name: "memory, batch", Store: "memory", Batch: true},
	{Name: "redis store, batch", Store: "redis", Batch: true},
	{Name: "postgres, per entry", Store: "postgres"},
	{Name: "postgres, batch", Store: "postgres", Batch: true},
}

// E2EResult is one variant's run.
type E2EResult struct {
	Variant                                   string
	Entries                                   int
	Seconds, IssuedPerSec, SteadyIssuedPerSec float64
	// Where the consumer's time goes: handler calls (one per delivered
	// batch, or per entry), Store calls and Record calls, with their
	// summed durations (calls overlap across partitions).
	HandlerCalls, StoreCalls, RecordCalls int64
	HandlerSec, StoreSec, RecordSec       float64
	// CPU from the scheduler's start to the last issuance (CPUWallSec;
	// absent from runs before it): the bench process, which is the worker
	// process (scheduler, Kafka producer and consumer, issuer, the in-memory
	// Store's work); Redis (INFO cpu: the line's lease and record scripts,
	// the Redis Store's, the locks); the Kafka broker and Postgres
	// (postmaster and backends), from /proc, -1 if not found.
	CPUWallSec     float64 `json:",omitempty"`
	WorkerCPUSec   float64 `json:",omitempty"`
	RedisCPUSec    float64 `json:",omitempty"`
	KafkaCPUSec    float64 `json:",omitempty"`
	PostgresCPUSec float64 `json:",omitempty"`
}

// HasCPU tells whether the run measured CPU (runs before it did not).
func (r E2EResult) HasCPU() bool { return r.CPUWallSec > 0 }

// Per issued unit, µs: the worker process's, Redis's, the Kafka broker's
// and Postgres's CPU (the last two -1 if not measured).
func (r E2EResult) WorkerMicros() float64 { return micros(r.WorkerCPUSec, int64(r.Entries)) }
func (r E2EResult) RedisMicros() float64  { return micros(r.RedisCPUSec, int64(r.Entries)) }
func (r E2EResult) KafkaMicros() float64 {
	if !r.HasCPU() {
		return -1
	}
	return micros(r.KafkaCPUSec, int64(r.Entries))
}
func (r E2EResult) PostgresMicros() float64 {
	if !r.HasCPU() {
		return -1
	}
	return micros(r.PostgresCPUSec, int64(r.Entries))
}

// StoreCallsPerUnit is Store calls per issued unit.
func (r E2EResult) StoreCallsPerUnit() float64 {
	if r.Entries == 0 {
		return 0
	}
	return float64(r.StoreCalls) / float64(r.Entries)
}

// EntriesPerStoreCall is how many requests one Store call decided on average.
func (r E2EResult) EntriesPerStoreCall() float64 {
	if r.StoreCalls == 0 {
		return 0
	}
	return float64(r.Entries) / float64(r.StoreCalls)
}

// timer sums calls and their durations.
type timer struct{ calls, ns atomic.Int64 }

func (t *timer) since(start time.Time) { t.calls.Add(1); t.ns.Add(int64(time.Since(start))) }
func (t *timer) sec() float64          { return float64(t.ns.Load()) / 1e9 }

type timedStore struct {
	inner couponq.BatchStore
	t     *timer
}

func (s timedStore) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	defer s.t.since(time.Now())
	return s.inner.Issue(ctx, r)
}

func (s timedStore) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	defer s.t.since(time.Now())
	return s.inner.IssueBatch(ctx, rs)
}

type timedRecorder struct {
	couponq.Recorder
	t *timer
}

func (r timedRecorder) Record(ctx context.Context, campaign string, results ...couponq.Result) error {
	defer r.t.since(time.Now())
	return r.Recorder.Record(ctx, campaign, results...)
}

// timedConsumer is the Kafka transport's consuming side, timing each
// handler call.
type timedConsumer struct {
	inner *kafkadispatch.Transport
	t     *timer
}

func (c timedConsumer) Consume(ctx context.Context, h couponq.Handler) error {
	return c.inner.Consume(ctx, func(ctx context.Context, e couponq.Entry) error {
		defer c.t.since(time.Now())
		return h(ctx, e)
	})
}

func (c timedConsumer) ConsumeBatches(ctx context.Context, max int, h couponq.BatchHandler) error {
	return c.inner.ConsumeBatches(ctx, max, func(ctx context.Context, b []couponq.Entry) error {
		defer c.t.since(time.Now())
		return h(ctx, b)
	})
}

// issuedCounter reads a Store's issued count.
type issuedCounter func(ctx context.Context, campaign string) (int64, error)

func (b *backends) store(ctx context.Context, kind string) (couponq.BatchStore, issuedCounter, func(), error) {
	switch kind {
	case "memory":
		s := memory.NewStore()
		return s, s.IssuedCount, func() {}, nil
	case "redis":
		s, err := redisstore.New(redisstore.Config{Client: b.rdb, Prefix: b.prefix})
		if err != nil {
			return nil, nil, nil, err
		}
		return s, s.IssuedCount, func() {}, nil
	case "postgres":
		if b.o.postgres == "" {
			return nil, nil, nil, errors.New("COUPONQ_POSTGRES_DSN is not set: run scripts/bench.sh")
		}
		pool, err := pgxpool.New(ctx, b.o.postgres)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := pgstore.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		s, err := pgstore.New(pgstore.Config{Pool: pool})
		if err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		return s, s.IssuedCount, pool.Close, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown store %q", kind)
}

// runE2E admits n users for a stock of n, then measures issuance per second
// through the whole pipeline: Redis line → a scheduler of the campaign's
// own (2,000 every 10 ms) → Kafka (8 partitions) → one issuer → the
// variant's Store, outcomes recorded in Redis. The clock runs from the
// scheduler's first move to the last issuance.
func (b *backends) runE2E(ctx context.Context, n int, v e2eVariant) (E2EResult, error) {
	return b.runE2EProfiled(ctx, n, v, nil)
}

// runE2EProfiled is runE2E that, with a non-nil profile, writes a CPU
// profile of the run (from the scheduler's start to the last issuance) to
// it.
func (b *backends) runE2EProfiled(ctx context.Context, n int, v e2eVariant, profile io.Writer) (E2EResult, error) {
	c := b.campaign(couponq.QueueFirst)
	c.Stock, c.BatchSize, c.Interval = int64(n), 2000, 10*time.Millisecond
	q, err := b.fill(ctx, c, n)
	if err != nil {
		return E2EResult{}, err
	}
	catalog, err := memline.NewRegistry(c)
	if err != nil {
		return E2EResult{}, err
	}
	locker, err := redislocker.New(b.rdb, b.prefix)
	if err != nil {
		return E2EResult{}, err
	}
	topic := fmt.Sprintf("%s-e2e%d", b.prefix, b.seq.Add(1))
	if err := createTopic(ctx, b.cm, topic, 8); err != nil {
		return E2EResult{}, err
	}
	transport, err := kafkadispatch.New(kafkadispatch.Config{Topic: topic, Group: topic + "-g", ConfigMap: b.cm})
	if err != nil {
		return E2EResult{}, err
	}
	defer transport.Close()
	store, issued, closeStore, err := b.store(ctx, v.Store)
	if err != nil {
		return E2EResult{}, err
	}
	defer closeStore()
	var handlerT, storeT, recordT timer
	var first, last atomic.Int64
	cfg := issuing.Config{
		Consumer: timedConsumer{inner: transport, t: &handlerT}, Store: timedStore{inner: store, t: &storeT},
		Catalog: catalog, Recorder: timedRecorder{Recorder: q, t: &recordT},
		OnIssue: func(issuer.Event) {
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			last.Store(now)
		},
	}
	if v.Lock {
		cfg.Locker = locker
	}
	if !v.Batch {
		cfg.MaxBatch = 1
	}
	iss, err := issuing.New(cfg)
	if err != nil {
		return E2EResult{}, err
	}
	if iss.Batching() != v.Batch {
		return E2EResult{}, fmt.Errorf("variant %q: issuer batching=%v", v.Name, iss.Batching())
	}
	th, err := newMover(c, q, transport, locker, nil)
	if err != nil {
		return E2EResult{}, err
	}
	if err := iss.Start(ctx); err != nil {
		return E2EResult{}, err
	}
	defer func() { _ = iss.Stop(ctx) }() // at once if the run fails; Stop is safe to call twice
	// Let the consumer join its group before the clock starts.
	time.Sleep(3 * time.Second)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return E2EResult{}, err
		}
	}
	meter, masters := newCPUMeter(), b.standalone()
	rs0, err := masters.stats(ctx)
	if err != nil {
		return E2EResult{}, err
	}
	cpu0 := meter.read()
	started := time.Now()
	if err := th.Start(ctx); err != nil {
		if profile != nil {
			pprof.StopCPUProfile()
		}
		return E2EResult{}, err
	}
	defer func() { _ = th.Stop(ctx) }()
	count := func() int64 { k, _ := issued(ctx, c.ID); return k }
	for count() < int64(n) && time.Since(started) < 3*time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	end := time.Now()
	cpu := meter.read().since(cpu0)
	rs1, err := masters.stats(ctx)
	if err != nil {
		return E2EResult{}, err
	}
	_, rcpu, _ := deltas(rs0, rs1)
	if profile != nil {
		pprof.StopCPUProfile()
	}
	_ = th.Stop(ctx)
	_ = iss.Stop(ctx)
	if got := count(); got != int64(n) {
		return E2EResult{}, fmt.Errorf("variant %q: %d of %d issued in 3 minutes", v.Name, got, n)
	}
	start, _ := th.firstMove() // set: entries were issued
	total := end.Sub(start)
	steady := time.Duration(last.Load() - first.Load())
	return E2EResult{
		Variant: v.Name, Entries: n, Seconds: total.Seconds(), IssuedPerSec: float64(n) / total.Seconds(),
		SteadyIssuedPerSec: float64(n) / steady.Seconds(),
		HandlerCalls:       handlerT.calls.Load(), StoreCalls: storeT.calls.Load(), RecordCalls: recordT.calls.Load(),
		HandlerSec: handlerT.sec(), StoreSec: storeT.sec(), RecordSec: recordT.sec(),
		CPUWallSec: cpu.Wall, WorkerCPUSec: cpu.Self, RedisCPUSec: rcpu[0], KafkaCPUSec: cpu.Kafka, PostgresCPUSec: cpu.Postgres,
	}, nil
}

// e2eProfileEntries is how many users the profiled end-to-end run issues
// to: more than the measured runs, for enough samples.
const e2eProfileEntries = 100_000

// profileE2E profiles the in-memory batch variant (one worker process, the
// issuer's batch path) and returns its result and the top of
// `go tool pprof -top` for this binary.
func (b *backends) profileE2E(ctx context.Context) (E2EResult, []string, error) {
	f, err := os.CreateTemp("", "couponq-e2e-*.pprof")
	if err != nil {
		return E2EResult{}, nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	r, err := b.runE2EProfiled(ctx, e2eProfileEntries, e2eVariant{Name: "memory, batch (profiled)", Store: "memory", Batch: true}, f)
	if err != nil {
		return r, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return r, nil, err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", exe, f.Name()).CombinedOutput()
	if err != nil {
		return r, nil, fmt.Errorf("go tool pprof: %w: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, l)
	}
	return r, lines, nil
}
