package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/node"
)

// letIn is an AdminConfig.Authorize for tests: the test is the operator.
func letIn(*http.Request) error { return nil }

// served is a node's public handler (under /api) and admin handler (under
// /admin) on one mux, served by a real http.Server on 127.0.0.1.
type served struct {
	srv    *http.Server
	url    string
	client *http.Client
	serve  chan error // Serve's result
}

func serve(t *testing.T, n *node.Node) *served {
	t.Helper()
	public, err := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User"), BasePath: "/api"})
	require.NoError(t, err)
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: letIn, BasePath: "/admin"})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/", public)
	mux.Handle("/admin/", admin)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &served{
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		url:    "http://" + ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{}},
		serve:  make(chan error, 1),
	}
	go func() { s.serve <- s.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.srv.Close() // if the test did not shut it down
		<-s.serve
		s.client.CloseIdleConnections()
	})
	return s
}

// stream is an open Server-Sent Events response; ended is closed, with err
// set, once its body has been read to the end.
type stream struct {
	ended chan struct{}
	err   error
}

// open starts a GET of an event stream and returns once its first line has
// arrived, so the stream is being served.
func (s *served) open(t *testing.T, path, user string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	res, err := s.client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, path)
	require.Equal(t, "text/event-stream", strings.Split(res.Header.Get("Content-Type"), ";")[0])
	body := bufio.NewReader(res.Body)
	_, err = body.ReadString('\n')
	require.NoError(t, err, "the stream's first line")
	st := &stream{ended: make(chan struct{})}
	go func() {
		defer close(st.ended)
		defer res.Body.Close()
		_, st.err = io.Copy(io.Discard, body)
	}()
	return st
}

// requireEnds fails unless the stream's body ends cleanly within d.
func (st *stream) requireEnds(t *testing.T, d time.Duration, name string) {
	t.Helper()
	select {
	case <-st.ended:
		assert.NoError(t, st.err, "%s: the stream ends with EOF", name)
	case <-time.After(d):
		t.Fatalf("%s: the stream is still open after %s", name, d)
	}
}

// waitingUser returns a node with a paused campaign "held" in which user
// "ann" waits: her status stream stays open.
func waitingUser(t *testing.T) *node.Node {
	t.Helper()
	n := startNode(t, node.Config{})
	createCampaign(t, n, couponq.Campaign{ID: "held", Stock: 10, Paused: true})
	_, err := n.Admit(t.Context(), couponq.Request{Campaign: "held", User: "ann"})
	require.NoError(t, err)
	return n
}

// Shutdown of a server with an open public status stream and an open
// admin live stream ends both and returns well within a 1 s deadline.
func TestShutdownEndsStreams(t *testing.T) {
	s := serve(t, waitingUser(t))
	status := s.open(t, "/api/campaigns/held/entries/me/events", "ann")
	live := s.open(t, "/admin/live/stream", "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, s.srv.Shutdown(ctx), "Shutdown waits for no stream")
	assert.Less(t, time.Since(start), time.Second)
	assert.ErrorIs(t, <-s.serve, http.ErrServerClosed)
	s.serve <- http.ErrServerClosed // for the cleanup
	status.requireEnds(t, time.Second, "status stream")
	live.requireEnds(t, time.Second, "admin live stream")
}

// Stopping the node ends every stream its handlers serve, while the server
// serving them goes on.
func TestStopEndsStreams(t *testing.T) {
	n := waitingUser(t)
	s := serve(t, n)
	status := s.open(t, "/api/campaigns/held/entries/me/events", "ann")
	live := s.open(t, "/admin/live/stream", "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, n.Stop(ctx))
	assert.Less(t, time.Since(start), time.Second, "Stop returns promptly")
	status.requireEnds(t, time.Second, "status stream")
	live.requireEnds(t, time.Second, "admin live stream")

	res, err := s.client.Get(s.url + "/admin/live/stream")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "a stopped node opens no more streams")
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call serves one request through h and returns the answer.
func call(t *testing.T, h http.Handler, method, path, body string) (int, apiError) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	var e apiError
	if rr.Code >= 400 {
		require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &e), rr.Body.String())
	}
	return rr.Code, e
}

