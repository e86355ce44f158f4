package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

// pushService counts the Status calls that reach the Service, by user.
type pushService struct {
	*admission.Service
	mu    sync.Mutex
	users []string
}

func (s *pushService) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	s.mu.Lock()
	s.users = append(s.users, user)
	s.mu.Unlock()
	return s.Service.Status(ctx, campaign, user)
}

// take returns the users read since the last take.
func (s *pushService) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users
	s.users = nil
	return u
}

// pushStats counts LineStats calls.
type pushStats struct {
	couponq.LineStatser
	calls atomic.Int64
}

func (s *pushStats) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	s.calls.Add(1)
	return s.LineStatser.LineStats(ctx, campaign)
}

type pushEnv struct {
	cat   *memline.Registry
	h     *httpapi.Handler
	q     *memline.Queue
	svc   *pushService
	stats *pushStats
	srv   *httptest.Server
}

// newPush serves the public handler with status events on the in-memory
// queue, polling every 20 ms unless change says otherwise.
func newPush(t *testing.T, change func(*httpapi.Config), cs ...couponq.Campaign) *pushEnv {
	t.Helper()
	cat, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	inner, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	require.NoError(t, err)
	e := &pushEnv{cat: cat, q: q, svc: &pushService{Service: inner}, stats: &pushStats{LineStatser: q}}
	cfg := httpapi.Config{Service: e.svc, User: httpapi.HeaderUser("X-User"), BasePath: "/api",
		Stats: e.stats, Catalog: cat, StreamPoll: 20 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	e.h, err = httpapi.New(cfg)
	require.NoError(t, err)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.h.Close) // runs first: ends the streams the server waits for
	return e
}

func (e *pushEnv) admit(t *testing.T, campaign string, users ...string) {
	t.Helper()
	for _, u := range users {
		_, err := e.svc.Admit(context.Background(), couponq.Request{Campaign: campaign, User: u})
		require.NoError(t, err)
	}
}

// pushEvent is one Server-Sent Events block.
type pushEvent struct {
	name, data, id, retry string
	comments              []string
}

func parsePushBlock(block string) pushEvent {
	var ev pushEvent
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			ev.comments = append(ev.comments, strings.TrimSpace(l[1:]))
		case strings.HasPrefix(l, "event: "):
			ev.name = l[len("event: "):]
		case strings.HasPrefix(l, "data: "):
			ev.data = l[len("data: "):]
		case strings.HasPrefix(l, "id: "):
			ev.id = l[len("id: "):]
		case strings.HasPrefix(l, "retry: "):
			ev.retry = l[len("retry: "):]
		}
	}
	return ev
}

func (ev pushEvent) status(t *testing.T) httpapi.StatusResponse {
	t.Helper()
	require.Equal(t, "status", ev.name, "event %+v", ev)
	var st httpapi.StatusResponse
	require.NoError(t, json.Unmarshal([]byte(ev.data), &st))
	return st
}

// pushClient reads one stream over HTTP.
type pushClient struct {
	resp   *http.Response
	events chan pushEvent // closed at the end of the stream
	cancel context.CancelFunc
}

func (e *pushEnv) request(t *testing.T, campaign, user string, header ...string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/campaigns/"+campaign+"/entries/me/events", nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	return resp, cancel
}

func (e *pushEnv) open(t *testing.T, campaign, user string) *pushClient {
	t.Helper()
	resp, cancel := e.request(t, campaign, user)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c := &pushClient{resp: resp, events: make(chan pushEvent, 64), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.events)
		r := bufio.NewReader(resp.Body)
		var block strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\n" {
				c.events <- parsePushBlock(strings.TrimSuffix(block.String(), "\n"))
				block.Reset()
				continue
			}
			block.WriteString(line)
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range c.events {
		}
		<-done
		resp.Body.Close()
	})
	return c
}

// next returns the next event or comment block.
func (c *pushClient) next(t *testing.T) pushEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		require.True(t, ok, "the stream ended")
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return pushEvent{}
}

// nextStatus returns the next status event, skipping comments.
func (c *pushClient) nextStatus(t *testing.T) httpapi.StatusResponse {
	t.Helper()
	for {
		if ev := c.next(t); ev.name != "" {
			return ev.status(t)
		}
	}
}

