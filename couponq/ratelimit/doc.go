// Package ratelimit is a net/http middleware that limits requests per key —
// per user, per client address — answering 429 with Retry-After to a key
// over its limit, in the JSON error shape of the node's handlers:
//
//	429 {"error":{"code":"rate_limited","message":"too many requests, retry in 3s"}}
//
// couponq's line already protects the Store from a flash sale's burst; this
// protects the API in front of it from one client sending far more than its
// share (a script hammering admission or status polling).
//
//	import (
//		"github.com/couponq/couponq/couponq/ratelimit"
//		"github.com/couponq/couponq/node"
//	)
//
//	limiter, _ := ratelimit.NewRedis(rdb, ratelimit.Rate{Events: 10, Per: time.Second, Burst: 20}, "api")
//	mw, _ := ratelimit.Middleware(ratelimit.Config{Limiter: limiter, Key: ratelimit.ByHeader("X-User")})
//	h, _ := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User"), BasePath: "/api"})
//	mux.Handle("/api/", mw(h))
//
// Two limiters ship, each a token bucket (Rate: Events per Per, Burst at
// once):
//
//   - NewMemory keeps the buckets in this process, on golang.org/x/time/rate:
//     no server, but each process counts alone. Memory is bounded (MaxKeys,
//     100,000 by default; keys idle long enough to have refilled are
//     forgotten as new requests come, with no background goroutine).
//   - NewRedis keeps them in Redis through the host's go-redis client, on
//     github.com/go-redis/redis_rate's GCRA script: one limit shared by every
//     process, one round trip per request.
//
// Any other store fits the one-method Limiter interface.
//
// Keys come from Config.Key. ByHeader reads a header your gateway sets
// (never one the client chooses); ByRemoteIP uses the connection's peer
// address, which behind a proxy is the proxy's — see its doc. Several
// middlewares chain: one by address in front of authentication, one by user
// behind it.
//
// When the limiter fails (Redis unreachable) the request goes through and
// the failure is logged at warn level, at most once a second: a limiter
// outage should not become an API outage. Config.FailClosed answers 503
// unavailable with Retry-After instead.
//
// This package is a module of its own (github.com/couponq/couponq/couponq/ratelimit),
// so its limiters' dependencies stay out of the core module's requirements.
package ratelimit
