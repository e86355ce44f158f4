package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	xs := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want int
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0.11, 2}, {1, 10}, {0.001, 1}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("percentile(1..10, %v) = %d, want %d", c.p, got, c.want)
		}
	}
	if got := percentile([]float64(nil), 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestDisplacement(t *testing.T) {
	// Users 0..5 admitted in rank order 0..5; 4 issued: users 1, 0, 2, 5.
	rank := []int32{0, 1, 2, 3, 4, 5}
	order := []int32{1, 0, 2, 5}
	p50, p99, most, late := displacement(order, rank)
	// |i - rank|: 1, 1, 0, 2; sorted 0 1 1 2.
	if p50 != 1 || p99 != 2 || most != 2 || late != 1 {
		t.Errorf("displacement = %d, %d, %d, late %d; want 1, 2, 2, late 1", p50, p99, most, late)
	}
	// Issue order equal to admission: no displacement, no late winner.
	rank = []int32{2, 0, 1}
	if p50, p99, most, late := displacement([]int32{1, 2, 0}, rank); p50 != 0 || p99 != 0 || most != 0 || late != 0 {
		t.Errorf("in order: %d, %d, %d, late %d", p50, p99, most, late)
	}
}

func TestRelErrAndSamples(t *testing.T) {
	if got := relErr(110, 100); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("relErr(110, 100) = %v", got)
	}
	if got := relErr(90, 100); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("relErr(90, 100) = %v", got)
	}
	s := sampleRanks(200_000, 2000)
	if len(s) != 2000 || s[0] != 50 || s[1] != 150 || s[1999] != 199_950 {
		t.Errorf("sampleRanks(200000, 2000) = %d ... %d (%d)", s[0], s[len(s)-1], len(s))
	}
	if s := sampleRanks(3, 10); len(s) != 3 || s[0] != 0 || s[2] != 2 {
		t.Errorf("sampleRanks(3, 10) = %v", s)
	}
}

// The slots Redis documents (CLUSTER KEYSLOT) and its hash tag rule.
func TestKeySlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "{user1000}.following": keySlot("user1000"),
		"foo{}{bar}": int(crc16("foo{}{bar}")) & 16383, "foo{{bar}}zap": int(crc16("{bar")) & 16383,
		"bench:{hot-1@@0}:seq": keySlot("hot-1@@0"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestPickHotIDSpreadsEvenly(t *testing.T) {
	l := &clusterLayout{addrs: []string{"a", "b", "c"}, ranges: []slotRange{{0, 5460, 0}, {5461, 10922, 1}, {10923, 16383, 2}}}
	for _, n := range []int{1, 3, 6, 4} {
		id, tries, slots, per, err := pickHotID("p", n, 3, l.masterOf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, "hot-") || tries < 1 || len(slots) != n {
			t.Errorf("%d lines: %s after %d, slots %v", n, id, tries, slots)
		}
		for _, c := range per {
			if c < n/3 || c > (n+2)/3 {
				t.Errorf("%d lines: %s puts %v per master", n, id, per)
			}
		}
		// The first that does: none before it.
		for i := 1; i < tries; i++ {
			_, p := spread(lineKeys("p", "hot-"+strconv.Itoa(i), n), 3, l.masterOf)
			if even(p, n) {
				t.Errorf("%d lines: hot-%d spreads evenly too, before %s", n, i, id)
			}
		}
	}
	if even([]int{2, 2, 1}, 6) || !even([]int{2, 1, 1}, 4) || !even([]int{1, 0, 0}, 1) {
		t.Error("even is wrong")
	}
}

func TestShardMarkdown(t *testing.T) {
	run := func(n int, per float64, cmds []int64) ShardRun {
		return ShardRun{SubLines: n, Campaign: "hot-" + strconv.Itoa(n), IDTries: n, Slots: make([]int, n), PerMaster: []int{1, 0, 0},
			Admitted: 1000, AdmitSec: 1000 / per, AdmitPerSec: per, MasterCommands: cmds, MasterCPUSec: []float64{0.01, 0.002, 0.003},
			MasterAdmissions: []int{1000, 0, 0}, MasterScripts: []int64{40, 0, 0}, DrainMasterCPUSec: []float64{0.01, 0.005, 0.005},
			PositionSamples: 2000, PositionErrP50: 0.001, PositionErrP99: 0.02, Issued: 500,
			DisplacementP50: 3, DisplacementP99: 40, DisplacementMax: 90, LateWinners: 2, DrainSec: 1.5}
	}
	rep := Report{Shard: &ShardResult{Users: 1000, Stock: 500, Conc: 256, BatchSize: 1000, IntervalMs: 10, LagMs: 100, Cores: 2,
		Masters: []string{"a:1", "b:2", "c:3"}, Runs: []ShardRun{run(1, 20000, []int64{100, 0, 0}), run(3, 25000, []int64{34, 33, 33})}}}
	md := shardMarkdown(rep)
	for _, want := range []string{shardHeading, "| 1 | hot-1 | 20000 | 1.00 | 15.0 (10.0 / 2.0 / 3.0) | 100/0/0 (100/0/0) | 25.0 | 0.10% / 2.00% | 3 / 40 / 90 | 2 | 500 / 500 | 1.5 (40.0) |",
		"| 3 | hot-3 | 25000 | 1.25 |", "34/33/33", "scripts/bench.sh -shard-only"} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
	if shardMarkdown(Report{}) != "" {
		t.Error("a run without the section renders it")
	}
}

// -from re-renders the section from results.json, where a full render puts it.
func TestShardRenderFrom(t *testing.T) {
	dir := t.TempDir()
	o := options{out: dir, md: filepath.Join(dir, "BENCHMARKS.md")}
	rep := savedReport(t)
	rep.Shard = &ShardResult{Users: 1000, Stock: 500, Conc: 8, BatchSize: 1000, IntervalMs: 10, LagMs: 100, Cores: 2,
		Masters: []string{"a:1", "b:2", "c:3"}, Runs: []ShardRun{{SubLines: 3, Campaign: "hot-2", Admitted: 1000, AdmitPerSec: 5000,
			MasterCommands: []int64{1, 1, 1}, MasterCPUSec: []float64{0.001, 0.001, 0.001}, MasterAdmissions: []int{1, 1, 1}, Issued: 500}}}
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
	md, _ := os.ReadFile(o.md)
	if !strings.Contains(string(md), shardHeading) || !strings.Contains(string(md), "| 3 | hot-2 | 5000 | n/a |") {
		t.Errorf("the re-rendered report lacks the section:\n%s", md)
	}
	if got := markdown(rep, o); got != string(md) {
		t.Error("re-rendered report differs from the one rendered before the JSON round trip")
	}
}
