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
// a stand-in for your session or JWT check. What the three framework
// examples share (the node, the handlers, the admin token check, serving
// with graceful shutdown) is in examples/internal/demo; this file holds
// what is particular to the framework.
package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/examples/internal/demo"
	"github.com/couponq/couponq/node"
)

func main() { demo.Main("echo example", newRouter) }

// newRouter mounts the public handler under /api/, behind userAuth, and the
// admin handler under /admin/.
func newRouter(n *node.Node, registry couponq.Registry, adminToken string) (http.Handler, error) {
	public, admin, err := demo.Handlers(n, registry, adminToken)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	api := e.Group("/api", userAuth(demo.Users))
	api.Any("/*", echo.WrapHandler(public))
	e.Any("/admin/*", echo.WrapHandler(admin))
	return e, nil
}

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
			c.SetRequest(c.Request().WithContext(demo.WithUser(c.Request().Context(), user)))
			return true, nil
		},
		// KeyAuth answers a missing key with 400; a missing credential is a 401.
		ErrorHandler: func(err error, c echo.Context) error {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
			return echo.NewHTTPError(http.StatusUnauthorized, "send Authorization: Bearer <user token>")
		},
	})
}
