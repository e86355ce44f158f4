package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFailoverSection(t *testing.T) {
	r := &report{opts: options{fsync: fsyncAlways, failoverUsers: 30000}, failover: &foReport{
		Runs: []foResult{
			{ReplicaAcks: 0, Lag: time.Second, LagBytes: 357758, KillToPro: 3080 * time.Millisecond, FirstOK: 1020 * time.Millisecond,
				Normal: 1020 * time.Millisecond, Accepted: 30199, Lost: 2037, LostBeforeKill: 2034, Reused: 2037,
				States: map[string]int{"waiting": 28162, "not_found": 2037}},
			{ReplicaAcks: 1, Err: errors.New("boom")},
		},
		Cost: []foCost{{Acks: 1, Coalesced: true, N: 20000, Rate: 11269, MasterUS: 16.1, ClientUS: 8.3}},
	}}
	var b bytes.Buffer
	r.failoverSection(func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) })
	out := b.String()
	for _, want := range []string{
		"## Redis Cluster failover",
		"| replica cut off 1s before the master's kill -9 | default (no WAIT) | 357,758 bytes | 3.08 s | 1.02 s | 1.02 s |",
		"| **2037** (2034) | **2037** | not_found 2037, waiting 28162 |",
		"`-redis-replica-acks 1` (WAIT 1) | the phase failed: boom",
		"| `-redis-replica-acks 1` (WAIT 1) | on (default) | 11269 | 16.1 µs | 8.3 µs |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the section lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "%!") {
		t.Errorf("a format verb went wrong:\n%s", out)
	}
}
