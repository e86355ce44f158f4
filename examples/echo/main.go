// Command echo serves couponq from an echo server: the public handler under
// /api/ behind echo's key-auth middleware (its validator puts the user ID in
// echo's context and in the request's, where the handler's User function
// finds it), mounted with echo.WrapHandler; the
// admin handler under /admin/ behind its own admin-token check, on a node
// with the in-memory backends and one campaign, "spring-sale", created at
// start. SIGINT or SIGTERM shuts the server down gracefully, then the node.
//
//	COUPONQ_ADMIN_TOKEN=change-me-0123456789 go run . -addr 127.0.0.1:8080
//
// The user tokens are a fixed demo table (ann-token → ann, bo-token → bo):
// a stand-in for your session or JWT check.
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

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/httpapi"
	"github.com/couponq/couponq/node"
)

// demoUsers maps bearer tokens to user IDs.
var demoUsers = map[string]string{"ann-token": "ann", "bo-token": "bo"}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	token := flag.String("admin-token", os.Getenv("COUPONQ_ADMIN_TOKEN"), "bearer token for /admin/ (default $COUPONQ_ADMIN_TOKEN); at least 16 characters")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *addr, *token); err != nil {
		log.Error("echo example", "err", err)
		os.Exit(1)
	}
}

// run serves on addr until ctx is done, then shuts the server down (letting
// requests in progress finish) and stops the node.
func run(ctx context.Context, log *slog.Logger, addr, adminToken string) error {
	if len(adminToken) < 16 {
		return errors.New("an admin token of at least 16 characters is required (-admin-token or COUPONQ_ADMIN_TOKEN)")
	}
	n, campaigns, err := newNode(log)
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
	router, err := newRouter(n, campaigns, demoUsers, adminToken)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
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
	log.Info("stopped")
	return nil
}

// newNode returns a node on the in-memory backends with one campaign.
func newNode(log *slog.Logger) (*node.Node, *couponq.Campaigns, error) {
	campaigns, err := couponq.NewCampaigns(couponq.Campaign{ID: "spring-sale", Stock: 100, Interval: 100 * time.Millisecond})
	if err != nil {
		return nil, nil, err
	}
	// CatalogTTL < 0: read the in-memory registry on every use, so a change
	// made through /admin/ applies at once.
	n, err := node.New(node.Config{Catalog: campaigns, CatalogTTL: -1, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return n, campaigns, nil
}

// newRouter mounts the public handler under /api/ and the admin handler
// under /admin/.
func newRouter(n *node.Node, registry couponq.Registry, users map[string]string, adminToken string) (http.Handler, error) {
	public, err := httpapi.New(httpapi.Config{Service: n.Service(), User: userFromContext, BasePath: "/api"})
	if err != nil {
		return nil, err
	}
	stats, ok := n.Queue().(couponq.LineStatser)
	if !ok {
		return nil, errors.New("the node's queue cannot count its lines")
	}
	admin, err := httpapi.NewAdmin(httpapi.AdminConfig{
		Registry: registry, Stats: stats, Authorize: bearer(adminToken), BasePath: "/admin",
	})
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	api := e.Group("/api", userAuth(users))
	api.Any("/*", echo.WrapHandler(public))
	e.Any("/admin/*", echo.WrapHandler(admin))
	return e, nil
}

type userKey struct{}

// userAuth is the authentication middleware, echo's KeyAuth (it reads
// "Authorization: Bearer TOKEN"): the validator maps the token to a user ID
// and puts it in echo's context (c.Set, for echo handlers) and in the
// request's context (for the wrapped couponq handler). A missing or unknown
// token answers 401.
func userAuth(users map[string]string) echo.MiddlewareFunc {
	return middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
		Validator: func(token string, c echo.Context) (bool, error) {
			user, ok := users[token]
			if !ok {
				return false, nil
			}
			c.Set("user", user)
			c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), userKey{}, user)))
			return true, nil
		},
		// KeyAuth answers a missing key with 400; a missing credential is a 401.
		ErrorHandler: func(err error, c echo.Context) error {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
			return echo.NewHTTPError(http.StatusUnauthorized, "send Authorization: Bearer <user token>")
		},
	})
}

// userFromContext is the public handler's User function.
func userFromContext(r *http.Request) (string, error) {
	if u, ok := r.Context().Value(userKey{}).(string); ok && u != "" {
		return u, nil
	}
	return "", httpapi.ErrUnauthenticated
}

// bearer is the admin handler's Authorize: "Authorization: Bearer TOKEN",
// compared in constant time.
func bearer(token string) func(*http.Request) error {
	want := sha256.Sum256([]byte(token))
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return fmt.Errorf("%w: send Authorization: Bearer <admin token>", httpapi.ErrUnauthorized)
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return fmt.Errorf("%w: wrong admin token", httpapi.ErrUnauthorized)
		}
		return nil
	}
}