// ends checks that the stream ends, after comment blocks only, and returns
// their comments.
func (c *pushClient) ends(t *testing.T) []string {
	t.Helper()
	var comments []string
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return comments
			}
			require.Empty(t, ev.name, "an event after the end: %+v", ev)
			comments = append(comments, ev.comments...)
		case <-time.After(5 * time.Second):
			t.Fatal("the stream did not end within 5s")
		}
	}
}

func lease(t *testing.T, q *memline.Queue, campaign string, n int) []couponq.Entry {
	t.Helper()
	es, err := q.Lease(context.Background(), campaign, n, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, n)
	return es
}

func issue(t *testing.T, q *memline.Queue, es ...couponq.Entry) {
	t.Helper()
	for _, e := range es {
		require.NoError(t, q.Record(context.Background(), e.Campaign,
			couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "iss-" + e.User}))
	}
}

func TestStatusEventsFollowTheLine(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 10, BatchSize: 2, Interval: time.Second})
	e.admit(t, "drop", "u1", "u2", "u3", "u4", "u5")
	c := e.open(t, "drop", "u4")
	assert.Equal(t, "text/event-stream", c.resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", c.resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no", c.resp.Header.Get("X-Accel-Buffering"))

	first := c.next(t)
	assert.NotEmpty(t, first.retry, "retry: comes with the first event")
	assert.Empty(t, first.id)
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "waiting", Position: 4, EstimatedWaitMS: 2000},
		first.status(t))

	es := lease(t, e.q, "drop", 2) // u1, u2 leave the line: u4 moves up
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "waiting", Position: 2, EstimatedWaitMS: 1000},
		c.nextStatus(t))
	issue(t, e.q, es...)
	es = lease(t, e.q, "drop", 2) // u3, u4 in flight
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "in_flight"}, c.nextStatus(t))
	issue(t, e.q, es...)
	final := c.next(t)
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "issued", IssuanceID: "iss-u4"}, final.status(t))
	assert.Equal(t, "final-4", final.id, "the final event carries an id, so a reconnecting EventSource hears 204")
	c.ends(t)

	// An EventSource reconnecting with that id is told to stop; a fresh one
	// hears the outcome once.
	resp, cancel := e.request(t, "drop", "u4", "Last-Event-ID", "final-4")
	defer cancel()
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	again := e.open(t, "drop", "u4")
	assert.Equal(t, "issued", again.nextStatus(t).State)
	again.ends(t)
}

// The last in line leaves it: nobody waits (LineStats.Head is 0), so the
// stream asks the Service.
func TestStatusEventsLastInLine(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	c := e.open(t, "drop", "u1")
	assert.Equal(t, int64(1), c.nextStatus(t).Position)
	es := lease(t, e.q, "drop", 1)
	assert.Equal(t, "in_flight", c.nextStatus(t).State)
	require.NoError(t, e.q.Record(context.Background(), "drop",
		couponq.Result{Entry: es[0], State: couponq.StateRejected, Reason: couponq.CodeDuplicate}))
	st := c.nextStatus(t)
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 1, State: "rejected", Reason: "duplicate"}, st)
	c.ends(t)
}

func TestStatusEventsBeyondStock(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 3, BatchSize: 1, Interval: time.Second})
	e.admit(t, "drop", "u1", "u2", "u3", "u4")
	c := e.open(t, "drop", "u4")
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "waiting", Position: 4, BeyondStock: true},
		c.nextStatus(t))
	es := lease(t, e.q, "drop", 2) // two in flight: one unit remains for u3 and u4
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "waiting", Position: 2, BeyondStock: true},
		c.nextStatus(t))
	// One of them fails: its unit is free again and u4's position may get it.
	require.NoError(t, e.q.Record(context.Background(), "drop",
		couponq.Result{Entry: es[0], State: couponq.StateRejected, Reason: couponq.CodeFailed}))
	assert.Equal(t, httpapi.StatusResponse{Campaign: "drop", Entry: 4, State: "waiting", Position: 2, EstimatedWaitMS: 2000},
		c.nextStatus(t))
	// It matches what GET .../entries/me says.
	st, err := e.svc.Status(context.Background(), "drop", "u4")
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Position)
	assert.False(t, st.BeyondStock)
	assert.Equal(t, 2*time.Second, st.EstimatedWait)
}

