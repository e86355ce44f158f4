package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef"

func TestAdminAuthorizeCookieOnlyForReads(t *testing.T) {
	auth := adminAuthorize(token)
	req := func(method, bearer, cookie string) *http.Request {
		r := httptest.NewRequest(method, "/admin/campaigns", nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: adminCookie, Value: cookie})
		}
		return r
	}
	assert.NoError(t, auth(req("POST", token, "")))
	assert.ErrorIs(t, auth(req("POST", "wrong-token-0000", "")), node.ErrUnauthenticated)
	assert.NoError(t, auth(req("GET", "", token)), "a read with the cookie")
	assert.ErrorIs(t, auth(req("GET", "", "wrong-token-0000")), node.ErrUnauthenticated)
	assert.ErrorIs(t, auth(req("POST", "", token)), node.ErrUnauthenticated, "a change never with the cookie alone")
	assert.ErrorIs(t, auth(req("GET", "", "")), node.ErrUnauthenticated)
}

func TestLogin(t *testing.T) {
	h := login(token, "/admin/live")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/login", nil))
	assert.Contains(t, w.Body.String(), `<form method="post">`)

	post := func(given string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {given}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	assert.Equal(t, http.StatusUnauthorized, post("wrong-token-0000").Code)
	w = post(token)
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/admin/live", w.Header().Get("Location"))
	c := w.Result().Cookies()
	require.Len(t, c, 1)
	assert.Equal(t, adminCookie, c[0].Name)
	assert.True(t, c[0].HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c[0].SameSite)
	assert.Equal(t, "/admin", c[0].Path)
}
