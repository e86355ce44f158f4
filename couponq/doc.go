// Package couponq is first-come-first-served issuance of a limited stock
// (coupons, tickets, drops) through a queue-throttled pipeline:
// admit → throttle → consume. It holds the domain — campaigns, requests,
// tickets, statuses, entries, outcomes —, the errors and their codes, and
// the contracts of the systems a fleet runs on. The runtime that puts them
// to work is package node:
//
//	n, _ := node.New(node.Config{})       // in memory; for a fleet: Backend, Transport, Store
//	_ = n.Start(ctx)
//	defer n.Stop(ctx)
//	_, _ = n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 1000})
//	ticket, err := n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: userID})
//
// In the default mode, V2 (QueueFirst), admission only puts the user in the
// campaign's line and answers at once with an entry number and a position.
// The scheduler moves at most BatchSize entries every Interval from the
// line to the transport; an issuer consumes them, asks the Store, and
// records each outcome, which Status reports. However large the burst, the
// Store sees at most BatchSize entries per Interval. V1 (ValidateFirst),
// the "gatekeeper" the design started from, takes the lock, checks
// duplicates and counts the stock in the request itself before it hands
// the entry on; it stays as a mode and as the baseline benchmarks compare
// against.
//
// The Store is the last word on stock and duplicates: it issues atomically
// and idempotently by entry key, so redelivered entries, re-dispatched
// batches and overlapping locks never over-issue or issue twice. Locks only
// cut contention.
//
// # Glossary
//
// One name per concept, here and in every package:
//
//   - campaign: one limited stock handed out first come, first served
//     (Campaign). Its Mode is V2 (QueueFirst) or V1 (ValidateFirst).
//   - registry: where campaigns live, shared by every process of a fleet
//     (Registry; each Backend has one). Operators change campaigns through
//     the node (CreateCampaign, UpdateCampaign, ...) or its admin handler;
//     each process reads them through a cache, so a change reaches every
//     process within node.Config.CacheTTL.
//   - backend: the system a fleet shares for lines, the registry and locks
//     (Backend): Redis (couponq/redisq) or memory (couponq/memory).
//   - line: a campaign's waiting line (Queue), in which each admitted user
//     holds an entry (Entry) with an entry number; a sub-line is one of the
//     lines a sharded campaign (Campaign.Shards) spreads over; the
//     pre-queue (Campaign.PreQueue) is the line of users who arrived before
//     opening, seated in a random order at OpensAt.
//   - admit: put a user in the line (V2) or through the gate (V1). What
//     admission answers is a Ticket; what a user reads later is a Status.
//   - scheduler: the dam that moves at most BatchSize entries of each
//     campaign per Interval from the line to the transport; one leader per
//     fleet.
//   - cutoff: where the stock runs out in the line. The scheduler never has
//     more entries in flight than the stock that remains undecided, so the
//     units go to the earliest entries (package dispatch's doc); an
//     inversion, a user told sold out while a later one holds a unit, does
//     not happen.
//   - transport: what carries entries from the scheduler to the issuers
//     (Transport: a Dispatcher and a Consumer; in memory or Kafka).
//   - issuer: decides each delivered entry through the Store and records
//     its outcome: issued, or rejected with a reason.
//   - Store: the host's persistence of issuances, and the last word on
//     stock and duplicates (Store, BatchStore).
//   - pause / resume: stop and restart moving a campaign's line;
//     admission goes on.
//   - close: end admission at a time (Campaign.ClosesAt); entries admitted
//     before are still served.
//   - retire: put a finished (closed or sold-out) campaign away: its
//     records are kept for a retention so users can read their outcomes,
//     and it leaves the registry (node.RetireCampaign, the admin DELETE).
//   - incarnation: one creation of a campaign ID (Campaign.Incarnation): 1
//     the first time, one more each time the ID is created again after it
//     was retired. The store name (Campaign.StoreCampaign) is the name a
//     Store knows an incarnation by: the ID for the first, ID~n for the
//     n-th, so a re-created campaign starts from zero in the Store while
//     the old one's issuances stay there under its own name.
//   - sold out: the stock is gone. It is ErrSoldOut as an error and
//     "sold_out" as a code (Code), a rejection reason, a campaign state and
//     in JSON; a line at Campaign.MaxWaiting is sold out too (ErrLineFull,
//     "line_full"). The Store answers SoldOut, and Issuance.SoldOut tells
//     that a call took the last unit.
//   - duplicate: the user already holds PerUserLimit units (ErrDuplicate,
//     "duplicate"; the Store answers Duplicate).
//   - status stream: a user's Status pushed as Server-Sent Events while
//     they wait (GET .../entries/me/events); waiting room: the page the
//     public handler serves a user for a campaign (GET .../wait), built on
//     it, with its JS client for hosts' own pages; live page: the
//     operators' page of every campaign (the admin handler's /live).
//   - observer: what the node tells metrics of every admission, tick,
//     decision and Store call (node.Observer; Prometheus and expvar
//     adapters ship). tracer: what it tells tracing (Tracer).
//
// # Contracts
//
// A host plugs its own systems in through small interfaces, each with a
// conformance suite: Store and BatchStore (storetest), Dispatcher and
// Consumer (dispatchtest), and a whole Backend: Queue with Agenda,
// LineStatser, Reopener, Archiver and Seater (queuetest, agendatest),
// Registry (registrytest), Tally (V1's counters) and lock.Locker
// (locktest).
package couponq