func TestStatusEventsSoldOutWithoutReadingEachUser(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 1})
	e.admit(t, "drop", "u1", "u2", "u3")
	c2, c3 := e.open(t, "drop", "u2"), e.open(t, "drop", "u3")
	assert.Equal(t, "waiting", c2.nextStatus(t).State)
	assert.Equal(t, "waiting", c3.nextStatus(t).State)
	assert.ElementsMatch(t, []string{"u2", "u3"}, e.svc.take(), "one Status each at connect")

	require.NoError(t, e.q.MarkSoldOut(context.Background(), "drop"))
	for _, c := range []*pushClient{c2, c3} {
		st := c.nextStatus(t)
		assert.Equal(t, "rejected", st.State)
		assert.Equal(t, "sold_out", st.Reason)
		c.ends(t)
	}
	assert.Empty(t, e.svc.take(), "a sold-out mark decides waiting entries without a read per user")
}

func TestStatusEventsOutOfTurnAsksTheService(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1", "u2", "u3")
	c := e.open(t, "drop", "u3")
	assert.Equal(t, int64(3), c.nextStatus(t).Position)
	es := lease(t, e.q, "drop", 2)
	assert.Equal(t, int64(1), c.nextStatus(t).Position)
	// u1 goes back to the head while u2 is out: entries from the head up are
	// no longer all waiting, so the derived position is an upper bound...
	require.NoError(t, e.q.Release(context.Background(), "drop", es[:1]))
	assert.Equal(t, int64(3), c.nextStatus(t).Position)
	e.svc.take()
	// ...and a sold-out mark no longer decides u3 without asking.
	require.NoError(t, e.q.MarkSoldOut(context.Background(), "drop"))
	st := c.nextStatus(t)
	assert.Equal(t, "rejected", st.State)
	assert.Contains(t, e.svc.take(), "u3")
	c.ends(t)
}

func TestStatusEventsAlreadyFinal(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	issue(t, e.q, lease(t, e.q, "drop", 1)...)
	c := e.open(t, "drop", "u1")
	ev := c.next(t)
	assert.NotEmpty(t, ev.retry)
	assert.Equal(t, "issued", ev.status(t).State)
	c.ends(t)
	assert.Zero(t, e.stats.calls.Load(), "no poller for a stream that ends at once")
}

func TestStatusEventsHeartbeat(t *testing.T) {
	e := newPush(t, func(c *httpapi.Config) {
		c.HeartbeatInterval = 30 * time.Millisecond
		c.StreamPoll = time.Hour
	}, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	c := e.open(t, "drop", "u1")
	c.nextStatus(t)
	for range 2 {
		ev := c.next(t)
		assert.Empty(t, ev.name)
		assert.Equal(t, []string{"hb"}, ev.comments)
	}
}

func TestStatusEventsAreBounded(t *testing.T) {
	e := newPush(t, func(c *httpapi.Config) { c.StreamMax = 2; c.RetryAfter = 3 * time.Second },
		couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1", "u2")
	c1 := e.open(t, "drop", "u1")
	c1.nextStatus(t)
	c1b := e.open(t, "drop", "u1") // a second tab counts too
	c1b.nextStatus(t)

	resp, cancel := e.request(t, "drop", "u2")
	defer cancel()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "busy", code(body))
	assert.Equal(t, "3", resp.Header.Get("Retry-After"))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	c1b.cancel() // a slot frees when its client leaves
	c1b.ends(t)
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("HEAD", e.srv.URL+"/api/campaigns/drop/entries/me/events", nil)
		req.Header.Set("X-User", "u2")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond)
}

func TestStatusEventsCloseEndsStreams(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "a", Stock: 5}, couponq.Campaign{ID: "b", Stock: 5})
	e.admit(t, "a", "u1", "u2")
	e.admit(t, "b", "u1")
	var cs []*pushClient
	for _, p := range [][2]string{{"a", "u1"}, {"a", "u2"}, {"b", "u1"}} {
		c := e.open(t, p[0], p[1])
		c.nextStatus(t)
		cs = append(cs, c)
	}
	closed := make(chan struct{})
	go func() { e.h.Close(); close(closed) }()
	for _, c := range cs {
		assert.Equal(t, []string{"closing"}, c.ends(t), "a final comment, then the end")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	e.h.Close() // twice is fine

	resp, cancel := e.request(t, "a", "u1")
	defer cancel()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", code(body))
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	// The other routes still answer.
	r, out := do(t, e.srv, "GET", "/api/campaigns/a/entries/me", "u1", "")
	assert.Equal(t, http.StatusOK, r.StatusCode)
	assert.Equal(t, "waiting", out["state"])
}

