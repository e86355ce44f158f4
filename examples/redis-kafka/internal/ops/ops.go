// Package ops holds what the example's api and worker share around their
// node: a fan-out Observer (Prometheus and expvar side by side, and the
// worker's own counters), the operations listener's routes, and serving
// several listeners until a signal, then shutting them down.
package ops

import (
	"context"
	"errors"
	"expvar"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

// Observers is a node.Observer that tells each of its members of every
// event, in order. It is a node.LineObserver too: it hands the node's
// Lines to the members that report line gauges.
type Observers []node.Observer

var _ node.LineObserver = Observers(nil)

// OnAdmit implements node.Observer.
func (o Observers) OnAdmit(ev couponq.AdmitEvent) {
	for _, x := range o {
		x.OnAdmit(ev)
	}
}

// OnTick implements node.Observer.
func (o Observers) OnTick(ev dispatch.TickEvent) {
	for _, x := range o {
		x.OnTick(ev)
	}
}

// OnIssue implements node.Observer.
func (o Observers) OnIssue(ev issuer.Event) {
	for _, x := range o {
		x.OnIssue(ev)
	}
}

// OnStoreCall implements node.Observer.
func (o Observers) OnStoreCall(ev issuer.StoreCall) {
	for _, x := range o {
		x.OnStoreCall(ev)
	}
}

// OnOverIssue implements node.Observer.
func (o Observers) OnOverIssue(ev issuer.OverIssue) {
	for _, x := range o {
		x.OnOverIssue(ev)
	}
}

// ObserveLines implements node.LineObserver.
func (o Observers) ObserveLines(l node.Lines) {
	for _, x := range o {
		if lo, ok := x.(node.LineObserver); ok {
			lo.ObserveLines(l)
		}
	}
}

// Handler returns the operations routes, for the load balancer and
// Prometheus, not the public: /healthz (the node's liveness), /readyz (its
// readiness: Redis, the Store, Kafka), /metrics (reg, in Prometheus's
// format) and /debug/vars (expvar, which shows the command line, backend
// addresses included).
func Handler(n *node.Node, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", n.Liveness())
	mux.Handle("/readyz", n.Readiness())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /debug/vars", expvar.Handler())
	return mux
}

// Listener is one address to serve.
type Listener struct {
	Name    string // logged as "NAME listening" with the address bound
	Addr    string // host:port; port 0 takes a free one
	Handler http.Handler
}

// Serve listens on every address, then calls ready, and serves until ctx
// ends or a server fails. Then it shuts every server down within timeout:
// requests in progress finish and the node's streams (registered with the
// servers) end. It returns the first failure, if any.
func Serve(ctx context.Context, log *slog.Logger, timeout time.Duration, ready func(), ls ...Listener) error {
	servers := make([]*http.Server, 0, len(ls))
	lns := make([]net.Listener, 0, len(ls))
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		servers = append(servers, &http.Server{Handler: l.Handler, ReadHeaderTimeout: 5 * time.Second})
		log.Info(l.Name+" listening", "addr", ln.Addr().String())
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(lns[i]) }()
	}
	if ready != nil {
		ready()
	}
	var errs []error
	pending := len(servers)
	select {
	case err := <-errc:
		errs = append(errs, err)
		pending--
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil {
			errs = append(errs, err)
		}
	}
	for range pending {
		errs = append(errs, <-errc)
	}
	var out []error
	for _, err := range errs {
		if !errors.Is(err, http.ErrServerClosed) {
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}
