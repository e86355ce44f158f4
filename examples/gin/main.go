// Command gin serves couponq from a gin engine: the public handler under
// /api/ behind a gin bearer-token middleware (it puts the user ID in gin's
// context and in the request's, where the handler's User function finds
// it), mounted with gin.WrapH; the
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
	"os"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/examples/internal/demo"
	"github.com/couponq/couponq/node"
)

func main() {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode) // no debug route listing; GIN_MODE=debug brings it back
	}
	demo.Main("gin example", newRouter)
}

// newRouter mounts the public handler under /api/, behind userAuth, and the
// admin handler under /admin/.
func newRouter(n *node.Node, registry couponq.Registry, adminToken string) (http.Handler, error) {
	public, admin, err := demo.Handlers(n, registry, adminToken)
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.Recovery())
	api := r.Group("/api", userAuth(demo.Users))
	api.Any("/*path", gin.WrapH(public))
	r.Any("/admin/*path", gin.WrapH(admin))
	return r, nil
}

// userAuth is the authentication middleware: it maps the request's bearer
// token to a user ID and puts it in gin's context (c.Set, for gin handlers)
// and in the request's context (for the wrapped couponq handler), or answers
// 401.
func userAuth(users map[string]string) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		user, ok := users[token]
		if token == "" || !ok {
			c.Header("WWW-Authenticate", "Bearer")
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": gin.H{"code": "unauthenticated", "message": "send Authorization: Bearer <user token>"}})
			return
		}
		c.Set("user", user)
		c.Request = c.Request.WithContext(demo.WithUser(c.Request.Context(), user))
		c.Next()
	}
}
