// Package demo is what the framework examples (examples/gin, chi, echo)
// share (examples/redis-kafka uses its admin token check too), so each of them shows only what is particular to its framework:
// the authentication middleware and how the couponq handlers are mounted.
// It holds the in-memory node with one campaign, the public and admin
// handlers, the user carried in the request context, the admin token check
// and serving with graceful shutdown.
package demo

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

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/node"
)

// Campaign is the campaign the demo node starts with.
const Campaign = "spring-sale"

// Users maps demo bearer tokens to user IDs: a stand-in for the host's
// session or JWT check.
var Users = map[string]string{"ann-token": "ann", "bo-token": "bo"}

// MinAdminToken is the shortest admin token Serve accepts.
const MinAdminToken = 16

// NewNode returns a node on the in-memory backends with one campaign, and
// the registry it reads.
func NewNode(log *slog.Logger) (*node.Node, *memline.Registry, error) {
	campaigns, err := memline.NewRegistry(couponq.Campaign{ID: Campaign, Stock: 100, Interval: 100 * time.Millisecond})
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

// Handlers returns the public handler (for /api, reading the user from the
// request context: see WithUser) and the admin handler (for /admin, behind
// AdminAuthorize(adminToken)).
func Handlers(n *node.Node, registry couponq.Registry, adminToken string) (public, admin http.Handler, err error) {
	stats, ok := n.Queue().(couponq.LineStatser)
	if !ok {
		return nil, nil, errors.New("the node's queue cannot count its lines")
	}
	public, err = httpapi.New(httpapi.Config{Service: n.Service(), User: UserFromContext, BasePath: "/api",
		Stats: stats, Catalog: n.Catalog()}) // Stats and Catalog serve .../entries/me/events
	if err != nil {
		return nil, nil, err
	}
	admin, err = httpapi.NewAdmin(httpapi.AdminConfig{
		Registry: registry, Stats: stats, Authorize: AdminAuthorize(adminToken), BasePath: "/admin",
	})
	if err != nil {
		return nil, nil, err
	}
	return public, admin, nil
}

type userKey struct{}

// WithUser returns ctx carrying the authenticated user ID; the framework's
// middleware calls it on the request's context.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFromContext is the public handler's User function.
func UserFromContext(r *http.Request) (string, error) {
	if u, ok := r.Context().Value(userKey{}).(string); ok && u != "" {
		return u, nil
	}
	return "", httpapi.ErrUnauthenticated
}

// Unauthenticated is the JSON body of a 401 from a user middleware, in the
// public handler's error format.
const Unauthenticated = `{"error":{"code":"unauthenticated","message":"send Authorization: Bearer <user token>"}}`

// AdminCookie is the cookie Login sets: a browser's EventSource (the live
// page's stream) cannot send an Authorization header.
const AdminCookie = "couponq_admin"

// AdminAuthorize is the admin handler's Authorize: "Authorization: Bearer
// TOKEN", compared in constant time. Reads (GET and HEAD: the list, the
// live page and its stream) also accept the token in the AdminCookie
// cookie; changes never do, so a page on another site cannot make a
// logged-in operator's browser change a campaign.
func AdminAuthorize(token string) func(*http.Request) error {
	matches := tokenMatcher(token)
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if c, err := r.Cookie(AdminCookie); err == nil {
				got, ok = c.Value, true
			}
		}
		if !ok {
			return fmt.Errorf("%w: send Authorization: Bearer <admin token>", httpapi.ErrUnauthorized)
		}
		if !matches(got) {
			return fmt.Errorf("%w: wrong admin token", httpapi.ErrUnauthorized)
		}
		return nil
	}
}

// tokenMatcher reports whether a given token is token, compared in
// constant time.
func tokenMatcher(token string) func(string) bool {
	want := sha256.Sum256([]byte(token))
	return func(got string) bool {
		sum := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
}

// Login serves a form that takes the admin token and, if it is right, sets
// it as the AdminCookie (HttpOnly, SameSite=Strict, for path /admin) and
// sends the browser to the live page at next.
func Login(token, next string) http.Handler {
	matches := tokenMatcher(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = fmt.Fprint(w, `<!doctype html><title>couponq admin</title><form method="post">`+
				`<label>Admin token <input type="password" name="token" autofocus></label> <button>Open the live page</button></form>`)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		given := r.PostFormValue("token")
		if !matches(given) {
			http.Error(w, "wrong admin token", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: AdminCookie, Value: given, Path: "/admin", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// Router builds a framework's router from the node, its registry and the
// admin token.
type Router func(n *node.Node, registry couponq.Registry, adminToken string) (http.Handler, error)

// Main is a framework example's main: it reads -addr and -admin-token
// (default $COUPONQ_ADMIN_TOKEN), serves router until SIGINT or SIGTERM, and
// exits 1 if serving fails. name labels its log lines.
func Main(name string, router Router) {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	token := flag.String("admin-token", os.Getenv("COUPONQ_ADMIN_TOKEN"), "bearer token for /admin/ (default $COUPONQ_ADMIN_TOKEN); at least 16 characters")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, log, *addr, *token, router); err != nil {
		log.Error(name, "err", err)
		stop()
		os.Exit(1)
	}
}

// Serve runs the demo node and serves router on addr until ctx is done,
// then shuts the server down (letting requests in progress finish) and
// stops the node.
func Serve(ctx context.Context, log *slog.Logger, addr, adminToken string, router Router) error {
	if len(adminToken) < MinAdminToken {
		return fmt.Errorf("an admin token of at least %d characters is required (-admin-token or COUPONQ_ADMIN_TOKEN)", MinAdminToken)
	}
	n, campaigns, err := NewNode(log)
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
	h, err := router(n, campaigns, adminToken)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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
