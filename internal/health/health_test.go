package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/health"
)

func newHandler(t *testing.T, cfg health.Config) *health.Handler {
	t.Helper()
	h, err := health.New(cfg)
	require.NoError(t, err)
	return h
}

func serve(h http.Handler, method string) *httptest.ResponseRecorder {
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(method, "/readyz", nil))
	return rr
}

func decode(t *testing.T, rr *httptest.ResponseRecorder) health.Response {
	t.Helper()
	var resp health.Response
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &resp), rr.Body.String())
	return resp
}

func ok(context.Context) error { return nil }

// counted returns a check that counts its calls and answers err.
func counted(calls *atomic.Int64, err error) health.Check {
	return func(context.Context) error { calls.Add(1); return err }
}

func assertJSONHeaders(t *testing.T, rr *httptest.ResponseRecorder) {
	t.Helper()
	assert.Equal(t, "application/json", rr.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
}

func TestLiveness(t *testing.T) {
	var calls atomic.Int64
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"redis": counted(&calls, errors.New("down"))}})
	rr := serve(h.Liveness(), http.MethodGet)
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rr.Body.String())
	assertJSONHeaders(t, rr)
	assert.Zero(t, calls.Load(), "liveness calls no backend, even a failing one")
}

func TestReadinessOK(t *testing.T) {
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"redis": ok, "kafka": ok}})
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.Equal(t, `{"status":"ok","checks":{"kafka":"ok","redis":"ok"}}`+"\n", rr.Body.String())
	assertJSONHeaders(t, rr)
	assert.Empty(t, rr.Header().Get("Retry-After"))
}

func TestReadinessWithoutChecks(t *testing.T) {
	h := newHandler(t, health.Config{})
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rr.Body.String())
}

func TestReadinessFailingCheckNamed(t *testing.T) {
	h := newHandler(t, health.Config{Checks: map[string]health.Check{
		"redis": ok,
		"kafka": func(context.Context) error { return errors.New("kafkadispatch: metadata: broker transport failure") },
	}})
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.JSONEq(t, `{"status":"unavailable","checks":{"kafka":"kafkadispatch: metadata: broker transport failure","redis":"ok"}}`, rr.Body.String())
	assertJSONHeaders(t, rr)
	assert.Equal(t, "1", rr.Header().Get("Retry-After"))
}

func TestRetryAfterFollowsCacheFor(t *testing.T) {
	fail := map[string]health.Check{"x": func(context.Context) error { return errors.New("no") }}
	for cacheFor, want := range map[time.Duration]string{-1: "1", 200 * time.Millisecond: "1", 1500 * time.Millisecond: "2", 3 * time.Second: "3"} {
		h := newHandler(t, health.Config{Checks: fail, CacheFor: cacheFor})
		assert.Equal(t, want, serve(h.Readiness(), http.MethodGet).Header().Get("Retry-After"), "CacheFor %s", cacheFor)
	}
}

func TestReadinessTimeout(t *testing.T) {
	h := newHandler(t, health.Config{Timeout: 50 * time.Millisecond, Checks: map[string]health.Check{
		"redis": ok,
		"slow":  func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
	}})
	start := time.Now()
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	resp := decode(t, rr)
	assert.Equal(t, "unavailable", resp.Status)
	assert.Equal(t, "ok", resp.Checks["redis"])
	assert.Equal(t, "timed out after 50ms: context deadline exceeded", resp.Checks["slow"])
}

// A check that ignores its context is reported at the deadline (plus a short
// grace) and is not started again while it is still running.
func TestCheckIgnoringContext(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	h := newHandler(t, health.Config{Timeout: 20 * time.Millisecond, CacheFor: -1, Checks: map[string]health.Check{
		"stuck": func(context.Context) error { calls.Add(1); <-release; return nil },
	}})
	start := time.Now()
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Equal(t, "timed out after 20ms", decode(t, rr).Checks["stuck"])

	rr = serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Contains(t, decode(t, rr).Checks["stuck"], "still running")
	assert.Equal(t, int64(1), calls.Load(), "no second goroutine on a hung check")

	close(release)
	require.Eventually(t, func() bool { return serve(h.Readiness(), http.MethodGet).Code == http.StatusOK },
		5*time.Second, 5*time.Millisecond, "once the check returns it runs again")
}

