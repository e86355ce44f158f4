// Package prom reports what a couponq node does to Prometheus: its Metrics
// is a node.Observer (and node.LineObserver), given to the node as one
// value. It lives in its own module, so the core module does not require
// client_golang.
//
// # Usage
//
//	import (
//		"github.com/prometheus/client_golang/prometheus"
//		"github.com/prometheus/client_golang/prometheus/promhttp"
//
//		"github.com/couponq/couponq/couponq/metrics/prom"
//		"github.com/couponq/couponq/node"
//	)
//
//	reg := prometheus.NewRegistry()
//	m, err := prom.New(prom.Config{Registerer: reg})
//	n, err := node.New(node.Config{Observer: m, ...}) // also hands m the node's lines
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// With the default namespace "couponq":
//
//	couponq_admissions_total{campaign,outcome}      counter: accepted, repeat, or couponq.Code of the
//	                                                refusal (sold_out, line_full, duplicate, closed, ...)
//	couponq_admission_duration_seconds{mode}        histogram: v2-queue-first, v1-validate-first
//	couponq_admission_lock_wait_seconds             histogram: V1's lock wait
//	couponq_scheduler_ticks_total{campaign}         counter
//	couponq_scheduler_tick_errors_total{campaign}   counter
//	couponq_scheduler_tick_duration_seconds         histogram
//	couponq_moved_entries_total{campaign}           counter: leased and taken by the Dispatcher
//	couponq_dispatch_failed_entries_total{campaign} counter: leased, not taken, back in line
//	couponq_batch_size                              histogram: entries leased per tick (ticks leasing none are not observed)
//	couponq_issue_outcomes_total{campaign,outcome}  counter: issued, sold_out, duplicate, failed
//	couponq_issue_attempts                          histogram: Store calls per decided entry (retries)
//	couponq_dead_letters_total{campaign}            counter
//	couponq_issue_duration_seconds                  histogram: time to decide an entry (issuer.Event.Duration: lock, Store calls and retries, recording)
//	couponq_store_call_duration_seconds{result}     histogram: each Store call's latency (OnStoreCall), ok or error
//	couponq_store_call_entries                      histogram: requests decided per Store call
//	couponq_over_issued_units{campaign}             gauge: units past the stock; alert on > 0
//
// and, per campaign the node lists, once the node has handed over its lines
// (node.New calls ObserveLines; a sharded campaign counts all its
// sub-lines, as the admin API does):
//
//	couponq_line_waiting{campaign}                  gauge
//	couponq_line_in_flight{campaign}                gauge
//	couponq_line_issued{campaign}                   gauge
//	couponq_line_admitted{campaign}                 gauge
//	couponq_line_sold_out{campaign}                 gauge: 0 or 1
//	couponq_line_stats_errors_total                 counter
//	couponq_line_stats_refreshes_total              counter
//	couponq_line_stats_refresh_duration_seconds     gauge
//
// # Cardinality
//
// No label holds a user ID or an entry key. Outcome and mode labels take a
// fixed set of values. The campaign label takes at most MaxCampaigns
// (default 1000) distinct IDs per process: the first MaxCampaigns campaigns
// the hooks see keep their ID, every later one is counted under "other".
// Admissions naming a campaign the node does not know, or a malformed
// ID, are counted under "unknown" and never take a slot, since clients
// choose those IDs. Line gauges are reported for at most MaxCampaigns
// campaigns (the first the node lists, in ID order).
//
// # Cost per scrape
//
// The hook metrics cost nothing at scrape time: the hooks update them in
// memory as events happen (a map lookup and an atomic add each).
//
// The line gauges are collected, not polled by a loop: a scrape serves a
// cached snapshot, and only when it is older than LineCacheTTL (default 5s)
// does the scrape refresh it first. A refresh lists the campaigns (one
// read of the node's registry) and reads LineStats for at most
// MaxCampaigns of them, StatsConcurrency (default 8) at a time, within
// StatsTimeout (default 2s): with the Redis backend that is a few O(1)
// reads per line (per sub-line of a sharded campaign). So the backend sees
// at most one list and MaxCampaigns LineStats calls per LineCacheTTL,
// whatever the scrape rate and however many scrapers there are: concurrent
// scrapes wait for one refresh and share it. A campaign whose read fails or
// does not finish in time keeps its previous values (and
// couponq_line_stats_errors_total grows); a scrape takes at most about
// StatsTimeout. Values may be up to LineCacheTTL old.
package prom
