package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Report is everything one run measured; results.json holds it.
type Report struct {
	Machine      Machine
	Started      time.Time
	Finished     time.Time
	Duration     string
	HTTP         []HTTPResult
	RedisCeiling RedisResult
	// Throttle is one campaign moved by a scheduler of its own.
	Throttle ThrottleResult
	E2E      []E2EResult
	Micro    []string
	// The scheduler sections (absent from results of runs before them).
	Idle []IdleResult `json:",omitempty"`
	Busy []BusyResult `json:",omitempty"`
	// The waiting-room page and status-stream section (sse.go; absent from
	// runs before it, its page loads from runs before them).
	SSE *SSEResult `json:",omitempty"`
	// The sharded-line section (shardline.go; absent from runs before it).
	Shard *ShardResult `json:",omitempty"`
	// The cutoff section (cutoff.go; absent from runs before it).
	Cutoff *CutoffResult `json:",omitempty"`
	// Memory is what the Redis line's memory test printed at 1,000,000 waiting
	// users (absent from runs before it).
	Memory []string `json:",omitempty"`
	// E2EProfile is the profiled in-memory batch run and its pprof top
	// (absent from runs before it).
	E2EProfile    *E2EResult `json:",omitempty"`
	E2EProfileTop []string   `json:",omitempty"`
	// StatusPoll is the status poll's HTTP run (absent from runs before it).
	StatusPoll *HTTPResult `json:",omitempty"`
	// Capacity is the capacity model's calibration, checks and plan
	// (capacity.go; absent from runs before it).
	Capacity *CapacityResult `json:",omitempty"`
	// Profiles are the profiled HTTP runs (profile.go; absent from runs
	// before them).
	Profiles []ProfileResult `json:",omitempty"`
	// OneConn are the interleaved one-connection rounds of V2 and V2
	// uncoalesced (oneConnRounds each; absent from runs before them).
	OneConn []HTTPResult `json:",omitempty"`
}

type Machine struct {
	CPU, Kernel, Go, Redis, Kafka string
	Cores                         int
	MemGiB                        float64
}

type HTTPResult struct {
	Scenario                                     string
	Conns                                        int
	Requests                                     int64
	Seconds, RPS                                 float64
	P50ms, P95ms, P99ms, MaxMs, MeanMs           float64
	S2xx, S409, S410, S503, SOther               int64
	Timeouts, ConnErrors                         int64
	LoadCPUShare                                 float64 // wrk's CPU time / wall time / cores
	LockWaitP50ms, LockWaitP99ms, LockWaitMeanMs float64
	// ScrapedAdmissions is, for V2 scenarios, the growth of
	// couponq_admissions_total between two scrapes of the Prometheus
	// adapter's handler while wrk ran, ScrapedSeconds apart.
	ScrapedAdmissions int64   `json:",omitempty"`
	ScrapedSeconds    float64 `json:",omitempty"`
	// ScrapedWhole is the growth of the same counter from just before wrk
	// started to a second after it ended: wrk's count plus the requests it
	// left in flight (at most Conns).
	ScrapedWhole int64 `json:",omitempty"`
	// CPU over wrk's run, from just before it started to its exit
	// (CPUWallSec; absent from runs before it): the bench process, which is
	// the server under test (its other goroutines idle: IdleCPUPerSec is
	// its CPU per second over half a second before, the server up), Redis
	// (INFO cpu used_cpu_user + used_cpu_sys, summed over the masters; per
	// master in RedisMasterCPUSec), the Kafka broker (/proc; -1 if not
	// found) and wrk (LoadCPUSec, its rusage).
	CPUWallSec float64 `json:",omitempty"`
	// BoxCPUSec is the whole box's busy CPU over the same run (/proc/stat:
	// every process, the kernel's, steal); QuietWaitSec how long the run
	// waited first for the box to settle below quietShare busy, and
	// QuietShare the box's busy share in the last half second of that wait.
	BoxCPUSec     float64 `json:",omitempty"`
	QuietWaitSec  float64 `json:",omitempty"`
	QuietShare    float64 `json:",omitempty"`
	ServerCPUSec  float64 `json:",omitempty"`
	IdleCPUPerSec float64 `json:",omitempty"`
	// Redis over the same half second, the run's client idle: anyone
	// else's load, which would count in RedisCPUSec.
	IdleRedisCPUPerSec  float64   `json:",omitempty"`
	IdleRedisCmdsPerSec float64   `json:",omitempty"`
	RedisCPUSec         float64   `json:",omitempty"`
	RedisMasterCPUSec   []float64 `json:",omitempty"`
	KafkaCPUSec         float64   `json:",omitempty"`
	LoadCPUSec          float64   `json:",omitempty"`
	// What Redis ran over the same time: commands (Lua scripts' inner
	// commands included) and script calls (EVALSHA and EVAL).
	RedisCommands int64 `json:",omitempty"`
	RedisScripts  int64 `json:",omitempty"`
	// Cluster and Shards: the run's node used the Redis Cluster, its
	// campaign over Shards sub-lines (the capacity checks).
	Cluster bool `json:",omitempty"`
	Shards  int  `json:",omitempty"`
}

