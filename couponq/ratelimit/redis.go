package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

// Redis is a Limiter whose buckets live in Redis, so every process shares
// one limit per key. It runs github.com/go-redis/redis_rate's GCRA script:
// one round trip and one key per request key, "rate:{prefix}:{key}", which
// expires once its bucket is full again. The script reads the time from
// Redis, so the processes' clocks do not matter. It works on a standalone
// Redis and on a Redis Cluster (one key per call).
type Redis struct {
	lim    *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Redis limiter on the host's client (a *redis.Client or
// *redis.ClusterClient, go-redis v9), which it never closes. prefix
// separates limits sharing a Redis ("api", "admin"); empty means none. The
// client's timeouts bound each call: go-redis follows the request's context
// deadline only with Options.ContextTimeoutEnabled.
func NewRedis(rdb redis.UniversalClient, r Rate, prefix string) (*Redis, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: ratelimit: a Redis client is required", couponq.ErrInvalidConfig)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if prefix != "" {
		prefix += ":"
	}
	return &Redis{
		lim:    redis_rate.NewLimiter(rdb),
		limit:  redis_rate.Limit{Rate: r.Events, Period: r.Per, Burst: r.burst()},
		prefix: prefix,
	}, nil
}

// Allow implements Limiter.
func (l *Redis) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	res, err := l.lim.Allow(ctx, l.prefix+key, l.limit)
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(time.Nanosecond, res.RetryAfter), nil
}
