// Package couponq is first-come-first-served issuance of a limited stock
// (coupons, tickets, drops) through a queue-throttled pipeline:
// admit → throttle → consume.
//
// In the default mode, V2 (QueueFirst), Service.Admit only puts the user in
// the campaign's line and answers at once with an entry number and a
// position. A throttle (package dispatch) moves at most BatchSize entries
// every Interval from the line to a Dispatcher; an issuer (package issuer)
// consumes them, asks the Store, and records each outcome so Service.Status
// reports it. However large the burst, the Store sees at most BatchSize
// entries per Interval.
//
// V1 (ValidateFirst), the "gatekeeper" the design started from, does the
// lock, the duplicate check and the stock count in the request itself before
// it hands the entry downstream. It is kept as a mode and as the baseline
// benchmarks compare against.
//
// The contract is a handful of small interfaces: Queue (Admitter,
// StatusReader, Leaser, Recorder), Store, Dispatcher and Consumer, Tally
// (V1's counters), Catalog, and lock.Locker. Package memory has in-memory
// implementations of the first ones, for embedding and tests; the
// conformance suites in queuetest and storetest (and locktest, dispatchtest)
// check any implementation, including the host's own Store.
//
// Campaigns live in a Catalog. A Registry is a Catalog operators also write
// to at runtime (Create, Update, and the helpers Modify, Pause, Resume and
// Close), versioned so a stale writer cannot overwrite a newer change:
// Campaigns in memory, redisq.Registry shared through Redis, or the host's
// own, checked by package registrytest. A CatalogCache in front of a shared
// Registry keeps lookups off the network, and bounds how long a change takes
// to reach every process by its TTL (1s by default).
//
// Two options change the line's order. Campaign.Shards spreads one hot
// campaign's line over sub-lines on different Redis masters, merged back by
// admission time (package shard). Campaign.PreQueue admits users who arrive
// shortly before OpensAt to a pre-queue that is seated in a uniformly random
// order at opening (Seater, SeatOrder), ahead of everyone who arrives
// later, so firing a millisecond early earns nothing.
//
// The Store is the last word on stock and duplicates: it issues atomically
// and idempotently by entry key, so redelivered entries, re-dispatched
// batches and overlapping locks can never over-issue or issue twice. Locks
// only cut contention.
package couponq
