package redisline_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

// The admin handler over the Redis Registry and Queue: live numbers come
// from one LineStats script per campaign, and raising the stock of a
// sold-out campaign deletes its sold-out key, so new users get in again
// without a manual DEL.
func TestAdminOverRedis(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		reg, err := redisline.NewRegistry(redisline.RegistryConfig{Client: c, Prefix: prefix})
		require.NoError(t, err)
		svc, err := admission.New(admission.Config{Catalog: reg, Queue: q})
		require.NoError(t, err)
		h, err := httpapi.NewAdmin(httpapi.AdminConfig{Campaigns: &catalog.Ops{Registry: reg, Lines: q},
			Authorize: func(*http.Request) error { return nil }})
		require.NoError(t, err)
		defer h.Close()

		call := func(method, path, body string) (int, httpapi.AdminCampaign) {
			rr := httptest.NewRecorder()
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json") // the admin handler takes JSON writes only
			h.ServeHTTP(rr, req)
			var out httpapi.AdminCampaign
			require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &out), rr.Body.String())
			return rr.Code, out
		}
		code, created := call("POST", "/campaigns", `{"id":"drop","stock":2}`)
		require.Equal(t, http.StatusCreated, code)
		assert.EqualValues(t, 1, created.Version)
		for _, u := range []string{"a", "b", "c"} {
			_, err := svc.Admit(ctx, couponq.Request{Campaign: "drop", User: u})
			require.NoError(t, err)
		}
		got, err := q.Lease(ctx, "drop", 2, time.Minute)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.NoError(t, q.Record(ctx, "drop", couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"}))
		require.NoError(t, q.Record(ctx, "drop", couponq.Result{Entry: got[1], State: couponq.StateIssued, IssuanceID: "i2"}))
		require.NoError(t, q.MarkSoldOut(ctx, "drop"))

		code, before := call("GET", "/campaigns/drop", "")
		require.Equal(t, http.StatusOK, code)
		eta := int64(1000) // one waiting entry, 100 per second
		assert.Equal(t, httpapi.LiveNumbers{State: "sold_out", Admitted: 3, Waiting: 1, Issued: 2, RatePerSec: 100, DrainETAMS: &eta}, *before.LiveNumbers)

		code, _ = call("PATCH", "/campaigns/drop", `{"version":1,"stock":1}`)
		assert.Equal(t, http.StatusConflict, code, "below the issued count")
		code, after := call("PATCH", "/campaigns/drop", `{"version":1,"stock":5}`)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "open", after.State)
		assert.EqualValues(t, 3, after.Remaining)
		n, err := c.Exists(ctx, redisline.KeysFor(prefix, "drop").SoldOut).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "the sold-out key is gone")
		tk, err := svc.Admit(ctx, couponq.Request{Campaign: "drop", User: "late"})
		require.NoError(t, err, "a new user gets in again")
		assert.EqualValues(t, 4, tk.Entry)
	})
}
