package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// report is RELIABILITY.md: written here, from what this run measured, and
// never by hand.
type report struct {
	opts              options
	started, finished time.Time
	durability        []durResult
	failover          *foReport // failover.go
	hostile           *hostileResult
	fleet             *fleetResult
	check             *check.Report
}

type fleetResult struct {
	run                      string
	start, admitEnd, drained time.Time
	undecided                int
	campaigns                []check.Campaign
	faults                   []check.Fault
	clients                  []check.Client
	presses                  []check.Press
	samples                  []check.Sample
	overIssueLogs, leaders   int
	polls                    int64
	injectErr                error
}

func (r *report) write(file string) error {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	o := r.opts
	p("# Reliability")
	p("")
	p("Written by `examples/redis-kafka/faultrun` (run by `%s`) on %s; do not edit by hand, run it again.",
		o.command, r.started.UTC().Format("2006-01-02 15:04 MST"))
	p("The run took %s.", r.finished.Sub(r.started).Round(time.Second))
	p("")
	if f := r.fleet; f != nil {
		r.verdict(p)
		p("")
		p("## Setup")
		p("")
		p("- Machine: %s", machine())
		p("- Processes: 2 `api` (nodes with the API role: the public and admin HTTP handlers; Redis and Kafka directly, the Kafka producer idle since every campaign is V2), 2 `worker` (nodes with the worker role: scheduler, one leader by lease, TTL 3s, released when a worker stops, at most %d batches of a campaign in flight; issuer, Kafka consumer group, static members `-instance-id worker-N`, cooperative-sticky assignment, %s session, 500 ms heartbeats, reconnect back-off capped at 1 s; both reach Redis and Kafka **through toxiproxy**), all separate OS processes started from `examples/redis-kafka`. On SIGTERM an api fails `/readyz` for %s (`-drain-delay`), then stops accepting connections and finishes the requests in progress.", o.maxInFlight, sessionTimeout, drainDelay)
		p("- Redis: %s, its own server for this run, `appendonly %s`%s.", version("redis-server", "--version"), yesNo(o.fsync != fsyncOff), fsyncNote(o.fsync))
		p("- Kafka: 3 brokers (KRaft, `scripts/kafka.sh start 3`), topic `%s` auto-created with 4 partitions, replication factor 3, `min.insync.replicas=2`; the producer is idempotent with `acks=all`.", f.run)
		p("- Store of record: PostgreSQL (%s, `scripts/postgres.sh`), `pgstore`, a schema of this run's own.", version("psql", "--version"))
		p("- Network faults: toxiproxy %s between the workers and Redis, and between the workers and each broker (each broker advertises its proxy's port on an EXTERNAL listener, so every Kafka connection of a worker goes through it).", os.Getenv("COUPONQ_TOXIPROXY_VERSION"))
		p("- Crowd: %d distinct users (%.0f%% press twice, the second time at the other api), first presses spread evenly over %s, at most %d in flight; a press goes to its api unless that api's `/readyz` (polled every %s, as a load balancer's health check) did not answer 200 at the last look, else to the other; a press that gets no answer or a 5xx is tried again at the other api (up to 9 tries, backoff to 2 s). Every accepted user polls their status until it is an outcome.", o.users, o.repeat*100, o.arrival, o.conc, healthEvery)
		p("- Campaigns (created at runtime through api-1's admin API):")
		p("")
		p("| campaign | stock | batch size | interval | per-user limit | sub-lines (`Shards`) |")
		p("|---|--:|--:|--:|--:|--:|")
		var stock int64
		for _, c := range f.campaigns {
			stock += c.Stock
			p("| `%s` | %d | %d | %s | %d | %d |", c.ID, c.Stock, c.BatchSize, c.Interval, c.PerUserLimit, max(c.Shards, 1))
		}
		p("| all | %d | | | | |", stock)
		p("")
		p("## Faults")
		p("")
		p("Times are from the first press. Each fault was undone (the process restarted, resumed, the proxy healed) after the time in *lasted*; recovery times are in the checker's table below. A killed process is started again %s after the kill, as a supervisor would; which worker leads is read from the workers' logs at the time. The rolling deploy stops each api and worker in turn with SIGTERM and starts it again at once, the next %s after the previous is back and ready (an api when the crowd's router sees its `/readyz` answer 200, a worker when its consumer has its partitions). Faults follow each other 12–28 s apart; a fault's recovery window ends where the next fault begins.", "2 s", deployPause)
		p("")
		p("| # | at | fault | target | lasted | how |")
		p("|--:|--:|---|---|--:|---|")
		for i, ft := range f.faults {
			p("| %d | %.1f s | %s | %s | %.1f s | %s |", i+1, ft.Start.Sub(f.start).Seconds(), ft.Kind, ft.Target, ft.End.Sub(ft.Start).Seconds(), ft.Note)
		}
		if f.injectErr != nil {
			p("")
			p("**Fault injection stopped early:** %v", f.injectErr)
		}
		p("")
		p("Scheduler leadership changed hands %d times over the run (\"scheduler leads\" lines in the worker logs).", f.leaders)
		p("")
		p("## Crowd")
		p("")
		r.crowd(p)
		p("")
		p("## Invariants (the checker)")
		p("")
		p("`faultrun/check` reads the Store with SQL, the topic with a plain Kafka consumer, and the crowd's records; it does not use couponq's code.")
		p("")
		if err := r.check.WriteMarkdown(&b); err != nil {
			return err
		}
		p("")
		p("Over-issue reports in the worker logs (the issuer's `OnOverIssue` hook): %d.", f.overIssueLogs)
		p("")
	}
	if r.hostile != nil {
		r.hostileSection(p)
	}
	if len(r.durability) > 0 {
		r.durabilitySection(p)
	}
	if r.failover != nil {
		r.failoverSection(p)
	}
	if o.fuzzLog != "" {
		r.fuzzSection(p)
	}
	p("## Reproduce")
	p("")
	p("```")
	p("%s", o.command)
	p("```")
	p("")
	p("It starts (or reuses) Redis, the 3-broker Kafka, PostgreSQL and toxiproxy with the scripts in `scripts/`, builds the programs, fuzzes every target, runs this tool, and rewrites this file. Logs, the Redis data and the records (`clients.jsonl`, `presses.jsonl`, `samples.jsonl`, `faults.jsonl`) stay in the run's directory (`%s`).", o.dir)
	return os.WriteFile(file, b.Bytes(), 0o644)
}

