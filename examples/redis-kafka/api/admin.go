package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/couponq/couponq/node"
)

// minAdminToken is the shortest admin token the api accepts.
const minAdminToken = 16

// adminCookie is the cookie login sets: a browser's EventSource (the live
// page's stream) cannot send an Authorization header.
const adminCookie = "couponq_admin"

// adminAuthorize is the admin handler's Authorize: "Authorization: Bearer
// TOKEN", compared in constant time. Reads (GET and HEAD: the list, the
// live page and its stream) also accept the token in the adminCookie
// cookie; changes never do, so a page on another site cannot make a
// logged-in operator's browser change a campaign. A refusal answers 401.
func adminAuthorize(token string) func(*http.Request) error {
	matches := tokenMatcher(token)
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if c, err := r.Cookie(adminCookie); err == nil {
				got, ok = c.Value, true
			}
		}
		if !ok {
			return fmt.Errorf("%w: send Authorization: Bearer <admin token>", node.ErrUnauthenticated)
		}
		if !matches(got) {
			return fmt.Errorf("%w: wrong admin token", node.ErrUnauthenticated)
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

// login serves a form that takes the admin token and, if it is right, sets
// it as the adminCookie (HttpOnly, SameSite=Strict, for path /admin) and
// sends the browser to the live page at next.
func login(token, next string) http.Handler {
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
		http.SetCookie(w, &http.Cookie{Name: adminCookie, Value: given, Path: "/admin", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}