// HasCPU tells whether the run measured CPU (runs before it did not).
func (r HTTPResult) HasCPU() bool { return r.CPUWallSec > 0 }

// ServerMicros, RedisMicros, KafkaMicros and LoadMicros are each
// process's CPU per request, µs (KafkaMicros -1 if not measured).
func (r HTTPResult) ServerMicros() float64 { return micros(r.ServerCPUSec, r.Requests) }
func (r HTTPResult) RedisMicros() float64  { return micros(r.RedisCPUSec, r.Requests) }
func (r HTTPResult) LoadMicros() float64   { return micros(r.LoadCPUSec, r.Requests) }
func (r HTTPResult) KafkaMicros() float64 {
	if !r.HasCPU() || r.KafkaCPUSec < 0 || !strings.HasPrefix(r.Scenario, "v1") { // only V1 publishes
		return -1
	}
	return micros(r.KafkaCPUSec, r.Requests)
}

// TotalMicros is the serving side's CPU per request: server, Redis and
// the Kafka broker (if measured), not the load generator.
func (r HTTPResult) TotalMicros() float64 {
	return r.ServerMicros() + r.RedisMicros() + max(r.KafkaMicros(), 0)
}

// IdleMicros is the bench process's idle CPU over the run per request:
// the noise in ServerMicros.
func (r HTTPResult) IdleMicros() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.IdleCPUPerSec * r.CPUWallSec * 1e6 / float64(r.Requests)
}

// AdmissionsPerScript is requests per Redis script call over the run.
func (r HTTPResult) AdmissionsPerScript() float64 {
	if r.RedisScripts == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.RedisScripts)
}

// BoxBusy is the share of the box's cores the measured processes used
// over the run: server, Redis, Kafka and wrk.
func (r HTTPResult) BoxBusy(cores int) float64 {
	if r.CPUWallSec == 0 || cores == 0 {
		return 0
	}
	kafka := 0.0
	if r.KafkaMicros() > 0 {
		kafka = r.KafkaCPUSec
	}
	return (r.ServerCPUSec + r.RedisCPUSec + kafka + r.LoadCPUSec) / r.CPUWallSec / float64(cores)
}

// RestShare is the share of the box's cores that the rest of the box (the
// kernel's own work, steal, every other process) used over the run: the
// whole box's busy CPU less the measured processes'; -1 if not measured.
func (r HTTPResult) RestShare(cores int) float64 {
	if r.BoxCPUSec == 0 || r.CPUWallSec == 0 || cores == 0 {
		return -1
	}
	return max(r.BoxCPUSec/r.CPUWallSec/float64(cores)-r.BoxBusy(cores), 0)
}

// ScrapedRPS is the admission rate the scrapes show.
func (r HTTPResult) ScrapedRPS() float64 {
	if r.ScrapedSeconds == 0 {
		return 0
	}
	return float64(r.ScrapedAdmissions) / r.ScrapedSeconds
}

