// Package ops holds what the example's api and worker share around their
// node: a fan-out Observer (Prometheus and expvar side by side, and the
// worker's own counters), the operations listener's routes, and serving
// several listeners until a signal, then shutting them down.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime/metrics"
	"strings"
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
// format) and /debug/vars (expvar, Vars: the command line with its secrets
// redacted, backend addresses included; "heap", a HeapVar).
func Handler(n *node.Node, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", n.Liveness())
	mux.Handle("/readyz", n.Readiness())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /debug/vars", Vars())
	return mux
}

func init() {
	expvar.Publish("heap", expvar.Func(heapVar))
}

// HeapVar is what /debug/vars' "heap" holds: the heap's live bytes as the
// last garbage collection found them (runtime/metrics' /gc/heap/live:bytes,
// what survives a collection, unlike memstats' HeapAlloc, which counts
// garbage not yet collected too) and how many collections have run, so a
// reader can tell a figure taken after work from one taken before it.
type HeapVar struct {
	LiveBytes uint64 `json:"live_bytes"`
	GCs       uint64 `json:"gcs"`
}

func heapVar() any {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	var v HeapVar
	if s[0].Value.Kind() == metrics.KindUint64 {
		v.LiveBytes = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		v.GCs = s[1].Value.Uint64()
	}
	return v
}

// Redacted replaces a secret in the command line Vars serves.
const Redacted = "REDACTED"

// secretFlags are the flags whose whole value is a secret.
var secretFlags = map[string]bool{"admin-token": true}

// dsnFlags are the flags whose value is a DSN that may hold a password.
var dsnFlags = map[string]bool{"postgres": true}

// Vars is expvar.Handler with expvar's "cmdline" (os.Args, read at each
// request) passed through RedactArgs: whoever reads the operations port
// (Prometheus, a load balancer) sees the flags and the backend addresses,
// never the admin token nor a database password.
func Vars() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		var b strings.Builder
		b.WriteString("{\n")
		first := true
		expvar.Do(func(kv expvar.KeyValue) {
			if !first {
				b.WriteString(",\n")
			}
			first = false
			v := kv.Value.String()
			if kv.Key == "cmdline" {
				enc, err := json.Marshal(RedactArgs(os.Args))
				if err != nil {
					enc = []byte("null")
				}
				v = string(enc)
			}
			fmt.Fprintf(&b, "%q: %s", kv.Key, v)
		})
		b.WriteString("\n}\n")
		_, _ = io.WriteString(w, b.String())
	})
}

// RedactArgs returns a copy of a command line with the values of its secret
// flags replaced by Redacted (-admin-token X, -admin-token=X, with one or
// two dashes) and the password in a -postgres DSN (URL or key=value form).
func RedactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		name, ok := strings.CutPrefix(out[i], "-")
		if !ok || name == "-" || name == "" {
			continue
		}
		name = strings.TrimPrefix(name, "-")
		name, value, inline := strings.Cut(name, "=")
		var redact func(string) string
		switch {
		case secretFlags[name]:
			redact = func(string) string { return Redacted }
		case dsnFlags[name]:
			redact = redactDSN
		default:
			continue
		}
		if inline {
			out[i] = out[i][:len(out[i])-len(value)] + redact(value)
		} else if i+1 < len(out) {
			i++
			out[i] = redact(out[i])
		}
	}
	return out
}

var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// redactDSN hides the password of a URL DSN (postgres://user:pw@host/db)
// or a key=value one (host=db password=pw).
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Redacted)
			dsn = u.String()
		}
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}"+Redacted)
}

// Server returns the http.Server the example serves h with, with time
// limits at the edge, so no client holds a connection by sending slowly or
// not at all: 5 s for a request's headers, 10 s for the whole request with
// its body, 30 s to write an answer, 60 s for an idle keep-alive
// connection. The node's status and live streams outlive WriteTimeout:
// they bound each of their own writes and hold no deadline between them.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
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
		servers = append(servers, Server(l.Handler))
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
