package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ProfileResult is one profiled HTTP run (wrk as in the measured runs, the
// bench process under the CPU profiler) and its CPU split into the parts
// of serving a request, each the cumulative seconds of a function that
// bounds that part (`go tool pprof -top -cum`).
type ProfileResult struct {
	Scenario string
	Conns    int
	Requests int64
	// Total is the profile's samples, in seconds of CPU.
	Total float64
	Parts []ProfilePart
}

// ProfilePart is one part of serving a request and its CPU in the profile.
type ProfilePart struct {
	Name    string
	Seconds float64
}

// profileParts names the parts of a request's CPU by the function whose
// cumulative time bounds each; the first four do not overlap, the handler's
// parts nest in the handler, and "other" is the rest of the samples.
var profileParts = []struct{ name, fn string }{
	{"read the request (net/http: parse, read syscalls)", "net/http.(*conn).readRequest"},
	{"handler", "net/http.serverHandler.ServeHTTP"},
	{"write the response (net/http: flush, write syscalls)", "net/http.(*response).finishRequest"},
	{"background read while the handler runs (net/http)", "net/http.(*connReader).backgroundRead"},
	{"garbage collection (background workers)", "runtime.gcBgMarkWorker"},
	{"goroutine scheduling (parked goroutines, idle Ps)", "runtime.mcall"},
	// Inside the handler:
	{"  admission to Redis and back: coalescing, waiting for the batch, the script call, its reply", "github.com/couponq/couponq/internal/shard.(*Queue).Admit"},
	{"  the ticket's JSON and headers", "github.com/couponq/couponq/internal/httpapi.writeTicket"},
	{"  metrics (the Prometheus Observer)", "github.com/couponq/couponq/couponq/metrics/prom.(*Metrics).OnAdmit"},
	{"  catalog lookup (cached campaign)", "github.com/couponq/couponq/internal/admission.(*Service).campaign"},
}

// profiledScenarios are the scenarios profiled at profileConns, after the
// measured runs (the profiler's own cost stays out of those).
var profiledScenarios = []string{"noop", "v2"}

const profileConns = 1000

// profileHTTP runs sc at conns connections under the CPU profiler and
// splits the profile; with keep set it also writes the profile there.
func (b *backends) profileHTTP(ctx context.Context, sc string, conns int, keep string) (ProfileResult, error) {
	f, err := os.CreateTemp("", "couponq-http-*.pprof")
	if err != nil {
		return ProfileResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	r, err := b.runHTTPSpec(ctx, httpSpec{sc: sc, conns: conns, profile: f})
	if err != nil {
		return ProfileResult{}, err
	}
	if keep != "" {
		if err := copyFile(f.Name(), filepath.Join(keep, fmt.Sprintf("%s-%d.pprof", sc, conns))); err != nil {
			return ProfileResult{}, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return ProfileResult{}, err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", exe, f.Name()).CombinedOutput()
	if err != nil {
		return ProfileResult{}, fmt.Errorf("go tool pprof: %w: %s", err, out)
	}
	total, cum, err := parsePprofTop(out)
	if err != nil {
		return ProfileResult{}, err
	}
	p := ProfileResult{Scenario: sc, Conns: conns, Requests: r.Requests, Total: total}
	for _, part := range profileParts {
		p.Parts = append(p.Parts, ProfilePart{Name: part.name, Seconds: cum[part.fn]})
	}
	return p, nil
}

// parsePprofTop reads `go tool pprof -top -cum`: the total samples (in
// seconds) and each function's cumulative seconds.
func parsePprofTop(out []byte) (float64, map[string]float64, error) {
	var total float64
	cum := map[string]float64{}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "Total samples = "); i >= 0 {
			f := strings.Fields(l[i+len("Total samples = "):])
			if len(f) > 0 {
				total = pprofSeconds(f[0])
			}
			continue
		}
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		cum[strings.Join(f[5:], " ")] = pprofSeconds(f[3])
	}
	if total <= 0 {
		return 0, nil, fmt.Errorf("go tool pprof: no total samples in %q", firstLines(out, 8))
	}
	return total, cum, nil
}

// pprofSeconds reads a pprof duration ("1.23s", "450ms", "80us"); -1 if
// it is none.
func pprofSeconds(s string) float64 {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"ms", 1e-3}, {"us", 1e-6}, {"µs", 1e-6}, {"ns", 1e-9}, {"s", 1}, {"m", 60}, {"h", 3600}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f * u.scale
			}
		}
	}
	return -1
}

