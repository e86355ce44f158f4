// Package issuer is the consuming end of the pipeline: for each delivered
// entry it asks the Store, records the outcome so Status reports it, and
// only then lets the delivery be committed. Store failures are retried with
// backoff; an entry that keeps failing goes to the DeadLetter with its
// reason and is recorded as rejected/failed, so no accepted entry ends
// without an outcome.
//
// Two paths decide entries:
//
//   - One by one (Handle): take the per-user lock if a Locker is set, call
//     Store.Issue, record the outcome.
//   - In batches (HandleBatch), taken when the Store is a
//     couponq.BatchStore, the Consumer a couponq.BatchConsumer, no Locker is
//     set and Config.MaxBatch > 1: the entries a consumer has at hand (up to
//     MaxBatch) cost one IssueBatch call — one transaction or one script —
//     and one Record call per campaign, instead of one of each per entry.
//
// After recording issuances the issuer asks a Recorder that is a
// couponq.IssuedCounter how many distinct entries of the campaign were
// recorded as issued; a count above the campaign's Stock means the Store did
// not enforce it (say, each worker process ran its own in-memory Store). It
// is logged at error level and reported through Config.OnOverIssue. The
// check detects; the Store is what prevents.
package issuer
