package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -from re-renders a results.json written before the scheduler sections
// existed, without them, and one written with them, with them; rows of
// campaigns driven another way than by the Scheduler are left out.
func TestRenderFrom(t *testing.T) {
	dir := t.TempDir()
	o := options{out: dir, md: filepath.Join(dir, "BENCHMARKS.md")}
	rep := savedReport(t)
	// A run from before the scheduler sections: the same report without them.
	rep.Idle, rep.Busy = nil, nil
	oldJSON, err := json.Marshal(rep)
	require.NoError(t, err)
	oldPath := filepath.Join(dir, "old.json")
	require.NoError(t, os.WriteFile(oldPath, oldJSON, 0o644))
	require.NoError(t, render(oldPath, o))
	md, err := os.ReadFile(o.md)
	require.NoError(t, err)
	assert.NotContains(t, string(md), "## Scheduler", "an old results.json renders scheduler sections")

	rep.Idle = []IdleResult{
		{Campaigns: 10_000, WindowSec: 10, LeaderSentPerSec: 1.5, StandbySentPerSec: 0.5,
			ServerLeaderPerSec: 2.5, ServerBothPerSec: 4, ServerStandbyPerSec: 1.5,
			LeaderSent: map[string]float64{"zrange": 1, "evalsha": 0.5}, StandbySent: map[string]float64{"evalsha": 0.5},
			ServerCommands: map[string]float64{"zrange": 1, "evalsha": 1, "get": 0.5}, LeaderGoroutines: 2, StandbyGoroutines: 1},
	}
	var cs []BusyCampaign
	for _, c := range busyCampaignSet() {
		cs = append(cs, BusyCampaign{ID: c.ID, BatchSize: c.BatchSize, IntervalMs: c.Interval.Milliseconds(),
			Configured: configuredRate(c), Achieved: configuredRate(c) * 0.99, Ticks: 10})
	}
	rep.Busy = []BusyResult{{Dispatcher: "kafka", Workers: 16, CatalogTTLms: 1000, WindowSec: 10, Campaigns: cs}}
	rep.Finished = rep.Started.Add(time.Minute)
	js, err := json.Marshal(rep)
	require.NoError(t, err)
	// Rows with a Way other than "scheduler", as results holding another
	// way of driving campaigns have, are left out.
	var top map[string]any
	require.NoError(t, json.Unmarshal(js, &top))
	top["Idle"] = append(top["Idle"].([]any), map[string]any{"Way": "throttle", "Campaigns": 1000, "WindowSec": 10,
		"LeaderSentPerSec": 2000, "StandbySentPerSec": 1000, "ServerBothPerSec": 11000})
	top["Busy"] = append(top["Busy"].([]any), map[string]any{"Way": "throttle", "Dispatcher": "kafka", "WindowSec": 10,
		"Campaigns": []any{map[string]any{"ID": "busy-000", "BatchSize": 5, "IntervalMs": 100, "Configured": 50, "Achieved": 40}}})
	js, err = json.Marshal(top)
	require.NoError(t, err)
	path := filepath.Join(dir, "results.json")
	require.NoError(t, os.WriteFile(path, js, 0o644))
	require.NoError(t, render(path, o))
	md, err = os.ReadFile(o.md)
	require.NoError(t, err)
	for _, want := range []string{"## Scheduler: idle cost", "| 10000 | 1.50 | 0.50 | 2.50 | 1.50 | 4.00 |",
		"## Scheduler: 100 busy campaigns", "100 / 100", "at 10000 campaigns: leader sent ZRANGE 1.00, EVALSHA 0.50"} {
		assert.Contains(t, string(md), want)
	}
	assert.NotContains(t, string(md), "| 1000 | 2000.00", "the other way's idle row is rendered")
	assert.Equal(t, 1, strings.Count(string(md), "| 100 ms |"), "the other way's busy run is rendered")
	assert.Equal(t, markdown(rep, o), string(md), "re-rendered report differs from the one rendered before the JSON round trip")
}

// savedReport reads the committed docs/benchmarks/results.json.
func savedReport(t *testing.T) Report {
	t.Helper()
	saved, err := os.ReadFile("../../docs/benchmarks/results.json")
	require.NoError(t, err)
	var rep Report
	require.NoError(t, json.Unmarshal(saved, &rep))
	return rep
}
