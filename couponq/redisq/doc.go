// Package redisq holds couponq's Redis backends: Queue (the waiting line,
// leased hand-off and recorded outcomes, one Lua script per operation),
// Tally (V1's SADD/INCR counters) and Registry (the campaigns every process
// shares, one versioned hash per campaign in the campaign's slot). All take
// the host's redis.UniversalClient — single node, Sentinel or Cluster — and
// never close it. Every key of a campaign carries the hash tag {campaign},
// so a campaign's scripts never cross slots on Redis Cluster; Config.Prefix
// lets several hosts share one Redis.
//
// A campaign's keys (KeysFor; Keys.All lists them) have no expiry while it
// runs. Once it is finished, Queue.Archive puts it away with one script on
// its slot: if nobody waits or is in flight, every key is set to expire
// after a retention (PEXPIRE), during which users still read their
// outcomes, or deleted at once for a retention of 0; and Registry.Delete
// removes its record. The only keys outside a campaign's slot, the agenda
// ("prefix:agenda") and the Registry's index ("prefix:campaigns"), hold
// one member per campaign, which Archive and Delete remove.
package redisq