func TestPanickingCheck(t *testing.T) {
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"bad": func(context.Context) error { panic("boom") }}})
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Equal(t, "check panicked: boom", decode(t, rr).Checks["bad"])
}

func TestReadinessCachedWithinCacheFor(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var calls atomic.Int64
	failing := atomic.Bool{}
	h := newHandler(t, health.Config{CacheFor: time.Second, Checks: map[string]health.Check{
		"redis": func(context.Context) error {
			calls.Add(1)
			if failing.Load() {
				return errors.New("down")
			}
			return nil
		},
	}})
	h.SetNow(clock)

	for range 5 {
		assert.Equal(t, http.StatusOK, serve(h.Readiness(), http.MethodGet).Code)
	}
	assert.Equal(t, int64(1), calls.Load(), "answers within CacheFor are reused")

	failing.Store(true)
	advance(999 * time.Millisecond)
	assert.Equal(t, http.StatusOK, serve(h.Readiness(), http.MethodGet).Code, "still the cached answer")
	assert.Equal(t, int64(1), calls.Load())

	advance(time.Millisecond)
	assert.Equal(t, http.StatusServiceUnavailable, serve(h.Readiness(), http.MethodGet).Code, "CacheFor over: a new run")
	assert.Equal(t, int64(2), calls.Load())
	for range 5 {
		assert.Equal(t, http.StatusServiceUnavailable, serve(h.Readiness(), http.MethodGet).Code)
	}
	assert.Equal(t, int64(2), calls.Load(), "failures are cached too: an outage's probe storm costs one run per CacheFor")
}

func TestNegativeCacheForRunsEveryTime(t *testing.T) {
	var calls atomic.Int64
	h := newHandler(t, health.Config{CacheFor: -1, Checks: map[string]health.Check{"redis": counted(&calls, nil)}})
	for range 3 {
		serve(h.Readiness(), http.MethodGet)
	}
	assert.Equal(t, int64(3), calls.Load())
}

func TestConcurrentRequestsShareOneRun(t *testing.T) {
	const n = 20
	var calls atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	h := newHandler(t, health.Config{Checks: map[string]health.Check{
		"redis": func(context.Context) error {
			if calls.Add(1) == 1 {
				close(started)
			}
			<-release
			return nil
		},
	}})
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- serve(h.Readiness(), http.MethodGet).Code })
	}
	<-started
	require.Eventually(t, func() bool { return h.Waiting() == n-1 }, 5*time.Second, time.Millisecond,
		"the other requests wait on the run in progress")
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	assert.Equal(t, int64(1), calls.Load(), "one run for all of them")
}

// A waiting request whose client leaves returns at once; the run goes on for
// the request that started it.
func TestWaiterLeavesEarly(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := newHandler(t, health.Config{Checks: map[string]health.Check{
		"redis": func(context.Context) error { close(started); <-release; return nil },
	}})
	leader := make(chan int, 1)
	go func() { leader <- serve(h.Readiness(), http.MethodGet).Code }()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx)
	rr := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.Readiness().ServeHTTP(rr, req); close(done) }()
	require.Eventually(t, func() bool { return h.Waiting() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not leave with its client")
	}
	assert.Zero(t, rr.Body.Len(), "nothing written to a client that left")

	close(release)
	assert.Equal(t, http.StatusOK, <-leader)
}

