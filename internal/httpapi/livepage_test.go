package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

// sseEvent is one Server-Sent Event, or a comment (name and data empty).
type sseEvent struct {
	name, data, comment, retry string
}

// readEvent reads the next event or comment from a stream.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ": "):
			ev.comment = strings.TrimPrefix(line, ": ")
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "retry: "):
			ev.retry = strings.TrimPrefix(line, "retry: ")
		default:
			return ev, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// stream is an open live stream.
type stream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openStream opens the live stream; it is closed at the end of the test,
// or before by close.
func (e *adminEnv) openStream(t *testing.T) *stream {
	t.Helper()
	return openStreamOn(t, e.srv)
}

// openStreamOn opens the live stream of the admin handler srv serves.
func openStreamOn(t *testing.T, srv *httptest.Server) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req := authed(t, "GET", srv.URL+"/admin/live/stream").WithContext(ctx)
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	s := &stream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next reads the next campaigns event, skipping comments.
func (s *stream) next(t *testing.T) httpapi.AdminCampaignList {
	t.Helper()
	l, err := s.list()
	require.NoError(t, err)
	return l
}

// list reads the next campaigns event, skipping comments; any other event
// is an error.
func (s *stream) list() (httpapi.AdminCampaignList, error) {
	var l httpapi.AdminCampaignList
	for {
		ev, err := readEvent(s.r)
		switch {
		case err != nil:
			return l, err
		case ev.comment != "":
			continue
		case ev.name != "campaigns":
			return l, fmt.Errorf("event %q (%s), want campaigns", ev.name, ev.data)
		}
		return l, json.Unmarshal([]byte(ev.data), &l)
	}
}

// until reads campaigns events until one satisfies ok, and returns it.
func (s *stream) until(t *testing.T, ok func(httpapi.AdminCampaignList) bool) httpapi.AdminCampaignList {
	t.Helper()
	for range 500 {
		if l := s.next(t); ok(l) {
			return l
		}
	}
	t.Fatal("no event satisfied the condition in 500 events")
	return httpapi.AdminCampaignList{}
}

func fastStreams(c *httpapi.AdminConfig) { c.StreamInterval = 20 * time.Millisecond }

func TestLiveStreamSendsTheListAndFollowsTheLine(t *testing.T) {
	env := newAdmin(t, fastStreams,
		couponq.Campaign{ID: "spring", Stock: 5}, couponq.Campaign{ID: "summer", Stock: 10, Paused: true})
	s := env.openStream(t)
	assert.Equal(t, http.StatusOK, s.resp.StatusCode)
	assert.Equal(t, "text/event-stream", s.resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", s.resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no", s.resp.Header.Get("X-Accel-Buffering"))

	ev, err := readEvent(s.r)
	require.NoError(t, err)
	assert.Equal(t, "1000", ev.retry, "EventSource reconnects after RetryAfter")
	assert.Equal(t, "campaigns", ev.name)
	var first httpapi.AdminCampaignList
	require.NoError(t, json.Unmarshal([]byte(ev.data), &first))
	require.Len(t, first.Campaigns, 2)
	assert.Equal(t, "spring", first.Campaigns[0].ID)
	require.NotNil(t, first.Campaigns[0].LiveNumbers, "events carry the live numbers, as the list does")
	assert.Equal(t, "open", first.Campaigns[0].State)
	assert.EqualValues(t, 0, first.Campaigns[0].Waiting)
	assert.Equal(t, "paused", first.Campaigns[1].State)
	assert.Equal(t, env.list(t), first.Campaigns, "the same shape and numbers as GET /campaigns")

	env.admit(t, "spring", "ann", "bo", "cy")
	got := s.until(t, func(l httpapi.AdminCampaignList) bool { return l.Campaigns[0].Waiting == 3 })
	assert.EqualValues(t, 3, got.Campaigns[0].Admitted)

	env.issue(t, "spring", 2)
	got = s.until(t, func(l httpapi.AdminCampaignList) bool { return l.Campaigns[0].Issued == 2 })
	assert.EqualValues(t, 1, got.Campaigns[0].Waiting)
	assert.EqualValues(t, 3, got.Campaigns[0].Remaining)

	_, body := env.call(t, "POST", "/admin/campaigns/spring/pause", "")
	require.Equal(t, true, body["paused"])
	got = s.until(t, func(l httpapi.AdminCampaignList) bool { return l.Campaigns[0].State == "paused" })
	assert.Nil(t, got.Campaigns[0].DrainETAMS, "no drain estimate while paused")
}

func TestLiveStreamHeartbeats(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		c.StreamInterval = time.Hour
		c.StreamHeartbeat = 20 * time.Millisecond
	}, couponq.Campaign{ID: "spring", Stock: 5})
	s := env.openStream(t)
	s.next(t)
	for range 3 {
		ev, err := readEvent(s.r)
		require.NoError(t, err)
		assert.Equal(t, sseEvent{comment: "heartbeat"}, ev, "nothing new within the interval: only comments")
	}
}