// GoodRPS is answers per second that are an acceptance (2xx) or a correct
// refusal (409, 410): throughput that did the job.
func (r HTTPResult) GoodRPS() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.S2xx+r.S409+r.S410) / r.Seconds
}

// Failed counts answers that are neither accepted (2xx) nor a correct
// refusal (409 duplicate, 410 sold out): 503s, other codes, timeouts and
// socket errors.
func (r HTTPResult) Failed() int64 { return r.S503 + r.SOther + r.Timeouts + r.ConnErrors }

type RedisResult struct {
	Conns, Admissions                     int
	RedisBenchmark, GoAPI, GoAPICoalesced float64
}

// ThrottleResult is one campaign moved to Kafka by a scheduler of its own:
// drained as fast as it goes, then throttled to a configured rate, both
// timed from the scheduler's first move.
type ThrottleResult struct {
	DrainEntries                     int64
	DrainPerSec                      float64
	ConfiguredPerSec, AchievedPerSec float64
	MaxBatch                         int64
	Ticks                            int
}

func numCPU() int { return runtime.NumCPU() }

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) }

func machine() Machine {
	m := Machine{Cores: numCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.CPU = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		m.Redis = strings.TrimSpace(string(out))
	}
	m.Kafka = os.Getenv("COUPONQ_KAFKA_VERSION")
	if m.Kafka == "" {
		m.Kafka = "4.1.1"
	}
	return m
}

// oneConnMedians is the median p50 of V2's and V2 uncoalesced's
// one-connection rounds, and how many rounds each had (0: none).
func oneConnMedians(rounds []HTTPResult) (v2, uncoalesced float64, n int) {
	var a, b []float64
	for _, r := range rounds {
		switch r.Scenario {
		case "v2":
			a = append(a, r.P50ms)
		case "v2-uncoalesced":
			b = append(b, r.P50ms)
		}
	}
	if len(a) == 0 || len(b) == 0 {
		return 0, 0, 0
	}
	return median(a), median(b), min(len(a), len(b))
}

