// Command worker is the downstream side of the Redis + Kafka example: a
// couponq node with the worker role. Its scheduler (one leader across all
// workers of the fleet) drives every campaign that has people waiting, each
// at its own BatchSize per Interval, from the Redis line to Kafka; its issuer
// consumes Kafka into the Store and records each outcome in Redis, where the
// api reads it. It takes no campaign flags: campaigns come from the Redis
// registry the api's /admin/ writes.
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
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/examples/redis-kafka/internal/stores"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
	"github.com/couponq/couponq/node"
)

type options struct {
	redis, prefix, brokers, topic, group string
	store, postgres                      string
	progress, leaderTTL                  time.Duration
	maxInFlight                          int
}

func main() {
	var o options
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (the line, the registry, the scheduler's leader lease, and the Store with -store redis)")
	flag.StringVar(&o.prefix, "prefix", "example", "Redis key prefix; every api and worker of one fleet uses the same")
	flag.StringVar(&o.brokers, "kafka", "127.0.0.1:9092", "Kafka bootstrap servers")
	flag.StringVar(&o.topic, "topic", "couponq-entries", "Kafka topic (one for every campaign)")
	flag.StringVar(&o.group, "group", "couponq-issuers", "Kafka consumer group (every worker of the fleet shares it)")
	flag.StringVar(&o.store, "store", "redis", "Store: "+stores.Kinds+" (memory is only correct with a single worker)")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("COUPONQ_POSTGRES_DSN"), "Postgres DSN for -store postgres (default $COUPONQ_POSTGRES_DSN)")
	flag.DurationVar(&o.progress, "progress", 2*time.Second, "how often to log each busy campaign's issued count (0: never)")
	flag.DurationVar(&o.leaderTTL, "leader-ttl", 0, "the scheduler's leader lease TTL: a standby takes over within 4/3 of it after the leader dies (0: the library's 10s)")
	flag.IntVar(&o.maxInFlight, "max-in-flight-batches", 4, "a campaign may have at most this many batches (× its BatchSize) handed downstream and not yet decided; when consumers stall, the rest waits in the line, so the Store never sees more than that at once when they return (0: no bound)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	if err := run(log, o); err != nil {
		log.Error("worker", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: o.redis})
	defer rdb.Close()
	registry, err := redisline.NewRegistry(redisline.RegistryConfig{Client: rdb, Prefix: o.prefix})
	if err != nil {
		return err
	}
	queue, err := redisline.New(redisline.Config{Client: rdb, Prefix: o.prefix})
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, closeStore, err := stores.Open(openCtx, stores.Config{
		Kind: o.store, Redis: rdb, Prefix: o.prefix, Postgres: o.postgres,
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
	// The Locker holds the scheduler's leader lease, so one worker leads
	// whatever the number of workers. The issuer gets no Locker: a per-user
	// lock only cuts contention, and the Store's own atomicity is the
	// guard; without one it takes the batch path (one IssueBatch, one
	// transaction or script, and one Record per delivered batch).
	locker, err := redislocker.New(rdb, o.prefix)
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

	tally := newTally()
	n, err := node.New(node.Config{
		Roles: node.RoleWorker, Catalog: registry, Queue: queue, Locker: locker,
		Dispatcher: producer, Consumer: consumer, Store: store, Logger: log,
		Scheduler: scheduler.Config{LeaderTTL: o.leaderTTL, OnTick: tally.tick, MaxInFlightBatches: o.maxInFlight},
		Issuer: issuing.Config{
			OnIssue: tally.issue,
			// The issuer logs an over-issue at error level already; the hook
			// is where a host would page someone.
			OnOverIssue: func(ev issuer.OverIssue) {
				log.Error("OVER-ISSUE", "campaign", ev.Campaign, "recorded_issued", ev.Issued, "stock", ev.Stock, "store", o.store)
			},
		},
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	log.Info("worker running", "prefix", o.prefix, "store", o.store, "topic", o.topic, "group", o.group)

	p := progress{log: log, registry: registry, agenda: queue, store: store, tally: tally, last: map[string]int64{}}
	if o.progress > 0 {
		go func() {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					p.report(ctx, "progress", false)
				}
			}
		}()
	}

	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = n.Stop(stopCtx)
	p.report(stopCtx, "worker stopped", true)
	return err
}

// counts is what this worker did for one campaign.
type counts struct{ moved, issued, rejected int64 }

// tally counts, per campaign, the entries this worker's scheduler moved and
// its issuer decided.
type tally struct {
	mu sync.Mutex
	by map[string]*counts
}

func newTally() *tally { return &tally{by: map[string]*counts{}} }

func (t *tally) get(campaign string) *counts {
	c := t.by[campaign]
	if c == nil {
		c = &counts{}
		t.by[campaign] = c
	}
	return c
}

func (t *tally) tick(ev dispatch.TickEvent) {
	if moved := ev.Leased - ev.Failed; moved > 0 {
		t.mu.Lock()
		t.get(ev.Campaign).moved += int64(moved)
		t.mu.Unlock()
	}
}

func (t *tally) issue(ev issuer.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Result.State == couponq.StateIssued {
		t.get(ev.Entry.Campaign).issued++
	} else {
		t.get(ev.Entry.Campaign).rejected++
	}
}

func (t *tally) snapshot() map[string]counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]counts, len(t.by))
	for id, c := range t.by {
		out[id] = *c
	}
	return out
}

// progress logs, per campaign, the Store's issued count beside what this
// worker did. It looks only at the campaigns on the agenda (people waiting
// or in flight), those this worker moved or decided, and those it logged
// before, so a registry of many idle campaigns costs nothing.
type progress struct {
	log      *slog.Logger
	registry couponq.Registry
	agenda   couponq.Agenda
	store    stores.Store
	tally    *tally
	mu       sync.Mutex
	last     map[string]int64 // campaign -> Store issued count last logged
	lastMine map[string]counts
}

// report logs one line per campaign whose Store count, or whose counts in
// this worker, changed since the last report (all: also every campaign this
// worker touched or logged before).
func (p *progress) report(ctx context.Context, msg string, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	mine := p.tally.snapshot()
	ids := map[string]bool{}
	if awake, err := p.agenda.Awake(ctx); err == nil {
		for _, id := range awake {
			ids[id] = true
		}
	} else {
		p.log.Warn(msg, "err", err)
	}
	for id := range mine {
		ids[id] = true
	}
	for id := range p.last {
		ids[id] = true
	}
	logged := 0
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		var stock any = "?"
		var paused any = "?"
		if c, err := p.registry.Campaign(ctx, id); err == nil {
			stock, paused = c.Stock, c.Paused
		}
		issued, err := p.store.Issued(ctx, id)
		if err != nil {
			p.log.Warn(msg, "campaign", id, "err", err)
			continue
		}
		m, touched := mine[id]
		prev, seen := p.last[id]
		changed := (seen && issued != prev) || (!seen && issued > 0) || m != p.lastMine[id]
		if !changed && !(all && (touched || seen)) {
			continue
		}
		p.last[id] = issued
		logged++
		p.log.Info(msg, "campaign", id, "stock", stock, "paused", paused, "store_issued", issued,
			"moved_by_this_worker", m.moved, "decided_issued", m.issued, "decided_rejected", m.rejected)
	}
	p.lastMine = mine
	if all && logged == 0 {
		p.log.Info(msg, "campaigns", 0)
	}
}
