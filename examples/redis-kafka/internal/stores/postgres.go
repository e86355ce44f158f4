package stores

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/couponq/couponq/couponq/pgstore"
)

// openPostgres connects a pool, applies pgstore's schema if asked (Migrate
// is idempotent and serialised by an advisory lock, so every worker may run
// it at start) and returns the Store on it.
func openPostgres(ctx context.Context, cfg Config) (Store, func(), error) {
	if cfg.Postgres == "" {
		return nil, nil, errors.New("stores: postgres needs a DSN (-postgres or COUPONQ_POSTGRES_DSN)")
	}
	pool, err := pgxpool.New(ctx, cfg.Postgres)
	if err != nil {
		return nil, nil, fmt.Errorf("stores: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("stores: postgres: %w", err)
	}
	if cfg.Migrate {
		if err := pgstore.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	s, err := pgstore.New(pgstore.Config{Pool: pool})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return s, pool.Close, nil
}
