package prom_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) {
	// go-redis keeps a pool reaper briefly alive after Close (the Redis
	// Cluster seam test).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

func newMetrics(t *testing.T, cfg prom.Config) (*prom.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	m, err := prom.New(cfg)
	require.NoError(t, err)
	return m, reg
}

// newNode returns an in-memory node observed by m, with the campaigns cs.
// It is not started: admissions wait in their lines.
func newNode(t *testing.T, m *prom.Metrics, cs ...couponq.Campaign) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{Observer: m})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	for _, c := range cs {
		_, err := n.CreateCampaign(context.Background(), c)
		require.NoError(t, err)
	}
	return n
}

func TestNewValidates(t *testing.T) {
	_, err := prom.New(prom.Config{})
	require.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = prom.New(prom.Config{Registerer: prometheus.NewRegistry(), MaxCampaigns: -1})
	require.ErrorIs(t, err, couponq.ErrInvalidConfig)

	reg := prometheus.NewRegistry()
	_, err = prom.New(prom.Config{Registerer: reg})
	require.NoError(t, err)
	_, err = prom.New(prom.Config{Registerer: reg})
	require.Error(t, err, "the same names twice in one registry")
	_, err = prom.New(prom.Config{Registerer: reg, Namespace: "other"})
	require.NoError(t, err, "another namespace does not collide, and the failed New unregistered what it had registered")
}

func TestAdmissions(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{})
	n := newNode(t, m, couponq.Campaign{ID: "c", Stock: 1}, couponq.Campaign{ID: "d", Stock: 5})
	ctx := context.Background()
	for _, r := range []couponq.Request{
		{Campaign: "c", User: "a"},
		{Campaign: "c", User: "a"},      // repeat
		{Campaign: "c", User: "b"},      // accepted: the line takes more than the stock
		{Campaign: "c", User: "bad id"}, // invalid user ID, known campaign
		{Campaign: "nope", User: "a"},   // unknown campaign
		{Campaign: "bad id", User: "a"}, // malformed campaign ID
		{Campaign: "d", User: "a"},
	} {
		_, _ = n.Admit(ctx, r)
	}
	m.OnAdmit(couponq.AdmitEvent{Campaign: "d", Err: fmt.Errorf("%w: x", couponq.ErrUnavailable)})
	m.OnAdmit(couponq.AdmitEvent{Campaign: "d", Err: errors.New("boom")})
	m.OnAdmit(couponq.AdmitEvent{Campaign: "d", Mode: couponq.ValidateFirst, Duration: time.Millisecond, LockWait: 3 * time.Millisecond})

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP couponq_admissions_total Admission attempts by campaign and outcome (accepted, repeat, or the refusal's code: sold_out, line_full, duplicate, closed, not_open, busy, unavailable, invalid_id, unknown_campaign, internal...).
# TYPE couponq_admissions_total counter
couponq_admissions_total{campaign="c",outcome="accepted"} 2
couponq_admissions_total{campaign="c",outcome="invalid_id"} 1
couponq_admissions_total{campaign="c",outcome="repeat"} 1
couponq_admissions_total{campaign="d",outcome="accepted"} 2
couponq_admissions_total{campaign="d",outcome="internal"} 1
couponq_admissions_total{campaign="d",outcome="unavailable"} 1
couponq_admissions_total{campaign="unknown",outcome="invalid_id"} 1
couponq_admissions_total{campaign="unknown",outcome="unknown_campaign"} 1
`), "couponq_admissions_total"))

	assert.Equal(t, 2, testutil.CollectAndCount(m.AdmissionDuration()), "one series per mode")
	assert.InDelta(t, 0.003, sampleSum(t, reg, "couponq_admission_lock_wait_seconds"), 1e-9)
}

func TestCampaignLabelBounded(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{MaxCampaigns: 2})
	for i := range 5 {
		id := fmt.Sprintf("c%d", i)
		m.OnAdmit(couponq.AdmitEvent{Campaign: id})
		m.OnTick(dispatch.TickEvent{Campaign: id, Leased: 1})
	}
	m.OnAdmit(couponq.AdmitEvent{Campaign: "c1"}) // keeps its slot
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP couponq_admissions_total Admission attempts by campaign and outcome (accepted, repeat, or the refusal's code: sold_out, line_full, duplicate, closed, not_open, busy, unavailable, invalid_id, unknown_campaign, internal...).
# TYPE couponq_admissions_total counter
couponq_admissions_total{campaign="c0",outcome="accepted"} 1
couponq_admissions_total{campaign="c1",outcome="accepted"} 2
couponq_admissions_total{campaign="other",outcome="accepted"} 3
# HELP couponq_scheduler_ticks_total Scheduler ticks by campaign.
# TYPE couponq_scheduler_ticks_total counter
couponq_scheduler_ticks_total{campaign="c0"} 1
couponq_scheduler_ticks_total{campaign="c1"} 1
couponq_scheduler_ticks_total{campaign="other"} 3
`), "couponq_admissions_total", "couponq_scheduler_ticks_total"))
}

