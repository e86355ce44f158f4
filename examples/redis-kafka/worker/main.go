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
// -redis is a comma-separated address list, as the api's: one address is a
// single Redis, several the seeds of a Cluster, the Sentinels with
// -redis-master.
//
// Run as many workers as you like with a shared Store (-store redis, the
// default, or -store postgres): the Store, not the process, enforces the
// stock. -store memory keeps issuances in the process and is only correct
// with a single worker; with two, each enforces the stock on its own and the
// issuer's over-issue detector reports it.
//
// Probes and metrics are on -ops-addr: /healthz, /readyz (Redis and Kafka
// answer), /metrics (Prometheus) and /debug/vars (expvar).
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/examples/redis-kafka/internal/ops"
	"github.com/couponq/couponq/examples/redis-kafka/internal/stores"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

type options struct {
	opsAddr, redis, redisMaster, prefix string
	brokers, topic, group, instanceID   string
	store, postgres                     string
	progress, leaderTTL, session        time.Duration
	heartbeat                           time.Duration
	maxInFlight                         int
}

func main() {
	var o options
	flag.StringVar(&o.opsAddr, "ops-addr", "127.0.0.1:0", "listen address for /healthz, /readyz, /metrics and /debug/vars (port 0: a free one, logged)")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis addresses, comma-separated (the line, the registry, the scheduler's leader lease, and the Store with -store redis): one for a single Redis, several for a Cluster's seeds, the Sentinels with -redis-master")
	flag.StringVar(&o.redisMaster, "redis-master", "", "the Sentinel master name: -redis then lists the Sentinels")
	flag.StringVar(&o.prefix, "prefix", "example", "Redis key prefix; every api and worker of one fleet uses the same")
	flag.StringVar(&o.brokers, "kafka", "127.0.0.1:9092", "Kafka bootstrap servers")
	flag.StringVar(&o.topic, "topic", "couponq-entries", "Kafka topic (one for every campaign)")
	flag.StringVar(&o.group, "group", kafkadispatch.DefaultGroup, "Kafka consumer group (every worker of the fleet shares it)")
	flag.DurationVar(&o.session, "session-timeout", 6*time.Second, "how long the consumer group waits for a worker that stopped heartbeating (kill -9) before its partitions go to the others")
	flag.DurationVar(&o.heartbeat, "heartbeat-interval", 0, "how often the consumer heartbeats to its group (heartbeat.interval.ms), which is how soon it hears of a rebalance (0: kafkadispatch's 500ms)")
	flag.StringVar(&o.instanceID, "instance-id", "", "the consumer's static group membership ID (group.instance.id), stable for this worker slot and unique in the fleet: restarted in place within -session-timeout, the worker gets its partitions back at once (empty: a dynamic member)")
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

	// One address: a single Redis; several: a Cluster; -redis-master: Sentinel.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(o.redis, ","), MasterName: o.redisMaster})
	defer rdb.Close()
	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: o.prefix})
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
	transport, err := kafkadispatch.New(kafkadispatch.Config{
		Brokers: o.brokers, Topic: o.topic, Group: o.group, SessionTimeout: o.session, Logger: log,
		ConfigMap: groupSettings(o),
	})
	if err != nil {
		return err
	}
	defer transport.Close()
	reg := prometheus.NewRegistry()
	pm, err := prom.New(prom.Config{Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	// The Redis Backend's lock holds the scheduler's leader lease, so one
	// worker leads whatever the number of workers. The issuer takes no
	// per-user lock (Config.UserLock): it would only cut contention, and the
	// Store's own atomicity is the guard; without one it takes the batch
	// path (one IssueBatch, one transaction or script, and one Record per
	// delivered batch).
	tally := newTally(log, o.store)
	n, err := node.New(node.Config{
		Roles: node.RoleWorker, Backend: backend, Transport: transport, Store: store, Logger: log,
		Observer:  ops.Observers{pm, metrics.NewExpvar("couponq"), tally},
		LeaderTTL: o.leaderTTL, MaxInFlightBatches: o.maxInFlight,
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	stopNode := func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return n.Stop(stopCtx)
	}
	defer stopNode() //nolint:errcheck // the ordered stop below reports its error; this one covers early returns

	p := progress{log: log, n: n, store: store, tally: tally, last: map[string]int64{}}
	progressCtx, stopProgress := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopProgress(); wg.Wait() }()
	if o.progress > 0 {
		wg.Go(func() {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			for {
				select {
				case <-progressCtx.Done():
					return
				case <-t.C:
					p.report(progressCtx, "progress", false)
				}
			}
		})
	}

	// Serve the probes until SIGINT or SIGTERM; then the ops server shuts
	// down, the node stops (the scheduler hands nothing more downstream,
	// the issuer finishes what it holds), and the Kafka transport closes.
	err = ops.Serve(ctx, log, 10*time.Second,
		func() {
			log.Info("worker running", "prefix", o.prefix, "store", o.store, "topic", o.topic, "group", o.group)
		},
		ops.Listener{Name: "ops", Addr: o.opsAddr, Handler: ops.Handler(n, reg)})
	err = errors.Join(err, stopNode())
	reportCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.report(reportCtx, "worker stopped", true)
	transport.Close()
	return err
}

// groupSettings are the consumer group settings the flags name, for
// kafkadispatch.Config.ConfigMap; what they leave out takes the package's
// defaults.
func groupSettings(o options) kafka.ConfigMap {
	cm := kafka.ConfigMap{}
	if o.instanceID != "" {
		cm["group.instance.id"] = o.instanceID
	}
	if o.heartbeat > 0 {
		cm["heartbeat.interval.ms"] = strconv.FormatInt(o.heartbeat.Milliseconds(), 10)
	}
	return cm
}

// counts is what this worker did for one campaign.
type counts struct{ moved, issued, rejected int64 }

// tally is the worker's own node.Observer: it counts, per campaign, the
// entries this worker's scheduler moved and its issuer decided, for the
// progress lines, and logs OVER-ISSUE when the issuer finds more issuances
// recorded than the stock (it logs that at error level itself; this hook is
// where a host would page someone).
type tally struct {
	log   *slog.Logger
	store string
	mu    sync.Mutex
	by    map[string]*counts
}

var _ node.Observer = (*tally)(nil)

func newTally(log *slog.Logger, store string) *tally {
	return &tally{log: log, store: store, by: map[string]*counts{}}
}

func (t *tally) get(campaign string) *counts {
	c := t.by[campaign]
	if c == nil {
		c = &counts{}
		t.by[campaign] = c
	}
	return c
}

// OnAdmit implements node.Observer; a worker admits nobody.
func (t *tally) OnAdmit(couponq.AdmitEvent) {}

// OnTick counts the entries the scheduler handed to Kafka.
func (t *tally) OnTick(ev dispatch.TickEvent) {
	if moved := ev.Leased - ev.Failed; moved > 0 {
		t.mu.Lock()
		t.get(ev.Campaign).moved += int64(moved)
		t.mu.Unlock()
	}
}

// OnIssue counts the issuer's decisions.
func (t *tally) OnIssue(ev issuer.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Result.State == couponq.StateIssued {
		t.get(ev.Entry.Campaign).issued++
	} else {
		t.get(ev.Entry.Campaign).rejected++
	}
}

// OnStoreCall implements node.Observer; the Prometheus observer times them.
func (t *tally) OnStoreCall(issuer.StoreCall) {}

// OnOverIssue logs msg=OVER-ISSUE.
func (t *tally) OnOverIssue(ev issuer.OverIssue) {
	t.log.Error("OVER-ISSUE", "campaign", ev.Campaign, "recorded_issued", ev.Issued, "stock", ev.Stock, "store", t.store)
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
// worker did. It looks only at the campaigns this worker moved or decided
// and those it logged before, so a registry of many idle campaigns costs
// nothing.
type progress struct {
	log      *slog.Logger
	n        *node.Node
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
		name := id // the Store's name of the campaign's incarnation
		if c, err := p.n.Campaign(ctx, id); err == nil {
			stock, paused, name = c.Stock, c.Paused, c.StoreCampaign()
		}
		issued, err := p.store.IssuedCount(ctx, name)
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
