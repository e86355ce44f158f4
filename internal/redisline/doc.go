// Package redisq holds couponq's Redis backends: Queue (the waiting line,
// leased hand-off and recorded outcomes, one Lua script per operation),
// Tally (V1's SADD/INCR counters) and Registry (the campaigns every process
// shares, one versioned hash per campaign in the campaign's slot). All take
// the host's redis.UniversalClient — single node, Sentinel or Cluster — and
// never close it. Every key of a campaign carries the hash tag {campaign},
// so a campaign's scripts never cross slots on Redis Cluster; Config.Prefix
// lets several hosts share one Redis.
//
// # The line
//
// A campaign's waiting line takes about 40 bytes of Redis memory per
// waiting entry at 300,000 or 1,000,000 waiting (12-byte user IDs; a single
// sorted set of users, which it was before, took 108 to 121) and still
// answers every position exactly. Entry numbers run 1, 2, 3... without
// gaps; with P standing for "prefix:{campaign}:", the line is
//
//   - P+"line" (Keys.Line), how many entries wait, an integer. It exists
//     exactly while someone waits, which Rest and Sweep rely on.
//   - P+"q:<b>" (Keys.OrderBucket), order bucket b: a sorted set of the
//     users waiting with an entry number n of n / 32 = b, scored n % 32.
//     It holds at most 32 users, so Redis keeps it a short listpack:
//     ZADD, ZRANK and ZREM walk it, so its width sets what each costs.
//     Lease pops the lowest bucket someone waits in (ZPOPMIN); a released
//     or expired entry goes back to its own bucket under its own number.
//   - P+"u:<i>" (Keys.UserBucket), user-index bucket i (the first 16 bits
//     of the user's SHA-1, modulo 8,192): a hash of each waiting user of
//     the bucket to its entry number, some 122 users per bucket at
//     1,000,000 waiting (listpacks). Admission's HSETNX there both catches
//     a user already waiting and indexes a new one.
//   - P+"out" (Keys.Out), a Fenwick tree (a BITFIELD string of 32-bit
//     counters) of how many entries are out of the line — leased, decided
//     or otherwise taken out — per order bucket, and the highest bucket
//     whose count ever grew. As numbers have no gaps, b*32 - 1 entries
//     were admitted before bucket b, so a waiting user's position is that,
//     less those out of the buckets below, plus its rank in its own bucket
//     (ZRANK), plus one: log2 of the buckets counters in one read, O(log n)
//     all told; above the highest bucket counted (behind everyone ever
//     leased, which is nearly everyone waiting) those out are simply all
//     that were admitted less those waiting, two plain reads. Admission
//     never changes a count (it extends the tree by one bucket every 32
//     entries); Lease, Ack, Release and Record change log2 counters per
//     bucket they touch, and Lease and LineStats find the head by
//     descending the tree.
//
// The count and the buckets exist only while someone waits; the tree
// stays (4 bytes per 32 entries ever admitted) until Archive puts it away
// with the campaign's other keys. Every count follows what Redis reports
// (ZADD, ZREM, ZPOPMIN), never what a caller believes. The layout's code,
// lua/line.lua (reading), line_write.lua and line_more.lua, goes in front
// of each script, as much of it as the script uses.
//
// Measured by TestMemoryPerWaitingEntry (used_memory before and after
// admitting n users of 12 bytes, divided by n; Redis 7.0.15, default
// listpack limits): 10,000 waiting: 99 to 107 bytes an entry (the single
// sorted set: 115); 300,000: 37 to 41 (117 to 121); 1,000,000: 41 to 42
// (108). Short lines pay for their many small index buckets (under two
// users each at 10,000; a line of 10,000 takes about a megabyte either
// way). Past some 4 million waiting,
// index buckets pass 512 users and Redis turns them, one by one, into hash
// tables: the line then costs about what the single sorted set did. The
// figures need Redis's default listpack limits (zset-max-listpack-entries
// 128, hash-max-listpack-entries 512, both max-listpack-value 64): a user
// ID longer than 64 bytes makes its two buckets ordinary (larger) sets.
// The order buckets' width of 32 is the cheapest admission measured
// (TestAdmitManyScriptCPU with the width changed, batches of 128 new users,
// Redis CPU per admission: 128 wide 8.4 µs, 64 wide 6.5, 32 wide 5.0, 16
// wide 5.7: wider buckets make every insert walk a longer listpack,
// narrower ones extend the tree more often). A line written with another
// width reads differently: the admission scripts refuse it (its tree covers
// too few buckets) rather than misplace anyone, so such a line drains with
// the version that wrote it. Lines of fewer than 32 entries read the same.
//
// The price is Redis time (the project's 2-core machine, against the single
// sorted set): an admission call takes about 15 µs of it against 9 (a
// SHA-1, an index insert that also catches a user already waiting, a
// listpack insert and the count, instead of a lookup and a skiplist
// insert), so a campaign admits about a quarter fewer per second
// (scripts/bench-redis.sh 50 200000: the Go API some 39,000 against
// 51,000, coalesced 72,000 to 82,000 against 97,000 to 107,000); Status
// takes 18 to 20 µs against 11 to 12; a Lease of 10,000 entries 78 ms
// against 49, returning 10,000 expired leases to the line 75 ms against 27,
// a sold-out drain of 10,000 48 ms against 28 (MaxRecover bounds those).
//
// The bucket keys are not in the scripts' KEYS, since which buckets a
// script touches depends on data (the user's hash, the entry number, where
// the head is): each script names them from its declared line key. They
// share its hash tag, so on Redis Cluster they are in its slot on its
// node, which Redis allows (7.0 and later check every key a script
// touches against the slot; a key elsewhere fails the script, it never
// reaches another node). ACL key patterns that let a client use
// "prefix:{campaign}:*" cover them. The scripts need Redis 6.2 or later
// (BITFIELD_RO); the tests run on 7.0, standalone and Cluster.
//
// # The pre-queue's seating
//
// Queue.Seat (couponq.Seater) puts a campaign's pre-queue in the random
// order couponq.SeatSwaps draws: each swap exchanges the users waiting at
// two entry numbers, i.e. their index entries (u:<i>) and order bucket
// members (q:<b>); the numbers keep their clock checkpoints, so the places
// keep their admission times, and no bucket's count of those out of line
// changes, so the tree is not written. The record, P+"seat"
// (Keys.Seat), is a hash of the seed (a decimal string: Lua numbers are
// doubles, which cannot hold every uint64, and the scripts never compute
// with it), n, the step seating stands at and whether it is done, and
// the pre-queue's end that Queue.Seal marks (lua/seal.lua) before the
// first admission after opening, which n is taken from if present.
// lua/seat_begin.lua records seed and n once; lua/seat.lua applies one
// chunk of swaps, if the recorded step is where the chunk starts, and
// moves the step on: a seating that stops resumes from the last chunk
// applied, with the recorded seed.
//
// A line of the older layout (one sorted set at Keys.Line) makes every
// script of its campaign fail with WRONGTYPE before anything is written:
// drain or archive campaigns before upgrading.
//
// A campaign's keys (KeysFor; Keys.All lists them) have no expiry while it
// runs. Once it is finished, Queue.Archive puts it away with one script on
// its slot: if nobody waits or is in flight, every key is set to expire
// after a retention (PEXPIRE), during which users still read their
// outcomes, or deleted at once for a retention of 0; and Registry.Delete
// removes its record. The only keys outside a campaign's slot, the agenda
// ("prefix:agenda") and the Registry's index ("prefix:campaigns"), hold
// one member per campaign, which Archive and Delete remove.
//
// # Replica-acknowledged admission
//
// With Config.ReplicaAcks set, each admission script call (one user or a
// coalesced batch) goes in one pipeline on one connection to the
// campaign's master with a SET of P+"acked" (expiring a minute after the
// campaign's last such admission: it makes every call write, so WAIT
// covers a repeat answer too) and WAIT; fewer replicas than asked within
// Config.ReplicaTimeout answer ErrNotReplicated, wrapped with
// couponq.ErrUnavailable (replicas.go).
package redisline
