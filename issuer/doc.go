// Package issuer is the consuming end of the pipeline, which a node runs
// with RoleWorker: for each delivered entry the issuer asks the Store,
// records the outcome so Status reports it, and only then lets the
// delivery be committed. This package holds what a host meets of it: the
// events it reports to a node.Observer (Event per decided entry, StoreCall
// per Store call, OverIssue), and DeadLetter, where entries it gives up on
// go (node.Config.DeadLetter).
//
// Store failures are retried with backoff (node.Config.MaxAttempts,
// RetryBackoff); an entry that keeps failing goes to the DeadLetter with its
// reason and is recorded as rejected/failed, so no accepted entry ends
// without an outcome.
//
// Two paths decide entries:
//
//   - In batches, the default when the Store is a couponq.BatchStore: the
//     entries a consumer has at hand (up to node.Config.MaxBatch) cost one
//     IssueBatch call — one transaction or one script — and one Record call
//     per campaign, instead of one of each per entry.
//   - One by one, with node.Config.UserLock (the design's consumer lock: one
//     lock per campaign and user around the Store call, which only cuts
//     contention) or a Store that is not a BatchStore.
//
// After recording issuances the issuer asks the line how many distinct
// entries of the campaign were recorded as issued; a count above the
// campaign's Stock means the Store did not enforce it (say, each worker
// process ran its own in-memory Store). It is logged at error level and
// reported as an OverIssue. The check detects; the Store is what prevents.
package issuer
