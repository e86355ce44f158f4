package redisline

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

// Tally is V1's couponq.Tally on Redis, exactly the seed's commands: SADD
// for the set of users who passed the gate, INCRBY for the stock counter
// (DECR as INCRBY -1 on rollback). Keys share the campaign's hash tag.
type Tally struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ couponq.Tally = (*Tally)(nil)

// NewTally returns a Tally on client under prefix ("" means "couponq"). The
// Tally never closes client.
func NewTally(client redis.UniversalClient, prefix string) (*Tally, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redisq: client is required", couponq.ErrInvalidConfig)
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Tally{rdb: client, prefix: prefix}, nil
}

// Add implements couponq.Tally.
func (t *Tally) Add(ctx context.Context, campaign, user string) (bool, error) {
	n, err := t.rdb.SAdd(ctx, KeysFor(t.prefix, campaign).V1Users, user).Result()
	if err != nil {
		return false, fmt.Errorf("redisq: sadd: %w", err)
	}
	return n == 1, nil
}

// Remove implements couponq.Tally.
func (t *Tally) Remove(ctx context.Context, campaign, user string) error {
	if err := t.rdb.SRem(ctx, KeysFor(t.prefix, campaign).V1Users, user).Err(); err != nil {
		return fmt.Errorf("redisq: srem: %w", err)
	}
	return nil
}

// Has implements couponq.Tally.
func (t *Tally) Has(ctx context.Context, campaign, user string) (bool, error) {
	in, err := t.rdb.SIsMember(ctx, KeysFor(t.prefix, campaign).V1Users, user).Result()
	if err != nil {
		return false, fmt.Errorf("redisq: sismember: %w", err)
	}
	return in, nil
}

// Incr implements couponq.Tally.
func (t *Tally) Incr(ctx context.Context, campaign string, delta int64) (int64, error) {
	n, err := t.rdb.IncrBy(ctx, KeysFor(t.prefix, campaign).V1Count, delta).Result()
	if err != nil {
		return 0, fmt.Errorf("redisq: incrby: %w", err)
	}
	return n, nil
}
