// Package stores opens the Store the example's worker (and its count tool)
// uses, by name: "postgres" (package pgstore), "redis" (package redisstore,
// in the Redis that holds the line) or "memory" (one process only).
package stores

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/redisstore"
)

// Kinds lists the names Open accepts.
const Kinds = "postgres|redis|memory"

// Store is a couponq.BatchStore that can also count what it issued.
type Store interface {
	couponq.BatchStore
	// IssuedCount returns the campaign's issued count.
	IssuedCount(ctx context.Context, campaign string) (int64, error)
	// Holders returns how many units each user holds.
	Holders(ctx context.Context, campaign string) (map[string]int, error)
}

// Durable reports whether several worker processes may share the kind of
// Store: true for postgres and redis, false for memory.
func Durable(kind string) bool { return kind == "postgres" || kind == "redis" }

// Config says which Store to open and where.
type Config struct {
	Kind string // postgres, redis or memory
	// Redis is the client of the Redis holding the line (redis kind).
	Redis redis.UniversalClient
	// Prefix is the Redis key prefix (redis kind).
	Prefix string
	// Postgres is the DSN (postgres kind).
	Postgres string
	// Migrate applies pgstore's schema first (postgres kind).
	Migrate bool
}

// Open returns the Store and a function that releases what it opened.
func Open(ctx context.Context, cfg Config) (Store, func(), error) {
	switch cfg.Kind {
	case "memory":
		return memStore{memory.NewStore()}, func() {}, nil
	case "redis":
		s, err := redisstore.New(redisstore.Config{Client: cfg.Redis, Prefix: cfg.Prefix})
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	case "postgres":
		return openPostgres(ctx, cfg)
	}
	return nil, nil, fmt.Errorf("stores: unknown store %q (want %s)", cfg.Kind, Kinds)
}

// memStore gives memory.Store the Store interface's method shapes.
type memStore struct{ *memory.Store }

func (m memStore) IssuedCount(_ context.Context, campaign string) (int64, error) {
	return m.Store.IssuedCount(context.Background(), campaign)
}

func (m memStore) Holders(_ context.Context, campaign string) (map[string]int, error) {
	return m.Store.Holders(campaign), nil
}
