package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/pgstore"
)

// The host owns the pool; the Store only borrows it. This example needs a
// server (scripts/postgres.sh starts one), so it is compiled but not run.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("COUPONQ_POSTGRES_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// Idempotent and serialised by an advisory lock: every process may run
	// it at start. Hosts with their own migration tool ship
	// pgstore.Migration in it instead.
	if err := pgstore.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	store, err := pgstore.New(pgstore.Config{Pool: pool})
	if err != nil {
		log.Fatal(err)
	}

	e := couponq.Entry{Campaign: "spring-drop", User: "alice", Number: 1}
	r := couponq.IssueRequest{Campaign: e.Campaign, User: e.User, Key: e.Key(), Stock: 100, PerUserLimit: 1}
	first, err := store.Issue(ctx, r)
	if err != nil {
		log.Fatal(err)
	}
	// A redelivered entry gets its issuance back; nothing more is taken.
	again, err := store.Issue(ctx, r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Outcome, again.ID == first.ID)

	// A batch is one read and one write, in order, across campaigns.
	out, err := store.IssueBatch(ctx, []couponq.IssueRequest{
		{Campaign: "spring-drop", User: "alice", Key: "spring-drop/2/alice", Stock: 100, PerUserLimit: 1},
		{Campaign: "spring-drop", User: "bob", Key: "spring-drop/3/bob", Stock: 100, PerUserLimit: 1},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out[0].Outcome, out[1].Outcome)
	// With a fresh database this prints:
	// issued true
	// duplicate issued
}
