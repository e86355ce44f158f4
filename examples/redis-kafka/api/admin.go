package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/couponq/couponq/examples/internal/admintoken"
	"github.com/couponq/couponq/examples/redis-kafka/internal/adminsession"
)

// sessionKeyEnv holds the admin session key unless -admin-session-key-file
// does.
const sessionKeyEnv = "COUPONQ_ADMIN_SESSION_KEY"

// loadSecrets reads the admin token (from $COUPONQ_ADMIN_TOKEN,
// -admin-token-file or, with a warning, the deprecated -admin-token) and the
// session key (from keyFile or $COUPONQ_ADMIN_SESSION_KEY; neither leaves it
// nil: a random key per process) into o. The command line never holds
// either but through the deprecated flag, which /debug/vars redacts.
func (o *options) loadSecrets(log *slog.Logger, token *admintoken.Source, keyFile string) error {
	var err error
	if o.token, err = token.Token(); err != nil {
		return err
	}
	if token.Deprecated {
		log.Warn(admintoken.DeprecationWarning)
	}
	if keyFile != "" {
		key, err := admintoken.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("admin session key: %w", err)
		}
		o.sessionKey = []byte(key)
	} else if key := os.Getenv(sessionKeyEnv); key != "" {
		o.sessionKey = []byte(key)
	}
	return nil
}

// adminRoutes mounts the admin handler at /admin/ (its Authorize being
// sessions.Authorize: the bearer token, or for reads a session cookie), the
// login form at /login (which lands on the live page) and the logout at
// POST /admin/logout, under the cookie's path so the browser sends the
// session there.
func adminRoutes(mux *http.ServeMux, admin http.Handler, sessions *adminsession.Manager) {
	mux.Handle("/admin/", admin)
	mux.Handle("/login", sessions.Login("/admin/live"))
	mux.Handle("POST "+sessions.LogoutPath(), sessions.Logout("/login"))
}
