package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

const adminToken = "Bearer admin-secret"

// authorize lets the admin token in; a viewer token is known but not
// allowed (403); anything else is unauthorized (401).
func authorize(r *http.Request) error {
	switch r.Header.Get("Authorization") {
	case adminToken:
		return nil
	case "Bearer viewer":
		return errors.New("viewers may not administer campaigns")
	case "":
		return fmt.Errorf("%w: no Authorization header", httpapi.ErrUnauthorized)
	}
	return fmt.Errorf("%w: unknown token", httpapi.ErrUnauthorized)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// adminEnv is an admin handler over an in-memory Registry and Queue, with a
// Service admitting to the same line.
type adminEnv struct {
	srv   *httptest.Server
	admin *httpapi.Admin
	reg   *memline.Registry
	queue *memline.Queue
	svc   *admission.Service
	clock *clock
}

func newAdmin(t *testing.T, change func(*httpapi.AdminConfig), cs ...couponq.Campaign) *adminEnv {
	t.Helper()
	reg, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	env := &adminEnv{reg: reg, queue: memline.NewQueue(nil), clock: &clock{now: t0}}
	env.svc, err = admission.New(admission.Config{Catalog: reg, Queue: env.queue, Now: env.clock.Now})
	require.NoError(t, err)
	cfg := httpapi.AdminConfig{
		Campaigns: &catalog.Ops{Registry: reg, Lines: env.queue, Now: env.clock.Now},
		Authorize: authorize, BasePath: "/admin", Now: env.clock.Now,
	}
	if change != nil {
		change(&cfg)
	}
	env.admin, err = httpapi.NewAdmin(cfg)
	require.NoError(t, err)
	env.srv = httptest.NewServer(env.admin)
	t.Cleanup(func() {
		env.admin.Close()
		env.srv.Close()
	})
	return env
}

// call makes an authorized request unless auth is given.
func (e *adminEnv) call(t *testing.T, method, path, body string, auth ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(auth) > 0 {
		req.Header.Set("Authorization", auth[0])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return resp, out
}

// campaign GETs one campaign and decodes it.
func (e *adminEnv) campaign(t *testing.T, id string) httpapi.AdminCampaign {
	t.Helper()
	resp, err := e.srv.Client().Do(authed(t, "GET", e.srv.URL+"/admin/campaigns/"+id))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var c httpapi.AdminCampaign
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	require.NotNil(t, c.LiveNumbers, "a GET answer has live numbers")
	return c
}

func (e *adminEnv) list(t *testing.T) []httpapi.AdminCampaign {
	t.Helper()
	resp, err := e.srv.Client().Do(authed(t, "GET", e.srv.URL+"/admin/campaigns"))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var l httpapi.AdminCampaignList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return l.Campaigns
}

func authed(t *testing.T, method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", adminToken)
	return req
}

// admit puts users in line through the Service.
func (e *adminEnv) admit(t *testing.T, campaign string, users ...string) {
	t.Helper()
	for _, u := range users {
		_, err := e.svc.Admit(context.Background(), couponq.Request{Campaign: campaign, User: u})
		require.NoError(t, err, u)
	}
}

// issue leases n entries and records them issued.
func (e *adminEnv) issue(t *testing.T, campaign string, n int) {
	t.Helper()
	ctx := context.Background()
	got, err := e.queue.Lease(ctx, campaign, n, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, n)
	for _, en := range got {
		require.NoError(t, e.queue.Record(ctx, campaign, couponq.Result{Entry: en, State: couponq.StateIssued, IssuanceID: "iss-" + en.User}))
	}
}

func msg(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func TestNewAdminValidates(t *testing.T) {
	reg, err := memline.NewRegistry()
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	ok := httpapi.AdminConfig{Campaigns: &catalog.Ops{Registry: reg, Lines: q}, Authorize: authorize}
	for name, change := range map[string]func(*httpapi.AdminConfig){
		"no Authorize":               func(c *httpapi.AdminConfig) { c.Authorize = nil },
		"no Campaigns":               func(c *httpapi.AdminConfig) { c.Campaigns = nil },
		"Campaigns without Registry": func(c *httpapi.AdminConfig) { c.Campaigns = &catalog.Ops{Lines: q} },
		"Campaigns without Lines":    func(c *httpapi.AdminConfig) { c.Campaigns = &catalog.Ops{Registry: reg} },
		"BasePath ends with /":       func(c *httpapi.AdminConfig) { c.BasePath = "/admin/" },
		"BasePath without /":         func(c *httpapi.AdminConfig) { c.BasePath = "admin" },
		"negative MaxBodyBytes":      func(c *httpapi.AdminConfig) { c.MaxBodyBytes = -1 },
		"negative StatsConcurrency":  func(c *httpapi.AdminConfig) { c.StatsConcurrency = -1 },
	} {
		cfg := ok
		change(&cfg)
		h, err := httpapi.NewAdmin(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
		assert.Nil(t, h, name)
	}
	h, err := httpapi.NewAdmin(ok)
	require.NoError(t, err)
	assert.NotNil(t, h)
}

func TestAdminAuthorization(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	for _, tc := range []struct {
		name, auth, method, path string
		status                   int
		code                     string
	}{
		{"no credentials", "", "GET", "/admin/campaigns", 401, "unauthorized"},
		{"bad token", "Bearer guess", "GET", "/admin/campaigns/drop", 401, "unauthorized"},
		{"known but not allowed", "Bearer viewer", "GET", "/admin/campaigns", 403, "forbidden"},
		{"writes too", "Bearer viewer", "POST", "/admin/campaigns/drop/pause", 403, "forbidden"},
		{"before routing", "", "GET", "/admin/nothing-here", 401, "unauthorized"},
		{"unknown route once allowed", adminToken, "GET", "/admin/nothing-here", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.call(t, tc.method, tc.path, "", tc.auth)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.code, code(body))
		})
	}
	assert.False(t, env.campaign(t, "drop").Paused, "a refused pause changed nothing")
}

func TestAdminCreateGetList(t *testing.T) {
	env := newAdmin(t, nil)
	assert.Empty(t, env.list(t))

	resp, body := env.call(t, "POST", "/admin/campaigns", `{"id":"spring","stock":1000}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	assert.Equal(t, "/admin/campaigns/spring", resp.Header.Get("Location"))
	assert.Equal(t, map[string]any{
		"id": "spring", "version": 1.0, "incarnation": 1.0, "stock": 1000.0, "per_user_limit": 1.0, "batch_size": 100.0,
		"interval_ms": 1000.0, "opens_at": nil, "closes_at": nil, "mode": "v2-queue-first", "max_waiting": 0.0, "paused": false,
		"shards": 0.0, "pre_queue_ms": 0.0,
		"state": "open", "admitted": 0.0, "waiting": 0.0, "in_flight": 0.0, "issued": 0.0, "remaining": 1000.0,
		"rate_per_sec": 100.0, "drain_eta_ms": 0.0, "drained_per_sec": nil,
	}, body, "defaults applied, every field present")

	resp, body = env.call(t, "POST", "/admin/campaigns", `{
		"id": "autumn", "stock": 50, "per_user_limit": 2, "batch_size": 10, "interval_ms": 250,
		"opens_at": "2026-03-02T09:00:00+01:00", "closes_at": "2026-03-03T09:00:00Z",
		"mode": "v1-validate-first", "max_waiting": 500, "paused": true}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	assert.Equal(t, 500.0, body["max_waiting"])
	assert.Equal(t, "2026-03-02T08:00:00Z", body["opens_at"], "times answer in UTC")
	assert.Equal(t, "2026-03-03T09:00:00Z", body["closes_at"])
	assert.Equal(t, "v1-validate-first", body["mode"])
	assert.Equal(t, "paused", body["state"])
	assert.Equal(t, 40.0, body["rate_per_sec"])
	assert.Nil(t, body["drain_eta_ms"], "a paused line does not drain")

	resp, body = env.call(t, "POST", "/admin/campaigns", `{"id":"spring","stock":1}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "campaign_exists", code(body))
	assert.EqualValues(t, 1000, env.campaign(t, "spring").Stock, "the existing campaign is untouched")

	got := env.campaign(t, "autumn")
	assert.EqualValues(t, 1, got.Version)
	assert.Equal(t, 2, got.PerUserLimit)
	assert.EqualValues(t, 250, got.IntervalMS)
	assert.EqualValues(t, 500, got.MaxWaiting)
	assert.Equal(t, "paused", got.State)

	list := env.list(t)
	require.Len(t, list, 2)
	assert.Equal(t, "autumn", list[0].ID, "ordered by ID")
	assert.EqualValues(t, 500, list[0].MaxWaiting)
	assert.Zero(t, list[1].MaxWaiting)
	assert.Equal(t, "spring", list[1].ID)

	resp, body = env.call(t, "GET", "/admin/campaigns/nope", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "unknown_campaign", code(body))
}

func TestAdminBadInputsWriteNothing(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) { c.MaxBodyBytes = 512 }, couponq.Campaign{ID: "drop", Stock: 5})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, contains           string
	}{
		{"malformed", "POST", "/admin/campaigns", `{"id":`, 400, "bad_request", "JSON object"},
		{"empty", "POST", "/admin/campaigns", ``, 400, "bad_request", "empty"},
		{"null", "POST", "/admin/campaigns", `null`, 400, "bad_request", "not null"},
		{"array", "POST", "/admin/campaigns", `[{"id":"x","stock":1}]`, 400, "bad_request", "JSON object"},
		{"two values", "POST", "/admin/campaigns", `{"id":"x","stock":1}{}`, 400, "bad_request", "more than one"},
		{"unknown field", "POST", "/admin/campaigns", `{"id":"x","stock":1,"colour":"red"}`, 400, "bad_request", `unknown field "colour"`},
		{"live field", "POST", "/admin/campaigns", `{"id":"x","stock":1,"waiting":0}`, 400, "bad_request", `unknown field "waiting"`},
		{"version on create", "POST", "/admin/campaigns", `{"id":"x","stock":1,"version":3}`, 400, "bad_request", "version"},
		{"incarnation on create", "POST", "/admin/campaigns", `{"id":"x","stock":1,"incarnation":2}`, 400, "bad_request", "incarnation"},
		{"stock as text", "POST", "/admin/campaigns", `{"id":"x","stock":"ten"}`, 400, "bad_request", `"stock" must be an integer`},
		{"fractional", "POST", "/admin/campaigns", `{"id":"x","stock":1.5}`, 400, "bad_request", `"stock" must be an integer`},
		{"null stock", "POST", "/admin/campaigns", `{"id":"x","stock":null}`, 400, "bad_request", "must not be null"},
		{"bad mode", "POST", "/admin/campaigns", `{"id":"x","stock":1,"mode":"fast"}`, 400, "bad_request", `"mode" must be`},
		{"bad time", "POST", "/admin/campaigns", `{"id":"x","stock":1,"opens_at":"tomorrow"}`, 400, "bad_request", "RFC 3339"},
		{"interval overflow", "POST", "/admin/campaigns", `{"id":"x","stock":1,"interval_ms":9223372036854775807}`, 400, "bad_request", "out of range"},
		{"no stock", "POST", "/admin/campaigns", `{"id":"x"}`, 400, "invalid_campaign", "stock must be > 0"},
		{"bad id", "POST", "/admin/campaigns", `{"id":"x y","stock":1}`, 400, "invalid_campaign", "invalid id"},
		{"window backwards", "POST", "/admin/campaigns", `{"id":"x","stock":1,"opens_at":"2026-03-02T00:00:00Z","closes_at":"2026-03-01T00:00:00Z"}`, 400, "invalid_campaign", "not after opens at"},
		{"too big", "POST", "/admin/campaigns", `{"id":"x","stock":1,"mode":"` + strings.Repeat("v", 600) + `"}`, 413, "body_too_large", "512 bytes"},

		{"patch without version", "PATCH", "/admin/campaigns/drop", `{"stock":9}`, 400, "bad_request", `"version" is required`},
		{"patch version 0", "PATCH", "/admin/campaigns/drop", `{"version":0,"stock":9}`, 400, "bad_request", `"version" is required`},
		{"patch null stock", "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":null}`, 400, "bad_request", "must not be null"},
		{"patch mode", "PATCH", "/admin/campaigns/drop", `{"version":1,"mode":"v1-validate-first"}`, 400, "bad_request", `unknown field "mode"`},
		{"patch id", "PATCH", "/admin/campaigns/drop", `{"version":1,"id":"other"}`, 400, "bad_request", `unknown field "id"`},
		{"patch paused as text", "PATCH", "/admin/campaigns/drop", `{"version":1,"paused":"yes"}`, 400, "bad_request", "true or false"},
		{"negative max waiting", "POST", "/admin/campaigns", `{"id":"x","stock":1,"max_waiting":-1}`, 400, "invalid_campaign", "max waiting"},
		{"max waiting as text", "POST", "/admin/campaigns", `{"id":"x","stock":1,"max_waiting":"lots"}`, 400, "bad_request", `"max_waiting" must be an integer`},
		{"patch null max waiting", "PATCH", "/admin/campaigns/drop", `{"version":1,"max_waiting":null}`, 400, "bad_request", "must not be null"},
		{"patch negative max waiting", "PATCH", "/admin/campaigns/drop", `{"version":1,"max_waiting":-5}`, 400, "invalid_campaign", "max waiting"},
		{"patch negative batch", "PATCH", "/admin/campaigns/drop", `{"version":1,"batch_size":-1}`, 400, "invalid_campaign", "batch size"},
		{"patch zero stock", "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":0}`, 400, "invalid_campaign", "stock must be > 0"},
		{"patch unknown campaign", "PATCH", "/admin/campaigns/nope", `{"version":1,"stock":9}`, 404, "unknown_campaign", "nope"},
		{"patch bad id", "PATCH", "/admin/campaigns/dr%20op", `{"version":1,"stock":9}`, 400, "invalid_id", "dr op"},
		{"pause bad id", "POST", "/admin/campaigns/a%7Bb%7D/pause", ``, 400, "invalid_id", "a{b}"},
		{"pause unknown", "POST", "/admin/campaigns/nope/pause", ``, 404, "unknown_campaign", "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.call(t, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, "%v", body)
			assert.Equal(t, tc.code, code(body))
			assert.Contains(t, msg(body), tc.contains)
		})
	}
	list := env.list(t)
	require.Len(t, list, 1, "no campaign was created")
	assert.EqualValues(t, 1, list[0].Version, "no campaign was changed")
	assert.EqualValues(t, 5, list[0].Stock)
}

// An invalid_campaign answer names the JSON field at fault, for every
// bounded field, on create and on PATCH.
func TestAdminInvalidCampaignNamesTheField(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/admin/campaigns", `{"id":"x","stock":0}`, "stock"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":9223372036854775807}`, "stock"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"per_user_limit":9223372036854775807}`, "per_user_limit"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"batch_size":2305843009213693952}`, "batch_size"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"interval_ms":9223372036854}`, "interval_ms"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"max_waiting":-1}`, "max_waiting"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"shards":1000000}`, "shards"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"pre_queue_ms":9223372036854}`, "pre_queue_ms"},
		{"POST", "/admin/campaigns", `{"id":"x","stock":1,"opens_at":"2026-03-02T00:00:00Z","closes_at":"2026-03-01T00:00:00Z"}`, "closes_at"},
		{"POST", "/admin/campaigns", `{"id":"x y","stock":1}`, "id"},
		{"PATCH", "/admin/campaigns/drop", `{"version":1,"batch_size":-1}`, "batch_size"},
		{"PATCH", "/admin/campaigns/drop", `{"version":1,"interval_ms":3600001}`, "interval_ms"},
	} {
		resp, body := env.call(t, tc.method, tc.path, tc.body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %v", tc.body, body)
		assert.Equal(t, "invalid_campaign", code(body), tc.body)
		e, _ := body["error"].(map[string]any)
		assert.Equal(t, tc.field, e["field"], tc.body)
	}
}

