// Package health serves liveness and readiness probes for a couponq
// process (Kubernetes' livenessProbe and readinessProbe, a load balancer's
// health check).
//
//	h, _ := health.New(health.Config{Checks: map[string]health.Check{
//		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, // go-redis
//		"kafka": health.Ping(dispatcher), // *kafkadispatch.Dispatcher
//	}})
//	internal.Handle("/livez", h.Liveness())
//	internal.Handle("/readyz", h.Readiness())
//
// Liveness answers 200 {"status":"ok"} whenever the process serves HTTP and
// calls nothing else: a backend outage must take the process out of the load
// balancer, not get it restarted. Readiness runs the checks concurrently,
// each bounded by Config.Timeout (2s by default), and answers 200 with
// every check "ok", or 503 with each failing check's error message and
// Retry-After. Both answer JSON with Cache-Control: no-store, to GET and
// HEAD only (405 otherwise, in couponq's JSON error shape).
//
// A probe storm — many replicas of a load balancer, an impatient operator —
// costs the backends little: requests that arrive while the checks run wait
// for that run and share its answer, and an answer is reused for
// Config.CacheFor (1s by default) after its run ends. The run happens in
// the goroutine of the request that started it (one goroutine per check on
// top), so once a request returns nothing of it is left running — provided
// each check returns when its context ends. One that does not is reported as
// timed out shortly after the deadline and left to return on its own; until
// it does, later runs report it as still running instead of starting it
// again, so a hung backend cannot pile goroutines up.
//
// A Check is a plain func(ctx) error, so the package imports no client
// library: Ping adapts anything with Ping(ctx) error (kafkadispatch's
// Dispatcher, pgx's pool, database/sql's *DB through PingContext in a
// literal), and a function literal adapts the rest, such as go-redis, whose
// Ping returns a command:
//
//	health.Check(func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
//
// node.Node's Readiness gathers the checks of the node's own backends.
//
// The readiness answer names the backends and their errors: mount both
// handlers on an internal listener, not on the public API's.
package health
