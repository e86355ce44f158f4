package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/examples/internal/admintoken"
	"github.com/couponq/couponq/examples/redis-kafka/internal/adminsession"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef"

// TestAdminRoutes drives the api's admin routes as a browser and a script
// do: the browser logs in, reads with its session cookie (never the token),
// cannot change a campaign with it, logs out and is refused from then on;
// the bearer token does everything.
func TestAdminRoutes(t *testing.T) {
	n, err := node.New(node.Config{})
	require.NoError(t, err)
	require.NoError(t, n.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	_, err = n.CreateCampaign(t.Context(), couponq.Campaign{ID: "spring", Stock: 10})
	require.NoError(t, err)
	sessions, err := adminsession.New(adminsession.Config{Token: token})
	require.NoError(t, err)
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: sessions.Authorize, BasePath: "/admin"})
	require.NoError(t, err)
	mux := http.NewServeMux()
	adminRoutes(mux, admin, sessions)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Transport: srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer browser.CloseIdleConnections()
	do := func(c *http.Client, method, path, bearer string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		require.NoError(t, err)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		require.NoError(t, res.Body.Close())
		return res.StatusCode, string(b)
	}

	code, _ := do(browser, http.MethodGet, "/admin/campaigns", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "no session yet")
	code, _ = do(browser, http.MethodPost, "/login", "", url.Values{"token": {"wrong-token-0000"}})
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = do(browser, http.MethodPost, "/login", "", url.Values{"token": {token}})
	require.Equal(t, http.StatusSeeOther, code)
	u, _ := url.Parse(srv.URL + "/admin/")
	cookies := jar.Cookies(u)
	require.Len(t, cookies, 1)
	assert.Equal(t, adminsession.CookieName, cookies[0].Name)
	assert.NotContains(t, cookies[0].Value, token, "the browser holds a session, not the token")

	code, body := do(browser, http.MethodGet, "/admin/campaigns", "", nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"spring"`)
	code, _ = do(browser, http.MethodPost, "/admin/campaigns/spring/pause", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "a session never changes a campaign")
	code, body = do(srv.Client(), http.MethodPost, "/admin/campaigns/spring/pause", token, nil)
	assert.Equal(t, http.StatusOK, code, body)

	code, _ = do(browser, http.MethodGet, "/admin/logout", "", nil)
	assert.NotEqual(t, http.StatusSeeOther, code, "logging out takes a POST")
	stolen := cookies[0]
	code, _ = do(browser, http.MethodPost, "/admin/logout", "", nil)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Empty(t, jar.Cookies(u), "the browser dropped the cookie")
	code, _ = do(browser, http.MethodGet, "/admin/campaigns", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/admin/campaigns", nil)
	require.NoError(t, err)
	req.AddCookie(stolen)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "a copy of the cookie is revoked too")
	code, _ = do(srv.Client(), http.MethodGet, "/admin/campaigns", token, nil)
	assert.Equal(t, http.StatusOK, code, "the bearer token still works")
	srv.Client().CloseIdleConnections()
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)+"\n"), 0o600))
	parse := func(args ...string) (options, error) {
		fs := flag.NewFlagSet("api", flag.ContinueOnError)
		src := admintoken.Register(fs)
		keyFile := fs.String("admin-session-key-file", "", "")
		require.NoError(t, fs.Parse(args))
		var o options
		err := o.loadSecrets(slog.New(slog.DiscardHandler), src, *keyFile)
		return o, err
	}

	t.Setenv(admintoken.EnvVar, token)
	t.Setenv(sessionKeyEnv, "")
	o, err := parse()
	require.NoError(t, err)
	assert.Equal(t, token, o.token)
	assert.Nil(t, o.sessionKey, "a random key per process")

	t.Setenv(sessionKeyEnv, strings.Repeat("e", 32))
	o, err = parse()
	require.NoError(t, err)
	assert.Equal(t, []byte(strings.Repeat("e", 32)), o.sessionKey)

	o, err = parse("-admin-session-key-file", keyFile)
	require.NoError(t, err)
	assert.Equal(t, []byte(strings.Repeat("k", 32)), o.sessionKey, "the file wins, trimmed")

	_, err = parse("-admin-session-key-file", filepath.Join(dir, "missing"))
	assert.Error(t, err)
}
