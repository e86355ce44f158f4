package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// schedulerMarkdown renders the scheduler sections; "" if the run has none.
func schedulerMarkdown(rep Report) string {
	if len(rep.Idle) == 0 && len(rep.Busy) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if len(rep.Idle) > 0 {
		idleMarkdown(w, rep.Idle)
	}
	if len(rep.Busy) > 0 && len(rep.Busy[0].Campaigns) > 0 {
		busyMarkdown(w, rep.Busy)
	}
	return b.String()
}

func idleMarkdown(w func(string, ...any), idle []IdleResult) {
	win := idle[0].WindowSec
	w("## Scheduler: idle cost\n\n")
	w("These two sections alone: `scripts/bench.sh -scheduler-only` (prints them; `-idle-campaigns`, `-busy=false`,\n")
	w("`-busy-workers`, `-busy-dispatch count` and `-busy-catalog-ttl` narrow or vary them).\n\n")
	w("N campaigns exist and nobody is in line. Two worker processes, each with its own Redis client (here both\n")
	w("in the bench process), run the campaigns: the first starts alone and is measured over %.0f s after a 2.5 s\n", win)
	w("warm-up, then the second starts and, 2.5 s later, both are measured over another %.0f s. The campaigns are\n", win)
	w("in the Redis backend's registry (read through a catalog cache), with one `scheduler.Scheduler` per process\n")
	w("at the default timings (Agenda read every 1 s, leader lease of 10 s refreshed every 3.3 s; the standby tries\n")
	w("to obtain it every 3.3 s).\n\n")
	w("*sent/s* counts the commands a process's client sent (a go-redis hook; an EVALSHA is one; connection\n")
	w("handshakes left out). *executed/s* is what Redis counted, `INFO stats` `total_commands_processed` over the\n")
	w("window less the INFO calls: the leader's from the first window, the standby's the second's less the first's.\n")
	w("Redis also counts each command a Lua script runs: one lease refresh (EVALSHA of GET and PEXPIRE) is 3, one\n")
	w("failed obtain (SET NX, GETRANGE) 3. Goroutines and heap (`HeapAlloc` after GC) are what each process added.\n")
	w("The processes' timers run whole seconds from their start (the Agenda read every 1 s, the lease every 3.3 s)\n")
	w("and each window opens and closes half a second off them, so it holds whole Agenda periods.\n\n")
	w("| campaigns | leader sent/s | standby sent/s | leader executed/s | standby executed/s | Redis executed/s, both | goroutines leader / standby | heap KiB leader / standby |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range idle {
		w("| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %d / %d | %.0f / %.0f |\n", r.Campaigns,
			r.LeaderSentPerSec, r.StandbySentPerSec, r.ServerLeaderPerSec, r.ServerStandbyPerSec, r.ServerBothPerSec,
			r.LeaderGoroutines, r.StandbyGoroutines, r.LeaderHeapKiB, r.StandbyHeapKiB)
	}
	w("\n")
	most := maxCampaigns(idle)
	for _, r := range idle {
		if r.Campaigns == most {
			w("By command, per second, with both processes running, at %d campaigns: leader sent %s; standby sent %s;\n",
				r.Campaigns, byCommand(r.LeaderSent), byCommand(r.StandbySent))
			w("Redis executed %s.\n\n", byCommand(r.ServerCommands))
			break
		}
	}

	for _, r := range idle {
		if r.Campaigns == 10_000 {
			w("### Targets, idle\n\n")
			w("| measure | result | target |\n|---|---:|---|\n")
			w("| 10,000 idle campaigns, one process: commands sent/s, leader / standby | %.2f / %.2f | ≤ 2 |\n", r.LeaderSentPerSec, r.StandbySentPerSec)
			w("| 10,000 idle campaigns, one process: Redis executed/s (script commands included), leader / standby | %.2f / %.2f | ≤ 2 |\n\n", r.ServerLeaderPerSec, r.ServerStandbyPerSec)
			break
		}
	}
}

func maxCampaigns(idle []IdleResult) int {
	n := 0
	for _, r := range idle {
		n = max(n, r.Campaigns)
	}
	return n
}

// byCommand lists per-second rates by command, largest first.
func byCommand(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	names := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", strings.ToUpper(n), m[n])
	}
	return strings.Join(parts, ", ")
}

