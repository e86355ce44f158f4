// Package redisq holds couponq's Redis backends: Queue (the waiting line,
// leased hand-off and recorded outcomes, one Lua script per operation) and
// Tally (V1's SADD/INCR counters). Both take the host's
// redis.UniversalClient — single node, Sentinel or Cluster — and never close
// it. Every key of a campaign carries the hash tag {campaign}, so a
// campaign's scripts never cross slots on Redis Cluster; Config.Prefix lets
// several hosts share one Redis.
package redisq
