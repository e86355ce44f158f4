// Package redisstore is a couponq.Store (and couponq.BatchStore) on Redis,
// beside the Redis queue in package redisq. It takes the host's
// redis.UniversalClient — single node, Sentinel or Cluster — and never
// closes it.
//
// Each call runs one Lua script per campaign that reads the campaign's
// issued counter, the users' holdings and the idempotency keys, decides
// every request in order, and only then writes: the decision and its
// writes are atomic, and a repeated key answers with its first outcome. A
// campaign's three keys share the hash tag {campaign}, so the script never
// crosses slots on Redis Cluster. Several worker processes may share one
// Store: Redis, not the process, enforces the stock.
//
// # Durability
//
// Redis acknowledges a script once it ran in memory. What survives a crash
// depends on the server's persistence, which the host configures:
//
//   - appendonly yes, appendfsync always: every acknowledged issuance is on
//     disk before the reply. Nothing acknowledged is lost when Redis or its
//     machine crashes. Use this for a Store of record; CheckDurability
//     verifies it.
//   - appendonly yes, appendfsync everysec (the usual setting): a crash of
//     the machine (not just the process) can lose about the last second of
//     issuances. Their outcomes may already be recorded and told to users,
//     while the restarted Store has forgotten them: their stock can be issued
//     again (an over-issue of at most one second's issuances) and their
//     users could be issued a second time.
//   - RDB snapshots only, or no persistence: everything since the last
//     snapshot is lost.
//
// Replication is asynchronous: a failover to a replica can lose issuances
// the old primary acknowledged, whatever the fsync setting (Redis 7.2's
// WAITAOF narrows this; the Debian 7.0 server the tests use lacks it). The
// issuer's over-issue detector (see issuing.Config.OnOverIssue) reports such
// a loss when the recorded outcomes exceed the stock. Hosts that cannot
// accept this keep issuances in a database with synchronous commit, such as
// the Postgres Store in the pgstore module.
//
// Memory: a campaign keeps one hash field per issuance (key -> ID) and one
// per holder; they live as long as the host keeps the keys (delete
// Keys(campaign) once a campaign is archived elsewhere).
package redisstore