func TestAdminMethodNotAllowed(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/admin/campaigns", "GET, HEAD, POST"},
		{"PUT", "/admin/campaigns/drop", "GET, HEAD, PATCH, DELETE"},
		{"POST", "/admin/campaigns/drop", "GET, HEAD, PATCH, DELETE"},
		{"DELETE", "/admin/campaigns/drop/pause", "POST"},
		{"GET", "/admin/campaigns/drop/pause", "POST"},
		{"PATCH", "/admin/campaigns/drop/close", "POST"},
	} {
		resp, body := env.call(t, tc.method, tc.path, "")
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", tc.method, tc.path)
		assert.Equal(t, "method_not_allowed", code(body))
		assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
	}
	assert.EqualValues(t, 1, env.campaign(t, "drop").Version)
}

func TestAdminPatch(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 5, ClosesAt: t0.Add(time.Hour)})
	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{
		"version": 1, "stock": 8, "per_user_limit": 3, "batch_size": 20, "interval_ms": 500,
		"opens_at": "2026-03-01T11:00:00Z", "closes_at": null, "max_waiting": 40, "paused": true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, 2.0, body["version"])
	assert.Equal(t, 40.0, body["max_waiting"])
	assert.Equal(t, 8.0, body["stock"])
	assert.Equal(t, 3.0, body["per_user_limit"])
	assert.Equal(t, 20.0, body["batch_size"])
	assert.Equal(t, 500.0, body["interval_ms"])
	assert.Equal(t, "2026-03-01T11:00:00Z", body["opens_at"])
	assert.Nil(t, body["closes_at"], "null clears a time")
	assert.Equal(t, true, body["paused"])
	assert.Equal(t, "paused", body["state"])
	assert.Equal(t, 40.0, body["rate_per_sec"])

	stored, err := env.reg.Campaign(context.Background(), "drop")
	require.NoError(t, err)
	assert.Equal(t, 500*time.Millisecond, stored.Interval)
	assert.EqualValues(t, 40, stored.MaxWaiting)
	assert.True(t, stored.ClosesAt.IsZero())
	assert.True(t, stored.OpensAt.Equal(t0.Add(-time.Hour)))

	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":9}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "version_conflict", code(body))
	assert.Contains(t, msg(body), "at version 2, not 1")
	assert.EqualValues(t, 8, env.campaign(t, "drop").Stock, "a stale update writes nothing")

	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":2,"stock":8}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 2.0, body["version"], "a PATCH that changes nothing writes nothing")

	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":2,"paused":false,"stock":3}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, 3.0, body["version"])
	assert.Equal(t, 3.0, body["stock"], "stock may be lowered")
	assert.Equal(t, "open", body["state"])
}

