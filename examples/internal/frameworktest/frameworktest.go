// Package frameworktest holds the tests the framework examples
// (examples/gin, examples/chi, examples/echo) share: each example's
// main_test.go passes its own newRouter and run, and these check them
// the same way — the routes, their 401s, the cross-site refusal, and the
// shutdown with an open live stream.
package frameworktest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/node"
)

const adminToken = "test-admin-token-0123456789"

// Router checks the handler newRouter mounts on a node with the in-memory
// backends and the campaign "spring-sale": the public routes behind the
// bearer tokens ann-token and bo-token, the admin routes behind Basic auth
// (user "admin") and cross-origin protection, and the probes.
func Router(t *testing.T, newRouter func(n *node.Node, adminToken string) (http.Handler, error)) {
	n, err := node.New(node.Config{})
	require.NoError(t, err)
	require.NoError(t, n.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	_, err = n.CreateCampaign(t.Context(), couponq.Campaign{ID: "spring-sale", Stock: 10, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	router, err := newRouter(n, adminToken)
	require.NoError(t, err)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	c, entries := srv.Client(), srv.URL+"/api/campaigns/spring-sale/entries"

	for _, token := range []string{"ann-token", "bo-token"} {
		code, body := do(t, c, http.MethodPost, entries, "Bearer "+token)
		require.Equal(t, http.StatusAccepted, code, body)
	}
	for _, token := range []string{"ann-token", "bo-token"} {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			code, body := do(t, c, http.MethodGet, entries+"/me", "Bearer "+token)
			var st struct{ State string }
			require.NoError(ct, json.Unmarshal([]byte(body), &st))
			assert.Equal(ct, http.StatusOK, code)
			assert.Equal(ct, "issued", st.State)
		}, 10*time.Second, 10*time.Millisecond, token)
	}
	for _, auth := range []string{"", "Bearer nobody-token", "admin:" + adminToken} {
		code, body := do(t, c, http.MethodPost, entries, auth)
		assert.Equal(t, http.StatusUnauthorized, code, "admit with %q: %s", auth, body)
	}

	code, body := do(t, c, http.MethodGet, srv.URL+"/admin/campaigns", "admin:"+adminToken)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"spring-sale"`)
	for _, auth := range []string{"", "admin:wrong-token-0123456789", "Bearer ann-token"} {
		code, _ := do(t, c, http.MethodGet, srv.URL+"/admin/campaigns", auth)
		assert.Equal(t, http.StatusUnauthorized, code, "admin list with %q", auth)
	}
	code, _ = do(t, c, http.MethodPost, srv.URL+"/admin/campaigns/spring-sale/pause", "admin:"+adminToken,
		"Origin", "https://elsewhere.example", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, code, "a change started by another site's page")
	code, _ = do(t, c, http.MethodPost, srv.URL+"/admin/campaigns/spring-sale/pause", "admin:"+adminToken)
	assert.Equal(t, http.StatusOK, code)

	for _, probe := range []string{"/livez", "/readyz"} {
		code, body := do(t, c, http.MethodGet, srv.URL+probe, "")
		assert.Equal(t, http.StatusOK, code, "%s: %s", probe, body)
	}
}

// ShutdownWithOpenLiveStream checks that an open admin live stream does not
// hold run's server past its shutdown: run returns at once when its context
// ends, and the stream ends. It also checks that run refuses a short admin
// token.
func ShutdownWithOpenLiveStream(t *testing.T, run func(ctx context.Context, log *slog.Logger, ln net.Listener, adminToken string) error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.DiscardHandler), ln, adminToken) }()

	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	var res *http.Response
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/admin/live/stream", nil)
		require.NoError(ct, err)
		req.SetBasicAuth("admin", adminToken)
		res, err = c.Do(req)
		require.NoError(ct, err)
		if !assert.Equal(ct, http.StatusOK, res.StatusCode) {
			_ = res.Body.Close()
		}
	}, 5*time.Second, 10*time.Millisecond)
	defer res.Body.Close()
	stream := bufio.NewReader(res.Body)
	_, err = stream.ReadString('\n')
	require.NoError(t, err, "the live stream's first line")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("run did not return within 2s of its context ending (its own shutdown deadline is 10s)")
	}
	_, err = io.Copy(io.Discard, stream)
	assert.NoError(t, err, "the live stream ended")

	ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.Error(t, run(t.Context(), slog.New(slog.DiscardHandler), ln, "short"), "a short admin token is refused")
}

// do sends a request; auth is "Bearer <token>", "admin:<password>" for
// Basic auth, or "".
func do(t *testing.T, c *http.Client, method, url, auth string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	if pass, ok := strings.CutPrefix(auth, "admin:"); ok {
		req.SetBasicAuth("admin", pass)
	} else if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}
