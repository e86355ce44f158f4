// Command bench measures couponq on this machine, in one run, and writes
// BENCHMARKS.md, results.json and the plots:
//
//   - HTTP admission driven by wrk (one process, distinct users, every 10th a
//     repeat) at several concurrencies: a no-op net/http handler (the box's
//     HTTP ceiling), and a node's public handler (node.New with the API
//     role, the Redis backend and the Kafka transport) serving V2
//     queue-first (plain and coalesced) and V1 validate-first with a
//     per-user and a campaign-wide lock;
//   - admission through the line's Go API against redis-benchmark running
//     the same Lua script at the same concurrency (the Redis ceiling);
//   - one campaign throttled by a scheduler of its own: unthrottled drain to
//     Kafka, and achieved vs configured rate;
//   - the scheduler: Redis commands/s, goroutines and heap of 10, 1,000 and
//     10,000 idle campaigns under one Scheduler per process; and 100 busy
//     campaigns at once, each one's achieved vs configured rate;
//   - end-to-end issuance per second, Redis → scheduler → Kafka → issuer →
//     Store, for the in-memory, Redis and Postgres Stores, one entry per
//     Store call and batched, with where the consumer's time goes;
//   - one hot campaign over 1, 3 and 6 sub-lines (Campaign.Shards) on the
//     3-master Redis Cluster (shardline.go): admissions/s, where the Redis
//     work lands, position estimates and the order of issuance;
//   - the exact cutoff (cutoff.go): drain time at the end of a campaign's
//     stock with the scheduler's exact cutoff against scheduler.Config's
//     NoCutoff, both in the same run, Redis line → Kafka (three consumers)
//     → Redis Store, with users who already hold a unit;
//   - waiting-room pages and status streams (sse.go): 10,000 users loading
//     the waiting-room page, then holding its Server-Sent Events status
//     stream open on one draining campaign, clients in a child process:
//     Redis commands per page load, Redis commands and Status calls of the
//     open pages against the pipeline alone, events, latency, and the
//     server's memory;
//   - CPU per operation: every process's CPU time over the HTTP runs, a
//     status poll, the end-to-end runs and the open status streams, per
//     request, unit or stream-second;
//   - the capacity model (capacity.go, CAPACITY.md): those costs, a
//     closed-form model on them, its predictions for three configurations
//     of this box against runs made right after, and the plan for a crowd.
//
// It needs the servers scripts/bench.sh starts (Redis, Kafka, Postgres) and wrk and
// redis-benchmark on PATH. Run it with scripts/bench.sh from the repository root.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	duration time.Duration
	concs    []int
	out      string
	md       string
	script   string
	redis    string
	brokers  string
	profile  string
	postgres string
	// capacity is the capacity model's report (CAPACITY.md); "" writes none.
	capacity string

	// The scheduler sections.
	idleSched              []int
	idleWindow, busyWindow time.Duration
	busy                   bool
	busyDispatch           string
	busyWorkers            int
	busyCatalogTTL         time.Duration
}