func busyMarkdown(w func(string, ...any), busy []BusyResult) {
	r0 := busy[0]
	w("## Scheduler: %d busy campaigns\n\n", len(r0.Campaigns))
	ivs, bmin, bmax, rmin, rmax := []string{}, r0.Campaigns[0].BatchSize, 0, r0.Campaigns[0].Configured, 0.0
	for _, c := range r0.Campaigns {
		if iv := fmt.Sprintf("%d ms", c.IntervalMs); !slices.Contains(ivs, iv) {
			ivs = append(ivs, iv)
		}
		bmin, bmax, rmin, rmax = min(bmin, c.BatchSize), max(bmax, c.BatchSize), min(rmin, c.Configured), max(rmax, c.Configured)
	}
	w("%d campaigns, each with its own BatchSize per Interval (Intervals %s; BatchSize %d to %d: rates\n", len(r0.Campaigns), strings.Join(ivs, ", "), bmin, bmax)
	w("from %.0f to %.0f entries/s, %.0f in all), each line filled beforehand with enough entries to stay\n", rmin, rmax, r0.ConfiguredPerSec)
	w("busy, driven at once by two worker processes (each its own Redis client), one `scheduler.Scheduler` each\n")
	w("(campaigns in the Redis backend's registry behind a catalog cache with a TTL of %d ms, default timings, %d\n", r0.CatalogTTLms, r0.Workers)
	w("workers). Batches go to ")
	if r0.Dispatcher == "kafka" {
		w("the Kafka producer (`kafkadispatch`, 8 partitions), counted per campaign as it takes them.")
	} else {
		w("a dispatcher that only counts them per campaign.")
	}
	w("\nAfter a 2 s warm-up, each campaign's rate over a %.0f s window is measured over whole ticks: the entries of\n", r0.WindowSec)
	w("every batch in the window but the first, over the time from the first batch to the last. *lateness* is the\n")
	w("mean gap between a campaign's batches less its Interval. A Scheduler schedules each tick one Interval after\n")
	w("the previous tick was *due* (but never sooner than 19/20 of an Interval after the previous tick began), so a\n")
	w("tick that starts a little late is made up at the next and lateness stays near zero. The two columns after it\n")
	w("time the leader's Catalog reads (each tick starts with one): the read itself, and the gap between two reads\n")
	w("less the Interval and the read, which the catch-up makes about minus the read.\n")
	w("*moves running* is the moves' summed duration over the window, the\n")
	w("average number under way (the Scheduler runs at most its workers at once). *executed/s* is Redis's count,\n")
	w("scripts' inner commands included.\n\n")
	w("| achieved / configured: min | median | max | within ±2%% | entries/s achieved / configured | leader sent/s | standby sent/s | Redis executed/s | moves/s | move p50 / p99 ms | moves running (avg) |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range busy {
		lo, med, hi, in := ratioStats(r.Campaigns)
		w("| %.4f | %.4f | %.4f | %d / %d | %.0f / %.0f | %.0f | %.1f | %.0f | %.0f | %.2f / %.2f | %.2f |\n",
			lo, med, hi, in, len(r.Campaigns), r.AchievedPerSec, r.ConfiguredPerSec,
			r.LeaderSentPerSec, r.StandbySentPerSec, r.ServerPerSec, float64(r.Moves)/r.WindowSec, r.MoveP50ms, r.MoveP99ms, r.BusyWorkerAvg)
	}
	w("\nBy Interval:\n\n")
	w("| Interval | campaigns | configured entries/s | achieved / configured: min | median | max | within ±2%% | lateness per tick, mean ms | of which Catalog read | of which start delay |\n")
	w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range busy {
		groups := map[int64][]BusyCampaign{}
		for _, c := range r.Campaigns {
			groups[c.IntervalMs] = append(groups[c.IntervalMs], c)
		}
		for _, iv := range slices.Sorted(maps.Keys(groups)) {
			g := groups[iv]
			lo, med, hi, in := ratioStats(g)
			var late, cat, delay, rmin, rmax float64
			rmin = g[0].Configured
			for _, c := range g {
				late += c.LatenessMs
				cat += c.CatalogMs
				delay += c.StartDelayMs
				rmin, rmax = min(rmin, c.Configured), max(rmax, c.Configured)
			}
			k := float64(len(g))
			w("| %d ms | %d | %.0f–%.0f | %.4f | %.4f | %.4f | %d / %d | %.2f | %.2f | %.2f |\n",
				iv, len(g), rmin, rmax, lo, med, hi, in, len(g), late/k, cat/k, delay/k)
		}
	}
	w("\n")
	for _, r := range busy {
		lo, _, hi, in := ratioStats(r.Campaigns)
		w("Target: %d busy campaigns each within ±2%% of its configured rate — %d of %d are (ratios %.4f to %.4f).\n\n",
			len(r.Campaigns), in, len(r.Campaigns), lo, hi)
	}
}
