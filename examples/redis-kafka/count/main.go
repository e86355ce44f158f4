// Command count prints a campaign's final counts from the shared backends:
// what the Store issued and to how many distinct users, and how many
// distinct entries the Redis line recorded as issued (what users were told).
//
//	go run ./count -redis 127.0.0.1:6379 -store postgres -campaign launch
//
// With -store memory only the recorded count exists outside the workers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/examples/redis-kafka/internal/stores"
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address (the line)")
	kind := flag.String("store", "redis", "Store: "+stores.Kinds)
	dsn := flag.String("postgres", os.Getenv("COUPONQ_POSTGRES_DSN"), "Postgres DSN for -store postgres (default $COUPONQ_POSTGRES_DSN)")
	id := flag.String("campaign", "launch", "campaign ID")
	brief := flag.Bool("issued", false, "print only the Store's issued count (or the recorded one for -store memory)")
	flag.Parse()
	if err := run(*redisAddr, *kind, *dsn, *id, *brief); err != nil {
		fmt.Fprintln(os.Stderr, "count:", err)
		os.Exit(1)
	}
}

func run(redisAddr, kind, dsn, campaign string, brief bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	queue, err := redisq.New(redisq.Config{Client: rdb, Prefix: "example"})
	if err != nil {
		return err
	}
	recorded, err := queue.IssuedCount(ctx, campaign)
	if err != nil {
		return err
	}
	if !stores.Durable(kind) {
		if brief {
			fmt.Println(recorded)
		} else {
			fmt.Printf("campaign=%s recorded_issued=%d (a memory Store's count lives in its worker)\n", campaign, recorded)
		}
		return nil
	}
	store, closeStore, err := stores.Open(ctx, stores.Config{Kind: kind, Redis: rdb, Prefix: "example", Postgres: dsn})
	if err != nil {
		return err
	}
	defer closeStore()
	issued, err := store.Issued(ctx, campaign)
	if err != nil {
		return err
	}
	if brief {
		fmt.Println(issued)
		return nil
	}
	holders, err := store.Holders(ctx, campaign)
	if err != nil {
		return err
	}
	units, most := 0, 0
	for _, n := range holders {
		units += n
		most = max(most, n)
	}
	fmt.Printf("campaign=%s store=%s store_issued=%d distinct_holders=%d units_held=%d max_per_user=%d recorded_issued=%d\n",
		campaign, kind, issued, len(holders), units, most, recorded)
	return nil
}
