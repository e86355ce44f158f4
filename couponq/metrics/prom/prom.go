package prom

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

// Defaults applied by New.
const (
	DefaultNamespace        = "couponq"
	DefaultMaxCampaigns     = 1000
	DefaultLineCacheTTL     = 5 * time.Second
	DefaultStatsTimeout     = 2 * time.Second
	DefaultStatsConcurrency = 8
)

// Campaign label values that are not campaign IDs.
const (
	// LabelOther is the campaign label of every campaign seen after
	// MaxCampaigns distinct ones already have their own label.
	LabelOther = "other"
	// LabelUnknown is the campaign label of admissions naming a campaign
	// the node does not know, or an ID that is not valid: such IDs come
	// from clients, so they never get a label of their own.
	LabelUnknown = "unknown"
)

// Config configures New.
type Config struct {
	// Registerer receives the collectors; required. Use
	// prometheus.NewRegistry() (or prometheus.DefaultRegisterer).
	Registerer prometheus.Registerer
	// Namespace prefixes every metric name; "" means "couponq".
	Namespace string

	// MaxCampaigns bounds the campaign label's values per metric family
	// and the campaigns given line gauges (the first MaxCampaigns the node
	// lists, in ID order); 0 means 1000. Hook metrics of campaigns seen
	// after MaxCampaigns distinct ones carry the campaign label "other".
	MaxCampaigns int
	// LineCacheTTL is how long the line gauges are served from cache: the
	// node's lines are read at most once per LineCacheTTL whatever the
	// scrape rate; 0 means 5s.
	LineCacheTTL time.Duration
	// StatsTimeout bounds one refresh of the line stats (listing the
	// campaigns and reading them); 0 means 2s. Campaigns not read in time
	// keep their previous values.
	StatsTimeout time.Duration
	// StatsConcurrency is how many LineStats calls run at once during a
	// refresh; 0 means 8.
	StatsConcurrency int
	// Logger receives refresh errors; nil means none.
	Logger *slog.Logger
}

// Metrics is a node.LineObserver: give it to node.Config.Observer and the
// node tells it of every admission, scheduler tick, decision and Store
// call, and hands it the node's lines for the line gauges. Its methods are
// safe for concurrent use.
type Metrics struct {
	labels *labeler

	admissions    *prometheus.CounterVec
	admitDuration *prometheus.HistogramVec
	lockWait      prometheus.Histogram

	ticks      *prometheus.CounterVec
	tickErrors *prometheus.CounterVec
	moved      *prometheus.CounterVec
	failed     *prometheus.CounterVec
	batchSize  prometheus.Histogram
	tickDur    prometheus.Histogram

	issueOutcomes *prometheus.CounterVec
	attempts      prometheus.Histogram
	deadLetters   *prometheus.CounterVec
	issueDuration prometheus.Histogram
	storeCalls    *prometheus.HistogramVec
	storeEntries  prometheus.Histogram

	overMu     sync.Mutex
	over       map[string]int64
	overIssued *prometheus.GaugeVec

	lines *lineCollector // reports nothing until ObserveLines
}

var _ node.LineObserver = (*Metrics)(nil)

