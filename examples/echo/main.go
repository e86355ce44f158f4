// Command echo serves couponq from an echo server, on a node with the
// in-memory backends and one campaign, "spring-sale":
//
//   - /api/: the public handler (echo.WrapHandler), behind echo's KeyAuth,
//     whose validator puts the user ID in echo's context and in the
//     request's, where the handler's User finds it;
//   - /admin/: the admin handler and its live page, behind echo's BasicAuth
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
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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
		log.Error("echo example", "err", err)
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

// newRouter mounts the node's handlers and probes on an echo server.
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
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.Group("/api", userAuth).Any("/*", echo.WrapHandler(public))
	// A browser sends the operator's credentials with any request to this
	// origin: refuse changes that other sites' pages start.
	admins := e.Group("/admin", middleware.BasicAuth(func(user, pass string, _ echo.Context) (bool, error) {
		return user == "admin" && subtle.ConstantTimeCompare([]byte(pass), []byte(adminToken)) == 1, nil
	}))
	admins.Any("/*", echo.WrapHandler(http.NewCrossOriginProtection().Handler(admin)))
	e.GET("/livez", echo.WrapHandler(n.Liveness()))
	e.GET("/readyz", echo.WrapHandler(n.Readiness())) // in production, on a port only the orchestrator reaches
	return e, nil
}

type userKey struct{}

// userAuth is echo's KeyAuth (it reads "Authorization: Bearer TOKEN"): the
// validator maps the token to a user ID and puts it in echo's context
// (c.Set, for echo handlers) and in the request's (for the wrapped couponq
// handler). A missing or unknown token answers 401.
var userAuth = middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
	Validator: func(token string, c echo.Context) (bool, error) {
		user, ok := users[token]
		if ok {
			c.Set("user", user)
			c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), userKey{}, user)))
		}
		return ok, nil
	},
	// KeyAuth answers a missing key with 400; a missing credential is a 401.
	ErrorHandler: func(err error, c echo.Context) error {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
		return echo.NewHTTPError(http.StatusUnauthorized, "send Authorization: Bearer <user token>")
	},
})

// userFromContext is the public handler's User: the ID userAuth set.
func userFromContext(r *http.Request) (string, error) {
	if user, ok := r.Context().Value(userKey{}).(string); ok {
		return user, nil
	}
	return "", node.ErrUnauthenticated
}
