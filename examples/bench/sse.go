package main

// The waiting-room section: what a crowd with the waiting-room page open
// costs the server and Redis. Each user loads the page (GET .../wait,
// rendered from one Status read) as a browser would, and its script then
// holds the user's status stream open (Server-Sent Events, GET
// .../entries/me/events); the section measures the page loads, then the
// open pages against the same pipeline with none open.
//
// The server side (the Redis line, a scheduler of the campaign's own, the
// in-memory transport, an issuer and the public handler on a loopback port)
// runs in the bench process; the clients run in a child process (this
// binary with -sse-client), so the server's memory is measured without
// them.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/lock"
)

var (
	sseOnly     = flag.Bool("sse-only", false, "measure only the waiting-room page and status-stream (SSE) section and print it as markdown; writes it into -out's results.json and -md, leaving the rest of them as they are (needs only Redis)")
	sseStreams  = flag.Int("sse-streams", 10_000, "SSE section: waiting-room pages loaded and their status streams held open, one per waiting user")
	sseHold     = flag.Duration("sse-hold", 20*time.Second, "SSE section: how long the open streams are measured")
	sseClient   = flag.String("sse-client", "", "internal: run as the SSE section's client process against this base URL")
	sseCampaign = flag.String("sse-campaign", "", "internal: the SSE client process's campaign")
)

// The SSE section's fixed parameters.
const (
	sseWarmUsers = 2_000 // admitted first: the line the baseline window drains
	// sseStock lasts 50 s of draining: the baseline, the page loads, the
	// openings and the hold take about 40 of them, so the campaign sells
	// out some seconds after the hold, and the open pages' users (behind
	// the warm ones, from 20 s on) leave the line through most of it.
	sseStock        = 5_000
	sseBatch        = 100 // per sseInterval: the drain rate
	sseInterval     = time.Second
	sseBaseline     = 10 * time.Second
	sseOpenParallel = 256 // pages loading, then streams connecting, at once
	// sseStreamPool is the handler's Redis client's pool: its connections'
	// buffers count in the server memory attributed to the streams.
	sseStreamPool = 32
)

// SSEResult is the waiting-room page and status-stream section's run.
type SSEResult struct {
	Streams, WarmUsers, Stock, BatchSize int
	IntervalMs, PollMs                   int64
	// The page loads (zero in runs from before them): before opening its
	// stream, each user loads GET .../wait; loaded means a 200 showing the
	// user's place in the line (sseCheckPage), failed anything else. The
	// states the loaded pages were rendered in, by name; the phase's time
	// and each load's.
	PagesLoaded, PagesFailed                    int
	PageStates                                  map[string]int
	PagesSec                                    float64
	PageLoadP50ms, PageLoadP99ms, PageLoadMaxMs float64
	// The page's four assets, loaded once by the client process before the
	// pages (a browser keeps them and revalidates them by ETag).
	AssetsLoaded, AssetsFailed int
	AssetBytes                 int64
	// The handler's Redis client over the page-load phase (the assets
	// included): commands sent per page load, in all and by command; and
	// the handler's Status calls over it.
	PageSentPerLoad          float64
	PageSentPerLoadByCommand map[string]float64
	PageStatusCalls          int64
	// The server process after the page loads, before the streams (after
	// a GC): heap in use and RSS.
	HeapPagesMiB, RSSPagesMiB float64
	// Opening: how long until every stream had its first event, and how
	// many did (streams held) or failed.
	OpenSec            float64
	GotEvent, OpenFail int
	// Open at the start and the end of the hold (the others heard their
	// final status and closed).
	OpenAtHoldStart, OpenAtHoldEnd int
	BaselineSec, HoldSec           float64
	// Redis: executed is INFO's total_commands_processed per second (Lua
	// scripts' inner commands included; the whole server, so anything else
	// using it counts too); sent is what each client of the bench sent.
	BaselineExecPerSec, HoldExecPerSec                 float64
	BaselinePipelineSentPerSec, HoldPipelineSentPerSec float64
	HoldStreamSentPerSec                               float64
	HoldStreamSent                                     map[string]float64
	// The handler's backend calls during the hold, per second.
	HoldStatusPerSec, HoldLineStatsPerSec float64
	// Events the clients received during the hold, per second.
	EventsPerSec float64
	// From the end of the scheduler tick that moved the head to the event
	// telling a waiting user the new position.
	LatencyMinMs, LatencyP50ms, LatencyP99ms, LatencyMaxMs float64
	LatencySamples                                         int
	// The server process before opening the streams and with them open
	// (after a GC): heap in use, RSS, goroutines.
	HeapBeforeMiB, HeapAfterMiB, RSSBeforeMiB, RSSAfterMiB float64
	GoroutinesBefore, GoroutinesAfter                      int
	// After the hold: the stock runs out; every stream ends with its
	// outcome. From the sold-out mark to the last final event: its time,
	// and the handler's Status calls (SoldOutStatus; -1 if the campaign
	// did not sell out).
	Issued, Rejected, Broken int
	SoldOutStatus            int64
	LastFinalSec             float64
	// CPU seconds over the baseline and the hold (absent from runs before
	// it): the server process (the bench process: the handler and the
	// pipeline), Redis (INFO cpu), and over the hold the client process
	// (/proc).
	BaselineServerCPUSec, HoldServerCPUSec float64 `json:",omitempty"`
	BaselineRedisCPUSec, HoldRedisCPUSec   float64 `json:",omitempty"`
	HoldClientCPUSec                       float64 `json:",omitempty"`
}

// HasCPU tells whether the run measured CPU (runs before it did not).
func (r SSEResult) HasCPU() bool { return r.HoldSec > 0 && r.HoldServerCPUSec > 0 }