func firstLines(b []byte, n int) string {
	lines := bytes.SplitN(b, []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// perRequestUS is a part's CPU per request of its run, in µs.
func (p ProfileResult) perRequestUS(seconds float64) float64 {
	if p.Requests <= 0 {
		return 0
	}
	return seconds * 1e6 / float64(p.Requests)
}

// profileMarkdown renders the profiled runs: each part's CPU per request,
// side by side, and V2's less the no-op's.
func profileMarkdown(ps []ProfileResult) string {
	var sb strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	if len(ps) == 0 {
		return ""
	}
	noop, v2 := noopAndV2(ps)
	w("After the measured runs, the bench ran")
	for i, p := range ps {
		if i > 0 {
			w(",")
		}
		w(" `%s`", p.Scenario)
	}
	w(" again at %d connections under Go's CPU profiler (the bench process only: the server; Redis's CPU is in the\n", ps[0].Conns)
	w("table above) and split each profile with `go tool pprof -top -cum` into the parts of serving a request: the cumulative\n")
	w("CPU of the function that bounds each part, divided by the run's requests. Indented rows are parts of the handler;\n")
	w("*other* is the rest of the samples (the connection goroutine's own code, the network poller, timers). The\n")
	w("profiler costs some CPU of its own, so totals run a little above the table above. `scripts/bench.sh -profile DIR`\n")
	w("keeps the profiles.\n\n")
	w("| part, µs of the server's CPU per request |")
	for _, p := range ps {
		w(" %s |", p.Scenario)
	}
	if noop != nil && v2 != nil {
		w(" v2 − noop |")
	}
	w("\n|---|")
	for range ps {
		w("---:|")
	}
	if noop != nil && v2 != nil {
		w("---:|")
	}
	w("\n")
	row := func(name string, val func(p *ProfileResult) float64) {
		w("| %s |", strings.ReplaceAll(name, "  ", "&nbsp;&nbsp;&nbsp;&nbsp;"))
		for i := range ps {
			w(" %.1f |", val(&ps[i]))
		}
		if noop != nil && v2 != nil {
			w(" %+.1f |", val(v2)-val(noop))
		}
		w("\n")
	}
	for i, part := range profileParts {
		row(part.name, func(p *ProfileResult) float64 { return p.perRequestUS(p.Parts[i].Seconds) })
	}
	row("other", func(p *ProfileResult) float64 {
		s := p.Total
		for i, part := range p.Parts {
			if !strings.HasPrefix(profileParts[i].name, "  ") {
				s -= part.Seconds
			}
		}
		return p.perRequestUS(s)
	})
	row("**total** (requests in the profiled run: "+requestsList(ps)+")", func(p *ProfileResult) float64 { return p.perRequestUS(p.Total) })
	w("\n")
	if noop != nil && v2 != nil {
		part := func(p *ProfileResult, i int) float64 { return p.perRequestUS(p.Parts[i].Seconds) }
		adm := part(v2, 6)
		w("The handler is where V2 differs by design: %.1f µs a request, of which %.1f µs take the admission to Redis and\n", part(v2, 1), adm)
		w("back (handing it to the batch, waiting parked for the batch's reply, the script call and its reply: one script\n")
		w("call serves the whole batch, so its share a request is small; the rest is parking and waking the request's\n")
		w("goroutine). The no-op handler neither parks nor waits, so net/http's reads and writes, its background read\n")
		w("(started for every request and cut short once the handler returns: only a handler that waits pays it) and\n")
		w("the scheduler cost V2 more per request than they cost it: that is the floor of a handler that waits on the\n")
		w("network at all, whatever it does there.\n\n")
	}
	return sb.String()
}

func requestsList(ps []ProfileResult) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %d", p.Scenario, p.Requests))
	}
	return strings.Join(parts, ", ")
}

// profileGapText says, from the profiled runs, where the V2 server's CPU
// above the no-op's goes; empty without both profiles.
func profileGapText(ps []ProfileResult) string {
	noop, v2 := noopAndV2(ps)
	if noop == nil || v2 == nil || len(noop.Parts) != len(profileParts) || len(v2.Parts) != len(profileParts) {
		return ""
	}
	d := func(i int) float64 {
		return v2.perRequestUS(v2.Parts[i].Seconds) - noop.perRequestUS(noop.Parts[i].Seconds)
	}
	total := v2.perRequestUS(v2.Total) - noop.perRequestUS(noop.Total)
	return fmt.Sprintf("the profiles above split the server's part: of V2's %.1f µs a request above the no-op's (profiled), "+
		"%.1f are the handler (%.1f the admission to Redis and back, %.1f the ticket's JSON and headers, %.1f metrics, %.1f the "+
		"catalog), %.1f net/http's reads, writes and background read, which a handler that waits pays more of, and %.1f "+
		"goroutine scheduling", total, d(1), d(6), d(7), d(8), d(9), d(0)+d(2)+d(3), d(5))
}

// noopAndV2 picks the no-op's and V2's profiled runs out of ps (nil when
// absent).
func noopAndV2(ps []ProfileResult) (noop, v2 *ProfileResult) {
	for i := range ps {
		switch ps[i].Scenario {
		case "noop":
			noop = &ps[i]
		case "v2":
			v2 = &ps[i]
		}
	}
	return noop, v2
}
