package node

import (
	"context"
	"net/http"

	"github.com/couponq/couponq/internal/health"
)

// pinger is a backend part that can say whether it answers: pgstore's and
// redisstore's Stores, kafkadispatch's Transport.
type pinger interface {
	Ping(ctx context.Context) error
}

// Liveness answers 200 {"status":"ok"} to GET and HEAD without touching a
// backend: the process is up. Serve it on a port the public cannot reach.
func (n *Node) Liveness() http.Handler { return n.probes().Liveness() }

// Readiness runs every check concurrently within 2s and answers 200, or 503
// naming each failing check: the Backend (by its Name: "redis"), the Store
// ("store") and the Transport ("transport") when they can be pinged, and
// Config.ReadinessChecks. One run serves every probe for a second, so a
// probe storm costs the backends one run a second. Serve it on a port the
// public cannot reach: its answers name the backends and their errors.
func (n *Node) Readiness() http.Handler { return n.probes().Readiness() }

// probes builds the health handler once.
func (n *Node) probes() *health.Handler {
	n.healthOnce.Do(func() {
		checks := map[string]health.Check{}
		if n.backend.Ping != nil {
			name := n.backend.Name
			if name == "" {
				name = "backend"
			}
			checks[name] = health.Check(n.backend.Ping)
		}
		if p, ok := n.store.(pinger); ok {
			checks["store"] = p.Ping
		}
		if p, ok := n.transport.(pinger); ok {
			checks["transport"] = p.Ping
		}
		for name, c := range n.cfg.ReadinessChecks {
			checks[name] = c
		}
		h, err := health.New(health.Config{Checks: checks, Logger: n.cfg.Logger})
		if err != nil { // the config is valid by construction
			panic("couponq: node: health: " + err.Error())
		}
		n.health = h
	})
	return n.health
}