// StreamSeconds is the hold's stream-seconds: the streams open at its
// start and end, averaged, times its length.
func (r SSEResult) StreamSeconds() float64 {
	return float64(r.OpenAtHoldStart+r.OpenAtHoldEnd) / 2 * r.HoldSec
}

// perStreamSecond is what the streams added over the hold to a rate
// measured in both windows (hold less baseline, per second), per open
// stream: sec are CPU seconds, the result µs per stream-second.
func (r SSEResult) perStreamSecond(baseline, hold float64) float64 {
	open := float64(r.OpenAtHoldStart+r.OpenAtHoldEnd) / 2
	if open == 0 || r.HoldSec == 0 || r.BaselineSec == 0 {
		return 0
	}
	return (hold/r.HoldSec - baseline/r.BaselineSec) * 1e6 / open
}

// ServerMicrosPerStreamSecond and RedisMicrosPerStreamSecond are the
// server's and Redis's CPU an open stream costs per second (the hold less
// the pipeline alone); ClientMicrosPerStreamSecond the client process's.
func (r SSEResult) ServerMicrosPerStreamSecond() float64 {
	return r.perStreamSecond(r.BaselineServerCPUSec, r.HoldServerCPUSec)
}
func (r SSEResult) RedisMicrosPerStreamSecond() float64 {
	return r.perStreamSecond(r.BaselineRedisCPUSec, r.HoldRedisCPUSec)
}
func (r SSEResult) ClientMicrosPerStreamSecond() float64 {
	if s := r.StreamSeconds(); s > 0 {
		return r.HoldClientCPUSec * 1e6 / s
	}
	return 0
}

// CommandsPerStreamSecond is the commands sent for the streams per open
// stream per second.
func (r SSEResult) CommandsPerStreamSecond() float64 {
	if s := r.StreamSeconds(); s > 0 {
		return r.HoldStreamSentPerSec * r.HoldSec / s
	}
	return 0
}

// sseMain runs the section alone (-sse-only), or the client process.
func sseMain(o options) error {
	if *sseClient != "" {
		return sseClientMain(*sseClient, *sseCampaign, *sseStreams)
	}
	addr := os.Getenv("COUPONQ_REDIS_ADDR")
	if addr == "" {
		return errors.New("COUPONQ_REDIS_ADDR must be set: scripts/redis.sh start, then . .cache/servers/redis/env")
	}
	res, err := runSSE(context.Background(), addr, *sseStreams, *sseHold)
	if err != nil {
		return err
	}
	section := sseMarkdown(Report{SSE: &res})
	fmt.Print(section)
	return writeSection(o, "SSE", res, section, spliceSSE)
}

// writeSection writes one section's part of the run's files only: res
// merged into results.json's field (the file -from renders the report
// from) and section put into the report where a full render puts it (by
// splice); every other byte stays as it was.
func writeSection(o options, field string, res any, section string, splice func(md, section string) string) error {
	path := filepath.Join(o.out, "results.json")
	if err := mergeField(path, field, res); err != nil {
		return err
	}
	md, err := os.ReadFile(o.md)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.md, []byte(splice(string(md), section)), 0o644); err != nil {
		return err
	}
	progress("merged into %s and wrote the section into %s", path, o.md)
	return nil
}

// mergeSSE sets the "SSE" field of the results file at path to res,
// leaving the rest of the file byte for byte.
func mergeSSE(path string, res SSEResult) error { return mergeField(path, "SSE", res) }

// mergeField sets the top-level field of the results file at path to res,
// leaving the rest of the file byte for byte.
func mergeField(path, field string, res any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	val, err := json.MarshalIndent(res, "  ", "  ")
	if err != nil {
		return err
	}
	if old, ok := top[field]; ok {
		i := bytes.LastIndex(b, old)
		if i < 0 {
			return fmt.Errorf("%s: cannot find its %s field", path, field)
		}
		b = slices.Concat(b[:i], val, b[i+len(old):])
	} else {
		body := bytes.TrimRight(b, " \t\r\n")
		if !bytes.HasSuffix(body, []byte("}")) {
			return fmt.Errorf("%s: not a JSON object", path)
		}
		body = bytes.TrimRight(body[:len(body)-1], " \t\r\n")
		b = slices.Concat(body, []byte(",\n  \""+field+"\": "), val, []byte("\n}"), b[len(bytes.TrimRight(b, " \t\r\n")):])
	}
	if !json.Valid(b) {
		return fmt.Errorf("%s: merging the %s result would not leave valid JSON", path, field)
	}
	return os.WriteFile(path, b, 0o644)
}

// sseHeading starts the section sseMarkdown renders.
const sseHeading = "## Waiting-room pages and status streams (Server-Sent Events)\n"

// sseOldHeading started the section in reports from before the page loads;
// a splice replaces that section too.
const sseOldHeading = "## Status streams (Server-Sent Events)\n"

// spliceSSE replaces the section in the report md (under its heading or
// its old one), or puts it where markdown puts it: before the memory and
// micro-benchmark sections (else at the end).
func spliceSSE(md, section string) string {
	if !strings.Contains(md, sseHeading) && strings.Contains(md, sseOldHeading) {
		return spliceSection(md, sseOldHeading, section, nil)
	}
	return spliceSection(md, sseHeading, section, []string{"## Memory per waiting entry\n", "## Micro-benchmarks\n"})
}