func TestLiveStreamsAreBounded(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) { fastStreams(c); c.MaxStreams = 2 },
		couponq.Campaign{ID: "spring", Stock: 5})
	a, b := env.openStream(t), env.openStream(t)
	a.next(t)
	b.next(t)

	resp, body := env.call(t, "GET", "/admin/live/stream", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "busy", code(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	a.close()
	require.Eventually(t, func() bool {
		resp, err := env.srv.Client().Do(authed(t, "HEAD", env.srv.URL+"/admin/live/stream"))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "a closed stream frees its place")
	b.next(t)
}

// statsCounter counts LineStats calls, and fails them while down is set.
type statsCounter struct {
	catalog.Lines
	calls atomic.Int64
	down  atomic.Bool
}

func (s *statsCounter) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return couponq.LineStats{}, errors.New("redis: connection refused")
	}
	return s.Lines.LineStats(ctx, campaign)
}

func TestLiveStreamsShareOneGatherPerInterval(t *testing.T) {
	const (
		streams  = 24
		events   = 6
		interval = 50 * time.Millisecond
	)
	stats := &statsCounter{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		stats.Lines = c.Campaigns.Lines
		c.Campaigns.Lines = stats
		c.StreamInterval = interval
		c.MaxStreamsPerOperator = -1 // every stream is this test's
	}, couponq.Campaign{ID: "a", Stock: 5}, couponq.Campaign{ID: "b", Stock: 5}, couponq.Campaign{ID: "c", Stock: 5})

	start := time.Now()
	var wg sync.WaitGroup
	for range streams {
		s := env.openStream(t)
		wg.Go(func() {
			for range events {
				l, err := s.list()
				if !assert.NoError(t, err) || !assert.Len(t, l.Campaigns, 3) {
					return
				}
			}
		})
	}
	wg.Wait()
	calls := stats.calls.Load()
	elapsed := time.Since(start)

	gathers := calls / 3
	most := int64(elapsed/interval) + 1
	t.Logf("%d streams × %d events in %v: %d gathers (%d LineStats calls); unshared would be %d",
		streams, events, elapsed.Round(time.Millisecond), gathers, calls, streams*events)
	assert.LessOrEqual(t, gathers, most, "at most one gather starts per interval, whatever the number of streams")
	assert.GreaterOrEqual(t, gathers, int64(events-1), "the gathers are shared, not skipped")
}

func TestLiveStreamWhileTheBackendFails(t *testing.T) {
	stats := &statsCounter{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		stats.Lines = c.Campaigns.Lines
		c.Campaigns.Lines = stats
		fastStreams(c)
	}, couponq.Campaign{ID: "spring", Stock: 5})

	stats.down.Store(true)
	resp, body := env.call(t, "GET", "/admin/live/stream", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "nothing sent yet: an error answer")
	assert.Equal(t, "unavailable", code(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	// The failure is shared for one interval, then the stream opens.
	stats.down.Store(false)
	require.Eventually(t, func() bool {
		resp, err := env.srv.Client().Do(authed(t, "HEAD", env.srv.URL+"/admin/live/stream"))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 5*time.Millisecond)
	s := env.openStream(t)
	s.next(t)
	stats.down.Store(true)
	for {
		ev, err := readEvent(s.r)
		require.NoError(t, err)
		if ev.name == "unavailable" {
			var e httpapi.ErrorResponse
			require.NoError(t, json.Unmarshal([]byte(ev.data), &e))
			assert.Equal(t, "unavailable", e.Error.Code)
			assert.NotContains(t, e.Error.Message, "redis", "backend details stay in the logs")
			break
		}
	}
	stats.down.Store(false)
	for range 100 { // a gather may have failed again before the backend came back
		ev, err := readEvent(s.r)
		require.NoError(t, err)
		if ev.name == "campaigns" {
			var l httpapi.AdminCampaignList
			require.NoError(t, json.Unmarshal([]byte(ev.data), &l))
			assert.Len(t, l.Campaigns, 1, "the stream goes on once the backend is back")
			return
		}
	}
	t.Fatal("no campaigns event after the backend came back")
}

func TestLiveStreamEndsWithTheRequest(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) { fastStreams(c); c.MaxStreams = 1 },
		couponq.Campaign{ID: "spring", Stock: 5})
	s := env.openStream(t)
	s.next(t)
	s.cancel()
	_, err := io.Copy(io.Discard, s.r)
	assert.ErrorIs(t, err, context.Canceled, "the body ends with the request")

	// The handler returned: its one place is free again. (And goleak, in
	// TestMain, finds no goroutine left behind.)
	require.Eventually(t, func() bool {
		resp, err := env.srv.Client().Do(authed(t, "HEAD", env.srv.URL+"/admin/live/stream"))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond)
}

func TestLiveStreamIsAuthorized(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "spring", Stock: 5})
	for _, path := range []string{"/admin/live/stream", "/admin/live", "/admin/live/live.js", "/admin/live/live.css"} {
		resp, body := env.call(t, "GET", path, "", "")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		assert.Equal(t, "unauthorized", code(body), path)
	}
	resp, body := env.call(t, "POST", "/admin/live", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "method_not_allowed", code(body))
}

