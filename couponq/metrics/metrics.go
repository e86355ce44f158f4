// Package metrics reports what a couponq node does to the standard
// library's expvar, so its counters show at /debug/vars with no dependency:
// Expvar is a node.Observer, given to the node as node.Config.Observer.
// Prometheus's adapter (couponq/metrics/prom, its own module) is another.
//
//	m := metrics.NewExpvar("couponq")
//	n, err := node.New(node.Config{Observer: m, ...})
//	// import _ "expvar" serves /debug/vars on http.DefaultServeMux
package metrics

import (
	"expvar"
	"sync"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
)

// Expvar counts admissions, scheduler ticks, decisions and Store calls in
// an expvar.Map. Keys: admit.accepted, admit.repeat, admit.<code>
// (AdmitOutcome: sold_out, duplicate, closed, not_open, busy, unavailable,
// ...), admit.lock_wait_us (V1, summed), scheduler.ticks, scheduler.moved,
// scheduler.failed, scheduler.errors, issue.issued, issue.<reason>
// (sold_out, duplicate, failed), issue.over_issued (the highest count past
// the stock seen by OnOverIssue, summed over campaigns), store.calls,
// store.errors, store.entries (requests decided), store.call_us (summed).
// Its methods are safe for concurrent use.
type Expvar struct {
	m    *expvar.Map
	mu   sync.Mutex
	over map[string]int64 // campaign -> units past the stock reported
}

// NewExpvar publishes a new map under name; it panics if name is taken, as
// expvar.Publish does.
func NewExpvar(name string) *Expvar {
	return &Expvar{m: expvar.NewMap(name), over: map[string]int64{}}
}

// Map returns the underlying map.
func (e *Expvar) Map() *expvar.Map { return e.m }

// OnAdmit implements node.Observer: one admission attempt.
func (e *Expvar) OnAdmit(ev couponq.AdmitEvent) {
	if ev.LockWait > 0 {
		e.m.Add("admit.lock_wait_us", ev.LockWait.Microseconds())
	}
	e.m.Add("admit."+AdmitOutcome(ev), 1)
}

// AdmitOutcome names an admission's outcome for metrics: accepted, repeat,
// or the refusal's couponq.Code (sold_out, line_full, duplicate, closed,
// not_open, busy, unavailable, invalid_id, unknown_campaign, unsupported,
// internal...). Every metrics adapter uses it, so their
// labels agree with each other and with the HTTP handler's error codes.
func AdmitOutcome(ev couponq.AdmitEvent) string {
	switch {
	case ev.Err == nil && ev.Repeat:
		return "repeat"
	case ev.Err == nil:
		return "accepted"
	case ev.Code != "":
		return ev.Code
	}
	return couponq.Code(ev.Err)
}

// OnTick implements node.Observer: one scheduler tick.
func (e *Expvar) OnTick(ev dispatch.TickEvent) {
	e.m.Add("scheduler.ticks", 1)
	e.m.Add("scheduler.moved", int64(ev.Leased-ev.Failed))
	e.m.Add("scheduler.failed", int64(ev.Failed))
	if ev.Err != nil {
		e.m.Add("scheduler.errors", 1)
	}
}

// OnIssue implements node.Observer: one entry decided.
func (e *Expvar) OnIssue(ev issuer.Event) {
	if ev.Result.State == couponq.StateIssued {
		e.m.Add("issue.issued", 1)
		return
	}
	e.m.Add("issue."+string(ev.Result.Reason), 1)
}

// OnStoreCall implements node.Observer: one Store call.
func (e *Expvar) OnStoreCall(ev issuer.StoreCall) {
	e.m.Add("store.calls", 1)
	e.m.Add("store.entries", int64(ev.Entries))
	e.m.Add("store.call_us", ev.Duration.Microseconds())
	if ev.Err != nil {
		e.m.Add("store.errors", 1)
	}
}

// OnOverIssue implements node.Observer: issue.over_issued grows by the
// units issued past the stock since the last report of the campaign.
func (e *Expvar) OnOverIssue(ev issuer.OverIssue) {
	over := ev.Issued - ev.Stock
	if over <= 0 {
		return
	}
	e.mu.Lock()
	prev := e.over[ev.Campaign]
	if over > prev {
		e.over[ev.Campaign] = over
		e.m.Add("issue.over_issued", over-prev)
	}
	e.mu.Unlock()
}