// A version conflict that happens between the handler's read and its
// update (another writer in between) is a 409 too.
func TestAdminPatchRace(t *testing.T) {
	racy := &racyRegistry{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		racy.Registry = c.Campaigns.Registry
		c.Campaigns.Registry = racy
	}, couponq.Campaign{ID: "drop", Stock: 5})
	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"batch_size":7}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "version_conflict", code(body))
	c, err := env.reg.Campaign(context.Background(), "drop")
	require.NoError(t, err)
	assert.Equal(t, 100, c.BatchSize, "the other writer's change stands")
	assert.EqualValues(t, 2, c.Version)
}

// racyRegistry lets another writer update a campaign just before the first
// Update it is asked for.
type racyRegistry struct {
	couponq.Registry
	raced atomic.Bool
}

func (r *racyRegistry) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if !r.raced.Swap(true) {
		other, err := r.Registry.Campaign(ctx, c.ID)
		if err != nil {
			return couponq.Campaign{}, err
		}
		other.Stock++
		if _, err := r.Registry.Update(ctx, other); err != nil {
			return couponq.Campaign{}, err
		}
	}
	return r.Registry.Update(ctx, c)
}

func TestAdminStockBelowIssued(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 10})
	env.admit(t, "drop", "a", "b", "c", "d")
	env.issue(t, "drop", 3)
	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":2}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "stock_below_issued", code(body))
	assert.Contains(t, msg(body), "stock 2 is below the 3 units already issued")
	assert.EqualValues(t, 10, env.campaign(t, "drop").Stock, "nothing written")

	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":3}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, 3.0, body["stock"], "down to exactly what is issued")
	assert.Equal(t, 0.0, body["remaining"])
}