func find(rep Report, sc string, conns int) (HTTPResult, bool) {
	for _, r := range rep.HTTP {
		if r.Scenario == sc && r.Conns == conns {
			return r, true
		}
	}
	return HTTPResult{}, false
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func markdown(rep Report, o options) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("Generated by `scripts/bench.sh` (the tool is `examples/bench`) on %s, in one run of %s.\n",
		rep.Started.Format("2006-01-02 15:04 UTC"), rep.Finished.Sub(rep.Started).Round(time.Second))
	w("Every number below comes from that run, on this machine; rerun the command to regenerate all of it.\n\n")
	w("## Machine\n\n")
	w("| | |\n|---|---|\n| CPU | %s, %d cores |\n| memory | %.1f GiB |\n| kernel | %s |\n| Go | %s |\n| Redis | %s |\n| Kafka | %s (KRaft, one broker, loopback) |\n\n",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.MemGiB, rep.Machine.Kernel, rep.Machine.Go, rep.Machine.Redis, rep.Machine.Kafka)
	w("The load generator (wrk, 2 threads), the server under test, Redis and Kafka all share these %d cores; the\n", rep.Machine.Cores)
	w("`wrk CPU` column is wrk's own CPU time as a share of the whole box during the run.\n\n")

	w("## HTTP admission\n\n")
	w("wrk drives `POST /campaigns/{id}/entries` for %s per row; each request is a distinct user except every 10th,\n", rep.Duration)
	w("a repeat. `noop` is a net/http handler that answers 202 and does nothing (the HTTP ceiling). Every other\n")
	w("scenario is the public handler of a node as a host runs it: `node.New` with the API role, the Redis backend\n")
	w("(`redisq.New`) and the Kafka transport (`kafkadispatch.New`), the campaign created through the node, and\n")
	w("`Node.Handler`. `v2` is queue-first admission as configured by default: the Redis backend coalesces admissions\n")
	w("that arrive while another of the campaign's is on its way to Redis into one script call (a lone one goes out at\n")
	w("once); `v2-uncoalesced` sets\n")
	w("`redisq.Config{DisableCoalescing: true}`, one script call per request. Both are also measured at one connection.\n")
	w("`v1-*` is validate-first: lock, SADD, INCR, publish to Kafka, answer — with a per-user or a campaign-wide lock.\n")
	w("`failed` counts 503s, timeouts (5 s) and socket errors; 409 (a repeat in V1) is a correct answer.\n\n")
	w("`good/s` counts only accepted (2xx) or correctly refused (409, 410) answers; the ratios below use it.\n\n")
	w("| scenario | conns | req/s | good/s | p50 ms | p95 ms | p99 ms | failed | lock wait p50 / p99 ms | wrk CPU |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.HTTP {
		lw := "—"
		if strings.HasPrefix(r.Scenario, "v1") {
			lw = fmt.Sprintf("%.2f / %.2f", r.LockWaitP50ms, r.LockWaitP99ms)
		}
		w("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %d | %s | %.0f%% |\n",
			r.Scenario, r.Conns, r.RPS, r.GoodRPS(), r.P50ms, r.P95ms, r.P99ms, r.Failed(), lw, 100*r.LoadCPUShare)
	}
	w("\n![throughput](%s) ![latency](%s)\n\n", filepath.Join(o.out, "throughput.png"), filepath.Join(o.out, "latency.png"))
	b.WriteString(promCheckMarkdown(rep))
	b.WriteString(cpuMarkdown(rep))

	if len(rep.Profiles) > 0 {
		w("### Where an admission's CPU goes (profiles)\n\n")
		w("%s", profileMarkdown(rep.Profiles))
	}
	w("### Ratios and targets (at 1,000 connections)\n\n")
	w("| ratio | V2 (default) | V2 uncoalesced | target |\n|---|---:|---:|---|\n")
	v2, _ := find(rep, "v2", 1000)
	v2u, _ := find(rep, "v2-uncoalesced", 1000)
	v1u, _ := find(rep, "v1-user-lock", 1000)
	v1c, _ := find(rep, "v1-campaign-lock", 1000)
	noop, _ := find(rep, "noop", 1000)
	w("| V2 / V1 per-user lock, good throughput | %s | %s | ≥ 5 |\n", ratio(v2.GoodRPS(), v1u.GoodRPS()), ratio(v2u.GoodRPS(), v1u.GoodRPS()))
	w("| V2 / V1 campaign lock, good throughput | %s | %s | ≥ 50 |\n", ratio(v2.GoodRPS(), v1c.GoodRPS()), ratio(v2u.GoodRPS(), v1c.GoodRPS()))
	w("| V2 / no-op HTTP ceiling, throughput | %s | %s | ≥ 0.8 |\n", ratio(v2.GoodRPS(), noop.GoodRPS()), ratio(v2u.GoodRPS(), noop.GoodRPS()))
	w("| V2 p99 / no-op p99 | %s | %s | ≤ 1.5 |\n", ratio(v2.P99ms, noop.P99ms), ratio(v2u.P99ms, noop.P99ms))
	w("| V2 p99 / V1 per-user lock p99 | %s | %s | ≤ 0.33 |\n", ratio(v2.P99ms, v1u.P99ms), ratio(v2u.P99ms, v1u.P99ms))
	w("| V2 p99 / V1 campaign lock p99 | %s | %s | ≤ 0.05 |\n", ratio(v2.P99ms, v1c.P99ms), ratio(v2u.P99ms, v1c.P99ms))
	one, _ := find(rep, "v2", 1)
	oneU, _ := find(rep, "v2-uncoalesced", 1)
	oneHow := "the runs above"
	if a, b, n := oneConnMedians(rep.OneConn); n > 0 {
		one.P50ms, oneU.P50ms = a, b
		oneHow = fmt.Sprintf("medians of %d interleaved runs each", n)
	}
	w("| p50 at one connection, V2 default / uncoalesced (%s: %.3f / %.3f ms) | %s | | ≤ 1.10 |\n", oneHow, one.P50ms, oneU.P50ms, ratio(one.P50ms, oneU.P50ms))
	rc := rep.RedisCeiling
	w("| Go API / redis-benchmark (same script, %d connections) | %s | %s | ≥ 1.5 (default) |\n",
		rc.Conns, ratio(rc.GoAPICoalesced, rc.RedisBenchmark), ratio(rc.GoAPI, rc.RedisBenchmark))
	t := rep.Throttle
	w("| one campaign throttled: achieved / configured rate | %s | | 1 ± 0.02 |\n", ratio(t.AchievedPerSec, t.ConfiguredPerSec))
	cpuRows, missed := cpuTargetRows(rep)
	w("%s\n", cpuRows)
	if noop.P99ms > 0 && v2.P99ms/noop.P99ms > 1.5 {
		missed = append(missed, fmt.Sprintf("V2 p99 / no-op p99 is %.2f against ≤ 1.5 (%.1f against %.1f ms)", v2.P99ms/noop.P99ms, v2.P99ms, noop.P99ms))
	}
	if one.P50ms > 0 && oneU.P50ms > 0 && one.P50ms/oneU.P50ms > 1.10 {
		missed = append(missed, fmt.Sprintf("p50 at one connection, V2 default / uncoalesced, is %.2f against ≤ 1.10", one.P50ms/oneU.P50ms))
	}
	if v1u.GoodRPS() > 0 && v2.GoodRPS()/v1u.GoodRPS() < 5 {
		why := fmt.Sprintf("V1 with a per-user lock "+
			"contends only per user, so with distinct users it is one lock, SADD, INCR and a Kafka publish per request; V2 is "+
			"bounded by the admission script's Redis time (about 15 µs a call with the compact line, against 9 with one sorted "+
			"set, the price of ≤ 100 bytes per waiting entry) and both share these %d cores with wrk and Redis", rep.Machine.Cores)
		if v2.HasCPU() && v1u.HasCPU() {
			// Measured: both CPU-bound, the ratio is that of their CPU per request, wrk's included.
			v1All, v2All := v1u.TotalMicros()+v1u.LoadMicros(), v2.TotalMicros()+v2.LoadMicros()
			why = fmt.Sprintf("both runs kept the box busy (%.0f%% and %.0f%%, CPU per operation above), so the ratio is about "+
				"that of their CPU per request with the load generator's included, which shares the cores: V1 %s µs (server %s, "+
				"Redis %s, Kafka %s, wrk %s) over V2 %s (server %s, Redis %s, wrk %s) = %.2f; without wrk, which a deployment "+
				"does not pay, V2 costs %.2f× less CPU per admission (%s against %s µs)",
				100*v1u.BoxBusy(rep.Machine.Cores), 100*v2.BoxBusy(rep.Machine.Cores), us(v1All), us(v1u.ServerMicros()),
				us(v1u.RedisMicros()), us(max(v1u.KafkaMicros(), 0)), us(v1u.LoadMicros()), us(v2All), us(v2.ServerMicros()),
				us(v2.RedisMicros()), us(v2.LoadMicros()), v1All/v2All, v1u.TotalMicros()/v2.TotalMicros(), us(v2.TotalMicros()), us(v1u.TotalMicros()))
		}
		missed = append(missed, fmt.Sprintf("V2 / V1 per-user lock is %.2f against ≥ 5 (%.0f%% short): %s",
			v2.GoodRPS()/v1u.GoodRPS(), 100*(1-v2.GoodRPS()/v1u.GoodRPS()/5), why))
	}
	if noop.GoodRPS() > 0 && v2.GoodRPS()/noop.GoodRPS() < 0.8 {
		why := fmt.Sprintf("the no-op handler does no I/O, while "+
			"every V2 admission is work in a Redis script (coalescing saves round trips, not that work), and "+
			"Redis, the server and wrk share %d cores, so Redis's CPU comes out of the server's; the handler's own cost is near "+
			"the no-op's (micro-benchmarks: 12 against 10 allocations per request)", rep.Machine.Cores)
		if v2.HasCPU() && noop.HasCPU() {
			v2All, noopAll := v2.TotalMicros()+v2.LoadMicros(), noop.TotalMicros()+noop.LoadMicros()
			why = fmt.Sprintf("throughput follows CPU per request, wrk's included, and the share of the box a run keeps busy: "+
				"V2 %s µs (server %s, Redis %s, wrk %s) against the no-op's %s (server %s, wrk %s), %.2f as many requests per "+
				"CPU-second, with the box %.0f%% busy against %.0f%%. Of V2's %s µs more, %s are the API process's own (the "+
				"node's admission path; compare the handler alone in the micro-benchmarks below) and %s Redis's",
				us(v2All), us(v2.ServerMicros()), us(v2.RedisMicros()), us(v2.LoadMicros()),
				us(noopAll), us(noop.ServerMicros()), us(noop.LoadMicros()), noopAll/v2All,
				100*v2.BoxBusy(rep.Machine.Cores), 100*noop.BoxBusy(rep.Machine.Cores), us(v2All-noopAll),
				us(v2.ServerMicros()-noop.ServerMicros()), us(v2.RedisMicros()-noop.RedisMicros()))
		}
		missed = append(missed, fmt.Sprintf("V2 / no-op is %.2f against ≥ 0.8 (%.0f%% short): %s",
			v2.GoodRPS()/noop.GoodRPS(), 100*(1-v2.GoodRPS()/noop.GoodRPS()/0.8), why))
	}
	if len(missed) > 0 {
		w("Targets missed, and why:\n\n")
		for _, m := range missed {
			w("- %s.\n", m)
		}
		w("\n")
	}
	w("V1's campaign-wide lock serialises every request, so its failures are mostly 503 `busy` (the lock wait\n")
	w("gave up after 2 s) and timeouts; read its req/s together with the failed column.\n\n")

	w("## Redis ceiling\n\n")
	w("%d admissions of new users at %d connections: redis-benchmark running the admission script with EVALSHA\n", rc.Admissions, rc.Conns)
	w("(`user:__rand_int__`), the Redis line's Go API (`Queue.Admit`, the Redis backend's line), and the Go API\n")
	w("coalescing concurrent admissions.\n\n")
	w("| path | admissions/s |\n|---|---:|\n| redis-benchmark | %.0f |\n| Go API | %.0f |\n| Go API, coalesced | %.0f |\n\n",
		rc.RedisBenchmark, rc.GoAPI, rc.GoAPICoalesced)

	w("## Throttling one campaign\n\n")
	w("One campaign, its line in Redis, moved to Kafka by a scheduler of its own: first a full line drained as fast\n")
	w("as it goes, then a throttled rate. Both are timed from the scheduler's first move, which comes one Interval\n")
	w("after it took its lease.\n\n")
	w("| measure | result |\n|---|---:|\n")
	w("| unthrottled drain to Kafka (batch 5,000 every 1 ms, %d entries) | %.0f entries/s |\n", t.DrainEntries, t.DrainPerSec)
	w("| throttled: configured | %.0f entries/s (100 every 100 ms) |\n", t.ConfiguredPerSec)
	w("| throttled: achieved over 10 s | %.1f entries/s (%d ticks, largest batch %d) |\n\n", t.AchievedPerSec, t.Ticks, t.MaxBatch)

	b.WriteString(schedulerMarkdown(rep))
	b.WriteString(shardMarkdown(rep))

	w("## End to end\n\n")
	w("%d waiting users, stock %d, per variant: Redis line → scheduler (2,000 every 10 ms) → Kafka (8 partitions,\n", e2eEntries, e2eEntries)
	w("one consumer, a worker per partition) → one issuer → Store, outcomes recorded in Redis. Issuances/s count from\n")
	w("the first tick to the last issuance; *steady* from the first issuance to the last. The first row is the\n")
	w("configuration before the batch path (one Store call per entry under a per-user Redis lock), the baseline\n")
	w("of the ratio column. *batch* is the issuer's batch path: one `IssueBatch` call and one `Record` call per\n")
	w("delivered batch (up to 100 entries a partition has at hand).\n\n")
	w("| variant | issuances/s | steady/s | × baseline | Store calls | entries/call | Store s | Record s | handler s |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var base float64
	for i, e := range rep.E2E {
		if i == 0 {
			base = e.IssuedPerSec
		}
		w("| %s | %.0f | %.0f | %.2f | %d | %.1f | %.1f | %.1f | %.1f |\n", e.Variant, e.IssuedPerSec, e.SteadyIssuedPerSec,
			e.IssuedPerSec/base, e.StoreCalls, e.EntriesPerStoreCall(), e.StoreSec, e.RecordSec, e.HandlerSec)
	}
	w("\n*Store s*, *Record s* and *handler s* sum the durations of those calls over the run; the eight partition\n")
	w("workers overlap, so they can exceed the wall time. The handler time less Store and Record time is the\n")
	w("issuer's own work (and, per entry, the lock).\n\n")
	for _, e := range rep.E2E {
		if e.Variant == "postgres, batch" && e.HandlerSec > 0 {
			w("Where the time goes with the Postgres Store, batched: of the handler's %.1f s, the Store took %.0f%% and\n", e.HandlerSec, 100*e.StoreSec/e.HandlerSec)
			w("recording outcomes in Redis %.0f%%; one Store call decided %.1f entries in %.1f ms on average.\n\n",
				100*e.RecordSec/e.HandlerSec, e.EntriesPerStoreCall(), 1000*e.StoreSec/float64(max(e.StoreCalls, 1)))
		}
	}
	if p := rep.E2EProfile; p != nil {
		w("### Where the issuer's time goes (in memory, batched)\n\n")
		w("The same pipeline with the in-memory Store and the issuer's batch path, one worker process, %d users, under a\n", p.Entries)
		w("CPU profile of the bench process (scheduler, Kafka producer and consumer, issuer, Store, outcome recording) from the\n")
		w("scheduler's start to the last issuance: **%.0f issued/s** (steady %.0f/s; target ≥ 20,000), %d Store calls of %.1f\n",
			p.IssuedPerSec, p.SteadyIssuedPerSec, p.StoreCalls, p.EntriesPerStoreCall())
		w("entries. `go tool pprof -top -cum`, regenerated by every run (librdkafka's own threads are C, outside Go's profile;\n")
		w("calls into it show as `runtime.cgocall`):\n\n```\n")
		for _, l := range rep.E2EProfileTop {
			w("%s\n", l)
		}
		w("```\n\n")
	}

	b.WriteString(cutoffMarkdown(rep))
	b.WriteString(sseMarkdown(rep))
	if len(rep.Memory) > 0 {
		w("## Memory per waiting entry\n\n")
		w("The Redis line's TestMemoryPerWaitingEntry (`internal/redisline`) on the bench's Redis: 1,000,000 users (IDs\n")
		w("of 12 bytes) admitted to one campaign's line, Redis's `used_memory` growth divided by the entries; then\n")
		w("Queue.Status of 10,000 random waiting users, one at a time. Target: ≤ 100 bytes per waiting entry.\n\n```\n")
		for _, l := range rep.Memory {
			w("%s\n", l)
		}
		w("```\n\n")
	}
	w("## Micro-benchmarks\n\n")
	w("Hot paths with allocations: message encode/decode (`dispatch/wire`), one issuer step on the in-memory\n")
	w("backends (`internal/issuing`), one admission script call on the test Redis at 50 concurrent callers\n")
	w("(`internal/redisline`), and the admission handler's own cost per request with a Service that answers at once,\n")
	w("beside the no-op handler the HTTP table compares with (`internal/httpapi`, BenchmarkAdmitHandler: allocations\n")
	w("per request are the handler's plus the request's own, the same for both):\n\n```\n")
	for _, l := range rep.Micro {
		w("%s\n", l)
	}
	w("```\n\n")
	w("## Reproduce\n\n```\nscripts/bench.sh                   # starts Redis, Kafka and Postgres, installs wrk if missing, runs examples/bench, rewrites this file\n")
	w("scripts/bench.sh -scheduler-only   # only the two scheduler sections, printed as markdown; rewrites nothing\n")
	w("scripts/bench.sh -shard-only       # only the sharded-line section, printed as markdown; rewrites nothing\n")
	w("scripts/bench.sh -cutoff-only      # only the cutoff section; rewrites it and its part of results.json, nothing else\n")
	w("scripts/bench.sh -sse-only         # only the waiting-room page and status-stream section; rewrites it and its part of results.json, nothing else\n")
	w("scripts/bench.sh -capacity-only    # only the capacity model (its calibration runs and checks); rewrites CAPACITY.md and its part of results.json\n```\n")
	return b.String()
}

func plots(rep Report, dir string) error {
	byScenario := map[string]plotter.XYs{}
	p50 := map[string]plotter.XYs{}
	p99 := map[string]plotter.XYs{}
	for _, r := range rep.HTTP {
		byScenario[r.Scenario] = append(byScenario[r.Scenario], plotter.XY{X: float64(r.Conns), Y: r.GoodRPS()})
		p50[r.Scenario] = append(p50[r.Scenario], plotter.XY{X: float64(r.Conns), Y: max(r.P50ms, 0.01)})
		p99[r.Scenario] = append(p99[r.Scenario], plotter.XY{X: float64(r.Conns), Y: max(r.P99ms, 0.01)})
	}
	tp := plot.New()
	tp.Title.Text = "Admission throughput vs concurrency"
	tp.X.Label.Text, tp.Y.Label.Text = "connections", "good answers/s (2xx, 409, 410)"
	tp.X.Scale, tp.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	var args []any
	for _, sc := range httpScenarios {
		args = append(args, sc, byScenario[sc])
	}
	if err := plotutil.AddLinePoints(tp, args...); err != nil {
		return err
	}
	tp.Legend.Top = true
	if err := tp.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "throughput.png")); err != nil {
		return err
	}
	lp := plot.New()
	lp.Title.Text = "Admission latency vs concurrency (solid p50, dashed p99)"
	lp.X.Label.Text, lp.Y.Label.Text = "connections", "ms (log)"
	lp.X.Scale, lp.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	lp.Y.Scale, lp.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	for i, sc := range []string{"v2", "v2-uncoalesced", "v1-user-lock", "v1-campaign-lock"} {
		for j, set := range []map[string]plotter.XYs{p50, p99} {
			l, err := plotter.NewLine(set[sc])
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(i)
			if j == 1 {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			} else {
				lp.Legend.Add(sc, l)
			}
			lp.Add(l)
		}
	}
	lp.Legend.Top = true
	return lp.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "latency.png"))
}