const createV1 = `{"id":"v1","stock":10,"mode":"v1-validate-first"}`

// A node whose Backend has no Tally refuses V1 campaigns when they are
// created, through the admin API and through the node, and creates
// nothing; with a Tally the same campaign is created and admits.
func TestV1RefusedWithoutTally(t *testing.T) {
	b := memory.New()
	b.Tally = nil
	n := startNode(t, node.Config{Backend: b, Store: memory.NewStore()})
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: letIn, BasePath: "/admin"})
	require.NoError(t, err)

	code, e := call(t, admin, http.MethodPost, "/admin/campaigns", createV1)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, couponq.CodeUnsupported, e.Error.Code)
	assert.Contains(t, e.Error.Message, "Tally")
	code, e = call(t, admin, http.MethodGet, "/admin/campaigns/v1", "")
	assert.Equal(t, http.StatusNotFound, code, "nothing was created")
	assert.Equal(t, "unknown_campaign", e.Error.Code)

	_, err = n.CreateCampaign(t.Context(), couponq.Campaign{ID: "v1", Stock: 10, Mode: couponq.ValidateFirst})
	assert.ErrorIs(t, err, couponq.ErrUnsupported)
	_, err = n.Campaign(t.Context(), "v1")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	v2 := createCampaign(t, n, couponq.Campaign{ID: "v2", Stock: 10})
	v2.Mode = couponq.ValidateFirst
	_, err = n.UpdateCampaign(t.Context(), v2)
	assert.ErrorIs(t, err, couponq.ErrUnsupported, "nor is a campaign turned into V1")

	full := startNode(t, node.Config{})
	admin, err = full.AdminHandler(node.AdminConfig{Authorize: letIn, BasePath: "/admin"})
	require.NoError(t, err)
	code, e = call(t, admin, http.MethodPost, "/admin/campaigns", createV1)
	require.Equal(t, http.StatusCreated, code, "%+v", e)
	tk, err := full.Admit(t.Context(), couponq.Request{Campaign: "v1", User: "ann"})
	require.NoError(t, err)
	assert.Equal(t, couponq.StateInFlight, tk.State, "V1 hands the entry downstream in the request")
	assert.Equal(t, couponq.StateIssued, waitTerminal(t, full, "v1", "ann").State)
}

// V1 admission hands entries to the Transport in the request: an API-only
// node on the in-process transport, where no issuer listens, refuses V1.
func TestV1RefusedWithoutIssuer(t *testing.T) {
	api, err := node.New(node.Config{Roles: node.RoleAPI, Backend: memory.New()})
	require.NoError(t, err)
	_, err = api.CreateCampaign(t.Context(), couponq.Campaign{ID: "v1", Stock: 1, Mode: couponq.ValidateFirst})
	assert.ErrorIs(t, err, couponq.ErrUnsupported)
	_, err = api.CreateCampaign(t.Context(), couponq.Campaign{ID: "v2", Stock: 1})
	assert.NoError(t, err)
}

// lineQueue is what the node needs of a Queue; a struct embedding it hides
// the Queue's other methods (Seat).
type lineQueue interface {
	couponq.Queue
	couponq.Agenda
	couponq.LineStatser
	couponq.Reopener
	couponq.Archiver
}