// New builds the collectors and registers them with cfg.Registerer.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registerer == nil {
		return nil, fmt.Errorf("%w: prom: Registerer is required", couponq.ErrInvalidConfig)
	}
	if cfg.MaxCampaigns < 0 || cfg.LineCacheTTL < 0 || cfg.StatsTimeout < 0 || cfg.StatsConcurrency < 0 {
		return nil, fmt.Errorf("%w: prom: MaxCampaigns, LineCacheTTL, StatsTimeout and StatsConcurrency must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.MaxCampaigns == 0 {
		cfg.MaxCampaigns = DefaultMaxCampaigns
	}
	if cfg.LineCacheTTL == 0 {
		cfg.LineCacheTTL = DefaultLineCacheTTL
	}
	if cfg.StatsTimeout == 0 {
		cfg.StatsTimeout = DefaultStatsTimeout
	}
	if cfg.StatsConcurrency == 0 {
		cfg.StatsConcurrency = DefaultStatsConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ns := cfg.Namespace
	campaign := []string{"campaign"}
	m := &Metrics{
		labels: newLabeler(cfg.MaxCampaigns),
		over:   map[string]int64{},

		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "admissions_total",
			Help: "Admission attempts by campaign and outcome (accepted, repeat, or the refusal's code: sold_out, line_full, duplicate, closed, not_open, busy, unavailable, invalid_id, unknown_campaign, internal...).",
		}, []string{"campaign", "outcome"}),
		admitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "admission_duration_seconds",
			Help:    "Time of whole admissions, by campaign mode.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}, []string{"mode"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "admission_lock_wait_seconds",
			Help:    "Time V1 (validate-first) admissions spent obtaining their lock.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),

		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "scheduler_ticks_total",
			Help: "Scheduler ticks by campaign.",
		}, campaign),
		tickErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "scheduler_tick_errors_total",
			Help: "Scheduler ticks that ended in an error (lease, dispatch, ack), by campaign.",
		}, campaign),
		moved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "moved_entries_total",
			Help: "Entries moved from the line to the Dispatcher, by campaign.",
		}, campaign),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "dispatch_failed_entries_total",
			Help: "Leased entries the Dispatcher did not take (returned to the line), by campaign.",
		}, campaign),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "batch_size",
			Help:    "Entries leased per scheduler tick that leased any.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		tickDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "scheduler_tick_duration_seconds",
			Help:    "Time of scheduler ticks.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),

		issueOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "issue_outcomes_total",
			Help: "Entries decided by the issuer, by campaign and outcome (issued, sold_out, duplicate, failed).",
		}, []string{"campaign", "outcome"}),
		attempts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "issue_attempts",
			Help:    "Store calls needed to decide an entry (1 means no retry).",
			Buckets: []float64{1, 2, 3, 4, 5, 7, 10, 15, 20},
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "dead_letters_total",
			Help: "Entries the issuer gave up on (dead-lettered, recorded as rejected/failed), by campaign.",
		}, campaign),
		issueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "issue_duration_seconds",
			Help:    "Time to decide an entry, as issuer.Event.Duration reports it: the per-campaign lock, the Store calls with their retries, and recording the outcome (a whole batch's time on the batch path).",
			Buckets: prometheus.DefBuckets,
		}),
		storeCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "store_call_duration_seconds",
			Help:    "Latency of each Store call (Issue, or IssueBatch for a batch), by result (ok or error).",
			Buckets: prometheus.DefBuckets,
		}, []string{"result"}),
		storeEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "store_call_entries",
			Help:    "Requests decided per Store call (1 for Issue, the batch's size for IssueBatch).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}),
		overIssued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "over_issued_units",
			Help: "Units issued past the campaign's stock (the highest count reported by the issuer); anything above 0 is a bug to page on.",
		}, campaign),
	}
	cs := []prometheus.Collector{
		m.admissions, m.admitDuration, m.lockWait,
		m.ticks, m.tickErrors, m.moved, m.failed, m.batchSize, m.tickDur,
		m.issueOutcomes, m.attempts, m.deadLetters, m.issueDuration, m.storeCalls, m.storeEntries, m.overIssued,
	}
	m.lines = newLineCollector(cfg)
	cs = append(cs, m.lines)
	for i, c := range cs {
		if err := cfg.Registerer.Register(c); err != nil {
			for _, r := range cs[:i] {
				cfg.Registerer.Unregister(r)
			}
			return nil, fmt.Errorf("prom: register: %w", err)
		}
	}
	return m, nil
}

// ObserveLines makes the Metrics report the line gauges of l's campaigns
// (<ns>_line_waiting, _in_flight, _issued, _admitted, _sold_out): node.New
// calls it with the node, whose LineStats count every sub-line of a
// sharded campaign. Until it is called there are no line gauges; calling
// it again replaces l.
func (m *Metrics) ObserveLines(l node.Lines) { m.lines.observe(l) }

