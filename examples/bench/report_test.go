package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// -from re-renders a results.json written before the scheduler sections
// existed, without them, and one written with them, with them.
func TestRenderFrom(t *testing.T) {
	dir := t.TempDir()
	o := options{out: dir, md: filepath.Join(dir, "BENCHMARKS.md")}
	rep := savedReport(t)
	// A run from before the scheduler sections: the same report without them.
	rep.Idle, rep.Busy = nil, nil
	oldJSON, _ := json.Marshal(rep)
	oldPath := filepath.Join(dir, "old.json")
	if err := os.WriteFile(oldPath, oldJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := render(oldPath, o); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(o.md)
	if strings.Contains(string(md), "## Scheduler") {
		t.Error("an old results.json renders scheduler sections")
	}

	rep.Idle = []IdleResult{
		{Way: "scheduler", Campaigns: 10_000, WindowSec: 10, LeaderSentPerSec: 1.5, StandbySentPerSec: 0.5,
			ServerLeaderPerSec: 2.5, ServerBothPerSec: 4, ServerStandbyPerSec: 1.5,
			LeaderSent: map[string]float64{"zrange": 1, "evalsha": 0.5}, StandbySent: map[string]float64{"evalsha": 0.5},
			ServerCommands: map[string]float64{"zrange": 1, "evalsha": 1, "get": 0.5}, LeaderGoroutines: 2, StandbyGoroutines: 1},
		{Way: "throttle", Campaigns: 1_000, WindowSec: 10, LeaderSentPerSec: 2000, StandbySentPerSec: 1000, ServerBothPerSec: 11000},
	}
	var cs []BusyCampaign
	for i := range busyCampaignSet() {
		c := busyCampaignSet()[i]
		cs = append(cs, BusyCampaign{ID: c.ID, BatchSize: c.BatchSize, IntervalMs: c.Interval.Milliseconds(),
			Configured: configuredRate(c), Achieved: configuredRate(c) * 0.99, Ticks: 10})
	}
	rep.Busy = []BusyResult{{Way: "scheduler", Dispatcher: "kafka", Workers: 16, CatalogTTLms: 1000, WindowSec: 10, Campaigns: cs},
		{Way: "throttle", Dispatcher: "kafka", WindowSec: 10, Campaigns: cs}}
	rep.Finished = rep.Started.Add(time.Minute)
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "results.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := render(path, o); err != nil {
		t.Fatal(err)
	}
	md, _ = os.ReadFile(o.md)
	for _, want := range []string{"## Scheduler: idle cost", "| scheduler | 10000 | 1.50 | 0.50 | 2.50 | 1.50 | 4.00 |",
		"## Scheduler: 100 busy campaigns", "100 / 100", "- scheduler at 10000 campaigns: leader sent ZRANGE 1.00, EVALSHA 0.50"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if got := markdown(rep, o); got != string(md) {
		t.Error("re-rendered report differs from the one rendered before the JSON round trip")
	}
}

// savedReport reads the committed docs/benchmarks/results.json.
func savedReport(t *testing.T) Report {
	t.Helper()
	saved, err := os.ReadFile("../../docs/benchmarks/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(saved, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