func TestTicksAndIssues(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{Namespace: "shop"})
	m.OnTick(dispatch.TickEvent{Campaign: "c", Leased: 10, Failed: 2, Err: errors.New("x"), Duration: time.Millisecond})
	m.OnTick(dispatch.TickEvent{Campaign: "c", Leased: 4})
	m.OnTick(dispatch.TickEvent{Campaign: "c", Rested: true}) // leased nothing: not a batch
	e := couponq.Entry{Campaign: "c", User: "u", Number: 1}
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateIssued}, Attempts: 1, Duration: 20 * time.Millisecond})
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateIssued}, Attempts: 3, Duration: 30 * time.Millisecond})
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.CodeSoldOut}, Attempts: 1})
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.CodeFailed}}) // dead letter
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 12, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 11, Stock: 10}) // older, smaller: ignored
	m.OnOverIssue(issuer.OverIssue{Campaign: "d", Issued: 2, Stock: 2})   // not over

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP shop_scheduler_ticks_total Scheduler ticks by campaign.
# TYPE shop_scheduler_ticks_total counter
shop_scheduler_ticks_total{campaign="c"} 3
# HELP shop_scheduler_tick_errors_total Scheduler ticks that ended in an error (lease, dispatch, ack), by campaign.
# TYPE shop_scheduler_tick_errors_total counter
shop_scheduler_tick_errors_total{campaign="c"} 1
# HELP shop_moved_entries_total Entries moved from the line to the Dispatcher, by campaign.
# TYPE shop_moved_entries_total counter
shop_moved_entries_total{campaign="c"} 12
# HELP shop_dispatch_failed_entries_total Leased entries the Dispatcher did not take (returned to the line), by campaign.
# TYPE shop_dispatch_failed_entries_total counter
shop_dispatch_failed_entries_total{campaign="c"} 2
# HELP shop_issue_outcomes_total Entries decided by the issuer, by campaign and outcome (issued, sold_out, duplicate, failed).
# TYPE shop_issue_outcomes_total counter
shop_issue_outcomes_total{campaign="c",outcome="failed"} 1
shop_issue_outcomes_total{campaign="c",outcome="issued"} 2
shop_issue_outcomes_total{campaign="c",outcome="sold_out"} 1
# HELP shop_dead_letters_total Entries the issuer gave up on (dead-lettered, recorded as rejected/failed), by campaign.
# TYPE shop_dead_letters_total counter
shop_dead_letters_total{campaign="c"} 1
# HELP shop_over_issued_units Units issued past the campaign's stock (the highest count reported by the issuer); anything above 0 is a bug to page on.
# TYPE shop_over_issued_units gauge
shop_over_issued_units{campaign="c"} 2
`), "shop_scheduler_ticks_total", "shop_scheduler_tick_errors_total", "shop_moved_entries_total",
		"shop_dispatch_failed_entries_total", "shop_issue_outcomes_total", "shop_dead_letters_total", "shop_over_issued_units"))

	assert.Equal(t, uint64(2), sampleCount(t, reg, "shop_batch_size"))
	assert.InDelta(t, 14, sampleSum(t, reg, "shop_batch_size"), 1e-9)
	assert.Equal(t, uint64(3), sampleCount(t, reg, "shop_issue_attempts"), "the dead letter is not observed")
	assert.InDelta(t, 5, sampleSum(t, reg, "shop_issue_attempts"), 1e-9)
	assert.InDelta(t, 0.05, sampleSum(t, reg, "shop_issue_duration_seconds"), 1e-9)
	assert.Equal(t, 2.0, testutil.ToFloat64(m.OverIssued().WithLabelValues("c")))
}

// fakeLines is a node.Lines with set numbers, counting its calls and the
// most LineStats running at once.
type fakeLines struct {
	calls, running atomic.Int64
	maxRunning     atomic.Int64
	delay          time.Duration
	fail, listFail atomic.Bool

	mu    sync.Mutex
	ids   []string
	stats map[string]couponq.LineStats
}

var _ node.Lines = (*fakeLines)(nil)

func newFakeLines(ids ...string) *fakeLines {
	return &fakeLines{ids: ids, stats: map[string]couponq.LineStats{}}
}

func (f *fakeLines) set(id string, s couponq.LineStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats[id] = s
}

func (f *fakeLines) Campaigns(context.Context) ([]couponq.Campaign, error) {
	if f.listFail.Load() {
		return nil, errors.New("registry down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]couponq.Campaign, len(f.ids))
	for i, id := range f.ids {
		out[i] = couponq.Campaign{ID: id, Stock: 1}
	}
	return out, nil
}

func (f *fakeLines) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	f.calls.Add(1)
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRunning.Load()
		if n <= m || f.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return couponq.LineStats{}, ctx.Err()
		}
	}
	if f.fail.Load() {
		return couponq.LineStats{}, errors.New("redis down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats[campaign], nil
}

const lineHelp = `# HELP couponq_line_admitted Entries ever admitted: the last entry number (cached).
# TYPE couponq_line_admitted gauge
# HELP couponq_line_in_flight Entries handed downstream whose outcome is being decided (cached).
# TYPE couponq_line_in_flight gauge
# HELP couponq_line_issued Distinct entries recorded as issued (cached).
# TYPE couponq_line_issued gauge
# HELP couponq_line_sold_out 1 when the campaign is marked sold out (cached).
# TYPE couponq_line_sold_out gauge
# HELP couponq_line_waiting Entries waiting in the campaign's line (cached, see LineCacheTTL).
# TYPE couponq_line_waiting gauge
`

var lineNames = []string{"couponq_line_admitted", "couponq_line_in_flight", "couponq_line_issued", "couponq_line_sold_out", "couponq_line_waiting"}

func TestLineGaugesCached(t *testing.T) {
	lines := newFakeLines("c", "d")
	lines.set("c", couponq.LineStats{Admitted: 3, Waiting: 2, Issued: 1, SoldOut: true})
	m, reg := newMetrics(t, prom.Config{LineCacheTTL: time.Hour})
	m.ObserveLines(lines)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(lineHelp+`
