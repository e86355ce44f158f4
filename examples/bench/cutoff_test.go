package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/internal/testenv"
)

// The cutoff section runs, small, on the servers scripts/test.sh starts:
// both modes, every run sold out with every entry decided, and no exact run
// told anyone sold out ahead of a later entry that got a unit.
func TestCutoffSection(t *testing.T) {
	o := options{
		redis:   testenv.Need(t, "COUPONQ_REDIS_ADDR", "scripts/redis.sh"),
		brokers: testenv.Need(t, "COUPONQ_KAFKA_BROKERS", "scripts/kafka.sh"),
	}
	ctx := t.Context()
	b, err := newBackends(ctx, o)
	require.NoError(t, err)
	defer b.close()
	p := cutoffParams{Reps: 2, Interval: 50 * time.Millisecond, HeldShare: 0.05,
		Scenarios: []CutoffScenario{{Users: 300, Stock: 105, BatchSize: 10}, {Users: 200, Stock: 53, BatchSize: 10}}}
	res, err := b.runCutoffSection(ctx, p)
	require.NoError(t, err)

	require.Len(t, res.Scenarios, 2)
	for _, sc := range res.Scenarios {
		assert.Equal(t, int(float64(sc.Users)*0.05+0.5), sc.Held)
		require.Len(t, sc.Runs, 2*p.Reps)
		modes := map[string]int{}
		for i, r := range sc.Runs {
			modes[r.Mode]++
			assert.Equal(t, sc.Stock, r.StoreIssued, "run %d", i)
			assert.Equal(t, sc.Users, r.LineIssued+r.Duplicates+r.StoreSoldOut+r.BulkSold, "run %d: users without an outcome", i)
			assert.Equal(t, int(sc.Stock)-sc.Held, r.LineIssued, "run %d", i)
			assert.Equal(t, r.Handed, r.LineIssued+r.Duplicates+r.StoreSoldOut, "run %d: handed downstream, not decided once", i)
			assert.Positive(t, r.TailSec, "run %d", i)
			assert.GreaterOrEqual(t, r.TotalSec, r.TailSec, "run %d", i)
			assert.GreaterOrEqual(t, r.TailSec, r.LastUnitSec, "run %d", i)
			assert.Positive(t, r.TailTicks, "run %d", i)
			assert.LessOrEqual(t, r.Inversions, r.StoreSoldOut+r.BulkSold, "run %d", i)
			if r.Mode == cutoffExact {
				assert.Zero(t, r.Inversions, "run %d: the exact cutoff told a user sold out ahead of a later one holding a unit", i)
			} else {
				assert.Zero(t, r.CappedTicks, "run %d: NoCutoff capped a tick", i)
			}
		}
		assert.Equal(t, map[string]int{cutoffExact: p.Reps, cutoffBaseline: p.Reps}, modes)
		// Repetition 1 runs exact first, 2 the baseline first.
		assert.Equal(t, []string{cutoffExact, cutoffBaseline, cutoffBaseline, cutoffExact},
			[]string{sc.Runs[0].Mode, sc.Runs[1].Mode, sc.Runs[2].Mode, sc.Runs[3].Mode})
	}
	md := cutoffMarkdown(Report{Cutoff: &res})
	for _, want := range []string{cutoffHeading, "scripts/bench.sh -cutoff-only", "| 300 | 105 | 10 | 15 | exact (default) |",
		"| 300 | 105 | 10 | 15 | baseline (`NoCutoff`) |", "Both modes ran in this same run"} {
		assert.Contains(t, md, want)
	}
}

func TestParseCutoffScenarios(t *testing.T) {
	sc, err := parseCutoffScenarios("3000/1050/100, 2000/537/100")
	require.NoError(t, err)
	assert.Equal(t, []CutoffScenario{{Users: 3000, Stock: 1050, BatchSize: 100}, {Users: 2000, Stock: 537, BatchSize: 100}}, sc)
	for _, bad := range []string{"", "3000/1050", "3000/1050/0", "100/100/10", "a/b/c"} {
		_, err := parseCutoffScenarios(bad)
		assert.Error(t, err, bad)
	}
	held := heldEntries(100, 5, 1, 0)
	assert.Len(t, held, 5)
	assert.Equal(t, held, heldEntries(100, 5, 1, 0), "the same repetition holds other entries")
	for n := range held {
		assert.True(t, n >= 1 && n <= 100, "entry %d", n)
	}
}