// spliceSection replaces the section that starts with heading in the
// report md (up to the next "## " heading), or, if md has none, puts it
// before the first of the headings in before that md has (what follows
// it in a full render), else at the end.
func spliceSection(md, heading, section string, before []string) string {
	if i := strings.Index(md, heading); i >= 0 {
		end := len(md)
		if j := strings.Index(md[i+len(heading):], "\n## "); j >= 0 {
			end = i + len(heading) + j + 1
		}
		return md[:i] + section + md[end:]
	}
	for _, next := range before {
		if i := strings.Index(md, next); i >= 0 {
			return md[:i] + section + md[i:]
		}
	}
	return md + "\n" + section
}

// countedService counts the Status calls the handler makes.
type countedService struct {
	httpapi.Service
	status atomic.Int64
}

func (s *countedService) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	s.status.Add(1)
	return s.Service.Status(ctx, campaign, user)
}

// countedStats counts LineStats calls.
type countedStats struct {
	couponq.LineStatser
	calls atomic.Int64
}

func (s *countedStats) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	s.calls.Add(1)
	return s.LineStatser.LineStats(ctx, campaign)
}

// soldOutClock notes when the issuer first marks the campaign sold out,
// and how many Status calls the handler had made by then.
type soldOutClock struct {
	*redisline.Queue
	status *atomic.Int64
	at     atomic.Int64
	calls  atomic.Int64
}

func (r *soldOutClock) MarkSoldOut(ctx context.Context, campaign string) error {
	if r.at.CompareAndSwap(0, time.Now().UnixNano()) {
		r.calls.Store(r.status.Load())
	}
	return r.Queue.MarkSoldOut(ctx, campaign)
}

// leaseLog records, after each tick that leased, the time and how many
// entries were leased in all: the head is then that count plus one.
type leaseLog struct {
	mu    sync.Mutex
	at    []int64
	total []int64
	sum   int64
}

func (l *leaseLog) onTick(ev dispatch.TickEvent) {
	if ev.Leased == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sum += int64(ev.Leased - ev.Failed)
	l.at, l.total = append(l.at, time.Now().UnixNano()), append(l.total, l.sum)
}

// movedAt returns when the head reached head: the end of the first tick
// after which it was there; false if none was logged.
func (l *leaseLog) movedAt(head int64) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearch(l.total, head-1)
	if i == len(l.total) {
		return 0, false
	}
	return l.at[i], true
}

// sseClientReport is one line the client process writes.
type sseClientReport struct {
	Type string // pages, ready, hold, ended
	// pages: the page loads (Loaded, Failed, Sec) and the assets
	Loaded, Assets, AssetsFailed int
	AssetBytes                   int64
	States                       map[string]int
	P50ms, P99ms, MaxMs          float64
	Error                        string // the first failure's, if any
	// ready, and pages
	Opened, Failed int
	Sec            float64
	// hold
	Events, GotEvent, OpenAtStart, OpenAtEnd int
	Heads                                    [][2]int64 // {head, received at (ns)} of position changes
	// ended
	Issued, Rejected, Broken int
	LastFinal                int64 // when the last final event arrived (ns)
}