couponq_line_admitted{campaign="c"} 3
couponq_line_admitted{campaign="d"} 0
couponq_line_in_flight{campaign="c"} 0
couponq_line_in_flight{campaign="d"} 0
couponq_line_issued{campaign="c"} 1
couponq_line_issued{campaign="d"} 0
couponq_line_sold_out{campaign="c"} 1
couponq_line_sold_out{campaign="d"} 0
couponq_line_waiting{campaign="c"} 2
couponq_line_waiting{campaign="d"} 0
`), lineNames...))
	assert.EqualValues(t, 2, lines.calls.Load())

	// More scrapes within the TTL read nothing, and serve the cached values.
	lines.set("d", couponq.LineStats{Admitted: 1, Waiting: 1})
	for range 5 {
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, lines.calls.Load(), "one LineStats per campaign per TTL, whatever the scrape rate")
	assert.Equal(t, 0.0, gaugeValue(t, reg, "couponq_line_admitted", "d"), "cached")
	assert.Equal(t, 1.0, gaugeValue(t, reg, "couponq_line_stats_refreshes_total", ""))
}

func TestLineGaugesRefreshAndErrors(t *testing.T) {
	lines := newFakeLines("a", "b")
	m, reg := newMetrics(t, prom.Config{LineCacheTTL: time.Nanosecond})
	m.ObserveLines(lines)
	lines.set("a", couponq.LineStats{Admitted: 1, Waiting: 1})
	assert.Equal(t, 1.0, gaugeValue(t, reg, "couponq_line_waiting", "a"))
	lines.set("a", couponq.LineStats{Admitted: 2, Waiting: 2})
	assert.Equal(t, 2.0, gaugeValue(t, reg, "couponq_line_waiting", "a"), "refreshed after the TTL")

	lines.fail.Store(true)
	snap := frozen(t, reg) // one scrape, one refresh
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_waiting", "a"), "a failed read keeps the previous values")
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_stats_errors_total", ""), "one per campaign")
	lines.fail.Store(false)
	lines.listFail.Store(true)
	snap = frozen(t, reg)
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_waiting", "a"), "a failed list keeps the previous snapshot")
	assert.Equal(t, 3.0, gaugeValue(t, snap, "couponq_line_stats_errors_total", ""))
}

func TestLineGaugesBounded(t *testing.T) {
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("c%02d", i))
	}
	lines := newFakeLines(ids...)
	lines.delay = 5 * time.Millisecond
	m, reg := newMetrics(t, prom.Config{MaxCampaigns: 20, StatsConcurrency: 3})
	m.ObserveLines(lines)
	var wg sync.WaitGroup
	for range 4 { // concurrent scrapes share one refresh
		wg.Go(func() {
			_, err := reg.Gather()
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.EqualValues(t, 20, lines.calls.Load(), "MaxCampaigns reads, once")
	assert.LessOrEqual(t, lines.maxRunning.Load(), int64(3), "StatsConcurrency")
	n, err := testutil.GatherAndCount(reg, "couponq_line_waiting")
	require.NoError(t, err)
	assert.Equal(t, 20, n)
}

func TestLineGaugesTimeout(t *testing.T) {
	lines := newFakeLines("a", "b", "c", "d")
	lines.delay = time.Hour
	m, reg := newMetrics(t, prom.Config{StatsTimeout: 20 * time.Millisecond, StatsConcurrency: 2})
	m.ObserveLines(lines)
	start := time.Now()
	n, err := testutil.GatherAndCount(reg, "couponq_line_waiting")
	require.NoError(t, err)
	assert.Zero(t, n, "no campaign read in time, none reported")
	assert.Less(t, time.Since(start), 5*time.Second, "a scrape is bounded by StatsTimeout")
	assert.EqualValues(t, 2, lines.calls.Load(), "campaigns not started in time are not read")
}

// Without ObserveLines there are no line metrics at all, whatever the hooks saw.
func TestNoLineGaugesWithoutLines(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{})
	m.OnAdmit(couponq.AdmitEvent{Campaign: "c"})
	m.OnTick(dispatch.TickEvent{Campaign: "c", Leased: 1})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		assert.False(t, strings.HasPrefix(mf.GetName(), "couponq_line_"), "%s without lines", mf.GetName())
	}
}

// A second ObserveLines replaces the first at the next scrape.
func TestObserveLinesReplaces(t *testing.T) {
	first, second := newFakeLines("a"), newFakeLines("b")
	first.set("a", couponq.LineStats{Waiting: 1})
	second.set("b", couponq.LineStats{Waiting: 7})
	m, reg := newMetrics(t, prom.Config{LineCacheTTL: time.Hour})
	m.ObserveLines(first)
	assert.Equal(t, 1.0, gaugeValue(t, reg, "couponq_line_waiting", "a"))
	m.ObserveLines(second)
	n, err := testutil.GatherAndCount(reg, "couponq_line_waiting")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the second's campaign")
	assert.Equal(t, 7.0, gaugeValue(t, reg, "couponq_line_waiting", "b"))
}

// TestScrape serves the registry over HTTP and scrapes it, as Prometheus
// would, with the metrics given to a node as its Observer.
func TestScrape(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{})
	n := newNode(t, m, couponq.Campaign{ID: "c", Stock: 1})
	for _, u := range []string{"a", "b", "a"} {
		_, err := n.Admit(context.Background(), couponq.Request{Campaign: "c", User: u})
		require.NoError(t, err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	require.NoError(t, testutil.ScrapeAndCompare(srv.URL, strings.NewReader(`