func TestAdminRaisingStockReopensSoldOut(t *testing.T) {
	ctx := context.Background()
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 2})
	env.admit(t, "drop", "a", "b")
	env.issue(t, "drop", 2)
	require.NoError(t, env.queue.MarkSoldOut(ctx, "drop"))
	_, err := env.svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "late"})
	require.ErrorIs(t, err, couponq.ErrSoldOut)
	before := env.campaign(t, "drop")
	assert.Equal(t, "sold_out", before.State)
	assert.Zero(t, before.Remaining)

	// Other changes leave the mark alone.
	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"batch_size":50}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "sold_out", body["state"])

	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":2,"stock":5}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "open", body["state"], "raising the stock reopened the campaign")
	assert.Equal(t, 3.0, body["remaining"])
	tk, err := env.svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "late"})
	require.NoError(t, err, "a new user is admitted again")
	assert.Equal(t, couponq.StateWaiting, tk.State)
	assert.EqualValues(t, 3, tk.Entry)
}

func TestAdminReopenFailureIsRetryable(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Bool
	fail.Store(true)
	var env *adminEnv
	env = newAdmin(t, func(c *httpapi.AdminConfig) {
		c.Campaigns.Lines = &hookedLines{Lines: c.Campaigns.Lines,
			reopen: func(ctx context.Context, campaign string) error {
				if fail.Load() {
					return errors.New("redis: connection refused")
				}
				return env.queue.Reopen(ctx, campaign)
			}}
	}, couponq.Campaign{ID: "drop", Stock: 1})
	env.admit(t, "drop", "a")
	env.issue(t, "drop", 1)
	require.NoError(t, env.queue.MarkSoldOut(ctx, "drop"))

	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":4}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", code(body))
	assert.Contains(t, msg(body), "saved at version 2")
	assert.NotContains(t, msg(body), "redis")
	after := env.campaign(t, "drop")
	assert.EqualValues(t, 4, after.Stock)
	assert.Equal(t, "sold_out", after.State)

	fail.Store(false)
	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":2,"stock":4}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "open", body["state"], "repeating the PATCH reopens")
	assert.Equal(t, 2.0, body["version"], "and writes nothing new")

	// Lowering the stock never reopens.
	require.NoError(t, env.queue.MarkSoldOut(ctx, "drop"))
	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":2,"stock":3}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "sold_out", body["state"])
}

