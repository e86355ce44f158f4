// Command api is the admission side of the Redis + Kafka example: a
// couponq node with the API role. It serves the public handler (users join
// a campaign's line and ask how it went) at / and the operators' admin
// handler (create, list, change, pause, resume, close, retire campaigns) at
// /admin/. It takes no campaign flags: campaigns live in the Redis registry
// every api and worker process shares, and are created and changed through
// /admin/ (see ../campaign).
//
//	COUPONQ_ADMIN_TOKEN=s3cret... go run ./api -redis 127.0.0.1:6379 -kafka 127.0.0.1:9092 -addr 127.0.0.1:8080
//
// -redis is a comma-separated address list: one address is a single Redis,
// several are the seeds of a Redis Cluster, and with -redis-master they are
// the Sentinels watching that master. The api produces to Kafka only for V1
// (validate-first) campaigns, whose admissions publish from the request
// itself; it never consumes.
//
// Run as many as you like on different addresses: they share the line and
// the registry, so a user may join through one and ask through another, and
// a change made through one reaches the others within the node's catalog
// cache TTL (1s).
//
// The user is read from the X-User header: a stand-in for real
// authentication. The admin handler wants "Authorization: Bearer TOKEN",
// TOKEN being $COUPONQ_ADMIN_TOKEN or the contents of -admin-token-file (never
// a flag's value: the command line shows in ps and on /debug/vars; the
// -admin-token flag still works, deprecated, and /debug/vars redacts it); the
// api refuses to start without one. Operators' browsers log in at /login,
// which exchanges the token for a signed session cookie good for reads only
// (8 hours, -admin-session-ttl; see internal/adminsession), land on the live
// page, /admin/live, and log out with POST /admin/logout.
//
// Probes and metrics are on a second listener, -ops-addr, for the load
// balancer and Prometheus, not the public: /healthz (liveness), /readyz
// (Redis and Kafka answer), /metrics (Prometheus, couponq/metrics/prom) and
// /debug/vars (expvar, which shows the command line, backend addresses
// included, secrets redacted).
//
// On SIGTERM the api drains: /readyz answers 503 for -drain-delay while it
// still serves, so a load balancer takes it out of rotation; then it stops
// accepting connections, finishes the requests in progress, and stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/examples/internal/admintoken"
	"github.com/couponq/couponq/examples/redis-kafka/internal/adminsession"
	"github.com/couponq/couponq/examples/redis-kafka/internal/ops"
	"github.com/couponq/couponq/node"
)

type options struct {
	addr, opsAddr, redis, redisMaster, prefix string
	brokers, topic                            string
	token                                     string        // the admin token, from admintoken.Source
	sessionKey                                []byte        // signs the admin sessions; nil: random per process
	sessionTTL                                time.Duration // how long an admin session lasts
	trustedProxies                            string        // TLS-terminating proxies in front, comma-separated
	replicaAcks                               int           // redisq.Config.ReplicaAcks
	replicaTimeout                            time.Duration // redisq.Config.ReplicaTimeout
	drainDelay                                time.Duration // how long /readyz fails before the servers shut down
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	flag.StringVar(&o.opsAddr, "ops-addr", "127.0.0.1:0", "listen address for /healthz, /readyz, /metrics and /debug/vars (port 0: a free one, logged)")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis addresses, comma-separated (the line and the campaign registry): one for a single Redis, several for a Cluster's seeds, the Sentinels with -redis-master")
	flag.StringVar(&o.redisMaster, "redis-master", "", "the Sentinel master name: -redis then lists the Sentinels")
	flag.IntVar(&o.replicaAcks, "redis-replica-acks", 0, "replicas of the line's master that must acknowledge each admission (Redis WAIT) before it is answered; fewer within -redis-replica-timeout answer 503 (0: answer once the master has it)")
	flag.DurationVar(&o.replicaTimeout, "redis-replica-timeout", 0, "how long an admission waits for -redis-replica-acks (0: 500ms)")
	flag.StringVar(&o.prefix, "prefix", "example", "Redis key prefix; every api and worker of one fleet uses the same")
	flag.StringVar(&o.brokers, "kafka", "127.0.0.1:9092", "Kafka bootstrap servers (V1 campaigns publish from the request)")
	flag.StringVar(&o.topic, "topic", "couponq-entries", "Kafka topic; the workers' -topic")
	tokenSource := admintoken.Register(flag.CommandLine)
	keyFile := flag.String("admin-session-key-file", "", "read the key that signs admin sessions from this file, at least 32 bytes; give every api of a fleet the same one so that a browser's session is good on any (default $"+sessionKeyEnv+"; neither: a random key per process)")
	flag.DurationVar(&o.sessionTTL, "admin-session-ttl", adminsession.DefaultTTL, "how long an admin session from /login lasts")
	flag.StringVar(&o.trustedProxies, "trusted-proxies", "", "TLS-terminating proxies in front of the api, comma-separated IPs or CIDRs: their X-Forwarded-Proto: https marks the session cookie Secure, and their X-Forwarded-For names the client /login's rate limit counts")
	flag.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 (draining) while the api still serves, before it stops accepting connections and finishes the requests in progress: at least the load balancer's time to take it out of rotation (its health-check interval × failures), so no new request meets a closed port (0: shut down at once)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	err := o.loadSecrets(log, tokenSource, *keyFile)
	if err == nil {
		err = run(log, o)
	}
	if err != nil {
		log.Error("api", "err", err)
		os.Exit(1)
	}
}

