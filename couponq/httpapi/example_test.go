package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/httpapi"
	"github.com/couponq/couponq/couponq/memory"
)

func ExampleNew() {
	catalog, _ := couponq.NewCampaigns(couponq.Campaign{ID: "drop", Stock: 10})
	svc, _ := couponq.New(couponq.Config{Catalog: catalog, Queue: memory.NewQueue(nil)})
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
