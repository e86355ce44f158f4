// Command api is the admission side of the Redis + Kafka example: a
// couponq node with the API role. It serves the public handler (users join
// a campaign's line and ask how it went) at / and the operators' admin
// handler (create, list, change, pause, resume, close campaigns) at /admin/.
// It takes no campaign flags: campaigns live in the Redis registry
// (redisline.Registry) every api and worker process shares, and are created and
// changed through /admin/ (see ../campaign).
//
//	COUPONQ_ADMIN_TOKEN=s3cret go run ./api -redis 127.0.0.1:6379 -addr 127.0.0.1:8080
//
// Run as many as you like on different addresses: they share the line and
// the registry, so a user may join through one and ask through another, and
// a change made through one reaches the others within the catalog cache's
// TTL (1s).
//
// The user is read from the X-User header: a stand-in for real
// authentication. The admin handler wants "Authorization: Bearer TOKEN",
// TOKEN being -admin-token or $COUPONQ_ADMIN_TOKEN; the api refuses to start
// without one. Operators' browsers log in at /login (the token becomes a
// cookie good for reads only) and land on the live page, /admin/live.
//
// Probes and metrics are on a second listener, -ops-addr, for the load
// balancer and Prometheus, not the public: /healthz (liveness), /readyz
// (Redis answers a PING), /metrics (Prometheus, couponq/metrics/prom) and
// /debug/vars (expvar, which shows the command line, backend addresses
// included).
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/couponq/metrics/prom"
	"github.com/couponq/couponq/examples/internal/demo"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/health"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/shard"
	"github.com/couponq/couponq/node"
)

type options struct {
	addr, opsAddr, redis, prefix, token string
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	flag.StringVar(&o.opsAddr, "ops-addr", "127.0.0.1:0", "listen address for /healthz, /readyz, /metrics and /debug/vars (port 0: a free one, logged)")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (the line and the campaign registry)")
	flag.StringVar(&o.prefix, "prefix", "example", "Redis key prefix; every api and worker of one fleet uses the same")
	flag.StringVar(&o.token, "admin-token", os.Getenv("COUPONQ_ADMIN_TOKEN"), "bearer token for /admin/ (default $COUPONQ_ADMIN_TOKEN); required")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	if err := run(log, o); err != nil {
		log.Error("api", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, o options) error {
	if len(o.token) < 16 {
		return errors.New("an admin token of at least 16 characters is required (-admin-token or COUPONQ_ADMIN_TOKEN): /admin/ changes campaigns")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: o.redis})
	defer rdb.Close()
	registry, err := redisline.NewRegistry(redisline.RegistryConfig{Client: rdb, Prefix: o.prefix})
	if err != nil {
		return err
	}
	rq, err := redisline.New(redisline.Config{Client: rdb, Prefix: o.prefix})
	if err != nil {
		return err
	}
	// Campaigns with Shards spread over sub-lines: every part, and every
	// reader of line counts, goes through the shard wrapper.
	shardCatalog, err := catalog.NewCache(registry, catalog.CacheConfig{Logger: log})
	if err != nil {
		return err
	}
	queue, err := shard.New(shard.Config{Queue: rq, Catalog: shardCatalog, Logger: log})
	if err != nil {
		return err
	}
	m := metrics.NewExpvar("couponq")
	reg := prometheus.NewRegistry()
	pm, err := prom.New(prom.Config{Registerer: reg, Lines: queue, Registry: registry, Logger: log})
	if err != nil {
		return err
	}
	// The API role needs only the Queue (which is also the Agenda that
	// admission wakes); the node puts a 1s catalog cache in front of the
	// registry, so admission does not read Redis for the campaign on every
	// request.
	n, err := node.New(node.Config{
		Roles: node.RoleAPI, Catalog: registry, Queue: queue, Logger: log,
		Service: admission.Config{OnAdmit: func(ev couponq.AdmitEvent) { m.OnAdmit(ev); pm.OnAdmit(ev) }},
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = n.Stop(context.Background()) }()

	// Stats and Catalog serve the status stream (…/entries/me/events): one
	// line read per campaign per second, whatever the crowd.
	public, err := httpapi.New(httpapi.Config{Service: n.Service(), User: httpapi.HeaderUser("X-User"), Logger: log,
		Stats: queue, Catalog: n.Catalog()})
	if err != nil {
		return err
	}
	cache, _ := n.Catalog().(*catalog.Cache)
	admin, err := httpapi.NewAdmin(httpapi.AdminConfig{
		Registry:  queueFirstOnly{Registry: registry, cache: cache},
		Stats:     queue,
		Authorize: demo.AdminAuthorize(o.token),
		BasePath:  "/admin",
		Logger:    log,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", public)
	mux.Handle("/admin/", admin)
	mux.Handle("/login", demo.Login(o.token, "/admin/live"))

	checks := n.HealthChecks()
	checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	probes, err := health.New(health.Config{Checks: checks, Logger: log})
	if err != nil {
		return err
	}
	ops := http.NewServeMux()
	ops.Handle("/healthz", probes.Liveness())
	ops.Handle("/readyz", probes.Readiness())
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.Handle("GET /debug/vars", expvar.Handler())

	// BaseContext: the admin live stream ends when ctx does, so Shutdown
	// does not wait for open pages.
	base := func(net.Listener) context.Context { return ctx }
	servers := []*http.Server{
		{Addr: o.addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: base},
		{Addr: o.opsAddr, Handler: ops, ReadHeaderTimeout: 5 * time.Second},
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		log.Info([]string{"api listening", "ops listening"}[i], "addr", ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("api serving", "prefix", o.prefix, "roles", n.Roles().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil {
			errs = append(errs, err)
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	log.Info("api stopped")
	return errors.Join(errs...)
}

// queueFirstOnly is the registry as the admin handler sees it: it refuses
// V1 (validate-first) campaigns, which this api cannot serve (V1 admits
// through a Tally and publishes to Kafka from the request itself; this api
// has neither), and makes this process's catalog cache forget a campaign
// it has just changed, so its own admissions see the change at once (the
// other processes see it within the cache's TTL).
type queueFirstOnly struct {
	couponq.Registry
	cache *catalog.Cache
}

func (r queueFirstOnly) Create(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if c.Mode != couponq.QueueFirst {
		return couponq.Campaign{}, fmt.Errorf("%w: %s: this example serves %s campaigns only", couponq.ErrInvalidCampaign, c.ID, couponq.QueueFirst)
	}
	c, err := r.Registry.Create(ctx, c)
	r.forget(c.ID, err)
	return c, err
}

func (r queueFirstOnly) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if c.Mode != couponq.QueueFirst {
		return couponq.Campaign{}, fmt.Errorf("%w: %s: this example serves %s campaigns only", couponq.ErrInvalidCampaign, c.ID, couponq.QueueFirst)
	}
	c, err := r.Registry.Update(ctx, c)
	r.forget(c.ID, err)
	return c, err
}

func (r queueFirstOnly) forget(id string, err error) {
	if err == nil && r.cache != nil {
		r.cache.Invalidate(id)
	}
}
