package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseCampaigns(t *testing.T) {
	cs, err := parseCampaigns("gold:8000:7:3, silver:7000", 25, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != "gold" || cs[0].Stock != 8000 || cs[0].BatchSize != 7 || cs[0].Shards != 3 ||
		cs[1].ID != "silver" || cs[1].Stock != 7000 || cs[1].BatchSize != 25 || cs[1].Interval != 250*time.Millisecond || cs[1].Shards != 0 {
		t.Fatalf("parsed %+v", cs)
	}
	for _, bad := range []string{"", "gold", "gold:0", "gold:-1", "gold:10:0", "gold:10:x", ":10", "a:1:2:0", "a:1:2:x", "a:1:2:3:4"} {
		if _, err := parseCampaigns(bad, 25, time.Second); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// leads reads who leads from a worker's log: the last "leads" must come
// after the last step-down or loss.
func TestLeads(t *testing.T) {
	dir := t.TempDir()
	for name, want := range map[string]bool{
		"":                                   false,
		"msg=\"couponq: scheduler leads\"\n": true,
		"msg=\"couponq: scheduler leads\"\nmsg=\"couponq: scheduler steps down\"\n":                                          false,
		"msg=\"couponq: scheduler leads\"\nmsg=\"couponq: scheduler lost leadership\"\n":                                     false,
		"msg=\"couponq: scheduler lost leadership\"\nmsg=\"couponq: scheduler leads\"\n":                                     true,
		"msg=\"couponq: scheduler leads\"\nmsg=\"couponq: scheduler steps down\"\nmsg=\"couponq: scheduler leads\"\nother\n": true,
	} {
		f := filepath.Join(dir, "w.log")
		if err := os.WriteFile(f, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := leads(f); got != want {
			t.Errorf("log %q: leads = %v, want %v", name, got, want)
		}
	}
	if leads(filepath.Join(dir, "missing.log")) {
		t.Error("a missing log leads")
	}
}

func TestRedisArgs(t *testing.T) {
	for mode, want := range map[string]string{fsyncAlways: "always", fsyncEverysec: "everysec"} {
		args, err := redisArgs("/d", 1, mode)
		if err != nil {
			t.Fatal(err)
		}
		if !contains(args, "--appendonly", "yes") || !contains(args, "--appendfsync", want) || !contains(args, "--bind", "127.0.0.1") {
			t.Errorf("%s: %v", mode, args)
		}
	}
	args, err := redisArgs("/d", 1, fsyncOff)
	if err != nil || !contains(args, "--appendonly", "no") {
		t.Errorf("off: %v %v", args, err)
	}
	if _, err := redisArgs("/d", 1, "sometimes"); err == nil {
		t.Error("an unknown mode is accepted")
	}
}

func contains(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// The hostile phase's verdict fails on any broken bound: a probe, heap
// growth past maxHeapGrowth, a Redis key written, a stream opened for a
// made-up campaign, or a heap figure no collection backs.
func TestHostileVerdict(t *testing.T) {
	good := func() *hostileResult {
		return &hostileResult{HeapBefore: 20 << 20, HeapAfter: 21 << 20, GCs: 3, KeysBefore: 3, KeysAfter: 3,
			Probes: []hostileProbe{{Area: "a", OK: true}, {Area: "b", OK: true}}}
	}
	if !good().ok() {
		t.Fatal("a run within every bound fails")
	}
	for name, spoil := range map[string]func(*hostileResult){
		"probe":         func(r *hostileResult) { r.Probes[1].OK = false },
		"heap":          func(r *hostileResult) { r.HeapAfter = r.HeapBefore + maxHeapGrowth + 1 },
		"keys":          func(r *hostileResult) { r.KeysAfter++ },
		"stream":        func(r *hostileResult) { r.StreamsOpened = 1 },
		"no collection": func(r *hostileResult) { r.GCs = 0 },
	} {
		r := good()
		spoil(r)
		if r.ok() {
			t.Errorf("%s: a broken bound passes", name)
		}
	}
}