// OnAdmit implements node.Observer: one admission attempt.
func (m *Metrics) OnAdmit(ev couponq.AdmitEvent) {
	var label string
	if errors.Is(ev.Err, couponq.ErrUnknownCampaign) || couponq.ValidateID(ev.Campaign) != nil {
		label = LabelUnknown
	} else {
		label = m.labels.label(ev.Campaign)
	}
	m.admissions.WithLabelValues(label, metrics.AdmitOutcome(ev)).Inc()
	m.admitDuration.WithLabelValues(ev.Mode.String()).Observe(ev.Duration.Seconds())
	if ev.LockWait > 0 {
		m.lockWait.Observe(ev.LockWait.Seconds())
	}
}

// OnTick implements node.Observer: one scheduler tick.
func (m *Metrics) OnTick(ev dispatch.TickEvent) {
	c := m.labels.label(ev.Campaign)
	m.ticks.WithLabelValues(c).Inc()
	if ev.Err != nil {
		m.tickErrors.WithLabelValues(c).Inc()
	}
	if moved := ev.Leased - ev.Failed; moved > 0 {
		m.moved.WithLabelValues(c).Add(float64(moved))
	}
	if ev.Failed > 0 {
		m.failed.WithLabelValues(c).Add(float64(ev.Failed))
	}
	if ev.Leased > 0 {
		m.batchSize.Observe(float64(ev.Leased))
	}
	m.tickDur.Observe(ev.Duration.Seconds())
}

// OnIssue implements node.Observer: one entry decided. An event without
// attempts (a dead-lettered entry) is counted but not observed in the
// attempts and duration histograms.
func (m *Metrics) OnIssue(ev issuer.Event) {
	c := m.labels.label(ev.Entry.Campaign)
	outcome := "issued"
	if ev.Result.State != couponq.StateIssued {
		outcome = string(ev.Result.Reason)
		switch ev.Result.Reason {
		case couponq.CodeSoldOut, couponq.CodeDuplicate:
		case couponq.CodeFailed:
			m.deadLetters.WithLabelValues(c).Inc()
		default:
			outcome = "other"
		}
	}
	m.issueOutcomes.WithLabelValues(c, outcome).Inc()
	if ev.Attempts > 0 {
		m.attempts.Observe(float64(ev.Attempts))
		m.issueDuration.Observe(ev.Duration.Seconds())
	}
}

// OnStoreCall implements node.Observer: one Store call and its latency.
func (m *Metrics) OnStoreCall(ev issuer.StoreCall) {
	result := "ok"
	if ev.Err != nil {
		result = "error"
	}
	m.storeCalls.WithLabelValues(result).Observe(ev.Duration.Seconds())
	m.storeEntries.Observe(float64(ev.Entries))
}

// OnOverIssue implements node.Observer: <ns>_over_issued_units holds the
// highest count past the stock reported for the campaign.
func (m *Metrics) OnOverIssue(ev issuer.OverIssue) {
	over := ev.Issued - ev.Stock
	if over <= 0 {
		return
	}
	c := m.labels.label(ev.Campaign)
	m.overMu.Lock()
	defer m.overMu.Unlock()
	if over > m.over[c] {
		m.over[c] = over
		m.overIssued.WithLabelValues(c).Set(float64(over))
	}
}

// labeler maps campaign IDs to label values: the first max distinct IDs
// keep theirs, later ones share LabelOther.
type labeler struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newLabeler(max int) *labeler {
	return &labeler{max: max, seen: map[string]struct{}{}}
}

func (l *labeler) label(campaign string) string {
	if campaign == "" {
		return LabelUnknown
	}
	l.mu.RLock()
	_, ok := l.seen[campaign]
	full := len(l.seen) >= l.max
	l.mu.RUnlock()
	if ok {
		return campaign
	}
	if full {
		return LabelOther
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[campaign]; ok {
		return campaign
	}
	if len(l.seen) >= l.max {
		return LabelOther
	}
	l.seen[campaign] = struct{}{}
	return campaign
}