// runSSE runs the section against the Redis at addr.
func runSSE(ctx context.Context, addr string, n int, hold time.Duration) (SSEResult, error) {
	res := SSEResult{Streams: n, WarmUsers: sseWarmUsers, Stock: sseStock, BatchSize: sseBatch,
		IntervalMs: sseInterval.Milliseconds(), PollMs: time.Second.Milliseconds()}
	if err := raiseNofile(); err != nil {
		return res, err
	}
	prefix := fmt.Sprintf("benchsse%d", time.Now().Unix())
	// Three clients: the pipeline's (admission, scheduler, issuer), the
	// stream handler's, and one for INFO.
	pipeRDB := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 300})
	streamRDB := redis.NewClient(&redis.Options{Addr: addr, PoolSize: sseStreamPool})
	b := &backends{rdb: redis.NewClient(&redis.Options{Addr: addr}), prefix: prefix}
	defer func() {
		b.dropPrefix(context.Background(), prefix)
		_ = pipeRDB.Close()
		_ = streamRDB.Close()
		_ = b.rdb.Close()
	}()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return res, fmt.Errorf("redis: %w", err)
	}
	pipeCmds, streamCmds := countCommands(pipeRDB), countCommands(streamRDB)

	c := couponq.Campaign{ID: prefix + "-sse", Stock: sseStock, BatchSize: sseBatch, Interval: sseInterval}
	registry, err := memline.NewRegistry(c)
	if err != nil {
		return res, err
	}
	catalog, err := catalog.NewCache(registry, catalog.CacheConfig{})
	if err != nil {
		return res, err
	}
	pipeQ, err := redisline.New(redisline.Config{Client: pipeRDB, Prefix: prefix})
	if err != nil {
		return res, err
	}
	streamQ, err := redisline.New(redisline.Config{Client: streamRDB, Prefix: prefix})
	if err != nil {
		return res, err
	}
	admitSvc, err := admission.New(admission.Config{Catalog: catalog, Queue: pipeQ})
	if err != nil {
		return res, err
	}
	streamSvc, err := admission.New(admission.Config{Catalog: catalog, Queue: streamQ})
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := admitUsers(ctx, admitSvc, c.ID, "w", sseWarmUsers); err != nil {
		return res, err
	}
	if err := admitUsers(ctx, admitSvc, c.ID, "s", n); err != nil {
		return res, err
	}
	progress("   admitted %d + %d users in %s", sseWarmUsers, n, time.Since(start).Round(time.Millisecond))

	// The pipeline: scheduler → in-memory transport → issuer → in-memory Store.
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	if err != nil {
		return res, err
	}
	svc, stats := &countedService{Service: streamSvc}, &countedStats{LineStatser: streamQ}
	marks := &soldOutClock{Queue: pipeQ, status: &svc.status}
	iss, err := issuing.New(issuing.Config{Consumer: transport, Store: memory.NewStore(), Catalog: catalog, Recorder: marks})
	if err != nil {
		return res, err
	}
	leases := &leaseLog{}
	th, err := newMover(c, pipeQ, transport, lock.NewMemory(), leases.onTick)
	if err != nil {
		return res, err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if err := iss.Start(runCtx); err != nil {
		return res, err
	}
	defer func() { _ = iss.Stop(context.Background()) }()
	if err := th.Start(runCtx); err != nil {
		return res, err
	}
	defer func() { _ = th.Stop(context.Background()) }()

	// The public handler, its line and status reads on their own client.
	h, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), Stats: stats, Catalog: catalog,
		StreamMaxPerAddr: -1}) // every stream comes from the one client process
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // ends the streams too
		h.Close()
	}()

	// The pipeline alone, from half an Interval after its first move (one
	// Interval after the mover's start), so the window holds whole ticks.
	first, err := th.waitFirstMove(10 * time.Second)
	if err != nil {
		return res, err
	}
	time.Sleep(time.Until(first.Add(sseInterval / 2)))
	win, err := b.openWindow(ctx, pipeCmds, streamCmds)
	if err != nil {
		return res, err
	}
	time.Sleep(sseBaseline)
	if err := win.close(ctx); err != nil {
		return res, err
	}
	res.BaselineSec, res.BaselineExecPerSec = win.sec, win.server
	res.BaselineServerCPUSec, res.BaselineRedisCPUSec = win.selfCPU, win.redisCPU
	res.BaselinePipelineSentPerSec = float64(win.sent[0]) / win.sec
	progress("   baseline, no stream: Redis executed %.0f/s, pipeline sent %.0f/s", res.BaselineExecPerSec, res.BaselinePipelineSentPerSec)

	heap0, gor0 := memNow()
	res.HeapBeforeMiB, res.RSSBeforeMiB, res.GoroutinesBefore = mib(heap0), mib(rssBytes()), gor0

	// The clients, in their own process: first the pages, in a window of
	// their own, then (on "open") the streams.
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, self, "-sse-client", "http://"+ln.Addr().String(), "-sse-campaign", c.ID,
		"-sse-streams", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	toChild, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	fromChild, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	status0 := svc.status.Load()
	if win, err = b.openWindow(ctx, pipeCmds, streamCmds); err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() { _ = toChild.Close(); _ = cmd.Wait() }()
	kill := time.AfterFunc(hold+3*time.Minute, func() { _ = cmd.Process.Kill() }) // a stuck client ends the run
	defer kill.Stop()
	lines := bufio.NewScanner(fromChild)
	lines.Buffer(make([]byte, 1<<20), 256<<20)
	next := func(want string) (sseClientReport, error) {
		for lines.Scan() {
			var r sseClientReport
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				return r, fmt.Errorf("sse client: %w: %.200s", err, lines.Text())
			}
			if r.Type == want {
				return r, nil
			}
		}
		return sseClientReport{}, fmt.Errorf("sse client ended before %q: %v", want, lines.Err())
	}
	pages, err := next("pages")
	if err != nil {
		return res, err
	}
	if err := win.close(ctx); err != nil {
		return res, err
	}
	res.PageStatusCalls = svc.status.Load() - status0
	res.PagesLoaded, res.PagesFailed, res.PageStates, res.PagesSec = pages.Loaded, pages.Failed, pages.States, pages.Sec
	res.PageLoadP50ms, res.PageLoadP99ms, res.PageLoadMaxMs = pages.P50ms, pages.P99ms, pages.MaxMs
	res.AssetsLoaded, res.AssetsFailed, res.AssetBytes = pages.Assets, pages.AssetsFailed, pages.AssetBytes
	if loads := pages.Loaded + pages.Failed; loads > 0 {
		res.PageSentPerLoad = float64(win.sent[1]) / float64(loads)
		res.PageSentPerLoadByCommand = perSec(win.names[1], float64(loads))
	}
	firstFail := ""
	if pages.Error != "" {
		firstFail = ", the first: " + pages.Error
	}
	progress("   %d waiting-room pages loaded in %.1f s (%d failed%s; rendered %s), assets %d (%d failed): the handler sent %.2f Redis commands a page load (%s), %d Status calls in all",
		res.PagesLoaded, res.PagesSec, res.PagesFailed, firstFail, pageStates(res.PageStates), res.AssetsLoaded, res.AssetsFailed,
		res.PageSentPerLoad, byCommand(res.PageSentPerLoadByCommand), res.PageStatusCalls)
	heapP, _ := memNow()
	res.HeapPagesMiB, res.RSSPagesMiB = mib(heapP), mib(rssBytes())
	if _, err := io.WriteString(toChild, "open\n"); err != nil {
		return res, err
	}
	ready, err := next("ready")
	if err != nil {
		return res, err
	}
	res.OpenSec, res.OpenFail = ready.Sec, ready.Failed
	progress("   %d streams open in %.1f s (%d failed)", ready.Opened, ready.Sec, ready.Failed)
	heap1, gor1 := memNow()
	res.HeapAfterMiB, res.RSSAfterMiB, res.GoroutinesAfter = mib(heap1), mib(rssBytes()), gor1

	// The hold.
	status0, stats0 := svc.status.Load(), stats.calls.Load()
	if win, err = b.openWindow(ctx, pipeCmds, streamCmds); err != nil {
		return res, err
	}
	holdStart := time.Now()
	_, client0, _ := procStat(cmd.Process.Pid)
	time.Sleep(hold)
	_, client1, _ := procStat(cmd.Process.Pid)
	if err := win.close(ctx); err != nil {
		return res, err
	}
	res.HoldServerCPUSec, res.HoldRedisCPUSec, res.HoldClientCPUSec = win.selfCPU, win.redisCPU, client1-client0
	holdEnd := time.Now()
	status1, stats1 := svc.status.Load(), stats.calls.Load()
	res.HoldSec, res.HoldExecPerSec = win.sec, win.server
	res.HoldPipelineSentPerSec = float64(win.sent[0]) / win.sec
	res.HoldStreamSentPerSec, res.HoldStreamSent = float64(win.sent[1])/win.sec, perSec(win.names[1], win.sec)
	res.HoldStatusPerSec = float64(status1-status0) / win.sec
	res.HoldLineStatsPerSec = float64(stats1-stats0) / win.sec
	if _, err := fmt.Fprintf(toChild, "window %d %d\n", holdStart.UnixNano(), holdEnd.UnixNano()); err != nil {
		return res, err
	}
	held, err := next("hold")
	if err != nil {
		return res, err
	}
	res.GotEvent, res.OpenAtHoldStart, res.OpenAtHoldEnd = held.GotEvent, held.OpenAtStart, held.OpenAtEnd
	res.EventsPerSec = float64(held.Events) / holdEnd.Sub(holdStart).Seconds()
	var lat []float64
	for _, hr := range held.Heads {
		if at, ok := leases.movedAt(hr[0]); ok && hr[1] >= at {
			lat = append(lat, float64(hr[1]-at)/1e6)
		}
	}
	slices.Sort(lat)
	res.LatencySamples = len(lat)
	if len(lat) > 0 {
		res.LatencyMinMs, res.LatencyP50ms = lat[0], lat[len(lat)/2]
		res.LatencyP99ms, res.LatencyMaxMs = lat[len(lat)*99/100], lat[len(lat)-1]
	}
	progress("   %s", sseLine(res))

	// The tail: the stock runs out and every stream ends with its outcome.
	ended, err := next("ended")
	if err != nil {
		return res, err
	}
	res.Issued, res.Rejected, res.Broken = ended.Issued, ended.Rejected, ended.Broken
	res.SoldOutStatus = -1
	if at := marks.at.Load(); at > 0 {
		res.SoldOutStatus = svc.status.Load() - marks.calls.Load()
		res.LastFinalSec = max(float64(ended.LastFinal-at)/1e9, 0)
	}
	progress("   every stream ended: %d issued, %d rejected, %d broken; from the sold-out mark: last final event %.2f s later, %d Status calls",
		res.Issued, res.Rejected, res.Broken, res.LastFinalSec, res.SoldOutStatus)
	_, _ = io.WriteString(toChild, "quit\n")
	return res, nil
}

