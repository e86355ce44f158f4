package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/couponq/couponq/couponq"
)

// Every error answer is JSON, the mux's 405 included.
func TestMethodNotAllowedIsJSON(t *testing.T) {
	svc, _ := memService(t, couponq.Campaign{ID: "drop", Stock: 1, BatchSize: 10, Interval: time.Second})
	srv := newServer(t, svc)

	resp, body := do(t, srv, "GET", "/api/campaigns/drop/entries", "alice", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "method_not_allowed", code(body))
	assert.Equal(t, "POST", resp.Header.Get("Allow"))

	resp, body = do(t, srv, "DELETE", "/api/campaigns/drop/entries/me", "alice", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "method_not_allowed", code(body))
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}

// A full line answers 410 line_full: final for the user, like sold_out.
func TestLineFull(t *testing.T) {
	svc, _ := memService(t, couponq.Campaign{ID: "drop", Stock: 5, BatchSize: 10, Interval: time.Second, MaxWaiting: 1})
	srv := newServer(t, svc)

	resp, _ := do(t, srv, "POST", "/api/campaigns/drop/entries", "alice", "")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, body := do(t, srv, "POST", "/api/campaigns/drop/entries", "bob", "")
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	assert.Equal(t, "line_full", code(body))
}
