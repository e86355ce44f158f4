package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/ratelimit"
	"github.com/couponq/couponq/node"
)

// The public handler behind a per-user limit: two requests at once, then one
// a minute. With Redis, ratelimit.NewRedis(rdb, rate, "api") shares the limit
// across processes.
func Example() {
	ctx := context.Background()
	n, _ := node.New(node.Config{}) // in-memory
	_ = n.Start(ctx)
	defer n.Stop(ctx)
	_, _ = n.CreateCampaign(ctx, couponq.Campaign{ID: "drop", Stock: 10, Paused: true}) // paused: the entry waits
	api, _ := n.Handler(node.HandlerConfig{User: node.HeaderUser("X-User"), BasePath: "/api"})

	limiter, _ := ratelimit.NewMemory(ratelimit.MemoryConfig{Rate: ratelimit.Rate{Events: 1, Per: time.Minute, Burst: 2}})
	limit, _ := ratelimit.Middleware(ratelimit.Config{
		Limiter: limiter,
		// The same trusted header the handler reads the user from; ByRemoteIP
		// limits by address instead.
		Key: ratelimit.ByHeader("X-User"),
	})
	mux := http.NewServeMux()
	mux.Handle("/api/", limit(api))

	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/api/campaigns/drop/entries", nil),
		httptest.NewRequest("GET", "/api/campaigns/drop/entries/me", nil),
		httptest.NewRequest("GET", "/api/campaigns/drop/entries/me", nil),
	} {
		req.Header.Set("X-User", "ann")
		rr := httptest.NewRecorder()
		mux.ServeHTTP(rr, req)
		fmt.Print(rr.Code, " ", rr.Header().Get("Retry-After"), " ", rr.Body.String())
	}
	// Output:
	// 202  {"campaign":"drop","entry":1,"position":1,"state":"waiting","repeat":false,"status_url":"/api/campaigns/drop/entries/me"}
	// 200  {"campaign":"drop","entry":1,"state":"waiting","position":1,"paused":true}
	// 429 60 {"error":{"code":"rate_limited","message":"too many requests, retry in 60s"}}
}
