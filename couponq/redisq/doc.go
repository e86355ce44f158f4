// Package redisq holds couponq's Redis backends: Queue (the waiting line,
// leased hand-off and recorded outcomes, one Lua script per operation),
// Tally (V1's SADD/INCR counters) and Registry (the campaigns every process
// shares, one versioned hash per campaign in the campaign's slot). All take
// the host's redis.UniversalClient — single node, Sentinel or Cluster — and
// never close it. Every key of a campaign carries the hash tag {campaign},
// so a campaign's scripts never cross slots on Redis Cluster; Config.Prefix
// lets several hosts share one Redis.
package redisq
