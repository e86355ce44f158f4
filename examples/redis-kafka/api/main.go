// Command api is the admission side of the Redis + Kafka example: an HTTP
// server that puts users in the Redis line and answers their status.
//
//	go run ./api -redis 127.0.0.1:6379   (from examples/redis-kafka)
//
// The user is read from the X-User header: stand-in for real authentication.
// Admission counters are at /debug/vars (expvar, package couponq/metrics).
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/httpapi"
	"github.com/couponq/couponq/couponq/metrics"
	"github.com/couponq/couponq/couponq/redisq"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	id := flag.String("campaign", "launch", "campaign ID")
	stock := flag.Int64("stock", 100, "stock")
	batch := flag.Int("batch", 10, "throttle batch size (for wait estimates)")
	interval := flag.Duration("interval", time.Second, "throttle interval (for wait estimates)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *addr, *redisAddr, couponq.Campaign{ID: *id, Stock: *stock, BatchSize: *batch, Interval: *interval}); err != nil {
		log.Error("api", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, addr, redisAddr string, c couponq.Campaign) error {
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
	m := metrics.NewExpvar("couponq")
	svc, err := couponq.New(couponq.Config{Catalog: catalog, Queue: queue, Logger: log, OnAdmit: m.OnAdmit})
	if err != nil {
		return err
	}
	h, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), Logger: log})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("GET /debug/vars", expvar.Handler()) // admission counters
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("api listening", "addr", addr, "campaign", c.ID)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
