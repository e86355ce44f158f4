package prom_test

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/issuer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMetrics(t *testing.T, cfg prom.Config) (*prom.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	m, err := prom.New(cfg)
	require.NoError(t, err)
	return m, reg
}

// service returns a Service over the in-memory queue with campaigns c and d.
func service(t *testing.T, m *prom.Metrics) (*admission.Service, *memline.Queue, *memline.Registry) {
	t.Helper()
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "c", Stock: 1}, couponq.Campaign{ID: "d", Stock: 5})
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q, OnAdmit: m.OnAdmit})
	require.NoError(t, err)
	return svc, q, cat
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
	svc, _, _ := service(t, m)
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
		_, _ = svc.Admit(ctx, r)
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
# HELP couponq_scheduler_ticks_total Throttle ticks by campaign.
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
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.ReasonSoldOut}, Attempts: 1})
	m.OnIssue(issuer.Event{Entry: e, Result: couponq.Result{State: couponq.StateRejected, Reason: couponq.ReasonFailed}}) // dead letter
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 12, Stock: 10})
	m.OnOverIssue(issuer.OverIssue{Campaign: "c", Issued: 11, Stock: 10}) // older, smaller: ignored
	m.OnOverIssue(issuer.OverIssue{Campaign: "d", Issued: 2, Stock: 2})   // not over

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP shop_scheduler_ticks_total Throttle ticks by campaign.
# TYPE shop_scheduler_ticks_total counter
shop_scheduler_ticks_total{campaign="c"} 3
# HELP shop_scheduler_tick_errors_total Throttle ticks that ended in an error (lease, dispatch, ack), by campaign.
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

// countingLines wraps a LineStatser, counting calls and the most running at once.
type countingLines struct {
	inner            couponq.LineStatser
	calls, running   atomic.Int64
	maxRunning       atomic.Int64
	delay            time.Duration
	fail             atomic.Bool
	mu               sync.Mutex
	campaignsQueried []string
}

func (c *countingLines) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	c.calls.Add(1)
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		m := c.maxRunning.Load()
		if n <= m || c.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	c.mu.Lock()
	c.campaignsQueried = append(c.campaignsQueried, campaign)
	c.mu.Unlock()
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return couponq.LineStats{}, ctx.Err()
		}
	}
	if c.fail.Load() {
		return couponq.LineStats{}, errors.New("redis down")
	}
	return c.inner.LineStats(ctx, campaign)
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
	lines := &countingLines{}
	reg := prometheus.NewRegistry()
	var m *prom.Metrics
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "c", Stock: 1}, couponq.Campaign{ID: "d", Stock: 5})
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	lines.inner = q
	m, err = prom.New(prom.Config{Registerer: reg, Lines: lines, Registry: cat, LineCacheTTL: time.Hour})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q, OnAdmit: m.OnAdmit})
	require.NoError(t, err)
	ctx := context.Background()
	for _, u := range []string{"a", "b", "c"} {
		_, err := svc.Admit(ctx, couponq.Request{Campaign: "c", User: u})
		require.NoError(t, err)
	}
	got, err := q.Lease(ctx, "c", 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, "c", couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"}))
	require.NoError(t, q.MarkSoldOut(ctx, "c"))

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
	_, err = svc.Admit(ctx, couponq.Request{Campaign: "d", User: "a"})
	require.NoError(t, err)
	for range 5 {
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, lines.calls.Load(), "one LineStats per campaign per TTL, whatever the scrape rate")
	assert.Equal(t, 0.0, gaugeValue(t, reg, "couponq_line_admitted", "d"), "cached")
	assert.Equal(t, 1.0, gaugeValue(t, reg, "couponq_line_stats_refreshes_total", ""))
}

func TestLineGaugesRefreshAndErrors(t *testing.T) {
	q := memline.NewQueue(nil)
	lines := &countingLines{inner: q}
	campaigns := []string{"a", "b"}
	var listErr atomic.Bool
	_, reg := newMetrics(t, prom.Config{
		Lines: lines, LineCacheTTL: time.Nanosecond,
		Campaigns: func(context.Context) ([]string, error) {
			if listErr.Load() {
				return nil, errors.New("registry down")
			}
			return campaigns, nil
		},
	})
	ctx := context.Background()
	_, err := q.Admit(ctx, couponq.Admission{Campaign: "a", User: "u"})
	require.NoError(t, err)
	assert.Equal(t, 1.0, gaugeValue(t, reg, "couponq_line_waiting", "a"))
	_, err = q.Admit(ctx, couponq.Admission{Campaign: "a", User: "v"})
	require.NoError(t, err)
	assert.Equal(t, 2.0, gaugeValue(t, reg, "couponq_line_waiting", "a"), "refreshed after the TTL")

	lines.fail.Store(true)
	snap := frozen(t, reg) // one scrape, one refresh
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_waiting", "a"), "a failed read keeps the previous values")
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_stats_errors_total", ""), "one per campaign")
	lines.fail.Store(false)
	listErr.Store(true)
	snap = frozen(t, reg)
	assert.Equal(t, 2.0, gaugeValue(t, snap, "couponq_line_waiting", "a"), "a failed list keeps the previous snapshot")
	assert.Equal(t, 3.0, gaugeValue(t, snap, "couponq_line_stats_errors_total", ""))
}

func TestLineGaugesBounded(t *testing.T) {
	lines := &countingLines{inner: memline.NewQueue(nil), delay: 5 * time.Millisecond}
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("c%02d", i))
	}
	_, reg := newMetrics(t, prom.Config{
		Lines: lines, MaxCampaigns: 20, StatsConcurrency: 3,
		Campaigns: func(context.Context) ([]string, error) { return ids, nil },
	})
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
	lines := &countingLines{inner: memline.NewQueue(nil), delay: time.Hour}
	_, reg := newMetrics(t, prom.Config{
		Lines: lines, StatsTimeout: 20 * time.Millisecond, StatsConcurrency: 2,
		Campaigns: func(context.Context) ([]string, error) { return []string{"a", "b", "c", "d"}, nil },
	})
	start := time.Now()
	n, err := testutil.GatherAndCount(reg, "couponq_line_waiting")
	require.NoError(t, err)
	assert.Zero(t, n, "no campaign read in time, none reported")
	assert.Less(t, time.Since(start), 5*time.Second, "a scrape is bounded by StatsTimeout")
	assert.EqualValues(t, 2, lines.calls.Load(), "campaigns not started in time are not read")
}

func TestLineGaugesFromHooks(t *testing.T) {
	q := memline.NewQueue(nil)
	m, reg := newMetrics(t, prom.Config{Lines: q, MaxCampaigns: 1})
	svc, _, _ := service(t, m)
	_, err := svc.Admit(context.Background(), couponq.Request{Campaign: "c", User: "a"})
	require.NoError(t, err)
	_, err = svc.Admit(context.Background(), couponq.Request{Campaign: "d", User: "a"}) // beyond MaxCampaigns
	require.NoError(t, err)
	n, err := testutil.GatherAndCount(reg, "couponq_line_waiting")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only campaigns with a label of their own")
}

// TestScrape serves the registry over HTTP and scrapes it, as Prometheus would.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "c", Stock: 1})
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	m, err := prom.New(prom.Config{Registerer: reg, Lines: q, Registry: cat})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q, OnAdmit: m.OnAdmit})
	require.NoError(t, err)
	for _, u := range []string{"a", "b", "a"} {
		_, err := svc.Admit(context.Background(), couponq.Request{Campaign: "c", User: u})
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