// The section's figures: medians and ranges per mode, the ratio of the
// medians and the range of the paired ratios.
func TestCutoffMarkdown(t *testing.T) {
	run := func(mode string, rep int, tail, total float64, inv int) CutoffRun {
		return CutoffRun{Mode: mode, Rep: rep, TailSec: tail, TotalSec: total, LastUnitSec: tail / 2, TailTicks: 3, Inversions: inv}
	}
	res := CutoffResult{Reps: 3, Partitions: 8, Consumers: 3, IntervalMs: 200, PollMs: 2, HeldShare: 0.05,
		Scenarios: []CutoffScenario{{Users: 3000, Stock: 1050, BatchSize: 100, Held: 150, Runs: []CutoffRun{
			run(cutoffExact, 1, 0.6, 2.6, 0), run(cutoffBaseline, 1, 0.4, 2.4, 3),
			run(cutoffBaseline, 2, 0.5, 2.5, 0), run(cutoffExact, 2, 0.8, 2.8, 0),
			run(cutoffExact, 3, 0.7, 2.7, 0), run(cutoffBaseline, 3, 0.35, 2.3, 1),
		}}}}
	md := cutoffMarkdown(Report{Cutoff: &res})
	for _, want := range []string{
		"| 3000 | 1050 | 100 | 150 | exact (default) | 0.700 (0.600–0.800) | 2.700 (2.600–2.800) | 0.350 (0.300–0.400) | 3 | 0 | 0 | 0 | 0 of 3, 0 |",
		"| 3000 | 1050 | 100 | 150 | baseline (`NoCutoff`) | 0.400 (0.350–0.500) | 2.400 (2.300–2.500) |",
		"| 2 of 3, 3 |",
		"| 3000 | 1050 | 100 | 1.75 (1.50–2.00) | 1.13 (1.08–1.17) |",
		"| 3000 | 1050 | 3 | baseline | 0.350 | 2.300 |",
	} {
		assert.Contains(t, md, want)
	}
	assert.Empty(t, cutoffMarkdown(Report{}), "a run without the section renders it")
}

// -cutoff-only writes its result into results.json and its section into
// the report, changing nothing else, and the section lands where a full
// render puts it; -from renders it from results.json.
func TestCutoffOnlyWritesItsPartOnly(t *testing.T) {
	rep := savedReport(t)
	rep.Cutoff = nil
	before, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "results.json")
	require.NoError(t, os.WriteFile(path, append(before, '\n'), 0o644))
	res := CutoffResult{Reps: 1, Partitions: 8, Consumers: 3, IntervalMs: 200, PollMs: 2, HeldShare: 0.05,
		Scenarios: []CutoffScenario{{Users: 300, Stock: 105, BatchSize: 10, Held: 15, Runs: []CutoffRun{
			{Mode: cutoffExact, Rep: 1, TailSec: 0.3, TotalSec: 1}, {Mode: cutoffBaseline, Rep: 1, TailSec: 0.2, TotalSec: 0.9}}}}}
	for round := range 2 { // adding the field, then replacing it
		res.Scenarios[0].Runs[0].TailSec = float64(round + 1)
		require.NoError(t, mergeField(path, "Cutoff", res))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		var back Report
		require.NoError(t, json.Unmarshal(got, &back))
		require.NotNil(t, back.Cutoff)
		assert.Equal(t, res, *back.Cutoff)
		back.Cutoff = nil
		again, _ := json.MarshalIndent(back, "", "  ")
		require.True(t, bytes.Equal(again, before), "round %d: the rest of results.json changed", round)
		require.True(t, bytes.HasPrefix(got, before[:len(before)-2]), "round %d: the bytes before the field changed", round)
	}

	o := options{out: dir, md: filepath.Join(dir, "BENCHMARKS.md")}
	without := markdown(rep, o)
	rep.Cutoff = &res
	full := markdown(rep, o)
	require.Contains(t, full, cutoffHeading)
	assert.Less(t, strings.Index(full, "## End to end"), strings.Index(full, cutoffHeading))
	assert.Less(t, strings.Index(full, cutoffHeading), strings.Index(full, "## Micro-benchmarks"))
	assert.Equal(t, full, spliceCutoff(without, cutoffMarkdown(rep)), "the spliced report differs from a full render")
	res.Scenarios[0].Runs[1].TailSec = 0.25
	assert.Equal(t, markdown(rep, o), spliceCutoff(full, cutoffMarkdown(rep)), "replacing the section differs from a full render")

	require.NoError(t, render(path, o)) // results.json holds the last round's result
	md, err := os.ReadFile(o.md)
	require.NoError(t, err)
	assert.Contains(t, string(md), cutoffHeading)
	assert.Contains(t, string(md), "| 300 | 105 | 1 | exact | 2.000 |")
}