// hookedLines are a campaign's lines whose Reopen and Archive, when set,
// are the functions given instead.
type hookedLines struct {
	catalog.Lines
	reopen  func(ctx context.Context, campaign string) error
	archive func(ctx context.Context, campaign string, retention time.Duration) error
}

func (l *hookedLines) Reopen(ctx context.Context, campaign string) error {
	if l.reopen != nil {
		return l.reopen(ctx, campaign)
	}
	return l.Lines.Reopen(ctx, campaign)
}

func (l *hookedLines) Archive(ctx context.Context, campaign string, retention time.Duration) error {
	if l.archive != nil {
		return l.archive(ctx, campaign, retention)
	}
	return l.Lines.Archive(ctx, campaign, retention)
}

func TestAdminPauseResumeClose(t *testing.T) {
	env := newAdmin(t, nil,
		couponq.Campaign{ID: "drop", Stock: 5},
		couponq.Campaign{ID: "later", Stock: 5, OpensAt: t0.Add(time.Hour)})
	env.admit(t, "drop", "a", "b", "c")

	resp, body := env.call(t, "POST", "/admin/campaigns/drop/pause", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, true, body["paused"])
	assert.Equal(t, "paused", body["state"])
	assert.Equal(t, 2.0, body["version"])
	assert.Nil(t, body["drain_eta_ms"])
	assert.Equal(t, 3.0, body["waiting"])
	_, body = env.call(t, "POST", "/admin/campaigns/drop/pause", "")
	assert.Equal(t, 2.0, body["version"], "pausing a paused campaign writes nothing")

	resp, body = env.call(t, "POST", "/admin/campaigns/drop/resume", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, false, body["paused"])
	assert.Equal(t, "open", body["state"])
	assert.Equal(t, 3.0, body["version"])
	assert.Equal(t, 1000.0, body["drain_eta_ms"])

	env.clock.Add(time.Minute)
	resp, body = env.call(t, "POST", "/admin/campaigns/drop/close", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "2026-03-01T12:01:00Z", body["closes_at"], "closes now")
	assert.Equal(t, "closed", body["state"])
	_, err := env.svc.Admit(context.Background(), couponq.Request{Campaign: "drop", User: "late"})
	assert.ErrorIs(t, err, couponq.ErrClosed)
	env.clock.Add(time.Minute)
	_, body = env.call(t, "POST", "/admin/campaigns/drop/close", "")
	assert.Equal(t, "2026-03-01T12:01:00Z", body["closes_at"], "closing again keeps the earlier time")
	assert.Equal(t, 4.0, body["version"])

	resp, body = env.call(t, "POST", "/admin/campaigns/later/close", "")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "not_open", code(body))
	assert.Contains(t, msg(body), couponq.ErrNotOpen.Error(), "the refusal wraps couponq.ErrNotOpen")
	assert.Contains(t, msg(body), "opens at")
	assert.Nil(t, env.campaign(t, "later").ClosesAt)
}