// errDraining is what readiness says while the api drains before a
// shutdown.
var errDraining = errors.New("draining: shutting down")

func run(log *slog.Logger, o options) error {
	if len(o.token) < admintoken.MinLen {
		return fmt.Errorf("an admin token of at least %d characters is required ($%s or -admin-token-file): /admin/ changes campaigns", admintoken.MinLen, admintoken.EnvVar)
	}
	proxies, err := adminsession.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A deploy's SIGTERM first fails readiness for -drain-delay, so the
	// load balancer sends new requests elsewhere, and only then shuts the
	// servers down.
	var draining atomic.Bool
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	go func() {
		select {
		case <-ctx.Done():
		case <-serveCtx.Done():
			return
		}
		draining.Store(true)
		log.Info("api draining", "for", o.drainDelay)
		t := time.NewTimer(o.drainDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-serveCtx.Done():
		}
		stopServing()
	}()

	// One address: a single Redis; several: a Cluster; -redis-master: Sentinel.
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(o.redis, ","), MasterName: o.redisMaster})
	defer rdb.Close()
	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: o.prefix,
		ReplicaAcks: o.replicaAcks, ReplicaTimeout: o.replicaTimeout})
	if err != nil {
		return err
	}
	// Logouts go to Redis, so that every api sharing a session key honors
	// them.
	sessions, err := adminsession.New(adminsession.Config{Token: o.token, Key: o.sessionKey, TTL: o.sessionTTL,
		Path: "/admin", TrustedProxies: proxies, Logger: log,
		Revocations: adminsession.RedisRevocations{Client: rdb, Prefix: o.prefix}})
	if err != nil {
		return err
	}
	transport, err := kafkadispatch.New(kafkadispatch.Config{Brokers: o.brokers, Topic: o.topic, Logger: log})
	if err != nil {
		return err
	}
	defer transport.Close()
	reg := prometheus.NewRegistry()
	pm, err := prom.New(prom.Config{Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{
		Roles: node.RoleAPI, Backend: backend, Transport: transport, Logger: log, // the workers hold the Store
		Observer: ops.Observers{pm, metrics.NewExpvar("couponq")},
		ReadinessChecks: map[string]func(context.Context) error{"draining": func(context.Context) error {
			if draining.Load() {
				return errDraining
			}
			return nil
		}},
	})
	if err != nil {
		return err
	}
	public, err := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User")})
	if err != nil {
		return err
	}
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: sessions.Authorize, BasePath: "/admin"})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", public)
	adminRoutes(mux, admin, sessions)
	if err := n.Start(ctx); err != nil {
		return err
	}
	stopNode := func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return n.Stop(stopCtx)
	}
	defer stopNode() //nolint:errcheck // the ordered stop below reports its error; this one covers early returns

	// Serve until SIGINT or SIGTERM; then the servers shut down (requests
	// in progress finish, status and live streams end), the node stops and
	// the Kafka producer flushes and closes.
	err = ops.Serve(serveCtx, log, 10*time.Second,
		func() { log.Info("api serving", "prefix", o.prefix, "topic", o.topic, "roles", n.Roles().String()) },
		ops.Listener{Name: "api", Addr: o.addr, Handler: mux},
		ops.Listener{Name: "ops", Addr: o.opsAddr, Handler: ops.Handler(n, reg)})
	err = errors.Join(err, stopNode())
	transport.Close()
	log.Info("api stopped")
	return err
}
