// Command worker is the downstream side of the Redis + Kafka example: the
// throttle (one leader across all workers) moves bounded batches from the
// Redis line to Kafka, and the issuer consumes them into the Store.
//
//	go run ./examples/redis-kafka/worker -redis 127.0.0.1:6379 -kafka 127.0.0.1:9092
//
// The Store here is the in-memory one, so run one worker; a real host plugs
// its database in (see storetest).
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	brokers := flag.String("kafka", "127.0.0.1:9092", "Kafka bootstrap servers")
	topic := flag.String("topic", "couponq-entries", "Kafka topic")
	id := flag.String("campaign", "launch", "campaign ID")
	stock := flag.Int64("stock", 100, "stock")
	batch := flag.Int("batch", 10, "entries per throttle tick")
	interval := flag.Duration("interval", time.Second, "throttle tick")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c := couponq.Campaign{ID: *id, Stock: *stock, BatchSize: *batch, Interval: *interval}
	if err := run(log, *redisAddr, *brokers, *topic, c); err != nil {
		log.Error("worker", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, redisAddr, brokers, topic string, c couponq.Campaign) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	catalog, err := couponq.NewCampaigns(c)
	if err != nil {
		return err
	}
	queue, err := redisq.New(redisq.Config{Client: rdb, Prefix: "example"})
	if err != nil {
		return err
	}
	locker, err := redislocker.New(rdb, "example")
	if err != nil {
		return err
	}
	cm := kafka.ConfigMap{"bootstrap.servers": brokers}
	producer, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: topic, ConfigMap: cm, Logger: log})
	if err != nil {
		return err
	}
	defer producer.Close()
	consumer, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: topic, Group: "couponq-issuers", ConfigMap: cm, Logger: log})
	if err != nil {
		return err
	}
	store := memory.NewStore()
	throttle, err := dispatch.New(dispatch.Config{Campaign: c, Queue: queue, Dispatcher: producer, Locker: locker, Logger: log,
		OnTick: func(ev dispatch.TickEvent) {
			if ev.Leased > 0 {
				log.Info("tick", "moved", ev.Leased-ev.Failed, "failed", ev.Failed)
			}
		}})
	if err != nil {
		return err
	}
	iss, err := issuer.New(issuer.Config{Consumer: consumer, Store: store, Catalog: catalog, Recorder: queue, Locker: locker, Logger: log,
		OnIssue: func(ev issuer.Event) {
			log.Info("decided", "user", ev.Entry.User, "entry", ev.Entry.Number, "state", ev.Result.State, "reason", ev.Result.Reason)
		}})
	if err != nil {
		return err
	}
	if err := throttle.Start(ctx); err != nil {
		return err
	}
	if err := iss.Start(ctx); err != nil {
		return err
	}
	log.Info("worker running", "campaign", c.ID, "batch", c.BatchSize, "interval", c.Interval)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = throttle.Stop(stopCtx)
	err = iss.Stop(stopCtx)
	log.Info("worker stopped", "issued", store.Issued(c.ID))
	return err
}
