package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

func ExampleNew() {
	catalog, _ := memline.NewRegistry(couponq.Campaign{ID: "drop", Stock: 10})
	svc, _ := admission.New(admission.Config{Catalog: catalog, Queue: memline.NewQueue(nil)})
	h, _ := httpapi.New(httpapi.Config{
		Service: svc,
		// Your authentication decides who the user is; a header is only a stand-in.
		User:     httpapi.HeaderUser("X-User"),
		BasePath: "/api",
	})

	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/api/campaigns/drop/entries", strings.NewReader(`{"request_id":"r-1"}`)),
		httptest.NewRequest("GET", "/api/campaigns/drop/entries/me", nil),
		httptest.NewRequest("POST", "/api/campaigns/nope/entries", nil),
	} {
		req.Header.Set("X-User", "ann")
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		fmt.Print(rr.Code, " ", rr.Body.String())
	}
	// Output:
	// 202 {"campaign":"drop","entry":1,"position":1,"estimated_wait_ms":1000,"state":"waiting","repeat":false,"status_url":"/api/campaigns/drop/entries/me"}
	// 200 {"campaign":"drop","entry":1,"state":"waiting","position":1,"estimated_wait_ms":1000}
	// 404 {"error":{"code":"unknown_campaign","message":"couponq: unknown campaign: \"nope\""}}
}

func ExampleNewAdmin() {
	registry, _ := memline.NewRegistry()
	queue := memline.NewQueue(nil)
	svc, _ := admission.New(admission.Config{Catalog: registry, Queue: queue})
	h, _ := httpapi.NewAdmin(httpapi.AdminConfig{
		// The Queue counts each line, takes back a sold-out mark when the
		// stock is raised and archives a retired campaign's records.
		Campaigns: &catalog.Ops{Registry: registry, Lines: queue},
		// Your authorization decides who may operate campaigns; a fixed token is only a stand-in.
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer let-me-in" {
				return fmt.Errorf("%w: a valid admin token is required", httpapi.ErrUnauthorized)
			}
			return nil
		},
		BasePath: "/admin",
	})
	defer h.Close() // ends the live streams

	send := func(method, path, body, token string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json") // writes take JSON only
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		fmt.Print(rr.Code, " ", rr.Body.String())
	}
	send("POST", "/admin/campaigns", `{"id":"drop","stock":100,"batch_size":10}`, "let-me-in")
	for _, user := range []string{"ann", "bob", "cy"} {
		_, _ = svc.Admit(context.Background(), couponq.Request{Campaign: "drop", User: user})
	}
	send("GET", "/admin/campaigns/drop", "", "let-me-in")
	send("PATCH", "/admin/campaigns/drop", `{"version":1,"stock":50,"interval_ms":500}`, "let-me-in")
	send("PATCH", "/admin/campaigns/drop", `{"version":1,"stock":60}`, "let-me-in")
	send("POST", "/admin/campaigns/drop/pause", "", "guess")
	// Output:
	// 201 {"id":"drop","version":1,"incarnation":1,"stock":100,"per_user_limit":1,"batch_size":10,"interval_ms":1000,"opens_at":null,"closes_at":null,"mode":"v2-queue-first","max_waiting":0,"paused":false,"shards":0,"pre_queue_ms":0,"state":"open","admitted":0,"waiting":0,"in_flight":0,"issued":0,"remaining":100,"rate_per_sec":10,"drain_eta_ms":0,"drained_per_sec":null}
	// 200 {"id":"drop","version":1,"incarnation":1,"stock":100,"per_user_limit":1,"batch_size":10,"interval_ms":1000,"opens_at":null,"closes_at":null,"mode":"v2-queue-first","max_waiting":0,"paused":false,"shards":0,"pre_queue_ms":0,"state":"open","admitted":3,"waiting":3,"in_flight":0,"issued":0,"remaining":100,"rate_per_sec":10,"drain_eta_ms":1000,"drained_per_sec":null}
	// 200 {"id":"drop","version":2,"incarnation":1,"stock":50,"per_user_limit":1,"batch_size":10,"interval_ms":500,"opens_at":null,"closes_at":null,"mode":"v2-queue-first","max_waiting":0,"paused":false,"shards":0,"pre_queue_ms":0,"state":"open","admitted":3,"waiting":3,"in_flight":0,"issued":0,"remaining":50,"rate_per_sec":20,"drain_eta_ms":500,"drained_per_sec":null}
	// 409 {"error":{"code":"version_conflict","message":"campaign drop is at version 2, not 1: it changed since it was read; read it again"}}
	// 401 {"error":{"code":"unauthorized","message":"httpapi: unauthorized: a valid admin token is required"}}
}