func TestLivePage(t *testing.T) {
	env := newAdmin(t, nil)
	get := func(path string) (*http.Response, string) {
		resp, err := env.srv.Client().Do(authed(t, "GET", env.srv.URL+path))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		return resp, string(b)
	}
	resp, page := get("/admin/live")
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Contains(t, page, `src="live/live.js"`)
	assert.Contains(t, page, `href="live/live.css"`)
	assert.NotContains(t, page, "://", "no external assets")

	resp, js := get("/admin/live/live.js")
	assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, js, `new EventSource(streamURL)`)
	assert.Contains(t, js, `"live/stream"`)

	resp, _ = get("/admin/live/live.css")
	assert.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	req := authed(t, "GET", env.srv.URL+"/admin/live/live.css")
	req.Header.Set("If-None-Match", etag)
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
}

func TestNewAdminValidatesStreamFields(t *testing.T) {
	for name, change := range map[string]func(*httpapi.AdminConfig){
		"StreamInterval":  func(c *httpapi.AdminConfig) { c.StreamInterval = -time.Second },
		"StreamHeartbeat": func(c *httpapi.AdminConfig) { c.StreamHeartbeat = -time.Second },
		"MaxStreams":      func(c *httpapi.AdminConfig) { c.MaxStreams = -1 },
		"BodyReadTimeout": func(c *httpapi.AdminConfig) { c.BodyReadTimeout = -time.Second },
	} {
		reg, err := memline.NewRegistry()
		require.NoError(t, err)
		cfg := httpapi.AdminConfig{Campaigns: &catalog.Ops{Registry: reg, Lines: memline.NewQueue(nil)}, Authorize: authorize}
		change(&cfg)
		_, err = httpapi.NewAdmin(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
		assert.ErrorContains(t, err, name)
	}
}

// quietStreams sends nothing after the first event, so only the end of the
// request, Close or the server's shutdown ends a stream.
func quietStreams(c *httpapi.AdminConfig) {
	c.StreamInterval = time.Hour
	c.StreamHeartbeat = time.Hour
}

// endsWithin reads the stream to its end, and fails the test unless the
// body ends, cleanly, within d.
func (s *stream) endsWithin(t *testing.T, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, s.r)
		done <- err
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		assert.NoError(t, err, "the body ends as a whole answer does")
	case <-timer.C:
		s.close()
		<-done
		t.Fatalf("the stream is still open %v later", d)
	}
}

func TestLiveStreamEndsWithClose(t *testing.T) {
	env := newAdmin(t, quietStreams, couponq.Campaign{ID: "spring", Stock: 5})
	a, b := env.openStream(t), env.openStream(t)
	a.next(t)
	b.next(t)

	start := time.Now()
	closed := make(chan struct{})
	go func() {
		env.admin.Close()
		close(closed)
	}()
	a.endsWithin(t, time.Second)
	b.endsWithin(t, time.Second)
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case <-closed:
	case <-timer.C:
		t.Fatal("Close did not return once its streams ended")
	}
	t.Logf("two streams ended %v after Close", time.Since(start).Round(time.Millisecond))

	resp, body := env.call(t, "GET", "/admin/live/stream", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no new stream after Close")
	assert.Equal(t, "unavailable", code(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	env.admin.Close() // again: nothing left to end
	assert.Len(t, env.list(t), 1, "the other routes still answer")
}

func TestLiveStreamEndsWithServerShutdown(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		c.StreamInterval = time.Hour
		c.StreamHeartbeat = 20 * time.Millisecond
	}, couponq.Campaign{ID: "spring", Stock: 5})
	// A second server for the same handler: shutting it down ends its
	// streams, not those env.srv serves.
	stopping := httptest.NewUnstartedServer(env.admin)
	stopping.Start()
	t.Cleanup(stopping.Close)
	s := openStreamOn(t, stopping)
	s.next(t)
	other := env.openStream(t)
	other.next(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, stopping.Config.Shutdown(ctx), "Shutdown waited for the stream past its deadline")
	t.Logf("Shutdown returned after %v", time.Since(start).Round(time.Millisecond))
	s.endsWithin(t, time.Second)

	ev, err := readEvent(other.r)
	require.NoError(t, err)
	assert.Equal(t, sseEvent{comment: "heartbeat"}, ev, "the other server's stream goes on")
	env.openStream(t).next(t)
}
