// Package dispatch is the hand-off from campaigns' waiting lines to the
// issuers: Memory, the in-process transport (a node given no Transport
// uses it; dispatch/kafkadispatch is the Kafka one), TickEvent, what the
// scheduler reports to a node.Observer after each move, and, below, the
// design of the scheduler a node runs with RoleWorker (the dam).
//
// # The hand-off
//
// The scheduler drives a campaign one move per tick: lease at most
// BatchSize of the oldest entries (expired leases first), hand them to the
// Dispatcher, acknowledge what the Dispatcher durably took and put the rest
// back at the head of the line. Nothing is popped destructively, so a crash
// anywhere leaves entries to come back when their lease runs out; the
// duplicates this can cause are absorbed by the Store. Recovered entries
// spend the same per-tick budget as new ones.
//
// # The scheduler
//
// Every worker node runs one. The schedulers of a fleet (sharing a Backend)
// form a group, and one of them, the leader, drives every campaign that has
// entries to move; the others stand by. What it drives comes from the
// Agenda; how fast, from the registry (through the node's cache).
//
// The Agenda (couponq.Agenda) is the set of campaigns with entries in line
// or in flight. On Redis it is one sorted set, prefix:agenda, of campaign
// IDs scored by the time each woke; the in-memory Backend keeps it
// under its lock. Admission wakes a campaign; the leader lets it rest once
// its line and flight are empty. A campaign that nobody joins is never on
// it and costs nothing.
//
// # Waking and resting
//
// On Redis Cluster the admission script may touch only its campaign's slot
// (every key of a campaign carries the hash tag {campaign}), so it cannot
// also write the agenda, a key of no campaign. Waking and resting are
// therefore separate commands, ordered so that no admission is missed:
//
//   - Admission goes in three steps: a Wake before the admission
//     script, unless this process woke the campaign within the last second
//     (the pre-mark; if it fails nothing is admitted and the caller hears
//     couponq.ErrUnavailable); the admission script; and, if it wrote a
//     fresh entry into an empty line (Ticket.Position 1), a Wake after it
//     (its failure is only logged). A Wake is ZADD NX.
//   - Rest takes the campaign off the agenda first (ZREM), then checks, in
//     one atomic command on the campaign's slot (EXISTS line flight), that
//     its line and flight are empty, and if not puts it back (ZADD NX) and
//     reports that it did not rest.
//
// An admission's write comes either before Rest's check, which then sees
// the entry, or after it. In the second case the line and the flight were
// empty at the check (entries reach the line only by admission or back
// from flight), so the first entry written after it has Position 1, and
// its admitter wakes the campaign after writing it, that is after Rest's
// removal. Later entries of that line ride on the same wake.
//
// What remains is a crash in one round trip. If a Rest runs between an
// admitter's pre-mark (which may be up to a second old) and its admission
// script, and the admitting process dies before its Wake after, the entry
// is in a line that is off the agenda; likewise if the leader dies between
// Rest's removal and its putting the campaign back. Such an entry is not
// lost, only late: the next admission to the campaign from any process
// that has not woken it within a second wakes it, and a Scheduler that
// gains leadership first sweeps (both shipped Queues can): on Redis one SCAN per 1,000 keys of the database finds every
// campaign that has a line or flight key (Redis deletes empty sorted sets),
// and one ZADD per 1,000 of them wakes them. Since the dying leader of the
// second case is by definition followed by a new leader, that case is
// always repaired within a failover; the first is repaired by the next
// admission to the campaign or the next change of leader, or within
// node.Config.SweepInterval if the host sets one. The sweep also picks up
// an agenda key lost with a Redis failover.
//
// # Leadership
//
// The group holds one leader lease (the Backend's lock.Locker).
// A standby tries to obtain it every LeaderTTL/3. The leader refreshes it
// every LeaderTTL/3 and trusts it until LeaderTTL×4/5 after its last
// successful refresh began (the Locker's TTL starts no earlier than that,
// so the lease is surely still its own; the fifth is margin for clock-rate
// drift and a Lease sent just before the end). It starts a move only while
// it trusts the lease; a failed refresh is retried sooner. When the lease
// is lost, or cannot be refreshed before the trust runs out, the leader
// cancels its moves in flight (what the Dispatcher already took is still
// acknowledged), stops driving everything and stands by again. The next
// leader starts from the Agenda; entries leased but not acknowledged by the
// old one return to the line after LeaseTTL.
//
// A new leader sweeps (above), reads the Agenda, and makes its first move of
// any campaign no sooner than that campaign's Interval after it won the
// lease: the old leader's last move began before its trust ran out, so
// before the lease could be won, and a hand-over never moves a campaign
// twice within an Interval.
//
// # Driving
//
// The leader reads the Agenda every PollInterval, and at once when the
// Agenda announces a wake (the Redis backend publishes one on the agenda's
// Pub/Sub channel when a campaign that was asleep wakes; the leader
// subscribes), so the first users of a sale are moved at the campaign's
// first tick rather than up to a PollInterval later. It drives each awake
// campaign on its own clock: a tick reads the campaign through the node's
// cache (changes to BatchSize, Interval and Paused apply at the next tick), moves at most BatchSize entries, and schedules the next
// tick one Interval after this one was due, so a tick that starts a little
// late (waiting for a worker or the registry) does not lower the campaign's
// rate — but never sooner than 19/20 of an Interval after this tick began,
// so one leader's moves of a campaign begin at least that far apart and a
// late tick is not followed by a burst. Ticks of different campaigns
// run on at most node.Config.MoveWorkers goroutines; a campaign never ticks concurrently
// with itself.
//
//   - A paused campaign is not moved (not even its expired leases) but stays
//     awake; resuming it resumes the moves.
//   - A closed campaign (past ClosesAt) admits nobody, but its entries are
//     served until its line and flight are empty.
//   - A sold-out campaign's ticks resolve its waiting entries as rejected,
//     in bulk (Lease does, up to 10,000 a call), until the line is empty.
//   - A campaign the registry does not know (or cannot read) stays awake but
//     is not moved, so its entries are kept; the leader logs it once and
//     asks the registry again every PollInterval.
//   - A campaign with a pre-queue (couponq.Campaign.PreQueue) is not moved
//     before OpensAt. The first tick at or after it seats the pre-queue
//     (couponq.Seater.Seat, with a fresh random seed the Queue records, or
//     resuming a seating another leader began) and moves nobody until that
//     is done; TickEvent.Seating carries the record once per process and
//     the leader logs it, so an audit can replay the order
//     (couponq.SeatOrder). A Queue that cannot seat makes every such tick
//     an error, and nothing moves.
//   - A sharded campaign (couponq.Campaign.Shards) is driven like any
//     other: its lease merges the sub-lines by admission time.
//   - A tick that leases nothing tries Rest. A campaign that rests is no
//     longer driven, until a Wake puts it back on the Agenda. One that does
//     not (entries in flight still awaiting their results) tries again
//     after 1, 2, 4, 8, then every 16 ticks, its Lease going on every tick
//     to recover expired leases.
//
// # First come, first served: the exact cutoff
//
// Entries leave the line in entry order, but a campaign's last units are
// decided by issuers running in parallel (over a topic's partitions, on
// several workers, in batches), and the Store takes requests in whatever
// order they reach it. Were more entries in flight than units left, a
// later entry could take the unit an earlier one is then refused: an
// inversion, a user told sold out while someone who came after them holds
// a unit. So a tick moves at most the stock that remains undecided:
//
//	room = Stock − issued − in flight
//
// issued being the Store's count of units (couponq.IssuedCounter: pgstore,
// redisstore and memory have it; for a Store without it, the Queue's count
// of entries recorded as issued) and in flight the Queue's
// (LineStats.InFlight: handed downstream, no outcome recorded yet). Issued
// units plus entries in flight never exceed the stock, so every entry
// handed downstream gets a unit unless its user already holds
// PerUserLimit of them; and an entry is handed downstream only after every
// entry ahead of it. Hence nobody told sold out was passed by a later
// entry. The entries behind the cutoff wait in line while the outcomes
// come in, and each outcome that does not take its unit lets a later tick
// move one more entry. Case by case:
//
//   - Per-user limits and duplicates: a user who already holds
//     PerUserLimit units hears Duplicate, and the next tick gives that
//     entry's share of the room to the next entry in line. The Store's
//     count includes units it issued by any route (a host's own issuance,
//     an earlier run), which the line's count would miss.
//   - Redeliveries (the transport's, or an entry whose hand-off ran out and
//     went back to the line): the same entry, with the same key, counted
//     in flight once; the Store answers it with its first outcome, never a
//     second unit.
//   - Dead letters: an entry that keeps failing is recorded rejected/failed,
//     not sold out, and its unit goes to the next entry; if its Store call
//     had committed after all, the Store's count says so.
//   - A raised stock: the room grows at the first tick that reads the new
//     Stock (through the node's cache, within CacheTTL), and a sold-out mark
//     is taken back when the stock is raised. Issuers read the Stock through
//     their own caches, so until those refresh they may still answer sold
//     out for entries the raise covers.
//   - A lowered stock: never below the issued count (couponq.
//     ErrStockBelowIssued); below issued + in flight, the entries in flight
//     compete for what is left in the order they reach the Store, so at
//     most that many are decided out of order.
//   - No room, nothing in flight, entries waiting (the counts say the stock
//     is gone, yet no answer marked the line sold out — a stock lowered to
//     the issued count, a Queue whose count is ahead of a Store without
//     one): the tick moves the head of the line alone and the Store answers
//     it; a sold-out answer marks the line, whose entries then resolve in
//     bulk. A tick never waits on a count that cannot move.
//   - A sold-out line is leased in full: Lease resolves its entries in bulk.
//     A tick held at 0 by the cutoff still calls Lease (for nothing), so
//     entries whose hand-off ran out return to the line and their unit
//     comes back to them.
//
// The in-flight count is read before the issued count, so an entry decided
// between the two reads is counted twice (the tick moves one fewer), never
// not at all. While the Stock stays put, nothing but the leader's own moves
// lowers the room (an outcome turns an entry in flight into a unit issued,
// or frees it), so the leader keeps the room it read less what it moved
// since, and reads the two counts again only when a tick needs more than
// that or the Stock changed: a campaign far from its cutoff costs no extra
// reads, one near it two per tick (a Lua script on the line's slot and the
// Store's count: one GET on redisstore, one primary-key SELECT on pgstore).
// A new leader starts by reading them.
//
// Sharded campaigns (couponq.Campaign.Shards) have the same room, counted
// over all sub-lines; the entries moved are the oldest by admission time
// among those admitted at least the watermark (100 ms) ago. So the cutoff
// is exact against admission time up to the merge's own bound: a user told
// sold out while one admitted after them holds a unit had an admission
// that reached its sub-line more than 100 ms after its admission time, or
// was admitted within the clock difference between two API processes plus
// 10 ms (redisq's resolution of admission times) of that later user.
//
// V1 campaigns do not pass through the scheduler: their order is the order
// in which requests take the lock and the Tally's counter, not the order
// they arrived in. internal/fcfstest measures both modes.
//
// The price is drain time at the cutoff. A campaign whose last entries all
// take their units drains as it would without the cutoff: the move that
// reaches the stock carries exactly the entries it covers. Each entry near
// the cutoff that frees its unit costs a round trip (its outcome recorded,
// then the next tick moves its replacement, up to one Interval later).
// BENCHMARKS.md measures drain time at the cutoff against the same
// pipeline without it.
//
// # Guarantees
//
//   - First come, first served, exactly: no entry told sold out while a
//     later one holds a unit (above, with the bound for sharded campaigns).
//   - At most BatchSize entries per Interval per campaign, recovered entries
//     included, also across a change of leader (above).
//   - One mover per campaign across processes: one leader at a time, moving
//     only while it trusts its lease, and one tick of a campaign at a time.
//   - Recovery: a standby takes over within LeaderTTL×4/3 of the leader's
//     death (its lease expiring, plus one standby period) and moves each
//     campaign one Interval later.
//
// # Costs
//
// Idle, whatever the number of campaigns: the leader sends 1/PollInterval
// Agenda reads (ZRANGE) and 3/LeaderTTL refreshes, 1.3 commands a second
// with the defaults; a standby 3/LeaderTTL obtains, 0.3 a second. Redis
// counts the commands a lease script runs too (a refresh is EVALSHA, GET
// and PEXPIRE), so INFO stats shows about 1.9 a second for the leader, and
// the leader's wake subscription adds a PING every 30 s.
// BENCHMARKS.md has the figures measured at 10, 1,000 and 10,000 idle
// campaigns. Active: per awake campaign and Interval one Lease script, plus
// one Ack or Release script when a batch moved, plus Rest (two or three
// commands) on ticks that lease nothing, plus, once the room the leader
// knows falls below BatchSize, the cutoff's two reads (above). Admission adds at most one ZADD per
// campaign per second per API process (the pre-mark) and one per entry that
// finds its line empty. A leader's sweep costs one SCAN per 1,000 keys in
// the database once per change of leader.
package dispatch
