// Package hostiletest holds the hostile-client suite: what a client that
// means harm, or is simply broken, can do to a node through its public
// handler, checked against the real handlers (node.Node.Handler, served by
// an httptest.Server) on real Redis (redisq as the Backend).
//
// Its first law: a request for a campaign that does not exist costs
// nothing that outlives the request. A flood of GET .../entries/me for
// 200,000 distinct made-up campaign IDs must leave the heap (after a GC)
// within 10 MB of where it started, and write no Redis key; so must a
// handful of status streams and admissions for made-up IDs. Every cache a
// node keeps by campaign ID is bounded or keyed only by campaigns the
// registry knows.
//
// The flood takes some 30 s on a 2-core machine (each request makes two
// Redis round trips). The race detector slows it two- to fivefold, so
// under -race it sends 20,000 IDs, which still shows a leak of the size
// issue 20 saw (1.4 to 2.4 KB an ID) well past the bound; the full flood
// runs without it. COUPONQ_HOSTILE_IDS sets the number.
//
// The package has no code of its own: everything is in its test, which
// needs the Redis scripts/redis.sh starts (it skips without it, and fails
// under CI):
//
//	. .cache/servers/redis/env
//	go test -count=1 -v ./internal/hostiletest         # 200,000 IDs
//	go test -race -count=1 -v ./internal/hostiletest   # 20,000 IDs
package hostiletest
