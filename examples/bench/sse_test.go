package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
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
	res := SSEResult{Streams: 10, GotEvent: 10, Issued: 3, Rejected: 7, SoldOutStatus: 2, HoldSec: 20,
		PagesLoaded: 10, PageStates: map[string]int{"waiting": 3, "beyond": 7}, AssetsLoaded: 4,
		PageSentPerLoad: 1, PageSentPerLoadByCommand: map[string]float64{"evalsha": 1}, PageStatusCalls: 10}
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
		if back.SSE == nil || back.SSE.EventsPerSec != res.EventsPerSec || back.SSE.PagesLoaded != 10 ||
			back.SSE.PageStates["beyond"] != 7 || back.SSE.PageSentPerLoad != 1 {
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

	// A report holding the section under its old heading gets it replaced,
	// not a second one.
	old := strings.Replace(full, sseHeading, sseOldHeading, 1)
	if got := spliceSSE(old, sseMarkdown(rep)); got != markdown(rep, o) {
		t.Error("splicing over the section under its old heading differs from a full render")
	}
	cut := cutoffMarkdown(rep)
	if cut != "" {
		if got := spliceCutoff(strings.Replace(old, cut, "", 1), cut); !strings.Contains(got, cut+sseOldHeading) {
			t.Error("the cutoff section does not land before the section under its old heading")
		}
	}
}

// The section reports the page loads, and says the streams' commands are
// the open pages' cost; a run from before the page loads renders as it
// was, under the new heading, saying so.
func TestSSEMarkdownPages(t *testing.T) {
	r := SSEResult{Streams: 10000, WarmUsers: 2000, Stock: 4000, BatchSize: 100, IntervalMs: 1000, PollMs: 1000,
		BaselineSec: 10, HoldSec: 20, GotEvent: 10000, HoldStreamSentPerSec: 61, HoldStreamSent: map[string]float64{"evalsha": 61},
		HoldStatusPerSec: 60, HoldLineStatsPerSec: 1, SoldOutStatus: 100,
		PagesLoaded: 10000, PageStates: map[string]int{"waiting": 2000, "beyond": 8000}, PagesSec: 2.5,
		PageLoadP50ms: 40, PageLoadP99ms: 120, PageLoadMaxMs: 200, AssetsLoaded: 4, AssetBytes: 20480,
		PageSentPerLoad: 1, PageSentPerLoadByCommand: map[string]float64{"evalsha": 1}, PageStatusCalls: 10000,
		HeapPagesMiB: 3, RSSPagesMiB: 40}
	md := sseMarkdown(Report{SSE: &r})
	for _, want := range []string{
		sseHeading,
		"| waiting-room pages loaded (200, the user's place in the line) / failed | 10000 / 0 |",
		"| the pages' states as rendered | beyond 8000, waiting 2000 |",
		"| time to load them all; a page load's p50 / p99 / max | 2.5 s; 40.0 / 120.0 / 200.0 ms |",
		"| assets loaded once by the client process / failed | 4 / 0 (20.0 KiB) |",
		"| Redis commands sent per page load (EVALSHA 1.00; 10000 Status calls in all) | 1.00 |",
		"| **commands/s sent for the streams: the cost of the 10000 open pages** (EVALSHA 61.00) | **61.0** |",
		"| of which Status calls/s (users who left the line) / LineStats calls/s | 60.0 / 1.00 |",
		"So **10000 open waiting-room pages cost Redis 61.0 commands/s**",
		"at most 100 a second here",
		"| server heap in use / RSS after the page loads, before the streams | 3.0 / 40.0 MiB |",
		"Polling once a second instead would be 10000 Status calls/s",
	} {
		assert.Contains(t, md, want)
	}

	// From before the page loads: no page rows, the rows as they were.
	r.PagesLoaded, r.PageStates, r.PageSentPerLoad, r.PageSentPerLoadByCommand = 0, nil, 0, nil
	r.HeapPagesMiB, r.RSSPagesMiB = 0, 0
	md = sseMarkdown(Report{SSE: &r})
	assert.Contains(t, md, sseHeading)
	assert.Contains(t, md, "predates the page loads")
	assert.Contains(t, md, "| commands/s sent for the streams (EVALSHA 61.00) | 61.0 |")
	assert.Contains(t, md, "Polling once a second instead would be 10000 Status calls/s")
	assert.NotContains(t, md, "pages loaded")
	assert.NotContains(t, md, "per page load")
	assert.NotContains(t, md, "after the page loads")
}

// pageService answers the waiting-room page's Status read: s0 waits, s1
// waits beyond the stock, s2 was issued, anyone else has no entry.
type pageService struct{}

func (pageService) Admit(context.Context, couponq.Request) (couponq.Ticket, error) {
	return couponq.Ticket{}, couponq.ErrUnavailable
}

func (pageService) Status(_ context.Context, campaign, user string) (couponq.Status, error) {
	st := couponq.Status{Campaign: campaign, User: user, State: couponq.StateWaiting, Entry: 7, Position: 3, Claimed: 0}
	switch user {
	case "s0":
		st.EstimatedWait = 3 * time.Second
	case "s1":
		st.BeyondStock = true
	case "s2":
		st.State, st.Position, st.IssuanceID = couponq.StateIssued, 0, "iss-1"
	default:
		return couponq.Status{}, fmt.Errorf("%w: %s", couponq.ErrNotFound, user)
	}
	return st, nil
}

// The client's check reads the state the handler rendered the page in
// (every page has a section per state, waiting's among them), and its page
// loads fetch the assets once and report the pages by state.
func TestSSEPageLoads(t *testing.T) {
	h, err := httpapi.New(httpapi.Config{Service: pageService{}, User: httpapi.HeaderUser("X-User")})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	page := func(user string) []byte {
		req, err := http.NewRequest("GET", srv.URL+"/campaigns/c1/wait", nil)
		require.NoError(t, err)
		req.Header.Set("X-User", user)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		require.NoError(t, err)
		return b.Bytes()
	}
	for user, want := range map[string]string{"s0": "waiting", "s1": "beyond"} {
		state, err := sseCheckPage(page(user))
		require.NoError(t, err, user)
		assert.Equal(t, want, state, user)
	}
	for _, user := range []string{"s2", "nobody"} {
		b := page(user)
		require.Contains(t, string(b), `data-state="waiting"`, "every page holds the waiting section")
		_, err := sseCheckPage(b)
		assert.Error(t, err, user)
	}
	_, err = sseCheckPage([]byte("<html></html>"))
	assert.Error(t, err)

	r := ssePageLoads(context.Background(), srv.Client(), srv.URL, "c1", 3)
	assert.Equal(t, "pages", r.Type)
	assert.Equal(t, 4, r.Assets)
	assert.Zero(t, r.AssetsFailed)
	assert.Positive(t, r.AssetBytes)
	assert.Equal(t, 2, r.Loaded)
	assert.Equal(t, 1, r.Failed)
	assert.Equal(t, map[string]int{"waiting": 1, "beyond": 1}, r.States)
	assert.Contains(t, r.Error, "s2")
	assert.Positive(t, r.MaxMs)
	srv.Client().CloseIdleConnections()
}