func (r *report) verdict(p func(string, ...any)) {
	f := r.fleet
	accepted := 0
	for _, c := range f.clients {
		if c.Accepted {
			accepted++
		}
	}
	state := "**all invariants held**"
	if !r.check.OK() {
		state = "**invariants violated** (see below)"
	}
	p("**Result:** %d users, %d accepted, %d faults injected: %s.", len(f.clients), accepted, len(f.faults), state)
	var over, dup, lost, inverted, issued int64
	var stock int64
	for _, c := range r.check.Campaigns {
		over += max(c.Rows-c.Stock, 0)
		dup += int64(c.OverLimitUsers)
		lost += int64(c.Lost)
		inverted += int64(c.Inversions)
		issued += c.Rows
		stock += c.Stock
	}
	p("")
	p("| over-issue | duplicates (users over their per-user limit) | lost (accepted, no outcome) | inversions (told sold out, a later user holds a unit) | issued / stock | violations |")
	p("|--:|--:|--:|--:|--:|--:|")
	p("| %d | %d | %d | %d | %d / %d | %d |", over, dup, lost, inverted, issued, stock, len(r.check.Violations))
}

func (r *report) crowd(p func(string, ...any)) {
	f := r.fleet
	outcomes := map[string]int{}
	door := map[string]int{}
	accepted, twice := 0, 0
	for _, c := range f.clients {
		if c.Presses > 1 {
			twice++
		}
		if c.Accepted {
			accepted++
			outcomes[c.Final]++
		} else {
			door[c.Door]++
		}
	}
	presses := map[string]int{}
	for _, pr := range f.presses {
		presses[pr.Outcome]++
	}
	p("- %d users, %d of them pressed twice; %d presses in all (%s).", len(f.clients), twice, len(f.presses), kv(presses))
	p("- %d users were accepted (a 202, or their ticket on a later press); %d were not (%s).", accepted, len(f.clients)-accepted, kv(door))
	p("- Outcomes the accepted users read from their status: %s.", kv(outcomes))
	p("- Last press answered %.1f s after the first; every accepted user had an outcome %.1f s after that (%d still without one when the drain ended); %d status polls.",
		f.admitEnd.Sub(f.start).Seconds(), f.drained.Sub(f.admitEnd).Seconds(), f.undecided, f.polls)
	decided := 0
	for _, s := range f.samples {
		if !s.DecidedAt.IsZero() {
			decided++
		}
	}
	p("- The watcher followed %d dispatched entries (one user in %d), %d of them to an outcome.", len(f.samples), r.opts.sampleEvery, decided)
}

