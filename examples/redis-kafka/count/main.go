// Command count prints campaigns' final counts from the shared backends:
// the stock (from the registry), how many entries the line admitted and
// recorded as issued (what users were told; every sub-line of a sharded
// campaign together), and what the Store issued and to how many distinct
// users.
//
//	go run ./count -redis 127.0.0.1:6379 -store postgres -campaign gold,silver,bronze
//
// -redis is the fleet's address list (a Cluster's seeds, or Sentinels with
// -redis-master).
//
// With -store memory only the line's counts exist outside the workers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/examples/redis-kafka/internal/stores"
	"github.com/couponq/couponq/internal/shard"
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis addresses, comma-separated (the line and the registry)")
	master := flag.String("redis-master", "", "the Sentinel master name: -redis then lists the Sentinels")
	prefix := flag.String("prefix", "example", "Redis key prefix of the fleet")
	kind := flag.String("store", "redis", "Store: "+stores.Kinds)
	dsn := flag.String("postgres", os.Getenv("COUPONQ_POSTGRES_DSN"), "Postgres DSN for -store postgres (default $COUPONQ_POSTGRES_DSN)")
	ids := flag.String("campaign", "launch", "campaign IDs, comma-separated")
	brief := flag.Bool("issued", false, "print only the Store's issued count (the recorded one for -store memory), one line per campaign")
	flag.Parse()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(*redisAddr, ","), MasterName: *master})
	err := run(rdb, *prefix, *kind, *dsn, strings.Split(*ids, ","), *brief)
	rdb.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "count:", err)
		os.Exit(1)
	}
}

func run(rdb redis.UniversalClient, prefix, kind, dsn string, campaigns []string, brief bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: prefix})
	if err != nil {
		return err
	}
	// A campaign with Shards lives in several sub-lines: the sub-line
	// wrapper (the node's own, internal) sums their counts.
	base, ok := backend.Queue.(shard.Base)
	if !ok {
		return fmt.Errorf("the %s Backend's Queue cannot carry sub-lines", backend.Name)
	}
	queue, err := shard.New(shard.Config{Queue: base, Catalog: backend.Registry})
	if err != nil {
		return err
	}
	var store stores.Store
	if stores.Durable(kind) {
		s, closeStore, err := stores.Open(ctx, stores.Config{Kind: kind, Redis: rdb, Prefix: prefix, Postgres: dsn})
		if err != nil {
			return err
		}
		defer closeStore()
		store = s
	}
	for _, id := range campaigns {
		if err := one(ctx, queue, backend.Registry, store, kind, id, brief); err != nil {
			return err
		}
	}
	return nil
}

func one(ctx context.Context, queue couponq.LineStatser, registry couponq.Registry, store stores.Store, kind, id string, brief bool) error {
	line, err := queue.LineStats(ctx, id)
	if err != nil {
		return err
	}
	if store == nil {
		if brief {
			fmt.Println(line.Issued)
		} else {
			fmt.Printf("campaign=%s admitted=%d recorded_issued=%d waiting=%d in_flight=%d (a memory Store's count lives in its worker)\n",
				id, line.Admitted, line.Issued, line.Waiting, line.InFlight)
		}
		return nil
	}
	stock, name := "?", id // name: the Store's name of the campaign's incarnation
	if c, err := registry.Campaign(ctx, id); err == nil {
		stock, name = fmt.Sprint(c.Stock), c.StoreCampaign()
	}
	issued, err := store.IssuedCount(ctx, name)
	if err != nil {
		return err
	}
	if brief {
		fmt.Println(issued)
		return nil
	}
	holders, err := store.Holders(ctx, name)
	if err != nil {
		return err
	}
	units, most := 0, 0
	for _, n := range holders {
		units += n
		most = max(most, n)
	}
	fmt.Printf("campaign=%s stock=%s admitted=%d store=%s store_issued=%d distinct_holders=%d units_held=%d max_per_user=%d recorded_issued=%d waiting=%d in_flight=%d\n",
		id, stock, line.Admitted, kind, issued, len(holders), units, most, line.Issued, line.Waiting, line.InFlight)
	return nil
}