// promCheckMarkdown compares, for each V2 run, the admission rate wrk
// measured with the one a Prometheus scrape of couponq/metrics/prom shows.
// A run from before the check (a results.json without scrapes) renders
// nothing.
func promCheckMarkdown(rep Report) string {
	scraped := false
	for _, r := range rep.HTTP {
		scraped = scraped || r.ScrapedAdmissions > 0
	}
	if !scraped {
		return ""
	}
	var b strings.Builder
	b.WriteString("### Prometheus adapter against wrk\n\n")
	b.WriteString("Each V2 run gives the node `couponq/metrics/prom` as its Observer and serves it with promhttp on a listener of\n")
	b.WriteString("its own; the bench scrapes it over HTTP twice while wrk runs, a fifth of the duration after wrk starts and a\n")
	b.WriteString("fifth before it ends. *scraped/s* is the growth of `couponq_admissions_total` (all campaigns and outcomes)\n")
	b.WriteString("between the two over the time between them; *wrk req/s* is wrk's whole-run figure. Target: within 5%.\n")
	b.WriteString("*whole run* compares counts instead: the counter's growth from just before wrk starts to a second after it\n")
	b.WriteString("ends, less wrk's requests, is what wrk left in flight when it stopped counting (at most one per connection).\n\n")
	b.WriteString("| scenario | conns | wrk req/s | scraped/s during the run | scraped / wrk | whole run: scraped − wrk's requests |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.HTTP {
		if !strings.HasPrefix(r.Scenario, "v2") {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %s | %d |\n", r.Scenario, r.Conns, r.RPS, r.ScrapedRPS(), ratio(r.ScrapedRPS(), r.RPS), r.ScrapedWhole-r.Requests)
	}
	b.WriteString("\n")
	return b.String()
}
