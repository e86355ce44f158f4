package node

import (
	"reflect"

	"github.com/couponq/couponq/internal/health"
)

// HealthChecks returns readiness checks for the node's backends, for
// health.Config.Checks: one for each backend with a Ping(ctx) error method
// (health.Pinger) — *kafkadispatch.Dispatcher has one — named by the part it
// plays: "queue", "agenda", "tally", "locker", "dispatcher", "consumer",
// "store", "catalog". A backend playing two parts (the Queue is usually the
// Agenda too) is checked once, under the first of those names. The
// in-memory backends have nothing to check and give none.
//
// The Redis queue, registry, Store and Locker work on the host's go-redis
// client and have no Ping of their own: add a check on that client, and on
// anything else the process needs.
//
//	checks := n.HealthChecks()
//	checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
//	h, _ := health.New(health.Config{Checks: checks})
//
// Each call returns a new map; the host may change it.
func (n *Node) HealthChecks() map[string]health.Check {
	checks := map[string]health.Check{}
	var seen []any
	var queue, agenda any = n.cfg.Queue, n.cfg.Agenda
	if n.base != nil { // the shard wrapper the node added: ping what it wraps
		queue, agenda = n.base, n.base
	}
	for _, b := range []struct {
		name    string
		backend any
	}{
		{"queue", queue}, {"agenda", agenda}, {"tally", n.cfg.Tally},
		{"locker", n.cfg.Locker}, {"dispatcher", n.cfg.Dispatcher}, {"consumer", n.cfg.Consumer},
		{"store", n.cfg.Store}, {"catalog", n.cfg.Catalog},
	} {
		p, ok := b.backend.(health.Pinger)
		if !ok || contains(seen, b.backend) {
			continue
		}
		seen = append(seen, b.backend)
		checks[b.name] = health.Ping(p)
	}
	return checks
}

// contains reports whether v is one of seen, comparing only values whose
// type allows it (== on a non-comparable dynamic type would panic).
func contains(seen []any, v any) bool {
	if !reflect.TypeOf(v).Comparable() {
		return false
	}
	for _, s := range seen {
		if reflect.TypeOf(s) == reflect.TypeOf(v) && s == v {
			return true
		}
	}
	return false
}
