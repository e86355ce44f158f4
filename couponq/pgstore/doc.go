// Package pgstore is a couponq.Store (and couponq.BatchStore) on
// PostgreSQL, for hosts that want their issuances in a database of record.
// It is its own Go module, so the couponq module does not depend on pgx.
// It takes the host's pool (any DB, normally a *pgxpool.Pool) and never
// closes it; several worker processes may share one database: PostgreSQL,
// not the process, enforces the stock and the per-user limit.
//
// A node takes it as node.Config.Store, shared by every worker, and its
// readiness checks the database through Store.Ping (the check "store"):
//
//	import (
//		"github.com/jackc/pgx/v5/pgxpool"
//
//		"github.com/couponq/couponq/couponq/pgstore"
//		"github.com/couponq/couponq/node"
//	)
//
//	pool, err := pgxpool.New(ctx, dsn)
//	err = pgstore.Migrate(ctx, pool)
//	store, err := pgstore.New(pgstore.Config{Pool: pool})
//	n, err := node.New(node.Config{Backend: backend, Store: store, ...})
//	mux.Handle("/readyz", n.Readiness()) // 503 naming "store" while PostgreSQL is down
//
// Its answers are memory.Store's, request for request: a key seen before
// gets its first issuance back; a user holding max(PerUserLimit, 1) units
// gets Duplicate; a campaign whose issued count reached Stock answers
// SoldOut; otherwise a unit is issued. Issuance.SoldOut tells whether stock
// remains after the request. IssueBatch decides its requests in slice order,
// as if Issue were called for each in turn, whatever campaigns they name.
//
// # Schema
//
// Migration (the embedded schema.sql) creates, in the connection's
// search_path schema:
//
//   - couponq_counters: one row per campaign, (campaign, issued, stock).
//     The counter every issuance of the campaign updates.
//   - couponq_issuances: one row per issued unit, (campaign, user_id, n,
//     idem_key, id, issued_at), primary key (campaign, user_id, n) where n
//     numbers the user's units 1, 2, ..., and unique (campaign, idem_key).
//     The two unique constraints are how a call notices that a concurrent
//     call served the same key or user first. Rows are never updated or
//     deleted; do not delete them while their campaign is live.
//   - couponq_require(ok, msg): a two-line PL/pgSQL function that fails the
//     issuing statement (see below).
//
// Migrate applies Migration in one transaction under an advisory lock; it is
// idempotent, so every process may call it at start. A host that manages its
// schema with its own tool (goose, golang-migrate, Atlas, ...) copies
// schema.sql, or writes pgstore.Migration, into a migration of its own
// instead, applied in a transaction.
//
// # How a call is decided
//
// A call (Issue is a batch of one) takes at most two round trips:
//
//  1. One read statement (one snapshot, no locks): the issuances of the
//     batch's keys, the holdings of its users and its campaigns' counters.
//     From it the Store decides every request in order exactly as
//     memory.Store would. Requests for keys already issued, users at their
//     limit or campaigns sold out are final here (what the read saw cannot
//     be undone: issuances are never removed and counters only grow), and a
//     call with nothing to issue ends after this one round trip.
//  2. One write statement, autocommitted, for the rest: an INSERT ... ON
//     CONFLICT DO UPDATE on each campaign's counter that adds the number of
//     units the batch issues there only if it stays within Stock (the
//     conditional update: no SELECT ... FOR UPDATE), followed in the same
//     statement by one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
//     NOTHING of the new issuances. If any campaign's stock no longer
//     suffices, or any insert hit a key or user slot taken since the read,
//     couponq_require fails the statement with SQLSTATE 40001, which rolls
//     it back whole.
//
// A failed write (and any other serialization failure or deadlock) is
// retried with a fresh read, up to Config.MaxRetries times with a short
// jittered backoff; the fresh read sees what the winning call committed, so
// a redelivered key then gets the winner's issuance back. Retries happen
// only in races: two calls for one key or user at once, or calls racing
// for the last units of a campaign.
//
// # Isolation level
//
// READ COMMITTED, PostgreSQL's default. The counter upsert is what needs it:
// when another call holds the campaign's row, the upsert waits for it and,
// under READ COMMITTED, then re-evaluates its condition and new value
// against the newest committed row, so concurrent calls queue on the row
// instead of failing, and the stock is never over-granted. Under REPEATABLE
// READ or SERIALIZABLE (a default_transaction_isolation set on the role or
// database) the same wait ends in a serialization failure; the Store stays
// correct, since it retries those, but a contended campaign turns into
// retries. The read needs no isolation beyond its own snapshot: everything
// it can miss is caught by the write's unique constraints and its stock
// condition.
//
// Campaigns are granted in sorted order, and every issuance of a campaign is
// inserted while its counter row is locked, so a call never waits on another
// call's uncommitted issuance and two calls never deadlock.
//
// # Durability
//
// An answer is returned only after its statement committed. With
// PostgreSQL's defaults (fsync on, synchronous_commit on) the commit is on
// disk first, so an acknowledged issuance survives a crash of the server or
// its machine; with synchronous replication configured
// (synchronous_standby_names, synchronous_commit on or remote_apply) it
// also survives losing the primary. synchronous_commit off trades the last
// few hundred milliseconds of acknowledged issuances on a crash for
// throughput: their stock could be issued again, and the issuer's
// over-issue detector would report it.
//
// # Performance
//
// A campaign's counter row is its serialization point: a call that issues
// holds the row's lock from its upsert to its commit, including the WAL
// flush, so issuing calls of one campaign run one after another, whatever
// the number of workers. The batch path is how to go faster: one call
// issuing a hundred units holds the lock once and flushes once for all of
// them (BenchmarkIssueBatch against BenchmarkIssue: well over an order of
// magnitude more issuances per second). Calls that issue nothing (repeated
// keys, users at their limit, a sold-out campaign) take no lock and run in
// parallel. Different campaigns do not contend.
//
// The Store uses pgx's default statement caching (each connection prepares
// the two statements once). Behind a pooler in transaction mode, configure
// the pool's DefaultQueryExecMode accordingly.
package pgstore