func (r *report) durabilitySection(p func(string, ...any)) {
	p("## Redis durability: what a kill -9 loses")
	p("")
	p("The line lives in Redis, and the api answers 202 after one script call. For each mode below: a Redis of its own, one `api` process, no workers (every accepted entry should still be waiting afterwards). First 10,000 users as fast as 64 in flight allow (admission's pace under the mode); then users pressing at %d a second, Redis `kill -9` after %s and started again from its files %s later (presses that get no answer are tried again, as above); then every accepted user asks for their status once.", r.durability[0].Paced, r.durability[0].KillAfter, r.durability[0].Down)
	p("")
	p("| mode | admissions/s (64 in flight) | accepted (paced) | lost after restart | of them in the last second | oldest lost, before the kill | entry numbers given twice | statuses after restart |")
	p("|---|--:|--:|--:|--:|--:|--:|---|")
	for _, d := range r.durability {
		p("| %s | %.0f | %d | %d | %d | %s | %d | %s |", modeName(d.Mode), d.AdmitRate, d.Accepted, d.Lost, d.LostLastSecond,
			d.OldestLost.Round(time.Millisecond), d.Reused, kv(d.States))
	}
	p("")
	everysecLost := 0
	for _, d := range r.durability {
		if d.Mode == fsyncEverysec {
			everysecLost = d.Lost
		}
	}
	p("`kill -9` ends the Redis process, not the machine: what Redis had written to its append-only file is in the operating system's page cache and survives, so with `appendfsync always` a process crash loses nothing. With `everysec`, Redis also writes the file before it answers, except while its once-a-second fsync is still running on a slow disk: then it may postpone the write by up to 2 s and answer anyway, so a kill in that window loses those answers (%s). Beyond that, the two differ in a crash of the machine (power, kernel): then `everysec` can lose the last second or so of writes and `always` nothing, at the admission cost in the first column. This run cannot crash the machine, so that figure is not measured here. Without AOF, Redis restarts from its last RDB snapshot: everything since is gone — in this run the campaign itself, created seconds before.",
		map[bool]string{true: fmt.Sprintf("this run lost %d", everysecLost), false: "this run lost none"}[everysecLost > 0])
	p("")
	p("A lost entry is detectable, never silent: its user's status answers 404 `not_found` (or `unknown_campaign`, when the campaign was lost with it) instead of a place in line — the *statuses after restart* column counts exactly those answers. Had an older snapshot held the campaign, the entry numbers handed out after the restart would repeat ones already promised; the *given twice* column counts such numbers. What was already issued is not at stake: issuances live in the Store, not in Redis. See the README's \"Durability\" section for the trade-off.")
	p("")
}

