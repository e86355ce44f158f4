package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/ratelimit"
)

// stub is a Limiter with scripted answers that records the keys it saw.
type stub struct {
	ok    bool
	retry time.Duration
	err   error

	mu   sync.Mutex
	keys []string
}

func (s *stub) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.ok, s.retry, s.err
}

// behind returns the middleware around a handler that answers 200 "served"
// and counts its calls.
func behind(t *testing.T, cfg ratelimit.Config) (http.Handler, *atomic.Int64) {
	t.Helper()
	mw, err := ratelimit.Middleware(cfg)
	require.NoError(t, err)
	var served atomic.Int64
	return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = w.Write([]byte("served"))
	})), &served
}

func get(h http.Handler, user string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

func TestMiddlewareLimits(t *testing.T) {
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 1, Per: time.Minute, Burst: 2}})
	require.NoError(t, err)
	var limited []string
	h, served := behind(t, ratelimit.Config{Limiter: limiter, Key: ratelimit.ByHeader("X-User"),
		OnLimited: func(r *http.Request, key string) { limited = append(limited, key) }})

	for range 2 {
		rr := get(h, "ann")
		assert.Equal(t, http.StatusOK, rr.Code)
		assert.Equal(t, "served", rr.Body.String())
	}
	rr := get(h, "ann")
	assert.Equal(t, http.StatusTooManyRequests, rr.Code)
	assert.Equal(t, "60", rr.Header().Get("Retry-After"), "whole seconds, rounded up")
	assert.Equal(t, "application/json", rr.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
	assert.JSONEq(t, `{"error":{"code":"rate_limited","message":"too many requests, retry in 60s"}}`, rr.Body.String())
	assert.Equal(t, int64(2), served.Load(), "a limited request never reaches the handler")
	assert.Equal(t, []string{"ann"}, limited)

	assert.Equal(t, http.StatusOK, get(h, "bob").Code, "another user has a limit of their own")
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for retry, want := range map[time.Duration]string{
		time.Nanosecond: "1", 0: "1", time.Second: "1", 1001 * time.Millisecond: "2", 59500 * time.Millisecond: "60",
	} {
		h, _ := behind(t, ratelimit.Config{Limiter: &stub{retry: retry}, Key: ratelimit.ByHeader("X-User")})
		assert.Equal(t, want, get(h, "ann").Header().Get("Retry-After"), "%s", retry)
	}
}

func TestLimiterFailureFailsOpen(t *testing.T) {
	var logs syncBuffer
	h, served := behind(t, ratelimit.Config{Limiter: &stub{err: errors.New("dial tcp: connection refused")},
		Key: ratelimit.ByHeader("X-User"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 5 {
		rr := get(h, "ann")
		assert.Equal(t, http.StatusOK, rr.Code)
		assert.Equal(t, "served", rr.Body.String())
	}
	assert.Equal(t, int64(5), served.Load(), "requests go through while the limiter is down")
	out := logs.String()
	assert.Contains(t, out, "level=WARN")
	assert.Contains(t, out, "connection refused")
	assert.Equal(t, 1, strings.Count(out, "\n"), "logged once a second, not once a request")
}

func TestLimiterFailureFailsClosed(t *testing.T) {
	h, served := behind(t, ratelimit.Config{Limiter: &stub{err: errors.New("redis down")},
		Key: ratelimit.ByHeader("X-User"), FailClosed: true, RetryAfter: 2500 * time.Millisecond})
	rr := get(h, "ann")
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Equal(t, "3", rr.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"unavailable","message":"the rate limiter is unavailable, retry shortly"}}`, rr.Body.String())
	assert.Zero(t, served.Load())
}

func TestClientGoneWhileLimiterFails(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h, served := behind(t, ratelimit.Config{Limiter: &stub{err: context.Canceled}, Key: ratelimit.ByHeader("X-User")})
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	req.Header.Set("X-User", "ann")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	assert.Zero(t, served.Load(), "nothing served to a client that left")
	assert.Zero(t, rr.Body.Len())
}

func TestKeyErrors(t *testing.T) {
	s := &stub{ok: true}
	h, served := behind(t, ratelimit.Config{Limiter: s, Key: ratelimit.ByHeader("X-User")})
	rr := get(h, "")
	assert.Equal(t, http.StatusBadRequest, rr.Code)
	assert.JSONEq(t, `{"error":{"code":"bad_request","message":"no rate limit key: ratelimit: no key: no X-User header"}}`, rr.Body.String())
	assert.Zero(t, served.Load())
	assert.Empty(t, s.keys, "the limiter is not asked")
}

func TestEmptyKeyIsExempt(t *testing.T) {
	s := &stub{ok: false, retry: time.Second}
	h, served := behind(t, ratelimit.Config{Limiter: s, Key: func(*http.Request) (string, error) { return "", nil }})
	assert.Equal(t, http.StatusOK, get(h, "").Code)
	assert.Equal(t, int64(1), served.Load())
	assert.Empty(t, s.keys)
}

func TestLongKeysHashed(t *testing.T) {
	s := &stub{ok: true}
	h, _ := behind(t, ratelimit.Config{Limiter: s, Key: ratelimit.ByHeader("X-User")})
	short, long := strings.Repeat("a", 128), strings.Repeat("a", 10_000)
	get(h, short)
	get(h, long)
	get(h, long+"b")
	require.Len(t, s.keys, 3)
	assert.Equal(t, short, s.keys[0], "up to 128 bytes as is")
	assert.Len(t, s.keys[1], len("sha256:")+64)
	assert.True(t, strings.HasPrefix(s.keys[1], "sha256:"))
	assert.NotEqual(t, s.keys[1], s.keys[2], "distinct long keys stay distinct")
}

func TestByRemoteIP(t *testing.T) {
	key := ratelimit.ByRemoteIP()
	for addr, want := range map[string]string{
		"192.0.2.7:51234":           "192.0.2.7",
		"[2001:db8::1]:443":         "2001:db8::1",
		"[::ffff:192.0.2.7]:80":     "192.0.2.7",
		"[fe80::1%eth0]:80":         "fe80::1",
		"192.0.2.8":                 "192.0.2.8",
		"2001:db8:0:0:0:0:0:2":      "2001:db8::2",
		"[2001:DB8:0:0:0:0:0:3]:10": "2001:db8::3",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		got, err := key(r)
		require.NoError(t, err, addr)
		assert.Equal(t, want, got, addr)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "@unix"
	_, err := key(r)
	assert.ErrorIs(t, err, ratelimit.ErrNoKey)
}

// Over a real listener, RemoteAddr is 127.0.0.1:port: the port is not part
// of the key, so new connections do not get new limits.
func TestByRemoteIPOverHTTP(t *testing.T) {
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 1, Per: time.Minute, Burst: 1}})
	require.NoError(t, err)
	h, _ := behind(t, ratelimit.Config{Limiter: limiter, Key: ratelimit.ByRemoteIP()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	var codes []int
	for range 2 {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new connection, a new port
		resp, err := c.Get(srv.URL)
		require.NoError(t, err)
		_ = resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	assert.Equal(t, []int{http.StatusOK, http.StatusTooManyRequests}, codes)
}

func TestMiddlewareConfigValidation(t *testing.T) {
	lim := &stub{}
	for name, cfg := range map[string]ratelimit.Config{
		"no limiter":          {Key: ratelimit.ByRemoteIP()},
		"no key":              {Limiter: lim},
		"negative RetryAfter": {Limiter: lim, Key: ratelimit.ByRemoteIP(), RetryAfter: -time.Second},
	} {
		_, err := ratelimit.Middleware(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
