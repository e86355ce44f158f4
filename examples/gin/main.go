// Command gin serves couponq from a gin engine, on a node with the
// in-memory backends and one campaign, "spring-sale":
//
//   - /api/: the public handler (gin.WrapH), behind a bearer-token
//     middleware that puts the user ID in gin's context and in the
//     request's, where the handler's User finds it;
//   - /admin/: the admin handler and its live page, behind gin.BasicAuth
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

	"github.com/gin-gonic/gin"

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
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode) // no debug route listing; GIN_MODE=debug brings it back
	}
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
		log.Error("gin example", "err", err)
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

// newRouter mounts the node's handlers and probes on a gin engine.
func newRouter(n *node.Node, adminToken string) (http.Handler, error) {
	public, err := n.Handler(node.HandlerConfig{User: userFromContext, BasePath: "/api"})
	if err != nil {
		return nil, err
	}
	admin, err := n.AdminHandler(node.AdminConfig{
		BasePath: "/admin",
		// gin.BasicAuth in front lets only the operator through.
		Authorize: func(*http.Request) error { return nil },
	})
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.Recovery())
	r.Group("/api", userAuth).Any("/*path", gin.WrapH(public))
	// A browser sends the operator's credentials with any request to this
	// origin: refuse changes that other sites' pages start.
	admins := r.Group("/admin", gin.BasicAuth(gin.Accounts{"admin": adminToken})) // compares in constant time
	admins.Any("/*path", gin.WrapH(http.NewCrossOriginProtection().Handler(admin)))
	r.GET("/livez", gin.WrapH(n.Liveness()))
	r.GET("/readyz", gin.WrapH(n.Readiness())) // in production, on a port only the orchestrator reaches
	return r, nil
}

type userKey struct{}

// userAuth maps the request's bearer token to a user ID and puts it in
// gin's context (c.Set, for gin handlers) and in the request's (for the
// wrapped couponq handler), or answers 401.
func userAuth(c *gin.Context) {
	token, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	user, ok := users[token]
	if !ok {
		c.Header("WWW-Authenticate", "Bearer")
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": gin.H{
			"code": "unauthenticated", "message": "send Authorization: Bearer <user token>"}})
		return
	}
	c.Set("user", user)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), userKey{}, user))
	c.Next()
}

// userFromContext is the public handler's User: the ID userAuth set.
func userFromContext(r *http.Request) (string, error) {
	if user, ok := r.Context().Value(userKey{}).(string); ok {
		return user, nil
	}
	return "", node.ErrUnauthenticated
}