// admitUsers admits n users named prefix0..prefix{n-1}, 200 at a time.
func admitUsers(ctx context.Context, svc *admission.Service, campaign, prefix string, n int) error {
	var next atomic.Int64
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := svc.Admit(ctx, couponq.Request{Campaign: campaign, User: prefix + strconv.FormatInt(i, 10)}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// raiseNofile lifts the open-files limit to its hard maximum.
func raiseNofile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return nil
}

// rssBytes is this process's resident set size (VmRSS).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sseClientMain is the client process: as a browser would, it loads the
// waiting-room page's assets once, then the page of each stream user (s0,
// s1, ...), and reports the loads; on "open" it opens one stream per user,
// reports when all are open, then on "window START END" what arrived in
// that window, then when every stream has ended; "quit" or the end of its
// input ends it.
func sseClientMain(base, campaign string, n int) error {
	if err := raiseNofile(); err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	report := func(r sseClientReport) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(r)
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: -1, DisableCompression: true, ResponseHeaderTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := bufio.NewScanner(os.Stdin)

	report(ssePageLoads(ctx, client, base, campaign, n))
	for {
		if !in.Scan() {
			return in.Err() // the bench process is gone
		}
		if in.Text() == "open" {
			break
		}
	}

	url := base + "/campaigns/" + campaign + "/entries/me/events"
	streams := make([]*sseClientStream, n)
	var opened, failed, endedCount atomic.Int64
	allEnded := make(chan struct{})
	sem := make(chan struct{}, sseOpenParallel)
	var openWG, runWG sync.WaitGroup
	start := time.Now()
	for i := range streams {
		s := &sseClientStream{}
		streams[i] = s
		openWG.Add(1)
		runWG.Go(func() {
			sem <- struct{}{}
			first := sync.OnceFunc(func() { <-sem; openWG.Done() })
			defer first()
			defer func() {
				if endedCount.Add(1) == int64(n) {
					close(allEnded)
				}
			}()
			if err := s.run(ctx, client, url, "s"+strconv.Itoa(i), first); err != nil && s.events.Load() == 0 {
				failed.Add(1)
			}
		})
	}
	openWG.Wait()
	for _, s := range streams {
		if s.events.Load() > 0 {
			opened.Add(1)
		}
	}
	report(sseClientReport{Type: "ready", Opened: int(opened.Load()), Failed: int(failed.Load()), Sec: time.Since(start).Seconds()})

	go func() {
		<-allEnded
		var r sseClientReport
		r.Type = "ended"
		for _, s := range streams {
			s.mu.Lock()
			switch s.final {
			case "issued":
				r.Issued++
			case "rejected":
				r.Rejected++
			default:
				r.Broken++
			}
			r.LastFinal = max(r.LastFinal, s.finalAt)
			s.mu.Unlock()
		}
		report(r)
	}()
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "window":
			from, _ := strconv.ParseInt(f[1], 10, 64)
			to, _ := strconv.ParseInt(f[2], 10, 64)
			r := sseClientReport{Type: "hold"}
			for _, s := range streams {
				s.mu.Lock()
				if len(s.log) > 0 {
					r.GotEvent++
				}
				if s.endedAt == 0 || s.endedAt > from {
					r.OpenAtStart++
				}
				if s.endedAt == 0 || s.endedAt > to {
					r.OpenAtEnd++
				}
				for _, ev := range s.log {
					if ev.at >= from && ev.at <= to {
						r.Events++
						if ev.head > 0 {
							r.Heads = append(r.Heads, [2]int64{ev.head, ev.at})
						}
					}
				}
				s.mu.Unlock()
			}
			report(r)
		case len(f) == 1 && f[0] == "quit":
			cancel()
			runWG.Wait()
			return nil
		}
	}
	cancel()
	runWG.Wait()
	return nil
}