// The leader's client leaving does not cut the run short for the waiters.
func TestLeaderLeavingDoesNotCancelRun(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := newHandler(t, health.Config{Checks: map[string]health.Check{
		"redis": func(ctx context.Context) error {
			close(started)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan struct{})
	go func() {
		h.Readiness().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		close(leader)
	}()
	<-started
	cancel()
	waiter := make(chan int, 1)
	go func() { waiter <- serve(h.Readiness(), http.MethodGet).Code }()
	require.Eventually(t, func() bool { return h.Waiting() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	assert.Equal(t, http.StatusOK, <-waiter)
	<-leader
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"redis": ok}})
	for name, handler := range map[string]http.Handler{"liveness": h.Liveness(), "readiness": h.Readiness()} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			rr := serve(handler, m)
			assert.Equal(t, http.StatusMethodNotAllowed, rr.Code, "%s %s", name, m)
			assert.Equal(t, "GET, HEAD", rr.Header().Get("Allow"))
			assertJSONHeaders(t, rr)
			assert.JSONEq(t, `{"error":{"code":"method_not_allowed","message":"use GET or HEAD"}}`, rr.Body.String())
		}
	}
}

func TestHead(t *testing.T) {
	var calls atomic.Int64
	h := newHandler(t, health.Config{CacheFor: -1, Checks: map[string]health.Check{"redis": counted(&calls, nil)}})
	rr := serve(h.Readiness(), http.MethodHead)
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.Zero(t, rr.Body.Len())
	assertJSONHeaders(t, rr)
	assert.Equal(t, int64(1), calls.Load(), "HEAD runs the checks like GET")

	rr = serve(h.Liveness(), http.MethodHead)
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.Zero(t, rr.Body.Len())

	bad := newHandler(t, health.Config{Checks: map[string]health.Check{"kafka": func(context.Context) error { return errors.New("down") }}})
	rr = serve(bad.Readiness(), http.MethodHead)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Zero(t, rr.Body.Len())
	assert.Equal(t, "1", rr.Header().Get("Retry-After"))
}

// Over a real server too: net/http drops HEAD bodies itself, and the probe
// sees the same status and headers.
func TestOverHTTP(t *testing.T) {
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"redis": ok}})
	mux := http.NewServeMux()
	mux.Handle("/livez", h.Liveness())
	mux.Handle("/readyz", h.Readiness())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/livez", "/readyz"} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(m, srv.URL+path, nil)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", m, path)
			assert.Equal(t, m == http.MethodHead, body.Len() == 0, "%s %s", m, path)
		}
	}
	srv.Client().CloseIdleConnections()
}

func TestPing(t *testing.T) {
	p := &fakePinger{err: errors.New("unreachable")}
	h := newHandler(t, health.Config{Checks: map[string]health.Check{"db": health.Ping(p)}})
	rr := serve(h.Readiness(), http.MethodGet)
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Equal(t, "unreachable", decode(t, rr).Checks["db"])
	assert.Equal(t, int64(1), p.calls.Load())
	_, hasDeadline := p.ctx.Load().(context.Context).Deadline()
	assert.True(t, hasDeadline, "the check's context carries the Timeout")
}

type fakePinger struct {
	err   error
	calls atomic.Int64
	ctx   atomic.Value
}

func (p *fakePinger) Ping(ctx context.Context) error {
	p.calls.Add(1)
	p.ctx.Store(ctx)
	return p.err
}

func TestLogsTransitions(t *testing.T) {
	var buf syncBuffer
	var failing atomic.Bool
	failing.Store(true)
	h := newHandler(t, health.Config{CacheFor: -1, Logger: slog.New(slog.NewTextHandler(&buf, nil)), Checks: map[string]health.Check{
		"redis": func(context.Context) error {
			if failing.Load() {
				return errors.New("connection refused")
			}
			return nil
		},
	}})
	serve(h.Readiness(), http.MethodGet)
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "connection refused")
	failing.Store(false)
	serve(h.Readiness(), http.MethodGet)
	assert.Contains(t, buf.String(), "ready again")
	n := len(buf.String())
	serve(h.Readiness(), http.MethodGet)
	assert.Len(t, buf.String(), n, "nothing logged while ready")
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
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]health.Config{
		"negative timeout": {Timeout: -time.Second},
		"empty name":       {Checks: map[string]health.Check{"": ok}},
		"nil check":        {Checks: map[string]health.Check{"redis": nil}},
	} {
		_, err := health.New(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
	}
}