# HELP couponq_admissions_total Admission attempts by campaign and outcome (accepted, repeat, or the refusal's code: sold_out, line_full, duplicate, closed, not_open, busy, unavailable, invalid_id, unknown_campaign, internal...).
# TYPE couponq_admissions_total counter
couponq_admissions_total{campaign="c",outcome="accepted"} 2
couponq_admissions_total{campaign="c",outcome="repeat"} 1
# HELP couponq_line_waiting Entries waiting in the campaign's line (cached, see LineCacheTTL).
# TYPE couponq_line_waiting gauge
couponq_line_waiting{campaign="c"} 2
`), "couponq_admissions_total", "couponq_line_waiting"))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems, "names and help follow Prometheus conventions")
}

// The seam between the node and its metrics: a campaign of three sub-lines
// is counted the same by the admin API and by the scraped gauges, on the
// in-memory backend and on Redis Cluster (each sub-line in its own slot).
func TestShardedLineGaugesMatchAdmin(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		checkShardedGauges(t, node.Config{})
	})
	t.Run("redis-cluster", func(t *testing.T) {
		rdb := redistest.Cluster(t)
		backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: redistest.Prefix(t, rdb)})
		require.NoError(t, err)
		checkShardedGauges(t, node.Config{Backend: backend, Store: memory.NewStore()})
	})
}

func checkShardedGauges(t *testing.T, cfg node.Config) {
	const users = 300
	ctx := context.Background()
	m, reg := newMetrics(t, prom.Config{})
	cfg.Observer = m
	n, err := node.New(cfg)
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer func() { require.NoError(t, n.Stop(ctx)) }()

	id := fmt.Sprintf("sharded-%d", time.Now().UnixNano())
	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: id, Stock: 1000, Shards: 3, Paused: true})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < users; i += 10 {
				_, err := n.Admit(ctx, couponq.Request{Campaign: id, User: fmt.Sprintf("u%03d", i)})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())

	admin, err := n.AdminHandler(node.AdminConfig{Authorize: func(*http.Request) error { return nil }})
	require.NoError(t, err)
	adminSrv := httptest.NewServer(admin)
	defer adminSrv.Close()
	resp, err := adminSrv.Client().Get(adminSrv.URL + "/campaigns/" + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got struct {
		Shards   int   `json:"shards"`
		Admitted int64 `json:"admitted"`
		Waiting  int64 `json:"waiting"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, 3, got.Shards)
	assert.EqualValues(t, users, got.Admitted)
	assert.EqualValues(t, users, got.Waiting, "the admin API counts every sub-line")

	metricsSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metricsSrv.Close()
	require.NoError(t, testutil.ScrapeAndCompare(metricsSrv.URL, strings.NewReader(fmt.Sprintf(`
# HELP couponq_line_admitted Entries ever admitted: the last entry number (cached).
# TYPE couponq_line_admitted gauge
couponq_line_admitted{campaign=%[1]q} %[2]d
# HELP couponq_line_waiting Entries waiting in the campaign's line (cached, see LineCacheTTL).
# TYPE couponq_line_waiting gauge
couponq_line_waiting{campaign=%[1]q} %[3]d
`, id, got.Admitted, got.Waiting)), "couponq_line_admitted", "couponq_line_waiting"), "the gauges agree with the admin API")
}

