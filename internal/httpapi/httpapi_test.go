package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

func newServer(t *testing.T, svc httpapi.Service) *httptest.Server {
	t.Helper()
	h, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), BasePath: "/api"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func memService(t *testing.T, cs ...couponq.Campaign) (*admission.Service, *memline.Queue) {
	cat, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	require.NoError(t, err)
	return svc, q
}

func do(t *testing.T, srv *httptest.Server, method, path, user, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return resp, out
}

func code(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestAdmitAndStatus(t *testing.T) {
	svc, q := memService(t, couponq.Campaign{ID: "drop", Stock: 1, BatchSize: 10, Interval: time.Second})
	srv := newServer(t, svc)

	resp, body := do(t, srv, "POST", "/api/campaigns/drop/entries", "alice", `{"request_id":"r-1"}`)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, float64(1), body["entry"])
	assert.Equal(t, float64(1), body["position"])
	assert.Equal(t, float64(1000), body["estimated_wait_ms"])
	assert.Equal(t, "waiting", body["state"])
	assert.Equal(t, "/api/campaigns/drop/entries/me", body["status_url"])
	assert.Equal(t, "/api/campaigns/drop/entries/me", resp.Header.Get("Location"))

	resp, body = do(t, srv, "POST", "/api/campaigns/drop/entries", "bob", "")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "an empty body is fine")
	assert.Equal(t, float64(2), body["entry"])
	resp, body = do(t, srv, "POST", "/api/campaigns/drop/entries", "alice", "")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "asking again while waiting is idempotent")
	assert.Equal(t, true, body["repeat"])
	assert.Equal(t, float64(1), body["entry"])

	resp, body = do(t, srv, "GET", "/api/campaigns/drop/entries/me", "bob", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "waiting", body["state"])
	assert.Equal(t, float64(2), body["position"])

	// Decide both, then ask again.
	ctx := context.Background()
	got, err := q.Lease(ctx, "drop", 2, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, "drop",
		couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "iss-a"},
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	require.NoError(t, q.MarkSoldOut(ctx, "drop"))

	resp, body = do(t, srv, "GET", "/api/campaigns/drop/entries/me", "alice", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "issued", body["state"])
	assert.Equal(t, "iss-a", body["issuance_id"])
	resp, body = do(t, srv, "POST", "/api/campaigns/drop/entries", "alice", "")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "duplicate", code(body))
	assert.NotNil(t, body["ticket"], "the earlier ticket comes with the 409")
	resp, body = do(t, srv, "POST", "/api/campaigns/drop/entries", "bob", "")
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	assert.Equal(t, "sold_out", code(body))
	resp, body = do(t, srv, "POST", "/api/campaigns/drop/entries", "carol", "")
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	assert.Equal(t, "sold_out", code(body))
	assert.Nil(t, body["ticket"])
}

func TestBadRequests(t *testing.T) {
	svc, q := memService(t, couponq.Campaign{ID: "drop", Stock: 5})
	srv := newServer(t, svc)
	for _, tc := range []struct {
		name, method, path, user, body string
		status                         int
		code                           string
	}{
		{"no user", "POST", "/api/campaigns/drop/entries", "", "", 401, "unauthenticated"},
		{"bad user", "POST", "/api/campaigns/drop/entries", "a{b}", "", 400, "invalid_id"},
		{"bad campaign", "POST", "/api/campaigns/dr%20op/entries", "u", "", 400, "invalid_id"},
		{"unknown campaign", "POST", "/api/campaigns/nope/entries", "u", "", 404, "unknown_campaign"},
		{"bad json", "POST", "/api/campaigns/drop/entries", "u", "{", 400, "bad_request"},
		{"user in body is refused", "POST", "/api/campaigns/drop/entries", "u", `{"user":"someone-else"}`, 400, "bad_request"},
		{"bad request id", "POST", "/api/campaigns/drop/entries", "u", `{"request_id":"a b"}`, 400, "invalid_id"},
		{"huge body", "POST", "/api/campaigns/drop/entries", "u", `{"request_id":"` + strings.Repeat("x", 10000) + `"}`, 413, "body_too_large"},
		{"no status", "GET", "/api/campaigns/drop/entries/me", "ghost", "", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, tc.method, tc.path, tc.user, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.code, code(body))
		})
	}
	assert.Equal(t, memline.Stats{}, q.Stats("drop"), "no refused request wrote anything")
}

type failing struct{ err error }

func (f failing) Admit(context.Context, couponq.Request) (couponq.Ticket, error) {
	return couponq.Ticket{}, f.err
}
func (f failing) Status(context.Context, string, string) (couponq.Status, error) {
	return couponq.Status{}, f.err
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: redis: connection refused", couponq.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("%w: lock", couponq.ErrBusy), 503, "busy"},
		{couponq.ErrNotOpen, 403, "not_open"},
		{couponq.ErrClosed, 403, "closed"},
		{context.DeadlineExceeded, 503, "unavailable"},
		{errors.New("surprise"), 500, "internal"},
	} {
		srv := newServer(t, failing{tc.err})
		resp, body := do(t, srv, "POST", "/api/campaigns/c/entries", "u", "")
		assert.Equal(t, tc.status, resp.StatusCode, "%v", tc.err)
		assert.Equal(t, tc.code, code(body))
		if tc.status == 503 {
			assert.Equal(t, "1", resp.Header.Get("Retry-After"))
			msg := body["error"].(map[string]any)["message"].(string)
			assert.NotContains(t, msg, "redis", "backend details stay in the logs")
		}
	}
}

func TestNewValidates(t *testing.T) {
	_, err := httpapi.New(httpapi.Config{})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
	_, err = httpapi.New(httpapi.Config{Service: failing{}, User: httpapi.HeaderUser("X"), BasePath: "api/"})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

func TestModeUnsupportedAndBeyondStock(t *testing.T) {
	cat, err := memline.NewRegistry(couponq.Campaign{ID: "tiny", Stock: 1})
	require.NoError(t, err)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: memline.NewQueue(nil)})
	require.NoError(t, err)
	srv := newServer(t, svc)

	resp, body := do(t, srv, http.MethodPost, "/api/campaigns/tiny/entries", "a", "")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Nil(t, body["beyond_stock"], "position 1 of stock 1")
	resp, body = do(t, srv, http.MethodPost, "/api/campaigns/tiny/entries", "b", "")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, true, body["beyond_stock"], "position 2 of stock 1")
	assert.Nil(t, body["estimated_wait_ms"], "no estimate beyond the stock")
	_, body = do(t, srv, http.MethodGet, "/api/campaigns/tiny/entries/me", "b", "")
	assert.Equal(t, true, body["beyond_stock"])

	// A V1 campaign appears in a catalog this service cannot serve V1 from.
	_, err = cat.Create(context.Background(), couponq.Campaign{ID: "gate", Stock: 5, Mode: couponq.ValidateFirst})
	require.NoError(t, err)
	resp, body = do(t, srv, http.MethodPost, "/api/campaigns/gate/entries", "a", "")
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Equal(t, "unsupported", code(body))
}