// sseWaitAssets are the waiting-room page's assets, under {base}/wait/.
var sseWaitAssets = []string{"wait.js", "client.js", "wait.css", "theme.css"}

// ssePageLoads loads the page's assets once, then user s{i}'s waiting-room
// page for each i < n, sseOpenParallel at once, and reports them ("pages").
func ssePageLoads(ctx context.Context, client *http.Client, base, campaign string, n int) sseClientReport {
	r := sseClientReport{Type: "pages", States: map[string]int{}}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		r.Failed++
		if r.Error == "" {
			r.Error = err.Error()
		}
	}
	get := func(url, user string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return 0, nil, err
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	start := time.Now()
	for _, name := range sseWaitAssets {
		code, b, err := get(base+"/wait/"+name, "")
		if err != nil || code != http.StatusOK || len(b) == 0 {
			r.AssetsFailed++
			continue
		}
		r.Assets++
		r.AssetBytes += int64(len(b))
	}
	pageURL := base + "/campaigns/" + campaign + "/wait"
	ms := make([]float64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(sseOpenParallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				user := "s" + strconv.Itoa(i)
				t0 := time.Now()
				code, b, err := get(pageURL, user)
				ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("%d %.200s", code, b)
				}
				var state string
				if err == nil {
					state, err = sseCheckPage(b)
				}
				if err != nil {
					fail(fmt.Errorf("%s: %w", user, err))
					continue
				}
				mu.Lock()
				r.Loaded++
				r.States[state]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.Sec = time.Since(start).Seconds()
	if n > 0 {
		slices.Sort(ms)
		r.P50ms, r.P99ms, r.MaxMs = ms[n/2], ms[n*99/100], ms[n-1]
	}
	return r
}

// ssePageMain is the waiting-room page's root element's opening tag, and
// ssePageAttr the attributes sseCheckPage reads in it.
var (
	ssePageMain = regexp.MustCompile(`<main\b[^>]*\bid="couponq-wait"[^>]*>`)
	ssePageAttr = map[string]*regexp.Regexp{
		"data-state":  regexp.MustCompile(`\sdata-state="([^"]*)"`),
		"data-status": regexp.MustCompile(`\sdata-status="([^"]*)"`),
	}
)

// sseCheckPage checks a waiting-room page shows its user's place in the
// line, and returns the state it was rendered in: its root element's
// data-state is waiting (or beyond, a place past the stock that remains),
// and the status it carries for the script (data-status) is waiting. (Every
// page holds a section per state, each with its data-state, so only the
// root's says which the user is in.)
func sseCheckPage(page []byte) (string, error) {
	tag := ssePageMain.Find(page)
	if tag == nil {
		return "", errors.New("no waiting-room element in the page")
	}
	attr := func(name string) string {
		m := ssePageAttr[name].FindSubmatch(tag)
		if m == nil {
			return ""
		}
		return html.UnescapeString(string(m[1]))
	}
	state := attr("data-state")
	if state != "waiting" && state != "beyond" {
		return state, fmt.Errorf("the page is in state %q, not waiting", state)
	}
	var st httpapi.StatusResponse
	if err := json.Unmarshal([]byte(attr("data-status")), &st); err != nil {
		return state, fmt.Errorf("the page's status: %w", err)
	}
	if st.State != string(couponq.StateWaiting) || st.Entry <= 0 {
		return state, fmt.Errorf("the page's status is %q (entry %d), not waiting", st.State, st.Entry)
	}
	return state, nil
}

// pageStates lists the states pages were rendered in, by count.
func pageStates(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	names := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, s := range names {
		parts[i] = fmt.Sprintf("%s %d", s, m[s])
	}
	return strings.Join(parts, ", ")
}

// sseClientStream is one stream of the client process.
type sseClientStream struct {
	events  atomic.Int64
	mu      sync.Mutex
	log     []sseClientEvent
	final   string // issued or rejected, once heard
	finalAt int64
	endedAt int64
}

type sseClientEvent struct {
	at   int64 // received (ns)
	head int64 // for a position change of a waiting entry: the head it implies; else 0
}

// run reads one user's stream to its end; opened is called after its first
// event (or when it fails before one).
func (s *sseClientStream) run(ctx context.Context, client *http.Client, url, user string, opened func()) error {
	defer func() {
		s.mu.Lock()
		s.endedAt = time.Now().UnixNano()
		s.mu.Unlock()
	}()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-User", user)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %d %s", user, resp.StatusCode, b)
	}
	r := bufio.NewReaderSize(resp.Body, 1024)
	var lastPos int64 = -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		now := time.Now().UnixNano()
		var st httpapi.StatusResponse
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		ev := sseClientEvent{at: now}
		if st.State == "waiting" && lastPos >= 0 && st.Position != lastPos {
			ev.head = st.Entry - st.Position + 1
		}
		if st.State == "waiting" {
			lastPos = st.Position
		}
		s.mu.Lock()
		s.log = append(s.log, ev)
		if couponq.State(st.State).Terminal() {
			s.final, s.finalAt = st.State, now
		}
		s.mu.Unlock()
		if s.events.Add(1) == 1 {
			opened()
		}
	}
}