func TestAdminLiveNumbers(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 4, BatchSize: 2, Interval: 500 * time.Millisecond})
	env.admit(t, "drop", "a", "b", "c", "d", "e", "f", "g")
	env.issue(t, "drop", 1)
	_, err := env.queue.Lease(context.Background(), "drop", 2, time.Minute)
	require.NoError(t, err)

	c := env.campaign(t, "drop")
	assert.Equal(t, httpapi.LiveNumbers{
		State: "open", Admitted: 7, Waiting: 4, InFlight: 2, Issued: 1, Remaining: 3,
		RatePerSec: 4, DrainETAMS: ptr(int64(500)), // 1 unit left for 4 waiting: the 2nd in line hears sold out after one tick
	}, *c.LiveNumbers)

	// The measured drain rate needs two looks at least a second apart.
	env.clock.Add(500 * time.Millisecond)
	assert.Nil(t, env.list(t)[0].DrainedPerSec, "half a second is too short")
	_, err = env.queue.Lease(context.Background(), "drop", 3, time.Minute)
	require.NoError(t, err)
	env.clock.Add(1500 * time.Millisecond)
	got := env.list(t)[0]
	require.NotNil(t, got.DrainedPerSec)
	assert.Equal(t, 1.5, *got.DrainedPerSec, "3 entries left the line in 2s")
	assert.EqualValues(t, 1, got.Waiting)
	env.clock.Add(100 * time.Millisecond)
	got = env.campaign(t, "drop")
	require.NotNil(t, got.DrainedPerSec)
	assert.Equal(t, 1.5, *got.DrainedPerSec, "the last measured rate until the next second is up")

	_, err = env.queue.Lease(context.Background(), "drop", 1, time.Minute)
	require.NoError(t, err)
	env.clock.Add(time.Second)
	got = env.campaign(t, "drop")
	assert.Equal(t, 0.91, *got.DrainedPerSec, "1 entry in 1.1s since the last measured look, to two decimals")
	assert.Zero(t, *got.DrainETAMS)
}

