package check

import (
	"fmt"
	"slices"
	"time"
)

// WaitRow compares, for one group of sampled users, the wait their 202
// promised (estimated_wait_ms) with the wait they had: from the 202 to
// when a status poll first saw their outcome (Sample.DecidedAt; the
// watcher polls a sampled entry every 100 ms for 3 s after its dispatch,
// then every 500 ms).
type WaitRow struct {
	// Group is "normal running" (the wait overlapped no fault, nor the
	// 30 s after one) or a fault ("#3 kill-leader worker-1"): the waits
	// that overlapped it.
	Group string
	// N is how many sampled users the row counts: accepted with an
	// estimate (not beyond the stock, not paused), decided.
	N int
	// Ratio quantiles of actual ÷ estimated wait.
	P50, P95, P99 float64
	// The medians of each, for scale.
	Estimated, Actual time.Duration
}

// waitSettle is how long after a fault's end a wait still counts as
// touched by it.
const waitSettle = 30 * time.Second

// waitRows groups the sampled users' actual ÷ estimated waits: normal
// running, then each fault in order.
func waitRows(in Inputs) []WaitRow {
	type wait struct {
		from, to  time.Time
		est, real time.Duration
	}
	byUser := make(map[userKey]*Client, len(in.Clients))
	for i := range in.Clients {
		c := &in.Clients[i]
		byUser[userKey{c.Campaign, c.User}] = c
	}
	var waits []wait
	for _, s := range in.Samples {
		c := byUser[userKey{s.Campaign, s.User}]
		if c == nil || !c.Accepted || c.EstimatedWaitMS <= 0 || s.DecidedAt.IsZero() || c.Entry != s.Entry || !s.DecidedAt.After(c.AcceptedAt) {
			continue
		}
		waits = append(waits, wait{from: c.AcceptedAt, to: s.DecidedAt,
			est: time.Duration(c.EstimatedWaitMS) * time.Millisecond, real: s.DecidedAt.Sub(c.AcceptedAt)})
	}
	row := func(group string, ws []wait) WaitRow {
		r := WaitRow{Group: group, N: len(ws)}
		if len(ws) == 0 {
			return r
		}
		ratios := make([]float64, len(ws))
		ests := make([]time.Duration, len(ws))
		reals := make([]time.Duration, len(ws))
		for i, w := range ws {
			ratios[i] = float64(w.real) / float64(w.est)
			ests[i], reals[i] = w.est, w.real
		}
		slices.Sort(ratios)
		slices.Sort(ests)
		slices.Sort(reals)
		q := func(p float64) float64 { return ratios[min(len(ratios)-1, int(p*float64(len(ratios))))] }
		r.P50, r.P95, r.P99 = q(0.50), q(0.95), q(0.99)
		r.Estimated, r.Actual = ests[len(ests)/2], reals[len(reals)/2]
		return r
	}
	touches := func(w wait, f Fault) bool {
		return w.from.Before(f.End.Add(waitSettle)) && w.to.After(f.Start)
	}
	var normal []wait
	for _, w := range waits {
		if !slices.ContainsFunc(in.Faults, func(f Fault) bool { return touches(w, f) }) {
			normal = append(normal, w)
		}
	}
	rows := []WaitRow{row("normal running", normal)}
	for i, f := range in.Faults {
		var ws []wait
		for _, w := range waits {
			if touches(w, f) {
				ws = append(ws, w)
			}
		}
		rows = append(rows, row(fmt.Sprintf("#%d %s %s", i+1, f.Kind, f.Target), ws))
	}
	return rows
}

// writeWaits writes the waits table.
func (r *Report) writeWaits(mw *mdWriter) {
	if len(r.Waits) == 0 {
		return
	}
	mw.p("### Waits as promised\n\n")
	mw.p("For the watcher's sampled users with an estimate in their 202 (not beyond the stock, not paused): actual wait (202 → a poll first saw the outcome) ÷ the estimated wait. *Normal running*: waits that overlapped no fault nor the %s after one (with faults every 12–26 s, few do: the run's first seconds); a fault's row: the waits that overlapped it. The target (p95 ≤ 1.2 in normal running) is judged on the baseline run's row when there is one.\n\n", waitSettle)
	mw.p("| group | users | actual ÷ estimated p50 | p95 | p99 | median estimated | median actual |\n")
	mw.p("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, w := range r.Waits {
		if w.N == 0 {
			mw.p("| %s | 0 | | | | | |\n", cell(w.Group))
			continue
		}
		mw.p("| %s | %d | %.2f | %.2f | %.2f | %.1f s | %.1f s |\n", cell(w.Group), w.N, w.P50, w.P95, w.P99,
			w.Estimated.Seconds(), w.Actual.Seconds())
	}
	mw.p("\n")
}
