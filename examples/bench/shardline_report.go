package main

import (
	"fmt"
	"strconv"
	"strings"
)

// shardHeading starts the section shardMarkdown renders.
const shardHeading = "## One hot campaign over sub-lines (Redis Cluster)\n"

// shardMarkdown renders the sharded-line section; "" if the run has none.
func shardMarkdown(rep Report) string {
	r := rep.Shard
	if r == nil || len(r.Runs) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var base float64
	for _, run := range r.Runs {
		if run.SubLines == 1 {
			base = run.AdmitPerSec
		}
	}
	w(shardHeading + "\n")
	w("| sub-lines | campaign | admissions/s | × (vs 1) | Redis CPU µs/admission (per master) | commands per master, %% (users, %%) | admissions per script call | position error p50 / p99 | displacement p50 / p99 / max | late winners | issued / stock | drain s (Redis CPU µs/unit) |\n")
	w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		per := make([]string, len(run.MasterCPUSec))
		for i, c := range run.MasterCPUSec {
			per[i] = fmt.Sprintf("%.1f", c*1e6/float64(max(run.Admitted, 1)))
		}
		users := make([]int64, len(run.MasterAdmissions))
		for i, n := range run.MasterAdmissions {
			users[i] = int64(n)
		}
		w("| %d | %s | %.0f | %s | %.1f (%s) | %s (%s) | %.1f | %.2f%% / %.2f%% | %d / %d / %d | %d | %d / %d | %.1f (%.1f) |\n",
			run.SubLines, run.Campaign, run.AdmitPerSec, ratio(run.AdmitPerSec, base), run.CPUMicrosPerAdmission(), strings.Join(per, " / "),
			shares(run.MasterCommands), shares(users), run.AdmissionsPerScript(), 100*run.PositionErrP50, 100*run.PositionErrP99,
			run.DisplacementP50, run.DisplacementP99, run.DisplacementMax, run.LateWinners, run.Issued, r.Stock, run.DrainSec, run.DrainCPUMicrosPerUnit())
	}
	w("\n")
	for _, run := range r.Runs {
		if busy := run.busy(); busy != "" {
			w("**Other clients were using the Cluster during the %d-sub-line run** (before it, %s): its figures include their load.\n\n", run.SubLines, busy)
		}
	}
	w("One campaign (stock %d, %d entries every %d ms), its line on the %d-master Redis Cluster (the Redis backend's line,\n",
		r.Stock, r.BatchSize, r.IntervalMs, len(r.Masters))
	w("coalescing on) behind the sub-line wrapper a node puts in front of it (`shard.Queue`): 1 sub-line is one line\n")
	w("(Shards 0), N > 1 is Shards N. %d goroutines admit %d distinct users through `Service.Admit`; a user's rank\n", r.Conc, r.Users)
	w("is the order its answer came back in. Over the admission phase, per master\n")
	w("(in slot order: %s): *Redis CPU* is `used_cpu_user + used_cpu_sys` per admission, *commands* the share of\n", strings.Join(r.Masters, ", "))
	w("`total_commands_processed` (which counts the commands inside scripts, so it leans towards a master whose script calls\n")
	w("carried smaller batches), *users* the share of users whose sub-line it holds, and *admissions per script call* the\n")
	w("mean coalesced batch. *Position error* is |Status position − true place| / true place for %d users spread evenly\n", shardRunSamples(r))
	w("over rank, all still waiting (an estimate's error grows towards the head of the line, so the p99 comes from the\n")
	w("users nearest it). Then the line drains in process: a scheduler of its own → in-memory transport → issuer (batch\n")
	w("path) → in-memory Store, with `shard.Queue`'s Lag of %d ms; *drain s* runs from the scheduler's first move to the\n", r.LagMs)
	w("last unit, with the masters' CPU per unit in brackets (a sharded Lease asks every sub-line for its share of the\n")
	w("batch and half again, and gives\n")
	w("back what the merge did not take). *Displacement* is |issue order − rank| over the %d users issued, *late winners* those issued with rank ≥ %d\n", r.Stock, r.Stock)
	w("(someone admitted before them got nothing). 1 sub-line is the baseline: its displacement is the noise of ranking by\n")
	w("answer time with %d requests in flight; the max and the late winners include the slowest answers, admissions that\n", r.Conc)
	w("went into line in turn but whose answers came back late (a GC pause, a goroutine not run).\n\n")
	w("This box has %d cores, shared by the %d masters and the load generator, so admissions/s cannot show the scaling a\n", r.Cores, len(r.Masters))
	w("Cluster on several cores or hosts would; the shares of commands and CPU per master show where the work goes.\n")
	w("Each campaign ID is the first of hot-1, hot-2, … whose lines' hash slots (CRC16 of the `{<id>@@k}` tag of the Redis\n")
	w("keys, checked with `CLUSTER KEYSLOT`) put ⌊N/%d⌋ or ⌈N/%d⌉ sub-lines on each master: %s.\n\n", len(r.Masters), len(r.Masters), shardPicks(r))
	w("This section alone: `scripts/bench.sh -shard-only` (prints it; `-shard-lines`, `-shard-users`, `-shard-stock` and\n")
	w("`-shard-conc` vary it).\n\n")
	return b.String()
}

// shares renders each part's percentage of the sum, as 34/33/33.
func shares(ns []int64) string {
	var sum int64
	for _, n := range ns {
		sum += n
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		if sum > 0 {
			parts[i] = strconv.FormatFloat(100*float64(n)/float64(sum), 'f', 0, 64)
		} else {
			parts[i] = "0"
		}
	}
	return strings.Join(parts, "/")
}

func shardRunSamples(r *ShardResult) int {
	for _, run := range r.Runs {
		if run.PositionSamples > 0 {
			return run.PositionSamples
		}
	}
	return shardSamples
}

// shardPicks tells, per run, the ID picked, its slots and the sub-lines per
// master.
func shardPicks(r *ShardResult) string {
	var parts []string
	for _, run := range r.Runs {
		slots := make([]string, len(run.Slots))
		for i, s := range run.Slots {
			slots[i] = strconv.Itoa(s)
		}
		per := make([]string, len(run.PerMaster))
		for i, n := range run.PerMaster {
			per[i] = strconv.Itoa(n)
		}
		parts = append(parts, fmt.Sprintf("%d: %s after %d tried, slots %s, %s per master",
			run.SubLines, run.Campaign, run.IDTries, strings.Join(slots, ", "), strings.Join(per, "/")))
	}
	return strings.Join(parts, "; ")
}

// shardLine is one run in a progress line.
func shardLine(r ShardRun) string {
	return fmt.Sprintf("%s: %.0f admissions/s, Redis CPU %.1f µs/admission, commands %s, position error p50 %.2f%% p99 %.2f%%, displacement p50 %d p99 %d max %d, late winners %d, issued %d, drain %.1f s, all decided %.1f s",
		r.Campaign, r.AdmitPerSec, r.CPUMicrosPerAdmission(), shares(r.MasterCommands), 100*r.PositionErrP50, 100*r.PositionErrP99,
		r.DisplacementP50, r.DisplacementP99, r.DisplacementMax, r.LateWinners, r.Issued, r.DrainSec, r.SettleSec)
}
