// Command worker is the downstream side of the Redis + Kafka example: the
// throttle (one leader across all workers) moves bounded batches from the
// Redis line to Kafka, and the issuer consumes them into the Store.
//
//	go run ./worker -redis 127.0.0.1:6379 -kafka 127.0.0.1:9092                      # Store in that Redis
//	go run ./worker -redis 127.0.0.1:6379 -kafka 127.0.0.1:9092 -store postgres -postgres postgres://...
//
// Run as many workers as you like with a shared Store (-store redis, the
// default, or -store postgres): the Store, not the process, enforces the
// stock. -store memory keeps issuances in the process and is only correct
// with a single worker; with two, each enforces the stock on its own and the
// issuer's over-issue detector reports it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/examples/redis-kafka/internal/stores"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
)

type options struct {
	redis, brokers, topic, group string
	store, postgres              string
	progress                     time.Duration
	campaign                     couponq.Campaign
}

func main() {
	var o options
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (the line, the throttle's leader lease, and the Store with -store redis)")
	flag.StringVar(&o.brokers, "kafka", "127.0.0.1:9092", "Kafka bootstrap servers")
	flag.StringVar(&o.topic, "topic", "couponq-entries", "Kafka topic")
	flag.StringVar(&o.group, "group", "couponq-issuers", "Kafka consumer group (all workers of a campaign share it)")
	flag.StringVar(&o.store, "store", "redis", "Store: "+stores.Kinds+" (memory is only correct with a single worker)")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("COUPONQ_POSTGRES_DSN"), "Postgres DSN for -store postgres (default $COUPONQ_POSTGRES_DSN)")
	flag.DurationVar(&o.progress, "progress", 2*time.Second, "how often to log the Store's issued count (0: never)")
	id := flag.String("campaign", "launch", "campaign ID")
	stock := flag.Int64("stock", 100, "stock")
	batch := flag.Int("batch", 10, "entries per throttle tick")
	interval := flag.Duration("interval", time.Second, "throttle tick")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	o.campaign = couponq.Campaign{ID: *id, Stock: *stock, BatchSize: *batch, Interval: *interval}
	if err := run(log, o); err != nil {
		log.Error("worker", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := o.campaign
	rdb := redis.NewClient(&redis.Options{Addr: o.redis})
	defer rdb.Close()
	catalog, err := couponq.NewCampaigns(c)
	if err != nil {
		return err
	}
	queue, err := redisq.New(redisq.Config{Client: rdb, Prefix: "example"})
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, closeStore, err := stores.Open(openCtx, stores.Config{
		Kind: o.store, Redis: rdb, Prefix: "example", Postgres: o.postgres,
		Migrate: true, // pgstore.Migrate: idempotent, safe for every worker to run at start
	})
	cancel()
	if err != nil {
		return err
	}
	defer closeStore()
	if !stores.Durable(o.store) {
		log.Warn("the memory Store lives in this process: only correct with a single worker; with more, each enforces the stock on its own and the campaign is over-issued", "store", o.store)
	}

	// The Locker holds the throttle's leader lease, so one worker leads
	// whatever the number of workers.
	locker, err := redislocker.New(rdb, "example")
	if err != nil {
		return err
	}
	producer, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: o.topic, ConfigMap: kafka.ConfigMap{"bootstrap.servers": o.brokers}, Logger: log})
	if err != nil {
		return err
	}
	defer producer.Close()
	consumer, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: o.topic, Group: o.group, Logger: log,
		ConfigMap: kafka.ConfigMap{
			"bootstrap.servers": o.brokers,
			// A worker that dies without leaving the group (kill -9) keeps its
			// partitions until its session times out; librdkafka's default is
			// 45s, 6s (the broker's minimum) hands them over sooner. (The
			// consumer's dead-letter producer, built from this map, logs a
			// CONFWARN that it ignores these two.)
			"session.timeout.ms":    6000,
			"heartbeat.interval.ms": 1500,
		}})
	if err != nil {
		return err
	}

	var moved, issued, rejected atomic.Int64
	throttle, err := dispatch.New(dispatch.Config{Campaign: c, Queue: queue, Dispatcher: producer, Locker: locker, Logger: log,
		OnTick: func(ev dispatch.TickEvent) { moved.Add(int64(ev.Leased - ev.Failed)) }})
	if err != nil {
		return err
	}
	iss, err := issuer.New(issuer.Config{Consumer: consumer, Store: store, Catalog: catalog, Recorder: queue, Logger: log,
		// No Locker: a per-user lock only cuts contention, and the Store's
		// own atomicity is the guard. Without one the issuer takes the batch
		// path: one IssueBatch call (one transaction or script) and one
		// Record call per delivered batch of up to MaxBatch entries.
		MaxBatch: c.WithDefaults().BatchSize,
		OnIssue: func(ev issuer.Event) {
			if ev.Result.State == couponq.StateIssued {
				issued.Add(1)
			} else {
				rejected.Add(1)
			}
		},
		// The issuer logs an over-issue at error level already; the hook is
		// where a host would page someone.
		OnOverIssue: func(ev issuer.OverIssue) {
			log.Error("OVER-ISSUE", "campaign", ev.Campaign, "recorded_issued", ev.Issued, "stock", ev.Stock, "store", o.store)
		},
	})
	if err != nil {
		return err
	}
	if err := throttle.Start(ctx); err != nil {
		return err
	}
	if err := iss.Start(ctx); err != nil {
		return err
	}
	log.Info("worker running", "campaign", c.ID, "stock", c.Stock, "batch", c.BatchSize, "interval", c.Interval,
		"store", o.store, "batch_path", iss.Batching(), "topic", o.topic)

	counts := func() []any {
		return []any{"moved_by_this_worker", moved.Load(), "decided_issued", issued.Load(), "decided_rejected", rejected.Load()}
	}
	storeIssued := func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := store.Issued(ctx, c.ID)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(n)
	}
	if o.progress > 0 {
		go func() {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					log.Info("progress", append([]any{"store_issued", storeIssued(ctx)}, counts()...)...)
				}
			}
		}()
	}

	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = throttle.Stop(stopCtx)
	err = iss.Stop(stopCtx)
	log.Info("worker stopped", append([]any{"store", o.store, "store_issued", storeIssued(stopCtx)}, counts()...)...)
	return err
}
