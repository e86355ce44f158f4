// Command chi serves couponq from a chi router, on a node with the
// in-memory backends and one campaign, "spring-sale":
//
//   - /api/: the public handler, behind a bearer-token middleware that puts
//     the user ID in the request context, where the handler's User finds it;
//   - /admin/: the admin handler and its live page, behind chi's BasicAuth
//     (user "admin", the admin token as password) and cross-origin
//     protection;
//   - /livez and /readyz: the probes.
//
// SIGINT or SIGTERM shuts the server down gracefully, then stops the node.
//
//	COUPONQ_ADMIN_TOKEN=change-me-0123456789 go run . -addr 127.0.0.1:8080
//
// The user tokens are a fixed demo table (ann-token → ann, bo-token → bo):
// a stand-in for your session or JWT check.
package main

import (
	"context"
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

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/examples/internal/admintoken"
	"github.com/couponq/couponq/node"
)

// users maps demo bearer tokens to user IDs.
var users = map[string]string{"ann-token": "ann", "bo-token": "bo"}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	tokenSource := admintoken.Register(flag.CommandLine) // the admin password: $COUPONQ_ADMIN_TOKEN or -admin-token-file
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	token, err := tokenSource.Token()
	if tokenSource.Deprecated {
		log.Warn(admintoken.DeprecationWarning)
	}
	var ln net.Listener
	if err == nil {
		ln, err = net.Listen("tcp", *addr)
	}
	if err == nil {
		err = run(ctx, log, ln, token)
	}
	if err != nil {
		log.Error("chi example", "err", err)
		stop()
		os.Exit(1)
	}
}

// run serves on ln until ctx ends, then shuts the server down and stops the
// node.
func run(ctx context.Context, log *slog.Logger, ln net.Listener, adminToken string) error {
	defer ln.Close()
	if len(adminToken) < admintoken.MinLen {
		return fmt.Errorf("an admin token of at least %d characters is required ($%s or -admin-token-file)", admintoken.MinLen, admintoken.EnvVar)
	}
	n, err := node.New(node.Config{Logger: log}) // no backends given: the in-memory ones
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(stopCtx); err != nil {
			log.Error("node stop", "err", err)
		}
	}()
	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 100, Interval: 100 * time.Millisecond})
	if err != nil && !errors.Is(err, couponq.ErrCampaignExists) {
		return err
	}
	router, err := newRouter(n, adminToken)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// The node's status and live streams outlive WriteTimeout: they
		// bound each of their own writes.
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Shutdown ends the node's open streams (status, live page) too.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}

// newRouter mounts the node's handlers and probes on a chi router.
func newRouter(n *node.Node, adminToken string) (http.Handler, error) {
	public, err := n.Handler(node.HandlerConfig{User: userFromContext, BasePath: "/api"})
	if err != nil {
		return nil, err
	}
	admin, err := n.AdminHandler(node.AdminConfig{
		BasePath: "/admin",
		// BasicAuth in front lets only the operator through.
		Authorize: func(*http.Request) error { return nil },
	})
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Route("/api", func(r chi.Router) {
		r.Use(userAuth)
		r.Handle("/*", public)
	})
	r.Route("/admin", func(r chi.Router) {
		r.Use(middleware.BasicAuth("couponq admin", map[string]string{"admin": adminToken})) // compares in constant time
		// A browser sends the operator's credentials with any request to
		// this origin: refuse changes that other sites' pages start.
		r.Handle("/*", http.NewCrossOriginProtection().Handler(admin))
	})
	r.Method(http.MethodGet, "/livez", n.Liveness())
	r.Method(http.MethodGet, "/readyz", n.Readiness()) // in production, on a port only the orchestrator reaches
	return r, nil
}

type userKey struct{}

// userAuth maps the request's bearer token to a user ID and puts it in the
// request context, or answers 401.
func userAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		user, ok := users[token]
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":{"code":"unauthenticated","message":"send Authorization: Bearer <user token>"}}`)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// userFromContext is the public handler's User: the ID userAuth set.
func userFromContext(r *http.Request) (string, error) {
	if user, ok := r.Context().Value(userKey{}).(string); ok {
		return user, nil
	}
	return "", node.ErrUnauthenticated
}
