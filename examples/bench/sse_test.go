package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -sse-only writes its result into results.json and its section into the
// report, changing nothing else, and the section lands where a full render
// puts it.
func TestSSEOnlyWritesItsPartOnly(t *testing.T) {
	saved, err := os.ReadFile("../../docs/benchmarks/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(saved, &rep); err != nil {
		t.Fatal(err)
	}
	rep.SSE = nil
	before, _ := json.MarshalIndent(rep, "", "  ")
	path := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(path, append(before, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	res := SSEResult{Streams: 10, GotEvent: 10, Issued: 3, Rejected: 7, SoldOutStatus: 2, HoldSec: 20}
	for round := range 2 { // adding the field, then replacing it
		res.EventsPerSec = float64(round + 1)
		if err := mergeSSE(path, res); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		var back Report
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if back.SSE == nil || back.SSE.EventsPerSec != res.EventsPerSec {
			t.Fatalf("round %d: SSE = %+v", round, back.SSE)
		}
		back.SSE = nil
		again, _ := json.MarshalIndent(back, "", "  ")
		if !bytes.Equal(again, before) {
			t.Fatalf("round %d: the rest of results.json changed", round)
		}
		if !bytes.HasPrefix(got, before[:len(before)-2]) || !bytes.HasSuffix(got, []byte("}\n")) {
			t.Fatalf("round %d: the bytes before the SSE field changed", round)
		}
	}

	o := options{out: "docs/benchmarks"}
	without := markdown(rep, o)
	rep.SSE = &res
	full := markdown(rep, o)
	section := sseMarkdown(rep)
	if !strings.Contains(full, sseHeading) {
		t.Fatal("a full render has no SSE section")
	}
	if got := spliceSSE(without, section); got != full {
		t.Error("the spliced report differs from a full render")
	}
	res.EventsPerSec = 42
	if got := spliceSSE(full, sseMarkdown(rep)); got != markdown(rep, o) {
		t.Error("replacing the section differs from a full render")
	}
	if strings.Contains(markdown(Report{}, o), sseHeading) {
		t.Error("a run without the section renders it")
	}
}
