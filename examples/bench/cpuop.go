package main

// The CPU per operation table: each process's CPU time over a run divided
// by what the run did (requests, issued units, stream-seconds).

import (
	"fmt"
	"slices"
	"strings"
)

// cpuScenarios are the HTTP scenarios the CPU table shows, in its order.
var cpuScenarios = []string{"noop", "v2", "v2-uncoalesced", "v1-user-lock"}

// us formats µs; "—" for not measured (negative).
func us(v float64) string {
	if v < 0 {
		return "—"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// cpuNoopRatio is r's serving CPU per request (server, Redis, Kafka) over
// the no-op's at the same connections; 0 if there is none.
func cpuNoopRatio(rep Report, r HTTPResult) float64 {
	noop, ok := find(rep, "noop", r.Conns)
	if !ok || !noop.HasCPU() || noop.TotalMicros() == 0 {
		return 0
	}
	return r.TotalMicros() / noop.TotalMicros()
}

// cpuMarkdown renders the CPU per operation subsection of the HTTP
// section; "" for a run from before it.
func cpuMarkdown(rep Report) string {
	var rows []HTTPResult
	for _, sc := range cpuScenarios {
		for _, r := range rep.HTTP {
			if r.Scenario == sc && r.HasCPU() {
				rows = append(rows, r)
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### CPU per operation\n\n")
	w("Each HTTP run above also measured, over wrk's run, every process's CPU time (user + system), divided by wrk's\n")
	w("requests: *server* is the bench process's (`getrusage`), which serves the handler; *Redis* is `INFO cpu`\n")
	w("`used_cpu_user + used_cpu_sys`; *Kafka* the broker's (`/proc`), for V1, which publishes every admission (V2 publishes\n")
	w("nothing, and the broker's idle CPU is left out of its rows);\n")
	w("*total* their sum, the serving side's cost; *× no-op* that total over the no-op's at the same connections.\n")
	w("*wrk* is the load generator's own, on this box too but no part of the cost. *per script* is requests per Redis\n")
	w("script call (EVALSHA/EVAL, `INFO commandstats`): the coalesced batch. *box busy* is the four processes' CPU\n")
	idleMax, idleRate, redisIdle, redisCmds := 0.0, 0.0, 0.0, 0.0
	for _, r := range rows {
		if r.ServerMicros() > 0 {
			idleMax = max(idleMax, r.IdleMicros()/r.ServerMicros())
		}
		idleRate = max(idleRate, r.IdleCPUPerSec)
		redisIdle, redisCmds = max(redisIdle, r.IdleRedisCPUPerSec), max(redisCmds, r.IdleRedisCmdsPerSec)
	}
	w("over the run's wall time and the box's %d cores. The bench process hosts nothing else busy during a run (the\n", rep.Machine.Cores)
	w("node's Kafka producer and the Prometheus listener idle): over half a second before each run, the server up and\n")
	w("no load, it used at most %.1f ms of CPU a second, at most %.2f%% of any row's server figure (left in); Redis,\n", idleRate*1e3, 100*idleMax)
	w("over the same half second, at most %.1f ms a second (%.0f commands/s from other clients, which would count in\n", redisIdle*1e3, redisCmds)
	w("its figures). *rest* is the whole box's busy CPU (/proc/stat) over the run less the four processes' (the kernel's\n")
	w("work outside their accounts, anything else running); each run first waited for the box to settle below %.0f%% busy,\n", 100*quietShare)
	w("on a Redis holding no earlier run's keys.\n\n")
	w("| scenario | conns | req/s | server µs/req | Redis µs/req | Kafka µs/req | total µs/req | × no-op | wrk µs/req | per script | box busy | rest |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		x := "—"
		if q := cpuNoopRatio(rep, r); q > 0 && r.Scenario != "noop" {
			x = fmt.Sprintf("%.2f", q)
		}
		ps := "—"
		if r.RedisScripts > 0 && strings.HasPrefix(r.Scenario, "v2") {
			ps = fmt.Sprintf("%.1f", r.AdmissionsPerScript())
		}
		rest := "—"
		if s := r.RestShare(rep.Machine.Cores); s >= 0 {
			rest = fmt.Sprintf("%.0f%%", 100*s)
		}
		w("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s |\n", r.Scenario, r.Conns, r.RPS, us(r.ServerMicros()), us(r.RedisMicros()),
			us(r.KafkaMicros()), us(r.TotalMicros()), x, us(r.LoadMicros()), ps, 100*r.BoxBusy(rep.Machine.Cores), rest)
	}
	w("\n")
	others := otherOpsMarkdown(rep)
	if others != "" {
		b.WriteString(others)
	}
	return b.String()
}

// otherOpsMarkdown renders the costs of the operations besides admission:
// a status poll, a drained unit, an open status stream per second.
func otherOpsMarkdown(rep Report) string {
	sp := rep.StatusPoll
	var e2e []E2EResult
	for _, e := range rep.E2E {
		if e.HasCPU() {
			e2e = append(e2e, e)
		}
	}
	sse := rep.SSE
	if (sp == nil || !sp.HasCPU()) && len(e2e) == 0 && (sse == nil || !sse.HasCPU()) {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("The other operations, in the same units (µs of CPU per operation; the *api / worker* column is the bench\n")
	w("process, which is the API process for a poll and a stream and the worker process for a drained unit):\n\n")
	w("- *status poll*: wrk drives `GET /campaigns/{id}/entries/me` at %d connections through the V2 node's handler,\n", pollConns(sp))
	w("  each request for another of %d users admitted first, all waiting (nothing drains); per poll.\n", statusPollUsers)
	w("- *drained unit*: each end-to-end run below (Redis line → scheduler → Kafka → issuer → Store, outcomes recorded in\n")
	w("  Redis), from the scheduler's start to the last issuance, per unit issued; *Postgres* is the postmaster and its\n")
	w("  backends (`/proc`).\n")
	w("- *open status stream, per second*: the waiting-room section's hold less its baseline (the pipeline alone), per\n")
	w("  stream open (the average of the open streams at the hold's start and end) per second; *Redis commands* are\n")
	w("  those the stream handler's client sent.\n\n")
	w("| operation | rate | api / worker µs | Redis µs | Kafka µs | Postgres µs | total µs | Redis commands | Store calls |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	if sp != nil && sp.HasCPU() {
		cmds := float64(sp.RedisCommands) / float64(max(sp.Requests, 1))
		w("| status poll (%d conns, p50 %.2f ms, p99 %.2f ms) | %.0f polls/s | %s | %s | — | — | %s | %.2f | — |\n",
			sp.Conns, sp.P50ms, sp.P99ms, sp.RPS, us(sp.ServerMicros()), us(sp.RedisMicros()), us(sp.ServerMicros()+sp.RedisMicros()), cmds)
	}
	for _, e := range e2e {
		tot := e.WorkerMicros() + e.RedisMicros() + max(e.KafkaMicros(), 0)
		pg := "—"
		if strings.HasPrefix(e.Store(), "postgres") {
			pg = us(e.PostgresMicros())
			tot += max(e.PostgresMicros(), 0)
		}
		w("| drained unit: %s | %.0f units/s | %s | %s | %s | %s | %s | — | %.4f |\n", e.Variant, e.IssuedPerSec,
			us(e.WorkerMicros()), us(e.RedisMicros()), us(e.KafkaMicros()), pg, us(tot), e.StoreCallsPerUnit())
	}
	if sse != nil && sse.HasCPU() {
		w("| open status stream, per second (%d open, %d drained/s) | %.0f stream-s/s | %s | %s | — | — | %s | %.4f | — |\n",
			sse.Streams, int64(sse.BatchSize)*1000/max(sse.IntervalMs, 1), sse.StreamSeconds()/sse.HoldSec,
			us(sse.ServerMicrosPerStreamSecond()), us(sse.RedisMicrosPerStreamSecond()),
			us(sse.ServerMicrosPerStreamSecond()+sse.RedisMicrosPerStreamSecond()), sse.CommandsPerStreamSecond())
	}
	w("\n")
	if sse != nil && sse.HasCPU() {
		w("A stream's cost is mostly its events: over the hold the server sent %.2f events a stream a second (the line's\n", sse.EventsPerSec/max(float64(sse.OpenAtHoldStart+sse.OpenAtHoldEnd)/2, 1))
		w("head moved every poll); its Redis commands follow the drain rate and the number of campaigns, not the streams\n")
		w("(one `LineStats` per campaign per poll, one Status read per user who left the line), so per stream they shrink as\n")
		w("the crowd grows. The client process (the 'browsers') used %s µs a stream-second.\n\n", us(sse.ClientMicrosPerStreamSecond()))
	}
	return b.String()
}

// pollConns is the status poll's connections, 0 if none ran.
func pollConns(sp *HTTPResult) int {
	if sp == nil {
		return 0
	}
	return sp.Conns
}

// Store names the variant's Store, from its name.
func (r E2EResult) Store() string {
	name, _, _ := strings.Cut(r.Variant, ",")
	return name
}

// cpuTargetRows renders the CPU and capacity rows of the ratios table,
// and returns the targets they missed.
func cpuTargetRows(rep Report) (rows string, missed []string) {
	var b strings.Builder
	v2, ok2 := find(rep, "v2", 1000)
	v2u, _ := find(rep, "v2-uncoalesced", 1000)
	noop, okN := find(rep, "noop", 1000)
	if ok2 && okN && v2.HasCPU() && noop.HasCPU() {
		q, qu := cpuNoopRatio(rep, v2), cpuNoopRatio(rep, v2u)
		fmt.Fprintf(&b, "| V2 admission CPU (api + Redis) / no-op CPU, per request (%s / %s µs) | %.2f | %.2f | ≤ 1.35 |\n",
			us(v2.TotalMicros()), us(noop.TotalMicros()), q, qu)
		if q > 1.35 {
			why := fmt.Sprintf("V2 admission CPU per request is %.2f× the no-op's against ≤ 1.35 (%s µs: server %s, Redis %s; no-op %s): "+
				"1.35× leaves %s µs for everything an admission does beyond the no-op",
				q, us(v2.TotalMicros()), us(v2.ServerMicros()), us(v2.RedisMicros()), us(noop.TotalMicros()), us(0.35*noop.TotalMicros()))
			if g := profileGapText(rep.Profiles); g != "" {
				why += "; " + g
			}
			missed = append(missed, why)
		}
	}
	if c := rep.Capacity; c != nil && len(c.Checks) > 0 {
		worst := slices.MaxFunc(c.Checks, func(a, b CapacityCheck) int {
			return cmpAbs(a.ErrPct(), b.ErrPct())
		})
		fmt.Fprintf(&b, "| capacity model (CAPACITY.md): predicted / measured throughput, worst of %d configurations (%s) | %.2f | | 1 ± 0.20 |\n",
			len(c.Checks), worst.Name, worst.PredictedRPS/worst.MeasuredRPS)
		for _, ch := range c.Checks {
			if e := ch.ErrPct(); e > 20 || e < -20 {
				missed = append(missed, fmt.Sprintf("the capacity model's throughput for %s is off by %+.0f%% against ±20%% (predicted %.0f, measured %.0f req/s; CAPACITY.md says why)",
					ch.Name, e, ch.PredictedRPS, ch.MeasuredRPS))
			}
		}
	}
	return b.String(), missed
}

func cmpAbs(a, b float64) int {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