// A pre-queue on a Queue that cannot seat one is refused at create.
func TestPreQueueRefusedWithoutSeater(t *testing.T) {
	b := memory.New()
	b.Queue = struct{ lineQueue }{b.Queue.(lineQueue)}
	n, err := node.New(node.Config{Backend: b, Store: memory.NewStore()})
	require.NoError(t, err)
	opens := time.Now().Add(time.Hour)
	_, err = n.CreateCampaign(t.Context(), couponq.Campaign{ID: "early", Stock: 1, OpensAt: opens, PreQueue: time.Minute})
	assert.ErrorIs(t, err, couponq.ErrUnsupported)
	_, err = n.CreateCampaign(t.Context(), couponq.Campaign{ID: "early", Stock: 1, OpensAt: opens})
	assert.NoError(t, err, "without a pre-queue it is served")

	full, err := node.New(node.Config{})
	require.NoError(t, err)
	_, err = full.CreateCampaign(t.Context(), couponq.Campaign{ID: "early", Stock: 1, OpensAt: opens, PreQueue: time.Minute})
	assert.NoError(t, err)
}

// Errors of the host's User function answer 401.
func TestHandlerUnauthenticated(t *testing.T) {
	n := startNode(t, node.Config{})
	createCampaign(t, n, couponq.Campaign{ID: "sale", Stock: 1})
	h, err := n.Handler(node.HandlerConfig{
		User: func(*http.Request) (string, error) { return "", node.ErrUnauthenticated },
	})
	require.NoError(t, err)
	code, e := call(t, h, http.MethodPost, "/campaigns/sale/entries", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "unauthenticated", e.Error.Code)

	admin, err := n.AdminHandler(node.AdminConfig{Authorize: func(*http.Request) error { return errors.New("not an operator") }})
	require.NoError(t, err)
	code, _ = call(t, admin, http.MethodGet, "/campaigns", "")
	assert.Equal(t, http.StatusForbidden, code)
	_, err = n.AdminHandler(node.AdminConfig{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "Authorize is required")
}

// The stream caps of HandlerConfig and AdminConfig reach the handlers:
// past them a stream is answered 429 too_many_streams with Retry-After.
func TestStreamCaps(t *testing.T) {
	n := waitingUser(t)
	_, err := n.Admit(t.Context(), couponq.Request{Campaign: "held", User: "bo"})
	require.NoError(t, err)
	header := func(name string) func(*http.Request) string {
		return func(r *http.Request) string { return r.Header.Get(name) }
	}
	public, err := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User"), BasePath: "/api",
		MaxStreamsPerUser: 1, MaxStreamsPerAddr: 1, ClientAddr: header("X-Client")})
	require.NoError(t, err)
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: letIn, BasePath: "/admin",
		MaxStreamsPerOperator: 1, Operator: header("X-Operator")})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/", public)
	mux.Handle("/admin/", admin)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the streams' own cleanups end them

	get := func(path string, header ...string) int {
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		if res.StatusCode == http.StatusOK {
			t.Cleanup(func() { cancel(); _ = res.Body.Close() })
			return res.StatusCode
		}
		defer cancel()
		defer res.Body.Close()
		var e apiError
		require.NoError(t, json.NewDecoder(res.Body).Decode(&e))
		assert.Equal(t, "too_many_streams", e.Error.Code)
		assert.NotEmpty(t, res.Header.Get("Retry-After"))
		return res.StatusCode
	}
	events := "/api/campaigns/held/entries/me/events"
	assert.Equal(t, http.StatusOK, get(events, "X-User", "ann", "X-Client", "a"))
	assert.Equal(t, http.StatusTooManyRequests, get(events, "X-User", "ann", "X-Client", "b"), "per user")
	assert.Equal(t, http.StatusTooManyRequests, get(events, "X-User", "bo", "X-Client", "a"), "per address")
	assert.Equal(t, http.StatusOK, get(events, "X-User", "bo", "X-Client", "b"))
	assert.Equal(t, http.StatusOK, get("/admin/live/stream", "X-Operator", "ann"))
	assert.Equal(t, http.StatusTooManyRequests, get("/admin/live/stream", "X-Operator", "ann"), "per operator")
	assert.Equal(t, http.StatusOK, get("/admin/live/stream", "X-Operator", "bo"))
}
