package prom

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/node"
)

// lineCollector is a prometheus.Collector for the per-campaign line gauges
// of the Lines handed to observe; before that it reports nothing. A scrape
// serves a cached snapshot; when it is older than the TTL, the scrape first
// refreshes it (one refresh at a time: concurrent scrapes wait for it and
// share its result), listing the campaigns and reading at most max
// LineStats with bounded concurrency within the stats timeout.
type lineCollector struct {
	max         int
	ttl         time.Duration
	timeout     time.Duration
	concurrency int
	cfg         Config
	now         func() time.Time

	waiting, inFlight, issued, admitted, soldOut *prometheus.Desc
	errs                                         prometheus.Counter
	refreshes                                    prometheus.Counter
	refreshDur                                   prometheus.Gauge

	mu     sync.Mutex // held during a refresh
	lines  node.Lines // nil until observe
	at     time.Time  // when stats were last refreshed
	stats  map[string]couponq.LineStats
	order  []string // campaigns of the last refresh, in list order
	loaded bool
}

func newLineCollector(cfg Config) *lineCollector {
	ns := cfg.Namespace
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "line", name), help, []string{"campaign"}, nil)
	}
	return &lineCollector{
		max:         cfg.MaxCampaigns,
		ttl:         cfg.LineCacheTTL,
		timeout:     cfg.StatsTimeout,
		concurrency: cfg.StatsConcurrency,
		cfg:         cfg,
		now:         time.Now,
		stats:       map[string]couponq.LineStats{},

		waiting:  desc("waiting", "Entries waiting in the campaign's line (cached, see LineCacheTTL)."),
		inFlight: desc("in_flight", "Entries handed downstream whose outcome is being decided (cached)."),
		issued:   desc("issued", "Distinct entries recorded as issued (cached)."),
		admitted: desc("admitted", "Entries ever admitted: the last entry number (cached)."),
		soldOut:  desc("sold_out", "1 when the campaign is marked sold out (cached)."),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "line_stats_errors_total",
			Help: "Failed line stats reads (listing campaigns or one campaign's LineStats); the campaign keeps its previous values.",
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "line_stats_refreshes_total",
			Help: "Refreshes of the cached line stats (at most one per LineCacheTTL).",
		}),
		refreshDur: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "line_stats_refresh_duration_seconds",
			Help: "Time of the last refresh of the line stats.",
		}),
	}
}

// observe makes the collector report l's lines, from the next scrape on.
func (c *lineCollector) observe(l node.Lines) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines, c.loaded = l, false
	c.stats, c.order = map[string]couponq.LineStats{}, nil
}

// Describe implements prometheus.Collector.
func (c *lineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.inFlight
	ch <- c.issued
	ch <- c.admitted
	ch <- c.soldOut
	c.errs.Describe(ch)
	c.refreshes.Describe(ch)
	c.refreshDur.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *lineCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.lines == nil {
		c.mu.Unlock()
		return // no lines observed: no line gauges
	}
	if !c.loaded || c.now().Sub(c.at) >= c.ttl {
		c.refresh()
	}
	order, stats := c.order, c.stats
	c.mu.Unlock()
	for _, id := range order {
		s, ok := stats[id]
		if !ok {
			continue // never read successfully
		}
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Waiting), id)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight), id)
		ch <- prometheus.MustNewConstMetric(c.issued, prometheus.GaugeValue, float64(s.Issued), id)
		ch <- prometheus.MustNewConstMetric(c.admitted, prometheus.GaugeValue, float64(s.Admitted), id)
		sold := 0.0
		if s.SoldOut {
			sold = 1
		}
		ch <- prometheus.MustNewConstMetric(c.soldOut, prometheus.GaugeValue, sold, id)
	}
	c.errs.Collect(ch)
	c.refreshes.Collect(ch)
	c.refreshDur.Collect(ch)
}

// refresh lists the campaigns and reads the stats of at most max of them,
// StatsConcurrency at a time, within StatsTimeout. c.mu is held. The maps
// are replaced, not modified, so a snapshot taken under c.mu stays valid.
func (c *lineCollector) refresh() {
	start := c.now()
	defer func() {
		c.loaded, c.at = true, c.now()
		c.refreshes.Inc()
		c.refreshDur.Set(time.Since(start).Seconds())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	campaigns, err := c.lines.Campaigns(ctx)
	if err != nil {
		c.errs.Inc()
		c.cfg.Logger.Warn("couponq/prom: listing campaigns for line stats", "err", err)
		return // keep the previous snapshot
	}
	seen := make(map[string]bool, min(len(campaigns), c.max))
	order := make([]string, 0, min(len(campaigns), c.max))
	for _, cp := range campaigns {
		id := cp.ID
		if len(order) == c.max {
			break
		}
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		order = append(order, id)
	}

	type result struct {
		id string
		s  couponq.LineStats
		ok bool
	}
	results := make([]result, len(order))
	lines := c.lines
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(c.concurrency, len(order)) {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					continue // out of time: keeps its previous values
				}
				s, err := lines.LineStats(ctx, order[i])
				if err != nil {
					c.errs.Inc()
					c.cfg.Logger.Warn("couponq/prom: line stats", "campaign", order[i], "err", err)
					continue
				}
				results[i] = result{id: order[i], s: s, ok: true}
			}
		})
	}
feed:
	for i := range order {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed // the rest keep their previous values
		}
	}
	close(jobs)
	wg.Wait()

	stats := make(map[string]couponq.LineStats, len(order))
	for i, r := range results {
		if r.ok {
			stats[r.id] = r.s
		} else if prev, ok := c.stats[order[i]]; ok {
			stats[order[i]] = prev
		}
	}
	c.stats, c.order = stats, order
}
