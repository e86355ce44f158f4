// Package shard spreads one hot campaign's line over several sub-lines, so
// a Redis Cluster carries its admissions on several masters instead of the
// one its hash tag picks, and merges them back into one order for the
// throttle.
//
// A campaign opts in with Campaign.Shards = N (fixed once created). Queue
// wraps the Base queue (redisq.Queue, or memline.Queue in tests) and is used
// everywhere the Base would be. Each user maps to one sub-line, "<id>@@k"
// with k the FNV-1a hash of the user ID modulo N, under its own hash tag:
//
//   - Admission touches that sub-line alone, in the Base's one round trip,
//     and a user's repeat is caught there as on one line. MaxWaiting caps
//     each sub-line at its share.
//   - Lease leases a share of the batch (and half again) from every
//     sub-line at once, takes the batch's worth of oldest entries by
//     admission time among those admitted at least Config.Lag ago (the
//     watermark), asking a sub-line for more if it held more than its share
//     of them, and gives the rest back to the heads of their sub-lines. What is handed downstream is the global
//     head of the line, except for admissions slower than Lag, clock
//     differences between API processes, and the resolution of admission
//     times (redisq keeps a clock checkpoint per 10 ms and spreads the
//     entries between two evenly): BENCHMARKS.md measures the displacement.
//   - Stock is never split: the Store decides every unit, as for one line,
//     so no sub-line's quota can strand stock.
//   - Entry numbers stay unique: sub-line k's entry m is entry m*N + k of
//     the campaign, so the Store's idempotency keys and users' tickets
//     name one entry each.
//   - A waiting user's Position is an estimate: place p in a sub-line of w
//     waiting, of W waiting in all, is about p*W/w; off by about
//     sqrt(P*(N-1)) at true place P. Status stream pushes read each user.
//   - Sold out, reopen, archive and counts apply to every sub-line;
//     LineStats sums them.
//
// A pre-queue (Campaign.PreQueue) needs one line; campaigns with Shards 0
// or 1 pass through to the Base unchanged, and so does a campaign the
// Catalog does not know: once a sharded campaign is deleted, the outcomes
// its sub-lines keep for the retention period are no longer read back
// through Status (the sub-line count is gone with it).
package shard
