// Package storetest is the conformance suite and load harness for
// couponq.Store implementations. Every Store of this module runs it, and so
// must a host's own Store: read the laws below before writing one.
//
// # Running the suite
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) couponq.Store { return newMyStore(t) })
//	}
//
// Run checks each law as a subtest named after it, so one law runs alone
// with go test -run 'TestMyStore/RedeliveryGetsTheSameOutcome'. It calls
// newStore once per subtest; newStore may call t.Parallel. Every law decides
// campaigns of its own, with IDs made of a random run ID and a counter, so
// newStore may hand out one shared database (shared with other runs, too)
// and need not clean up between subtests. When the Store also
// implements couponq.BatchStore, the batch-form laws run too, as subtests of
// "Batch"; for a Store without IssueBatch, "Batch" is skipped.
//
// A failure names the law, quotes it, and says what the Store answered and
// what the law wants instead:
//
//	law RedeliveryGetsTheSameOutcome (a redelivered key gets its first outcome back (issued, same ID), takes no stock and does not count again toward the user's limit; SoldOut is recomputed now, not replayed): after other users sold the campaign out, the fourth Issue of key "st-1/1/u" answered {Outcome: issued, ID: "ab12", SoldOut: false}, want issued with ID "ab12", SoldOut true
//
// Laws returns the same list as data.
//
// # Words
//
// A request asks for one unit of a campaign's Stock for a User under an
// idempotency Key (couponq.Entry.Key: one key per entry a user made). A
// redelivery is a request with a key the Store has answered before; the
// pipeline redelivers whenever it cannot tell whether an answer arrived.
// SoldOut, the Issuance field, tells whether any stock remains after the
// call, whatever the outcome. Stock and PerUserLimit come with every
// request: the Store needs no campaign table.
//
// # Every answer
//
// Whatever the law, every answer is checked: issued carries a non-empty ID
// that no other key was ever answered with; duplicate and sold_out carry
// no ID; sold_out always comes with SoldOut true.
//
// # The laws of Issue
//
//   - IssuesUpToStockThenSoldOut: distinct users are issued exactly Stock
//     units, each under its own ID; SoldOut turns true on the call that takes
//     the last unit, and every later call answers sold_out with no ID.
//   - PerUserLimitOne: with PerUserLimit 1 a user's second entry answers
//     duplicate with no ID and takes no stock; SoldOut tells whether
//     stock remains, and a user at the limit still hears duplicate after
//     the sell-out.
//   - PerUserLimitTwo: with PerUserLimit 2 a user is issued two units under
//     two keys and the third entry answers duplicate; PerUserLimit 0
//     means 1.
//   - RedeliveryGetsTheSameOutcome: a redelivered key gets its first outcome
//     back (issued, same ID), takes no stock and does not count again toward
//     the user's limit; SoldOut is recomputed now, not replayed.
//   - RejectedKeyGetsTheSameAnswer: a redelivered key first answered sold_out
//     or duplicate is answered the same again, with no ID, and takes no
//     stock.
//   - DuplicateTakesNoStock: an duplicate answer takes no stock: after
//     any number of them, Stock distinct users are still issued.
//   - IssuedCountCountsUnits: a Store that implements
//     couponq.IssuedCounter counts each campaign's units issued: 0 before
//     any, one per issuance, nothing for duplicate, sold_out or
//     redelivered answers, and nothing of another campaign's.
//   - ConcurrentNeverOverIssues: concurrent calls of more users than Stock
//     issue exactly Stock units, none to a user twice, all under distinct IDs.
//   - ConcurrentUserNeverOverLimit: concurrent calls of one user under
//     distinct keys issue exactly PerUserLimit units.
//   - ConcurrentRedeliveriesIssueOnce: concurrent calls with one key all
//     answer issued with the same ID and take one unit.
//   - CampaignsAreIndependent: one campaign's stock, users and keys never
//     affect another campaign's answers.
//   - IncarnationsAreIndependent: the store names of two incarnations of
//     one campaign ID (couponq.Campaign.StoreCampaign: the ID, then ID~2)
//     are two campaigns: a re-created ID starts with all its stock, no
//     users and no keys, and IssuedCount counts each apart.
//   - CancelledContext: a call whose context is already cancelled returns an
//     error and decides nothing: it takes no stock and records no key.
//   - InvalidRequestIsAnError: a request with an empty Campaign, User or Key,
//     or with Stock <= 0, returns an error and takes no stock.
//
// In practice: decide each request atomically (one transaction or one
// script) in this order: a known key gets its first issuance back (with
// SoldOut read now); else a user at the limit gets duplicate; else no
// stock left gets sold_out; else issue, recording the key, the user's count
// and the campaign's count together. Only issuances need recording: a
// rejected key is rejected again on redelivery, since stock never comes back
// and a user's count never drops. Check ctx before any write. Contention is
// normal (the concurrent laws run hundreds of overlapping calls): a Store
// that uses optimistic transactions retries its own conflicts rather than
// returning an error.
//
// # The laws of IssueBatch
//
// A couponq.BatchStore decides a batch exactly as if Issue were called for
// each request in slice order, so every law of Issue holds per request, and:
//
//   - Batch/OneAnswerPerRequest: IssueBatch answers exactly one Issuance per
//     request, at the request's index, as if Issue were called for each in
//     turn.
//   - Batch/SellsOutMidway: a batch that runs out of stock answers issued up
//     to the stock and sold_out after it, each SoldOut telling whether stock
//     remained after that request.
//   - Batch/SameKeyTwiceInOneBatch: a key repeated within one batch answers
//     issued with the same ID at both indexes and takes one unit.
//   - Batch/SameUserTwiceInOneBatch: a user repeated within one batch under
//     new keys is issued up to PerUserLimit (0 means 1) and then answered
//     duplicate, which takes no stock.
//   - Batch/ReplayedBatchGetsTheSameOutcomes: a batch sent again answers every
//     index with its first outcome and ID and takes no stock; SoldOut is
//     recomputed now.
//   - Batch/MixedOutcomes: one batch answers issued, duplicate (a user
//     served by an earlier call), a redelivered key's first issuance and
//     sold_out, each at its own index with its own SoldOut.
//   - Batch/CampaignsAreIndependent: a batch naming several campaigns decides
//     each request against its own campaign's stock, users and keys, in slice
//     order.
//   - Batch/AgreesWithIssue: IssueBatch and Issue share stock, users and keys:
//     a key decided by one is answered the same by the other.
//   - Batch/ConcurrentNeverOverIssues: concurrent batches of more users than
//     Stock issue exactly Stock units in total, none to a user twice, all
//     under distinct IDs.
//   - Batch/ConcurrentReplaysIssueOnce: the same batch sent concurrently
//     answers the same ID at each index every time and takes its stock once.
//   - Batch/EmptyBatch: an empty (or nil) batch answers no issuances and no
//     error.
//   - Batch/CancelledContext: a batch whose context is already cancelled
//     returns an error and decides nothing.
//   - Batch/InvalidRequestIsAnError: a batch holding an invalid request (empty
//     Campaign, User or Key, or Stock <= 0) returns an error.
//
// # Measuring a Store
//
// Bench measures a Store under concurrent load, only its calls timed, and
// then checks the answers against the laws (never more issued than the
// stock, no user above the limit, distinct IDs):
//
//	r, err := storetest.Bench(ctx, store, storetest.BenchOptions{
//		Concurrency: 64,      // goroutines calling the Store
//		Requests:    100_000, // or Duration: 10 * time.Second
//		Stock:       10_000,  // per campaign; the rest answer sold_out
//		BatchSize:   100,     // IssueBatch of 100 when the Store has it
//	})
//	fmt.Println(r) // requests, req/s, p50/p99/max per call, outcomes
//
// BenchmarkStore wraps Bench for a Go benchmark, reporting req/s and the
// p50 and p99 call latency:
//
//	func BenchmarkMyStore(b *testing.B) {
//		storetest.BenchmarkStore(b, newMyStore(b), storetest.BenchOptions{Concurrency: 64})
//	}
//
// Each Bench call uses campaigns of its own, so it too may run against a
// shared database.
package storetest