func sseLine(r SSEResult) string {
	return fmt.Sprintf("hold %.0f s, %d streams: Redis executed %.0f/s (baseline %.0f/s), stream client sent %.1f/s, Status %.1f/s, LineStats %.2f/s, %.0f events/s, head→event p50 %.0f ms p99 %.0f ms, heap +%.1f MiB, RSS +%.1f MiB",
		r.HoldSec, r.Streams, r.HoldExecPerSec, r.BaselineExecPerSec, r.HoldStreamSentPerSec, r.HoldStatusPerSec,
		r.HoldLineStatsPerSec, r.EventsPerSec, r.LatencyP50ms, r.LatencyP99ms, r.HeapAfterMiB-r.HeapBeforeMiB, r.RSSAfterMiB-r.RSSBeforeMiB)
}

// sseMarkdown renders the section; "" if the run has none.
func sseMarkdown(rep Report) string {
	r := rep.SSE
	if r == nil {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	perStream := func(before, after float64) float64 { return (after - before) * 1024 / float64(max(r.GotEvent, 1)) }
	pages := r.PagesLoaded+r.PagesFailed > 0 // runs from before the page loads have none
	w(sseHeading + "\n")
	w("This section alone: `scripts/bench.sh -sse-only` (needs only Redis; it rewrites this section and its part\n")
	w("of results.json, nothing else; `-sse-streams` and `-sse-hold` vary it).\n\n")
	if pages {
		w("Each waiting user has the waiting-room page open: `GET .../campaigns/{campaign}/wait`, rendered for the user by\n")
		w("the server from one Status read (the campaign comes from the catalog cache, no Redis), whose script then holds\n")
		w("the status stream `GET .../entries/me/events` open instead of polling `GET .../entries/me`. One campaign, stock\n")
	} else {
		w("Users who would poll `GET .../entries/me` hold `GET .../entries/me/events` open instead. One campaign, stock\n")
	}
	w("%d, its line in Redis, drained at %d per %d ms by a scheduler of its own → the in-memory transport → an issuer\n", r.Stock, r.BatchSize, r.IntervalMs)
	w("with the in-memory Store; the public handler on a loopback port, reading the Redis line's numbers and the\n")
	if pages {
		w("campaign through a catalog cache, polling the line every %d ms. %d users are admitted first, then %d more, one page\n", r.PollMs, r.WarmUsers, r.Streams)
		w("each. The pipeline runs alone for %.0f s (the baseline); then a second process (this binary with `-sse-client`)\n", r.BaselineSec)
		w("does what their browsers would: it loads the page's assets once, as a browser keeps them and revalidates\n")
		w("them by ETag (`%s`, embedded in the handler), then the %d users' pages, %d at once, a page\n",
			strings.Join(sseWaitAssets, "`, `"), r.Streams, sseOpenParallel)
		w("counting as loaded if it is a 200 showing the user's place in the line (the page in state `waiting`, or `beyond`\n")
		w("for a place past the stock that remains, carrying the user's `waiting` status for its script); then it opens\n")
		w("the %d streams, %d connecting at once, and they are held for %.0f s while the line drains. Server and\n", r.Streams, sseOpenParallel, r.HoldSec)
	} else {
		w("campaign through a catalog cache, polling the line every %d ms. %d users are admitted first, then %d more, one stream\n", r.PollMs, r.WarmUsers, r.Streams)
		w("each. The pipeline runs alone for %.0f s (the baseline); then a second process (this binary with `-sse-client`)\n", r.BaselineSec)
		w("opens the %d streams, %d connecting at once, and they are held for %.0f s while the line drains (this run\n", r.Streams, sseOpenParallel, r.HoldSec)
		w("predates the page loads: its clients opened the streams without loading the page). Server and\n")
	}
	w("clients are separate processes, so the memory below is the server's alone; they share the box and Redis with\n")
	w("whatever else runs there. The handler's Status and LineStats calls go through a Redis client of their own\n")
	if pages {
		w("(a pool of %d), so *sent per page load* and *sent for the streams* are exactly what the pages and their\n", sseStreamPool)
		w("streams cost in commands; *Redis executed* is the server's `total_commands_processed` per second, Lua scripts'\n")
		w("inner commands included (the pipeline's lease and record scripts count in full, and so do the Status\n")
		w("reads'), and counts anything else using that Redis.\n\n")
	} else {
		w("(a pool of %d), so *sent for the streams* is exactly what the streams cost in commands; *Redis executed* is the\n", sseStreamPool)
		w("server's `total_commands_processed` per second, Lua scripts' inner commands included (the pipeline's lease\n")
		w("and record scripts count in full), and counts anything else using that Redis.\n\n")
	}
	w("| measure | result |\n|---|---:|\n")
	if pages {
		w("| waiting-room pages loaded (200, the user's place in the line) / failed | %d / %d |\n", r.PagesLoaded, r.PagesFailed)
		w("| the pages' states as rendered | %s |\n", pageStates(r.PageStates))
		w("| time to load them all; a page load's p50 / p99 / max | %.1f s; %.1f / %.1f / %.1f ms |\n",
			r.PagesSec, r.PageLoadP50ms, r.PageLoadP99ms, r.PageLoadMaxMs)
		w("| assets loaded once by the client process / failed | %d / %d (%.1f KiB) |\n", r.AssetsLoaded, r.AssetsFailed, float64(r.AssetBytes)/1024)
		w("| Redis commands sent per page load (%s; %d Status calls in all) | %.2f |\n",
			byCommand(r.PageSentPerLoadByCommand), r.PageStatusCalls, r.PageSentPerLoad)
	}
	w("| streams opened (≥ 1 event) / failed | %d / %d |\n", r.GotEvent, r.OpenFail)
	w("| time to open them all | %.1f s |\n", r.OpenSec)
	w("| open at the start / end of the hold (the others heard their outcome) | %d / %d |\n", r.OpenAtHoldStart, r.OpenAtHoldEnd)
	w("| Redis executed/s: pipeline alone (baseline) / with the streams (hold) | %.0f / %.0f |\n", r.BaselineExecPerSec, r.HoldExecPerSec)
	w("| commands/s sent by the pipeline: baseline / hold | %.1f / %.1f |\n", r.BaselinePipelineSentPerSec, r.HoldPipelineSentPerSec)
	if pages {
		w("| **commands/s sent for the streams: the cost of the %d open pages** (%s) | **%.1f** |\n",
			r.Streams, byCommand(r.HoldStreamSent), r.HoldStreamSentPerSec)
	} else {
		w("| commands/s sent for the streams (%s) | %.1f |\n", byCommand(r.HoldStreamSent), r.HoldStreamSentPerSec)
	}
	w("| of which Status calls/s (users who left the line) / LineStats calls/s | %.1f / %.2f |\n", r.HoldStatusPerSec, r.HoldLineStatsPerSec)
	w("| status events delivered/s | %.0f |\n", r.EventsPerSec)
	w("| head moved → event received, min / p50 / p99 / max (%d events) | %.0f / %.0f / %.0f / %.0f ms |\n",
		r.LatencySamples, r.LatencyMinMs, r.LatencyP50ms, r.LatencyP99ms, r.LatencyMaxMs)
	w("| server heap in use: before / with the streams | %.1f / %.1f MiB (%.1f KiB a stream) |\n",
		r.HeapBeforeMiB, r.HeapAfterMiB, perStream(r.HeapBeforeMiB, r.HeapAfterMiB))
	w("| server RSS: before / with the streams | %.1f / %.1f MiB (%.1f KiB a stream) |\n",
		r.RSSBeforeMiB, r.RSSAfterMiB, perStream(r.RSSBeforeMiB, r.RSSAfterMiB))
	if pages && r.RSSPagesMiB > 0 {
		w("| server heap in use / RSS after the page loads, before the streams | %.1f / %.1f MiB |\n", r.HeapPagesMiB, r.RSSPagesMiB)
	}
	w("| server goroutines: before / with the streams | %d / %d |\n", r.GoroutinesBefore, r.GoroutinesAfter)
	if r.HasCPU() {
		w("| CPU per open stream a second (hold less baseline, per stream open): server / Redis µs; the client process's | %.2f / %.2f; %.2f |\n",
			r.ServerMicrosPerStreamSecond(), r.RedisMicrosPerStreamSecond(), r.ClientMicrosPerStreamSecond())
	}
	w("\n")
	if pages {
		w("So **%d open waiting-room pages cost Redis %.1f commands/s**: the hold's *sent for the streams*, since once\n", r.Streams, r.HoldStreamSentPerSec)
		w("loaded an open page's only traffic is its stream. Loading the page adds one Status read (%.2f commands sent\n", r.PageSentPerLoad)
		w("per load over the page-load phase, its assets included), once, and nothing per second beyond the stream's\n")
		w("poll: one LineStats per campaign per poll (every %d ms), plus one Status read per user who left the line since\n", r.PollMs)
		w("the last (and, as without the page, the stream's own Status read when it connects). Those Status reads follow\n")
		w("the drain rate, not the crowd: at most %d a second here, as the open pages' users reach the head and leave\n", int64(r.BatchSize)*1000/max(r.IntervalMs, 1))
		w("the line, so the figure depends on how much of the hold they spend doing so, not on how many pages are open.\n")
	}
	w("Polling once a second instead would be %d Status calls/s for the same crowd. A stream holds two goroutines\n", r.Streams)
	w("(net/http's, which writes its events, and its background read) and net/http's buffers; the hub adds one\n")
	w("small struct, a channel and a timer. *head moved → event* runs from the end of the scheduler tick that moved\n")
	w("the line's head to the client parsing the new position: the poll and the scheduler both tick once a second,\n")
	w("so the minimum is their phase difference, and the spread above it is the fan-out to every stream (and any\n")
	w("late poll).\n\n")
	w("After the hold the line drains on until the stock runs out, and every stream ended with its outcome (%d issued,\n", r.Issued)
	w("%d rejected, %d without one). ", r.Rejected, r.Broken)
	if r.SoldOutStatus < 0 {
		w("The campaign did not sell out in this run.\n\n")
		return b.String()
	}
	w("From the sold-out mark, the last final event arrived %.2f s later, and the handler made %d Status\n", r.LastFinalSec, r.SoldOutStatus)
	w("calls meanwhile: few means a poll saw the mark while the rest of the line still waited and told every waiting\n")
	w("stream `rejected/sold_out` from the line's counts; had the scheduler resolved the line in bulk before a poll saw\n")
	w("the mark, each stream still open would have been read once (the exception the package doc names).\n\n")
	return b.String()
}