func (r *report) hostileSection(p func(string, ...any)) {
	h := r.hostile
	p("## Hostile clients")
	p("")
	p("One `api` process (a Redis of its own, the 3-broker Kafka of `scripts/kafka.sh`, no worker: admitted users wait), started with the admin token by the deprecated `-admin-token` flag, `-admin-session-ttl %s` and `-trusted-proxies 127.0.0.2`, attacked from loopback as a hostile or broken client would. Verdict: **%s**.", hostileSessionTTL, map[bool]string{true: "every bound held", false: "a bound was broken"}[h.ok()])
	p("")
	p("### Unknown campaign IDs cost nothing")
	p("")
	p("%s `GET /campaigns/<id>/entries/me`, each for a distinct made-up campaign ID (about 40 bytes), one user, 16 at once on kept-alive connections, after 5,000 of the same to warm up; and %d status streams (`.../entries/me/events`) for made-up IDs. The heap is the api's live heap as its last garbage collection found it (`/debug/vars` \"heap\", runtime/metrics `/gc/heap/live:bytes`).", thousands(h.Flood), h.UnknownStreams)
	p("")
	p("| figure | before | after | bound |")
	p("|---|--:|--:|---|")
	p("| live heap | %.1f MB | %.1f MB (%+.1f MB, %+.0f bytes an ID) | growth ≤ %d MB |", mib(h.HeapBefore), mib(h.HeapAfter), mib(h.HeapAfter)-mib(h.HeapBefore), (float64(h.HeapAfter)-float64(h.HeapBefore))/float64(max(h.Flood, 1)), maxHeapGrowth>>20)
	p("| resident set | %.1f MB | %.1f MB | |", mib(h.RSSBefore), mib(h.RSSAfter))
	p("| Redis keys | %d | %d | none written |", h.KeysBefore, h.KeysAfter)
	p("| garbage collections during the flood | | %d | at least one (else the heap figure says nothing) |", h.GCs)
	p("| status streams opened for made-up IDs | | %d of %d | none |", h.StreamsOpened, h.UnknownStreams)
	p("")
	p("The flood took %s (%.0f requests a second); its answers: %s.", h.FloodTook.Round(time.Millisecond), float64(h.Flood)/h.FloodTook.Seconds(), statusCounts(h.FloodStatuses))
	p("")
	p("### Connections, streams, credentials, campaign values")
	p("")
	p("| area | tried | bound | measured | held |")
	p("|---|---|---|---|---|")
	for _, pr := range h.Probes {
		p("| %s | %s | %s | %s | %s |", pr.Area, pr.Tried, pr.Bound, pr.Measured, map[bool]string{true: "yes", false: "**no**"}[pr.OK])
	}
	p("")
	p("A connection counts as closed by its limit if it was closed within %s after it. Only this phase: `FUZZTIME=0 scripts/reliability.sh -durability '' -failover=false -skip-fleet -out /tmp/hostile.md`.", slack)
	p("")
}

func statusCounts(m map[int]int) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s × %d", thousands(m[c]), c))
	}
	return strings.Join(parts, ", ")
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func modeName(m string) string {
	switch m {
	case fsyncAlways:
		return "AOF, `appendfsync always`"
	case fsyncEverysec:
		return "AOF, `appendfsync everysec`"
	case fsyncOff:
		return "no AOF (RDB at the default save points)"
	}
	return m
}

func fsyncNote(mode string) string {
	if mode == fsyncOff {
		return " (RDB snapshots at the default save points only)"
	}
	return ", `appendfsync " + mode + "`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r *report) fuzzSection(p func(string, ...any)) {
	p("## Fuzzing")
	p("")
	b, err := os.ReadFile(r.opts.fuzzLog)
	if err != nil {
		p("The fuzz log %s could not be read: %v", r.opts.fuzzLog, err)
		p("")
		return
	}
	p("`scripts/fuzz.sh` ran each target (results as it printed them):")
	p("")
	p("```")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			p("%s", line)
		}
	}
	p("```")
	p("")
}

func kv(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func version(cmd string, args ...string) string {
	out, err := exec.Command(cmd, args...).Output()
	if err != nil {
		return cmd + " (version unknown)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores%s, %s/%s, %s", runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