func ptr[T any](v T) *T { return &v }

// countingStats counts LineStats calls at once, and can fail one campaign.
type countingStats struct {
	catalog.Lines
	failFor  string
	inFlight atomic.Int64
	peak     atomic.Int64
	calls    atomic.Int64
}

func (s *countingStats) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.calls.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	if campaign == s.failFor {
		return couponq.LineStats{}, errors.New("redis: i/o timeout")
	}
	return s.Lines.LineStats(ctx, campaign)
}

func TestAdminListManyConcurrently(t *testing.T) {
	cs := make([]couponq.Campaign, 1000)
	for i := range cs {
		cs[i] = couponq.Campaign{ID: fmt.Sprintf("c%04d", i), Stock: int64(i + 1)}
	}
	stats := &countingStats{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		stats.Lines = c.Campaigns.Lines
		c.Campaigns.Lines = stats
		c.StatsConcurrency = 8
	}, cs...)
	env.admit(t, "c0500", "a", "b")

	start := time.Now()
	list := env.list(t)
	elapsed := time.Since(start)
	require.Len(t, list, 1000)
	for i, c := range list {
		require.Equal(t, cs[i].ID, c.ID)
		require.Equal(t, cs[i].Stock, c.Stock)
	}
	assert.EqualValues(t, 2, list[500].Waiting, "each campaign gets its own numbers")
	assert.LessOrEqual(t, stats.peak.Load(), int64(8), "at most StatsConcurrency calls at once")
	assert.Greater(t, stats.peak.Load(), int64(1), "calls overlap")
	assert.Less(t, elapsed, 800*time.Millisecond, "1,000 campaigns at 1ms each, 8 at a time")

	stats.failFor = "c0007"
	stats.calls.Store(0)
	resp, body := env.call(t, "GET", "/admin/campaigns", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", code(body))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.NotContains(t, msg(body), "redis", "backend details stay in the logs")
	assert.Less(t, stats.calls.Load(), int64(1000), "the list stops at the first failure")
}

// flakyRegistry fails every call while down is set.
type flakyRegistry struct {
	couponq.Registry
	down atomic.Bool
}

var errDown = errors.New("registry: connection refused")

func (r *flakyRegistry) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	if r.down.Load() {
		return couponq.Campaign{}, errDown
	}
	return r.Registry.Campaign(ctx, id)
}

func (r *flakyRegistry) List(ctx context.Context) ([]couponq.Campaign, error) {
	if r.down.Load() {
		return nil, errDown
	}
	return r.Registry.List(ctx)
}

func (r *flakyRegistry) Create(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if r.down.Load() {
		return couponq.Campaign{}, errDown
	}
	return r.Registry.Create(ctx, c)
}

func (r *flakyRegistry) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if r.down.Load() {
		return couponq.Campaign{}, errDown
	}
	return r.Registry.Update(ctx, c)
}

func TestAdminBackendFailures(t *testing.T) {
	flaky := &flakyRegistry{}
	stats := &countingStats{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		flaky.Registry = c.Campaigns.Registry
		c.Campaigns.Registry = flaky
		stats.Lines = c.Campaigns.Lines
		c.Campaigns.Lines = stats
	}, couponq.Campaign{ID: "drop", Stock: 5})

	flaky.down.Store(true)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/admin/campaigns", ""},
		{"GET", "/admin/campaigns/drop", ""},
		{"POST", "/admin/campaigns", `{"id":"new","stock":1}`},
		{"PATCH", "/admin/campaigns/drop", `{"version":1,"stock":9}`},
		{"POST", "/admin/campaigns/drop/pause", ""},
		{"POST", "/admin/campaigns/drop/close", ""},
	} {
		resp, body := env.call(t, tc.method, tc.path, tc.body)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s", tc.method, tc.path)
		assert.Equal(t, "unavailable", code(body))
		assert.NotContains(t, msg(body), "connection refused")
	}
	flaky.down.Store(false)

	// Stats down: reads fail, a saved change answers without live numbers.
	stats.failFor = "drop"
	resp, body := env.call(t, "GET", "/admin/campaigns/drop", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", code(body))
	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":9}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "a stock change needs the issued count")
	resp, body = env.call(t, "POST", "/admin/campaigns/drop/pause", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, true, body["paused"])
	assert.NotContains(t, body, "state", "no live numbers")
	assert.NotContains(t, body, "waiting")
	c, err := env.reg.Campaign(context.Background(), "drop")
	require.NoError(t, err)
	assert.True(t, c.Paused)
	assert.EqualValues(t, 5, c.Stock)
}

