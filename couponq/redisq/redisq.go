package redisq

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/lock/redislocker"
)

// Config configures New. Zero values take the defaults documented on each
// field.
type Config struct {
	// Client is the host's Redis client: redis.NewUniversalClient gives a
	// single node, Sentinel or a Cluster from one address list. Required.
	// couponq never closes it.
	Client redis.UniversalClient
	// Prefix starts every key, so several fleets can share one Redis; every
	// process of one fleet uses the same. Empty means "couponq". It may not
	// contain braces, which would move the hash tag.
	Prefix string
	// DisableCoalescing sends every admission to Redis as its own script
	// call. By default, admissions of a campaign that arrive while another
	// of its admissions is on its way go together in one call (up to 256,
	// in arrival order, each caller with its own ticket): far fewer round
	// trips under a burst and no added wait when idle, since a lone
	// admission goes out at once. Status reads of a campaign go together
	// the same way, as one pipeline; DisableCoalescing turns that off too.
	DisableCoalescing bool
	// ReplicaAcks makes every admission wait until that many replicas of
	// the campaign's master acknowledge its write (Redis WAIT on the
	// admission's connection; a coalesced batch waits once) before it is
	// answered, so a failover to one of them cannot lose an admission
	// answered 202. Zero, the default, answers once the master has it:
	// replication is asynchronous, and a master killed before its replicas
	// read the last writes loses them in a failover. Fewer acknowledgements
	// within ReplicaTimeout answer the admission's callers with an error
	// wrapping couponq.ErrUnavailable (503 "unavailable"), sold-out answers
	// included, while the entry may still be in the line: pressing again
	// hears the repeat answer once a replica has it, so nothing is admitted
	// twice. With one replica per master, a master that has lost its replica
	// (after a failover, until the old master rejoins as a replica) admits
	// nobody. WAIT counts replicas that received the write, not ones that
	// wrote it to disk.
	ReplicaAcks int
	// ReplicaTimeout bounds that wait. Zero means 500 ms; keep it below the
	// client's ReadTimeout (3 s by default).
	ReplicaTimeout time.Duration
}

// New returns the Redis Backend, named "redis": the lines (one Lua script
// per operation), the registry (one versioned hash per campaign, in the
// campaign's slot), V1's counters (the seed's SADD and INCR), and locks on
// bsm/redislock, all on cfg.Client under cfg.Prefix. Its Ping sends PING.
func New(cfg Config) (couponq.Backend, error) {
	if cfg.Client == nil {
		return couponq.Backend{}, fmt.Errorf("%w: redisq: Client is required", couponq.ErrInvalidConfig)
	}
	q, err := redisline.New(redisline.Config{Client: cfg.Client, Prefix: cfg.Prefix, DisableCoalescing: cfg.DisableCoalescing,
		ReplicaAcks: cfg.ReplicaAcks, ReplicaTimeout: cfg.ReplicaTimeout})
	if err != nil {
		return couponq.Backend{}, err
	}
	registry, err := redisline.NewRegistry(redisline.RegistryConfig{Client: cfg.Client, Prefix: cfg.Prefix})
	if err != nil {
		return couponq.Backend{}, err
	}
	tally, err := redisline.NewTally(cfg.Client, cfg.Prefix)
	if err != nil {
		return couponq.Backend{}, err
	}
	locker, err := redislocker.New(cfg.Client, cfg.Prefix)
	if err != nil {
		return couponq.Backend{}, err
	}
	rdb := cfg.Client
	return couponq.Backend{
		Name: "redis", Queue: q, Registry: registry, Tally: tally, Locker: locker,
		Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	}, nil
}
