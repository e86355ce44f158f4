// Command chi serves couponq from a chi router: the public handler under
// /api/ behind a bearer-token middleware in chi's idiom (it puts the user ID
// in the request context, where the handler's User function finds it), the
// admin handler under /admin/ behind its own admin-token check, on a node
// with the in-memory backends and one campaign, "spring-sale", created at
// start. SIGINT or SIGTERM shuts the server down gracefully, then the node.
//
//	COUPONQ_ADMIN_TOKEN=change-me-0123456789 go run . -addr 127.0.0.1:8080
//
// The user tokens are a fixed demo table (ann-token → ann, bo-token → bo):
// a stand-in for your session or JWT check. What the three framework
// examples share (the node, the handlers, the admin token check, serving
// with graceful shutdown) is in examples/internal/demo; this file holds
// what is particular to the framework.
package main

import (
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/examples/internal/demo"
	"github.com/couponq/couponq/node"
)

func main() { demo.Main("chi example", newRouter) }

// newRouter mounts the public handler under /api/, behind userAuth, and the
// admin handler under /admin/.
func newRouter(n *node.Node, registry couponq.Registry, adminToken string) (http.Handler, error) {
	public, admin, err := demo.Handlers(n, registry, adminToken)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Route("/api", func(r chi.Router) {
		r.Use(userAuth(demo.Users))
		r.Handle("/*", public)
	})
	r.Handle("/admin/*", admin)
	return r, nil
}

// userAuth is the authentication middleware, in chi's idiom: it maps the
// request's bearer token to a user ID and puts it in the request context,
// or answers 401.
func userAuth(users map[string]string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			user, ok := users[token]
			if token == "" || !ok {
				w.Header().Set("WWW-Authenticate", "Bearer")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, demo.Unauthenticated+"\n")
				return
			}
			next.ServeHTTP(w, r.WithContext(demo.WithUser(r.Context(), user)))
		})
	}
}
