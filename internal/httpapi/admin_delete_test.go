package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
)

// del sends an authorized DELETE of the campaign with the query given, and
// returns the status and the error body, if any.
func (e *adminEnv) del(t *testing.T, id, query string) (int, map[string]any) {
	t.Helper()
	resp, err := e.srv.Client().Do(authed(t, "DELETE", e.srv.URL+"/admin/campaigns/"+id+"?"+query))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNoContent {
		assert.Empty(t, raw, "a 204 has no body")
		return resp.StatusCode, nil
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	return resp.StatusCode, out
}

// soldOut puts the users in line, issues each a unit and marks the
// campaign sold out: a finished campaign.
func (e *adminEnv) soldOut(t *testing.T, campaign string, users ...string) {
	t.Helper()
	for _, u := range users {
		_, err := e.queue.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: u})
		require.NoError(t, err)
	}
	e.issue(t, campaign, len(users))
	require.NoError(t, e.queue.MarkSoldOut(context.Background(), campaign))
}

func TestAdminDeleteArchivesAndDeletes(t *testing.T) {
	ctx := context.Background()
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 2}, couponq.Campaign{ID: "other", Stock: 5})
	env.soldOut(t, "drop", "a", "b")
	env.list(t) // a drain observation to forget

	status, body := env.del(t, "drop", "version=1&retention=24h")
	require.Equal(t, http.StatusNoContent, status, "%v", body)
	_, err := env.reg.Campaign(ctx, "drop")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign, "deleted from the Registry")
	list := env.list(t)
	require.Len(t, list, 1)
	assert.Equal(t, "other", list[0].ID)
	st, err := env.queue.Status(ctx, "drop", "a")
	require.NoError(t, err, "outcomes are kept for the retention")
	assert.Equal(t, couponq.StateIssued, st.State)

	status, body = env.del(t, "drop", "version=1&retention=24h")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "unknown_campaign", code(body))

	// A closed campaign, at retention 0: its outcomes are dropped at once,
	// and the ID starts over.
	env.admit(t, "other", "c")
	env.issue(t, "other", 1)
	env.clock.Add(time.Minute)
	_, body = env.call(t, "POST", "/admin/campaigns/other/close", "")
	require.Equal(t, "closed", body["state"])
	status, body = env.del(t, "other", "version=2&retention=0s")
	require.Equal(t, http.StatusNoContent, status, "%v", body)
	_, err = env.queue.Status(ctx, "other", "c")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
	resp, body := env.call(t, "POST", "/admin/campaigns", `{"id":"other","stock":3}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	assert.Equal(t, 1.0, body["version"])
	assert.Equal(t, "open", body["state"])
	assert.Equal(t, 0.0, body["admitted"], "nothing of the old campaign is left")
	assert.Nil(t, body["drained_per_sec"], "its drain observations were forgotten")
}

func TestAdminDeleteRefusals(t *testing.T) {
	ctx := context.Background()
	env := newAdmin(t, nil,
		couponq.Campaign{ID: "open", Stock: 5},
		couponq.Campaign{ID: "paused", Stock: 5, Paused: true},
		couponq.Campaign{ID: "later", Stock: 5, OpensAt: t0.Add(time.Hour)},
		couponq.Campaign{ID: "closing", Stock: 5, ClosesAt: t0.Add(time.Minute)},
		couponq.Campaign{ID: "drop", Stock: 3})
	env.admit(t, "closing", "w")
	env.soldOut(t, "drop", "a")
	env.clock.Add(2 * time.Minute)
	// A sold-out campaign with an entry still in flight.
	require.NoError(t, env.queue.Reopen(ctx, "drop"))
	_, err := env.queue.Admit(ctx, couponq.Admission{Campaign: "drop", User: "f"})
	require.NoError(t, err)
	_, err = env.queue.Lease(ctx, "drop", 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, env.queue.MarkSoldOut(ctx, "drop"))

	for _, tc := range []struct {
		name, id, query string
		status          int
		code, contains  string
	}{
		{"open", "open", "version=1&retention=1h", 409, "campaign_busy", "open: close it"},
		{"paused", "paused", "version=1&retention=1h", 409, "campaign_busy", "paused"},
		{"scheduled", "later", "version=1&retention=1h", 409, "campaign_busy", "scheduled"},
		{"closed, entries waiting", "closing", "version=1&retention=1h", 409, "campaign_busy", "1 waiting and 0 in flight"},
		{"sold out, entries in flight", "drop", "version=1&retention=1h", 409, "campaign_busy", "0 waiting and 1 in flight"},
		{"stale version", "closing", "version=2&retention=1h", 409, "version_conflict", "version 1, not 2"},
		{"no version", "drop", "retention=1h", 400, "bad_request", `"version" is required`},
		{"version 0", "drop", "version=0&retention=1h", 400, "bad_request", `"version" must be an integer > 0`},
		{"version as text", "drop", "version=one&retention=1h", 400, "bad_request", `"version" must be`},
		{"no retention", "drop", "version=1", 400, "bad_request", `"retention" is required`},
		{"retention without unit", "drop", "version=1&retention=24", 400, "bad_request", `"retention" must be a duration`},
		{"negative retention", "drop", "version=1&retention=-1h", 400, "bad_request", `"retention" must be a duration >= 0`},
		{"repeated parameter", "drop", "version=1&version=1&retention=1h", 400, "bad_request", "given 2 times"},
		{"unknown parameter", "drop", "version=1&retention=1h&force=true", 400, "bad_request", `unknown query parameter "force"`},
		{"unknown campaign", "nope", "version=1&retention=1h", 404, "unknown_campaign", "nope"},
		{"bad id", "a%7Bb%7D", "version=1&retention=1h", 400, "invalid_id", "a{b}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.del(t, tc.id, tc.query)
			assert.Equal(t, tc.status, status, "%v", body)
			assert.Equal(t, tc.code, code(body))
			assert.Contains(t, msg(body), tc.contains)
		})
	}
	assert.Len(t, env.list(t), 5, "no campaign was deleted")
	st, err := env.queue.Status(ctx, "drop", "a")
	require.NoError(t, err, "no campaign was archived")
	assert.Equal(t, couponq.StateIssued, st.State)
}

func TestAdminDeleteFailures(t *testing.T) {
	ctx := context.Background()
	flaky := &flakyDeleter{}
	var archiveErr error
	env := newAdmin(t, func(c *httpapi.AdminConfig) {
		flaky.Registry = c.Campaigns.Registry
		c.Campaigns.Registry = flaky
		lines := c.Campaigns.Lines
		c.Campaigns.Lines = &hookedLines{Lines: lines,
			archive: func(ctx context.Context, campaign string, retention time.Duration) error {
				if archiveErr != nil {
					return archiveErr
				}
				return lines.Archive(ctx, campaign, retention)
			}}
	}, couponq.Campaign{ID: "drop", Stock: 1})
	env.soldOut(t, "drop", "a")

	// Someone admitted between the handler's look and the archive.
	archiveErr = fmt.Errorf("queue: %w: 1 waiting", couponq.ErrCampaignBusy)
	status, body := env.del(t, "drop", "version=1&retention=1h")
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "campaign_busy", code(body))

	archiveErr = errors.New("redis: connection refused")
	status, body = env.del(t, "drop", "version=1&retention=1h")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", code(body))
	assert.NotContains(t, msg(body), "redis")
	archiveErr = nil

	// Archived, but the Registry fails: the campaign stays listed, and
	// repeating the DELETE finishes it.
	flaky.deleteDown = true
	status, body = env.del(t, "drop", "version=1&retention=1h")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", code(body))
	_, err := env.reg.Campaign(ctx, "drop")
	require.NoError(t, err, "still in the Registry")
	flaky.deleteDown = false
	status, body = env.del(t, "drop", "version=1&retention=1h")
	require.Equal(t, http.StatusNoContent, status, "%v", body)
	_, err = env.reg.Campaign(ctx, "drop")
	assert.ErrorIs(t, err, couponq.ErrUnknownCampaign)
	_, err = env.queue.Status(ctx, "drop", "a")
	assert.NoError(t, err, "outcomes kept")
}

// flakyDeleter is a flakyRegistry whose Delete fails while deleteDown is
// set.
type flakyDeleter struct {
	flakyRegistry
	deleteDown bool
}

func (r *flakyDeleter) Delete(ctx context.Context, id string, version int64) error {
	if r.deleteDown {
		return errDown
	}
	return r.Registry.Delete(ctx, id, version)
}
