package pgstore

import (
	"context"
	_ "embed"
	"fmt"
)

// Migration is the schema the Store needs: schema.sql, embedded. It is
// idempotent (CREATE ... IF NOT EXISTS, CREATE OR REPLACE), so applying it
// again is safe. Hosts that run their own migration tool add it as one
// migration and apply it in a transaction; the others call Migrate.
//
//go:embed schema.sql
var Migration string

// migrationLock is the pg_advisory_xact_lock key Migrate takes: "couponq" in
// ASCII. Two processes migrating at once would otherwise race on the
// catalog: concurrent CREATE TABLE IF NOT EXISTS of one name can fail with a
// unique violation in pg_type, and concurrent CREATE OR REPLACE FUNCTION
// with "tuple concurrently updated".
const migrationLock int64 = 0x636f75706f6e71

// Migrate applies Migration in one transaction, holding an advisory lock so
// that concurrent Migrate calls (several replicas starting together) run one
// after the other. It is safe to call on every start.
func Migrate(ctx context.Context, db DB) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx)) // best effort: the error says what failed
		}
	}()
	if _, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	// Without arguments pgx sends the script with the simple query protocol,
	// which runs its several statements in order.
	if _, err = tx.Exec(ctx, Migration); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return nil
}