func TestStatusEventsEndOnServerShutdown(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	c := e.open(t, "drop", "u1")
	c.nextStatus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.srv.Config.Shutdown(ctx), "Shutdown does not wait out the stream")
	assert.Equal(t, []string{"closing"}, c.ends(t))
}

func TestStatusEventsRefusals(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	for _, tc := range []struct {
		path, user string
		status     int
		code       string
	}{
		{"/api/campaigns/drop/entries/me/events", "nobody", http.StatusNotFound, "not_found"},
		{"/api/campaigns/nope/entries/me/events", "u1", http.StatusNotFound, "unknown_campaign"},
		{"/api/campaigns/drop/entries/me/events", "", http.StatusUnauthorized, "unauthenticated"},
		{"/api/campaigns/drop/entries/me/events", "bad user", http.StatusBadRequest, "invalid_id"},
	} {
		resp, body := do(t, e.srv, "GET", tc.path, tc.user, "")
		assert.Equal(t, tc.status, resp.StatusCode, tc.path+" "+tc.user)
		assert.Equal(t, tc.code, code(body), tc.path+" "+tc.user)
	}
	resp, body := do(t, e.srv, "POST", "/api/campaigns/drop/entries/me/events", "u1", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "method_not_allowed", code(body))
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}

func TestStatusEventsNeedStatsAndCatalog(t *testing.T) {
	for _, change := range []func(*httpapi.Config){
		func(c *httpapi.Config) { c.Stats = nil },
		func(c *httpapi.Config) { c.Catalog = nil },
	} {
		e := newPush(t, change, couponq.Campaign{ID: "drop", Stock: 5})
		e.admit(t, "drop", "u1")
		resp, body := do(t, e.srv, "GET", "/api/campaigns/drop/entries/me/events", "u1", "")
		assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
		assert.Equal(t, "not_implemented", code(body))
		e.h.Close() // harmless without streams
	}
}

func TestStatusEventsConfigValidated(t *testing.T) {
	svc, _ := memService(t)
	for _, change := range []func(*httpapi.Config){
		func(c *httpapi.Config) { c.StreamPoll = -1 },
		func(c *httpapi.Config) { c.HeartbeatInterval = -1 },
		func(c *httpapi.Config) { c.StreamMax = -1 },
		func(c *httpapi.Config) { c.StreamWriteTimeout = -1 },
		func(c *httpapi.Config) { c.BodyReadTimeout = -1 },
	} {
		cfg := httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User")}
		change(&cfg)
		_, err := httpapi.New(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	}
}

func TestStatusEventsWhenTheCampaignIsDeleted(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1", "u2")
	es := lease(t, e.q, "drop", 1)
	c1, c2 := e.open(t, "drop", "u1"), e.open(t, "drop", "u2")
	assert.Equal(t, "in_flight", c1.nextStatus(t).State)
	assert.Equal(t, "waiting", c2.nextStatus(t).State)
	issue(t, e.q, es...)
	assert.Equal(t, "issued", c1.nextStatus(t).State)
	c1.ends(t)
	// Deleted while u2 waits: the stream asks the Service, which answers
	// unknown_campaign, and ends with an "ended" event.
	require.NoError(t, e.cat.Delete(context.Background(), "drop", 1))
	ev := c2.next(t)
	assert.Equal(t, "ended", ev.name)
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(ev.data), &body))
	assert.Equal(t, "unknown_campaign", code(body))
	c2.ends(t)
	// u1's outcome is kept: a new stream still hears it.
	again := e.open(t, "drop", "u1")
	assert.Equal(t, "issued", again.nextStatus(t).State)
	again.ends(t)
}

// pushWriter is a ResponseWriter for many streams served without sockets:
// it parses the events written to it.
type pushWriter struct {
	header http.Header
	mu     sync.Mutex
	code   int
	buf    bytes.Buffer
	events []pushEvent
}

func newPushWriter() *pushWriter { return &pushWriter{header: http.Header{}} }

func (w *pushWriter) Header() http.Header { return w.header }

func (w *pushWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.code == 0 {
		w.code = code
	}
}

func (w *pushWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.buf.Write(b)
	for {
		block, rest, ok := strings.Cut(w.buf.String(), "\n\n")
		if !ok {
			break
		}
		w.events = append(w.events, parsePushBlock(block))
		w.buf.Reset()
		w.buf.WriteString(rest)
	}
	return len(b), nil
}

func (w *pushWriter) Flush()                           {}
func (w *pushWriter) SetWriteDeadline(time.Time) error { return nil }