func main() {
	var o options
	var concs string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "wrk duration per HTTP scenario and concurrency")
	flag.StringVar(&concs, "conc", "100,1000,10000", "HTTP concurrencies (connections)")
	flag.StringVar(&o.out, "out", "docs/benchmarks", "directory for results.json and the plots")
	flag.StringVar(&o.md, "md", "BENCHMARKS.md", "report to write")
	flag.StringVar(&o.script, "wrk-script", "examples/bench/users.lua", "wrk Lua script")
	flag.StringVar(&o.profile, "profile", "", "if set, keep the CPU profiles of the profiled runs (noop and v2 at 1000 connections) in this directory")
	from := flag.String("from", "", "re-render the report and plots from this results.json instead of measuring")
	e2eOnly := flag.Bool("e2e-only", false, "measure only the end-to-end variants and print them; writes no report")
	httpOnly := flag.String("http-only", "", "measure only these HTTP scenarios (comma-separated, e.g. v2,noop) at -conc and print them with the Prometheus check; writes no report")
	schedOnly := flag.Bool("scheduler-only", false, "measure only the scheduler sections (idle cost, busy campaigns) and print them as markdown; writes no report")
	idleSched := flag.String("idle-campaigns", ints(idleSchedulerCounts), "scheduler section: idle campaign counts under one Scheduler per process")
	flag.DurationVar(&o.idleWindow, "idle-window", 10*time.Second, "scheduler section: each idle measurement window")
	flag.DurationVar(&o.busyWindow, "busy-window", 10*time.Second, "scheduler section: the busy campaigns' steady window")
	flag.StringVar(&o.busyDispatch, "busy-dispatch", "kafka", "scheduler section: where busy campaigns' batches go: kafka (the producer, counted) or count (only counted)")
	flag.BoolVar(&o.busy, "busy", true, "scheduler section: measure the busy campaigns (false: the idle cost only)")
	flag.IntVar(&o.busyWorkers, "busy-workers", 0, "scheduler section, diagnosis: the busy Scheduler's Workers (0: its default, 16)")
	flag.DurationVar(&o.busyCatalogTTL, "busy-catalog-ttl", 0, "scheduler section, diagnosis: the TTL of the busy Scheduler's catalog cache (0: its default, 1s)")
	flag.Parse()
	o.capacity = *capacityMD
	if *sseOnly || *sseClient != "" { // sse.go: the waiting-room page and status-stream section alone, or its client process
		if err := sseMain(o); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *cutoffOnly { // cutoff.go: the cutoff section alone
		if err := cutoffMain(o); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *shardOnly { // shardline.go: the sharded-line section alone
		if err := shardMain(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *from != "" {
		if err := render(*from, o); err != nil {
			log.Fatal(err)
		}
		return
	}
	var err error
	if o.concs, err = parseInts(concs); err != nil {
		log.Fatalf("bad -conc: %v", err)
	}
	if o.idleSched, err = parseInts(*idleSched); err != nil {
		log.Fatalf("bad -idle-campaigns: %v", err)
	}
	if o.busyDispatch != "kafka" && o.busyDispatch != "count" {
		log.Fatalf("bad -busy-dispatch %q: kafka or count", o.busyDispatch)
	}
	cutoff, err := cutoffFlags()
	if err != nil {
		log.Fatal(err)
	}
	o.redis, o.brokers, o.postgres = os.Getenv("COUPONQ_REDIS_ADDR"), os.Getenv("COUPONQ_KAFKA_BROKERS"), os.Getenv("COUPONQ_POSTGRES_DSN")
	if o.redis == "" || o.brokers == "" || o.postgres == "" || (!*schedOnly && *httpOnly == "" && !*e2eOnly && os.Getenv("COUPONQ_REDIS_CLUSTER") == "") {
		log.Fatal("COUPONQ_REDIS_ADDR, COUPONQ_REDIS_CLUSTER, COUPONQ_KAFKA_BROKERS and COUPONQ_POSTGRES_DSN must be set: run scripts/bench.sh")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	rep := Report{Machine: machine(), Started: time.Now().UTC(), Duration: o.duration.String()}

	b, err := newBackends(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	defer b.close()

	if *capacityOnly { // capacity.go: the calibration's component runs, the checks, CAPACITY.md
		if err := capacityMain(ctx, b, o); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *schedOnly {
		if rep.Idle, rep.Busy, err = b.schedulerSections(ctx, o); err != nil {
			log.Fatal(err)
		}
		rep.Finished = time.Now().UTC()
		fmt.Print(schedulerMarkdown(rep))
		return
	}
	if *httpOnly != "" {
		for _, sc := range strings.Split(*httpOnly, ",") {
			for _, c := range o.concs {
				r, err := b.runHTTP(ctx, sc, c)
				if err != nil {
					log.Fatal(err)
				}
				rep.HTTP = append(rep.HTTP, r)
				progress("%s %d: %.0f req/s, scraped %.0f admissions/s", sc, c, r.RPS, r.ScrapedRPS())
			}
		}
		fmt.Print(promCheckMarkdown(rep))
		if o.profile != "" {
			for _, sc := range strings.Split(*httpOnly, ",") {
				p, err := b.profileHTTP(ctx, sc, profileConns, o.profile)
				if err != nil {
					log.Fatal(err)
				}
				rep.Profiles = append(rep.Profiles, p)
			}
			fmt.Print(profileMarkdown(rep.Profiles))
		}
		return
	}
	if *e2eOnly {
		for _, v := range e2eVariants {
			r, err := b.runE2E(ctx, e2eEntries, v)
			if err != nil {
				log.Fatal(err)
			}
			progress("%s", e2eLine(r))
		}
		r, top, err := b.profileE2E(ctx)
		if err != nil {
			log.Fatal(err)
		}
		progress("%s", e2eLine(r))
		fmt.Println(strings.Join(top, "\n"))
		return
	}
	for _, sc := range httpScenarios {
		concs := o.concs
		if slices.Contains(oneConnScenarios, sc) {
			concs = append([]int{1}, concs...)
		}
		for _, c := range concs {
			progress("http %-12s %5d connections, %s", sc, c, o.duration)
			r, err := b.runHTTP(ctx, sc, c)
			if err != nil {
				log.Fatalf("%s at %d: %v", sc, c, err)
			}
			progress("   %.0f req/s  p50 %.2f ms  p99 %.2f ms  non-2xx/timeouts %d  wrk cpu %.0f%% of the box",
				r.RPS, r.P50ms, r.P99ms, r.Failed(), 100*r.LoadCPUShare)
			rep.HTTP = append(rep.HTTP, r)
		}
	}
	// One connection is a latency race between two scenarios a few µs
	// apart, which the box's noise can flip in one run each: the ratio's
	// target is judged on interleaved rounds.
	for round := range oneConnRounds {
		for _, sc := range oneConnScenarios {
			progress("http %-12s %5d connection, %s, interleaved round %d of %d", sc, 1, o.duration, round+1, oneConnRounds)
			r, err := b.runHTTP(ctx, sc, 1)
			if err != nil {
				log.Fatalf("%s at 1: %v", sc, err)
			}
			progress("   p50 %.3f ms", r.P50ms)
			rep.OneConn = append(rep.OneConn, r)
		}
	}
	for _, sc := range profiledScenarios {
		progress("http %-12s %5d connections, %s, under the CPU profiler", sc, profileConns, o.duration)
		p, err := b.profileHTTP(ctx, sc, profileConns, o.profile)
		if err != nil {
			log.Fatalf("profiling %s: %v", sc, err)
		}
		rep.Profiles = append(rep.Profiles, p)
	}
	progress("http %s %5d connections, %s, %d waiting users", statusPollScenario, *capConns, o.duration, statusPollUsers)
	sp, err := b.runHTTP(ctx, statusPollScenario, *capConns)
	if err != nil {
		log.Fatalf("status poll: %v", err)
	}
	progress("   %s", cpuLine(sp))
	rep.StatusPoll = &sp
	progress("go api vs redis-benchmark at 1000 connections")
	if rep.RedisCeiling, err = b.runRedisCeiling(ctx, 1000, 200_000); err != nil {
		log.Fatal(err)
	}
	progress("one campaign: unthrottled drain, then throttled rate")
	if rep.Throttle, err = b.runThrottle(ctx); err != nil {
		log.Fatal(err)
	}
	if rep.Idle, rep.Busy, err = b.schedulerSections(ctx, o); err != nil {
		log.Fatal(err)
	}
	sh, err := runShardSection(ctx)
	if err != nil {
		log.Fatal(err)
	}
	rep.Shard = &sh
	for _, v := range e2eVariants {
		progress("end to end: redis -> scheduler -> kafka -> issuer -> %s", v.Name)
		r, err := b.runE2E(ctx, e2eEntries, v)
		if err != nil {
			log.Fatal(err)
		}
		progress("   %s", e2eLine(r))
		rep.E2E = append(rep.E2E, r)
	}
	progress("exact cutoff against NoCutoff: drain time at the end of the stock, %d repetitions", cutoff.Reps)
	cr, err := b.runCutoffSection(ctx, cutoff)
	if err != nil {
		log.Fatal(err)
	}
	rep.Cutoff = &cr
	progress("waiting-room pages and status streams (SSE): %d pages loaded, their streams held %s", *sseStreams, *sseHold)
	sse, err := runSSE(ctx, o.redis, *sseStreams, *sseHold)
	if err != nil {
		log.Fatal(err)
	}
	rep.SSE = &sse
	progress("capacity model: calibration from this run's sections, then its checks")
	if cal, err := calibrationFrom(rep, *capConns, "this run's sections (HTTP admission at "+strconv.Itoa(*capConns)+
		" connections, the status poll, the sharded line, end to end, the status streams)"); err != nil {
		progress("   capacity model skipped, its calibration is incomplete: %v", err) // e.g. a -conc without it
	} else if capRes, err := b.runCapacity(ctx, cal); err != nil {
		log.Fatal(err)
	} else {
		rep.Capacity = &capRes
	}
	progress("end to end, profiled: memory batch, %d users", e2eProfileEntries)
	if r, top, err := b.profileE2E(ctx); err != nil {
		log.Fatal(err)
	} else {
		progress("   %s", e2eLine(r))
		rep.E2EProfile, rep.E2EProfileTop = &r, top
	}
	progress("memory per waiting entry (1,000,000 waiting) and Status latency")
	rep.Memory = memoryLines(ctx, o)
	progress("micro-benchmarks (go test -bench)")
	rep.Micro = microBenchmarks(ctx)
	rep.Finished = time.Now().UTC()

	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), js, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := plots(rep, o.out); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(o.md, []byte(markdown(rep, o)), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := writeCapacity(rep, o); err != nil {
		log.Fatal(err)
	}
	progress("wrote %s, %s, %s/results.json and plots", o.md, o.capacity, o.out)
}

// render rewrites the report and plots from a saved run.
func render(path string, o options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	if err := schedulerRowsOnly(b, &rep); err != nil {
		return err
	}
	if err := plots(rep, o.out); err != nil {
		return err
	}
	if err := os.WriteFile(o.md, []byte(markdown(rep, o)), 0o644); err != nil {
		return err
	}
	return writeCapacity(rep, o)
}

// writeCapacity writes the capacity model's report, if the run has one
// and o names it.
func writeCapacity(rep Report, o options) error {
	if rep.Capacity == nil || o.capacity == "" {
		return nil
	}
	return os.WriteFile(o.capacity, []byte(capacityMarkdown(*rep.Capacity, rep.Machine)), 0o644)
}

// schedulerRowsOnly leaves out of rep, read from js, the scheduler
// sections' rows whose "Way" is not "scheduler": results that also measured
// campaigns driven another way. The report presents the Scheduler's.
func schedulerRowsOnly(js []byte, rep *Report) error {
	var ways struct{ Idle, Busy []struct{ Way string } }
	if err := json.Unmarshal(js, &ways); err != nil {
		return err
	}
	keep := func(way string) bool { return way == "" || way == "scheduler" }
	var idle []IdleResult
	for i, r := range rep.Idle {
		if keep(ways.Idle[i].Way) {
			idle = append(idle, r)
		}
	}
	var busy []BusyResult
	for i, r := range rep.Busy {
		if keep(ways.Busy[i].Way) {
			busy = append(busy, r)
		}
	}
	rep.Idle, rep.Busy = idle, busy
	return nil
}

// memoryLines runs the Redis line's memory test at 1,000,000 waiting users
// on the bench's Redis and keeps the lines it prints (bytes per waiting
// entry, Status latency).
func memoryLines(ctx context.Context, o options) []string {
	cmd := exec.CommandContext(ctx, "go", "test", "-v", "-run", "^TestMemoryPerWaitingEntry$", "-count=1", "-timeout", "10m", "./internal/redisline/")
	cmd.Env = append(os.Environ(), "COUPONQ_REDIS_ADDR="+o.redis, "COUPONQ_REDIS_MEMORY_ENTRIES=1000000")
	out, err := cmd.CombinedOutput()
	var lines []string
	if err != nil {
		lines = append(lines, fmt.Sprintf("go test TestMemoryPerWaitingEntry: %v", err))
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "redis memory per waiting entry") || strings.HasPrefix(l, "Queue.Status at") {
			lines = append(lines, l)
		}
	}
	return lines
}

// microBenchmarks runs the hot-path testing.B benchmarks and keeps their
// result lines.
func microBenchmarks(ctx context.Context) []string {
	var lines []string
	for _, args := range [][]string{
		{"test", "-run", "^$", "-bench", ".", "-benchmem", "./dispatch/wire/", "./internal/issuing/"},
		{"test", "-run", "^$", "-bench", "^BenchmarkAdmit$", "-benchmem", "-benchtime", "100000x", "./internal/redisline/"},
		{"test", "-run", "^$", "-bench", "^BenchmarkAdmitHandler$", "-benchmem", "-benchtime", "200000x", "./internal/httpapi/"},
	} {
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			lines = append(lines, fmt.Sprintf("go %s: %v", strings.Join(args, " "), err))
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Benchmark") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return lines
}

// e2eEntries is how many users each end-to-end variant issues to.
const e2eEntries = 20_000

func e2eLine(r E2EResult) string {
	return fmt.Sprintf("%-32s %6.0f issued/s (steady %6.0f/s), %d Store calls (%.1f entries each), store %.1f s, record %.1f s, handler %.1f s",
		r.Variant, r.IssuedPerSec, r.SteadyIssuedPerSec, r.StoreCalls, r.EntriesPerStoreCall(), r.StoreSec, r.RecordSec, r.HandlerSec)
}

// parseInts reads a comma-separated list of positive integers; "" is none.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a list of positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func ints(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
