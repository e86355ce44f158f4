package node

import (
	"context"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
)

// Observer is told of what the node does, for metrics: one method per kind
// of event, each called right after the event, from the goroutine that did
// the work, so every method must be fast and safe for concurrent use.
// prom.New (Prometheus) and metrics.NewExpvar (expvar) return one.
type Observer interface {
	// OnAdmit follows every admission attempt (RoleAPI).
	OnAdmit(couponq.AdmitEvent)
	// OnTick follows every scheduler tick that moved, or tried to move, a
	// campaign's line (RoleWorker, on the leader).
	OnTick(dispatch.TickEvent)
	// OnIssue follows every entry the issuer decided.
	OnIssue(issuer.Event)
	// OnStoreCall follows every Store call, failed ones included.
	OnStoreCall(issuer.StoreCall)
	// OnOverIssue reports a campaign whose recorded issuances exceed its
	// stock: the Store did not enforce it.
	OnOverIssue(issuer.OverIssue)
}

// LineObserver is an Observer that also reports each campaign's line
// (waiting, in flight, issued), as the Prometheus adapter's gauges do: New
// hands it the node's Lines, so sharded campaigns count all their
// sub-lines.
type LineObserver interface {
	Observer
	ObserveLines(Lines)
}

// Lines reads campaigns and the numbers of their lines; the Node is one.
type Lines interface {
	// Campaigns lists every campaign, ordered by ID.
	Campaigns(ctx context.Context) ([]couponq.Campaign, error)
	// LineStats counts one campaign's entries by where they are.
	LineStats(ctx context.Context, campaign string) (couponq.LineStats, error)
}
