// Command production is couponq wired as a service runs it in production:
// the line, the registry and the locks on Redis (a single node, Sentinel or
// a Cluster, from one address list), the transport on Kafka, issuances in
// Postgres, metrics for Prometheus, traces through OpenTelemetry, the
// public and admin handlers, probes, and a graceful shutdown. One binary
// runs every role; run API-only and worker-only processes with -roles.
//
//	COUPONQ_ADMIN_TOKEN="$TOKEN" go run . -redis 10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379 \
//	    -kafka 10.0.0.9:9092 -postgres postgres://couponq@db/couponq -roles api
//
// The admin token comes from $COUPONQ_ADMIN_TOKEN or -admin-token-file, never
// the command line, which every local user sees (ps); the -admin-token flag
// still works, deprecated, with a warning.
//
// The couponq wiring is the body of run between the two markers; a script
// counts its lines (go run ./internal/cmd/wiringcount examples/production/main.go).
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/couponq/pgstore"
	"github.com/couponq/couponq/couponq/redisq"
	"github.com/couponq/couponq/couponq/tracing"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/node"
)

type options struct {
	addr, opsAddr, redis, kafka, postgres, token, roles string
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address of the public (/api/) and admin (/admin/) routes")
	flag.StringVar(&o.opsAddr, "ops-addr", "127.0.0.1:9090", "listen address of /healthz, /readyz and /metrics")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis addresses, comma-separated: one for a single node, the seeds of a Cluster")
	flag.StringVar(&o.kafka, "kafka", "127.0.0.1:9092", "Kafka bootstrap servers")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("COUPONQ_POSTGRES_DSN"), "Postgres DSN (default $COUPONQ_POSTGRES_DSN)")
	tokenFile := flag.String("admin-token-file", "", "read the bearer token for /admin/ from this file (default $COUPONQ_ADMIN_TOKEN)")
	flag.StringVar(&o.token, "admin-token", "", "DEPRECATED, visible to ps: the bearer token itself; use $COUPONQ_ADMIN_TOKEN or -admin-token-file")
	flag.StringVar(&o.roles, "roles", "all", "what this process runs: api, worker or all")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.token, err = adminToken(log, o.token, *tokenFile); err == nil {
		err = run(ctx, log, o, nil)
	}
	if err != nil {
		log.Error("production", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if set, is called with the listeners'
// addresses once they listen.
func run(ctx context.Context, log *slog.Logger, o options, ready func(addr, opsAddr string)) error {
	if len(o.token) < 16 {
		return errors.New("an admin token of at least 16 characters is required ($COUPONQ_ADMIN_TOKEN or -admin-token-file)")
	}
	roles, err := node.ParseRoles(o.roles)
	if err != nil {
		return err
	}
	// couponq wiring: begin
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(o.redis, ",")})
	defer rdb.Close()
	backend, err := redisq.New(redisq.Config{Client: rdb, Prefix: "shop"})
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, o.postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store, err := pgstore.New(pgstore.Config{Pool: pool})
	if err != nil {
		return err
	}
	transport, err := kafkadispatch.New(kafkadispatch.Config{Brokers: o.kafka, Topic: "shop-entries"})
	if err != nil {
		return err
	}
	defer transport.Close()
	registry := prometheus.NewRegistry()
	metrics, err := prom.New(prom.Config{Registerer: registry})
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	defer tp.Shutdown(context.Background())
	tracer, err := tracing.New(tracing.Config{TracerProvider: tp})
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{Roles: roles, Backend: backend, Transport: transport, Store: store,
		Observer: metrics, Tracer: tracer, Logger: log})
	if err != nil {
		return err
	}
	public, err := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User"), BasePath: "/api"})
	if err != nil && !errors.Is(err, node.ErrNoAPI) {
		return err
	}
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: bearer(o.token), BasePath: "/admin"})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(n, 30*time.Second)
	// couponq wiring: end

	mux := http.NewServeMux() // the host's own router
	if public != nil {
		mux.Handle("/api/", public)
	}
	mux.Handle("/admin/", admin)
	ops := http.NewServeMux()
	ops.Handle("/healthz", n.Liveness())
	ops.Handle("/readyz", n.Readiness())
	ops.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	return serve(ctx, log, []*http.Server{{Addr: o.addr, Handler: mux}, {Addr: o.opsAddr, Handler: ops}}, ready)
}

// adminToken returns the admin token: the contents of file (trimmed) if
// set, else flagValue (the deprecated -admin-token, with a warning), else
// $COUPONQ_ADMIN_TOKEN.
func adminToken(log *slog.Logger, flagValue, file string) (string, error) {
	switch {
	case file != "" && flagValue != "":
		return "", errors.New("give the admin token once: -admin-token-file or (deprecated) -admin-token")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("-admin-token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case flagValue != "":
		log.Warn("-admin-token is deprecated: the command line is visible to ps; set $COUPONQ_ADMIN_TOKEN or -admin-token-file")
		return flagValue, nil
	}
	return os.Getenv("COUPONQ_ADMIN_TOKEN"), nil
}

// stopWithin stops the node, waiting at most d for the entries in hand.
func stopWithin(n *node.Node, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = n.Stop(ctx)
}

// bearer authorizes requests carrying "Authorization: Bearer <token>",
// comparing in constant time.
func bearer(token string) func(*http.Request) error {
	want := sha256.Sum256([]byte(token))
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return fmt.Errorf("%w: a valid admin token is required", node.ErrUnauthenticated)
		}
		return nil
	}
}

// serve runs the servers until ctx ends, then shuts them down gracefully:
// in-flight requests finish, and the node's streams end.
func serve(ctx context.Context, log *slog.Logger, servers []*http.Server, ready func(addr, opsAddr string)) error {
	errc := make(chan error, len(servers))
	var addrs []string
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return err
		}
		// Time limits at the edge; the node's streams outlive WriteTimeout
		// (they bound their own writes).
		srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 5*time.Second, 10*time.Second, 30*time.Second, 60*time.Second
		addrs = append(addrs, ln.Addr().String())
		log.Info("listening", "addr", ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	if ready != nil {
		ready(addrs[0], addrs[1])
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(shutdown))
	}
	log.Info("stopped")
	return errors.Join(errs...)
}