// statuses returns the status events so far.
func (w *pushWriter) statuses(t *testing.T) []httpapi.StatusResponse {
	w.mu.Lock()
	evs := slices.Clone(w.events)
	w.mu.Unlock()
	var out []httpapi.StatusResponse
	for _, ev := range evs {
		if ev.name != "" {
			out = append(out, ev.status(t))
		}
	}
	return out
}

func (w *pushWriter) last(t *testing.T) (httpapi.StatusResponse, bool) {
	sts := w.statuses(t)
	if len(sts) == 0 {
		return httpapi.StatusResponse{}, false
	}
	return sts[len(sts)-1], true
}

func TestStatusEventsOneLineReadPerTickForManyStreams(t *testing.T) {
	const users, poll = 1000, 25 * time.Millisecond
	e := newPush(t, func(c *httpapi.Config) { c.StreamPoll = poll; c.StreamMaxPerAddr = -1 }, // one test client
		couponq.Campaign{ID: "drop", Stock: 10_000, BatchSize: 100, Interval: time.Second})
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("u%04d", i+1)
	}
	e.admit(t, "drop", names...)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws := make([]*pushWriter, users)
	for i, u := range names {
		ws[i] = newPushWriter()
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/campaigns/drop/entries/me/events", nil)
		req.Header.Set("X-User", u)
		wg.Go(func() { e.h.ServeHTTP(ws[i], req) })
	}
	defer func() { cancel(); wg.Wait() }()
	require.Eventually(t, func() bool {
		for _, w := range ws {
			if _, ok := w.last(t); !ok {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every stream hears its status at connect")
	assert.Len(t, e.svc.take(), users, "one Status per stream at connect")

	// The line stands still: the streams cost one LineStats per tick, and
	// not one Status.
	e.stats.calls.Store(0)
	start := time.Now()
	time.Sleep(10 * poll)
	calls, ticks := e.stats.calls.Load(), int64(time.Since(start)/poll)+2 // a tick that began before start may read after it
	assert.LessOrEqual(t, calls, ticks, "at most one LineStats per tick for %d streams", users)
	assert.GreaterOrEqual(t, calls, int64(3))
	assert.Empty(t, e.svc.take(), "no user read while nobody left the line")

	// 100 leave the line: only they are read (each at most once a tick),
	// and the others move up without a read.
	start, _ = time.Now(), e.stats.calls.Swap(0)
	es := lease(t, e.q, "drop", 100)
	left := map[string]bool{}
	for _, en := range es {
		left[en.User] = true
	}
	require.Eventually(t, func() bool {
		st, _ := ws[users-1].last(t)
		return st.Position == users-100
	}, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		st, _ := ws[0].last(t)
		return st.State == "in_flight"
	}, 5*time.Second, 5*time.Millisecond)
	issue(t, e.q, es...)
	require.Eventually(t, func() bool {
		for i := range 100 {
			if st, _ := ws[i].last(t); st.State != "issued" {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
	time.Sleep(5 * poll) // the final events were the last reads
	calls, ticks = e.stats.calls.Load(), int64(time.Since(start)/poll)+2
	assert.LessOrEqual(t, calls, ticks)
	reads := e.svc.take()
	perUser := map[string]int{}
	for _, u := range reads {
		assert.True(t, left[u], "user %s was read but never left the line", u)
		perUser[u]++
	}
	for u, n := range perUser {
		assert.LessOrEqual(t, int64(n), ticks, "user %s read more often than once a tick", u)
	}
	assert.Len(t, perUser, 100)
	for i := 100; i < users; i++ {
		st, _ := ws[i].last(t)
		require.Equal(t, int64(i+1-100), st.Position, names[i])
	}
}

// A poller stops when its last stream leaves, and a campaign nobody watches
// is not read.
func TestStatusEventsPollerStopsWithItsLastStream(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	c := e.open(t, "drop", "u1")
	c.nextStatus(t)
	require.Eventually(t, func() bool { return e.stats.calls.Load() > 0 }, 5*time.Second, 5*time.Millisecond)
	c.cancel()
	c.ends(t)
	time.Sleep(50 * time.Millisecond) // a tick under way finishes
	n := e.stats.calls.Load()
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, n, e.stats.calls.Load())
}

func TestStatusEventsHead(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	req, err := http.NewRequest("HEAD", e.srv.URL+"/api/campaigns/drop/entries/me/events", nil)
	require.NoError(t, err)
	req.Header.Set("X-User", "u1")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Empty(t, b)
}