func findFamily(t *testing.T, reg prometheus.Gatherer, name string) []*metricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []*metricFamily
	for _, mf := range mfs {
		if mf.GetName() == name {
			out = append(out, mf)
		}
	}
	require.Len(t, out, 1, name)
	return out
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, name, campaign string) float64 {
	t.Helper()
	for _, m := range findFamily(t, reg, name)[0].GetMetric() {
		if campaign == "" || labelValue(m, "campaign") == campaign {
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s{campaign=%q} not found", name, campaign)
	return 0
}

func sampleCount(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	return findFamily(t, reg, name)[0].GetMetric()[0].GetHistogram().GetSampleCount()
}

func sampleSum(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	return findFamily(t, reg, name)[0].GetMetric()[0].GetHistogram().GetSampleSum()
}

type metricFamily = dto.MetricFamily

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// frozen scrapes g once and returns a Gatherer serving that scrape.
func frozen(t *testing.T, g prometheus.Gatherer) prometheus.Gatherer {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil })
}

func TestStoreCalls(t *testing.T) {
	m, reg := newMetrics(t, prom.Config{})
	m.OnStoreCall(issuer.StoreCall{Entries: 1, Duration: 2 * time.Millisecond})
	m.OnStoreCall(issuer.StoreCall{Entries: 100, Duration: 16 * time.Millisecond})
	m.OnStoreCall(issuer.StoreCall{Entries: 100, Duration: time.Second, Err: errors.New("timeout")})
	for _, f := range findFamily(t, reg, "couponq_store_call_duration_seconds") {
		for _, s := range f.GetMetric() {
			switch labelValue(s, "result") {
			case "ok":
				assert.EqualValues(t, 2, s.GetHistogram().GetSampleCount())
				assert.InDelta(t, 0.018, s.GetHistogram().GetSampleSum(), 1e-9)
			case "error":
				assert.EqualValues(t, 1, s.GetHistogram().GetSampleCount())
			default:
				t.Errorf("unexpected result label %q", labelValue(s, "result"))
			}
		}
	}
	assert.InDelta(t, 201, sampleSum(t, reg, "couponq_store_call_entries"), 1e-9)
}
