// Package metrics adapts couponq's metric hooks to the standard library's
// expvar, so counters show at /debug/vars with no dependency. Other
// backends (Prometheus, OpenTelemetry) follow the same shape: a type whose
// methods are the hooks.
//
//	m := metrics.NewExpvar("couponq")
//	admission.New(admission.Config{..., OnAdmit: m.OnAdmit})
//	dispatch.New(dispatch.Config{..., OnTick: m.OnTick})
//	issuing.New(issuing.Config{..., OnIssue: m.OnIssue, OnOverIssue: m.OnOverIssue})
package metrics

import (
	"expvar"
	"sync"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
)

// Expvar counts admissions, throttle ticks and decisions in an expvar.Map.
// Keys: admit.accepted, admit.repeat, admit.<code> (AdmitOutcome: sold_out,
// duplicate, closed, not_open, busy, unavailable, ...), admit.lock_wait_us
// (V1, summed), throttle.ticks, throttle.moved, throttle.failed,
// throttle.errors, issue.issued, issue.<reason> (sold_out, duplicate,
// failed), issue.over_issued (the highest count past the stock seen by
// OnOverIssue, summed over campaigns). Its methods are safe for concurrent use.
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

// OnAdmit is a admission.Config.OnAdmit hook.
func (e *Expvar) OnAdmit(ev couponq.AdmitEvent) {
	if ev.LockWait > 0 {
		e.m.Add("admit.lock_wait_us", ev.LockWait.Microseconds())
	}
	e.m.Add("admit."+AdmitOutcome(ev), 1)
}

// AdmitOutcome names an admission's outcome for metrics: accepted, repeat,
// or the refusal's couponq.Code (sold_out, line_full, duplicate, closed,
// not_open, busy, unavailable, invalid_id, unknown_campaign,
// mode_unsupported, internal...). Every metrics adapter uses it, so their
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

// OnTick is a dispatch.Config.OnTick hook.
func (e *Expvar) OnTick(ev dispatch.TickEvent) {
	e.m.Add("throttle.ticks", 1)
	e.m.Add("throttle.moved", int64(ev.Leased-ev.Failed))
	e.m.Add("throttle.failed", int64(ev.Failed))
	if ev.Err != nil {
		e.m.Add("throttle.errors", 1)
	}
}

// OnIssue is an issuing.Config.OnIssue hook.
func (e *Expvar) OnIssue(ev issuer.Event) {
	if ev.Result.State == couponq.StateIssued {
		e.m.Add("issue.issued", 1)
		return
	}
	e.m.Add("issue."+string(ev.Result.Reason), 1)
}

// OnOverIssue is an issuing.Config.OnOverIssue hook: issue.over_issued grows
// by the units issued past the stock since the last report of the campaign.
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