// hidingRegistry hides one campaign, as if it were deleted.
type hidingRegistry struct {
	couponq.Registry
	hide atomic.Value // string
}

func (r *hidingRegistry) List(ctx context.Context) ([]couponq.Campaign, error) {
	cs, err := r.Registry.List(ctx)
	hidden, _ := r.hide.Load().(string)
	out := cs[:0]
	for _, c := range cs {
		if c.ID != hidden {
			out = append(out, c)
		}
	}
	return out, err
}

// The handler keeps drain observations only for campaigns that exist: a
// campaign missing from a list starts over when it comes back.
func TestAdminForgetsCampaignsThatAreGone(t *testing.T) {
	hiding := &hidingRegistry{}
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		hiding.Registry = c.Campaigns.Registry
		c.Campaigns.Registry = hiding
	}, couponq.Campaign{ID: "a", Stock: 5}, couponq.Campaign{ID: "b", Stock: 5})
	env.list(t)
	env.clock.Add(time.Second)
	hiding.hide.Store("a")
	require.Len(t, env.list(t), 1)
	hiding.hide.Store("")
	env.clock.Add(time.Second)
	list := env.list(t)
	require.Len(t, list, 2)
	assert.Nil(t, list[0].DrainedPerSec, "a was forgotten")
	require.NotNil(t, list[1].DrainedPerSec, "b was measured over 2s")
	assert.Zero(t, *list[1].DrainedPerSec)
}

// Shards and a pre-queue are set at create; shards cannot be patched, a
// pre-queue can.
func TestAdminShardsAndPreQueue(t *testing.T) {
	env := newAdmin(t, nil)
	resp, body := env.call(t, "POST", "/admin/campaigns",
		`{"id":"hot","stock":10,"shards":3}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	assert.Equal(t, 3.0, body["shards"])
	assert.Equal(t, 3, env.campaign(t, "hot").Shards)
	resp, body = env.call(t, "PATCH", "/admin/campaigns/hot", `{"version":1,"shards":4}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", body)
	assert.Equal(t, 3, env.campaign(t, "hot").Shards)

	resp, body = env.call(t, "POST", "/admin/campaigns",
		`{"id":"drop","stock":10,"opens_at":"2030-01-01T10:00:00Z","pre_queue_ms":600000}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	assert.Equal(t, 600000.0, body["pre_queue_ms"])
	resp, body = env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"pre_queue_ms":60000}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, int64(60000), env.campaign(t, "drop").PreQueueMS)
	resp, body = env.call(t, "POST", "/admin/campaigns", `{"id":"bad","stock":10,"pre_queue_ms":1000}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a pre-queue needs opens_at: %v", body)
}

// A campaign the node cannot serve (catalog.Ops.Check refuses it) is
// refused at create and at change with 400 unsupported, and nothing is
// written.
func TestAdminRefusesWhatTheNodeCannotServe(t *testing.T) {
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		c.Campaigns.Check = func(c couponq.Campaign) error {
			switch {
			case c.Mode == couponq.ValidateFirst:
				return fmt.Errorf("%w: campaign %s is V1, and this node has no Tally", couponq.ErrUnsupported, c.ID)
			case c.PreQueue > 0:
				return fmt.Errorf("%w: campaign %s has a pre-queue, and this node's Queue cannot seat it", couponq.ErrUnsupported, c.ID)
			}
			return nil
		}
	}, couponq.Campaign{ID: "drop", Stock: 5, OpensAt: t0.Add(time.Hour)})

	for _, tc := range []struct{ name, method, path, body string }{
		{"create V1", "POST", "/admin/campaigns", `{"id":"gate","stock":5,"mode":"v1-validate-first"}`},
		{"create with a pre-queue", "POST", "/admin/campaigns", `{"id":"early","stock":5,"opens_at":"2026-03-01T13:00:00Z","pre_queue_ms":60000}`},
		{"patch in a pre-queue", "PATCH", "/admin/campaigns/drop", `{"version":1,"pre_queue_ms":60000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.call(t, tc.method, tc.path, tc.body)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", body)
			assert.Equal(t, couponq.CodeUnsupported, code(body))
			assert.Contains(t, msg(body), couponq.ErrUnsupported.Error())
		})
	}
	list := env.list(t)
	require.Len(t, list, 1, "no campaign was created")
	assert.EqualValues(t, 1, list[0].Version, "no campaign was changed")
	assert.Zero(t, list[0].PreQueueMS)

	resp, body := env.call(t, "PATCH", "/admin/campaigns/drop", `{"version":1,"stock":9}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "what the node serves is still changed: %v", body)
	assert.Equal(t, 2.0, body["version"])
}
