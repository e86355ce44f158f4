package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
)

// fixedService answers every admission with the same fresh ticket at once,
// so the benchmark measures the handler alone.
type fixedService struct{}

func (fixedService) Admit(_ context.Context, r couponq.Request) (couponq.Ticket, error) {
	return couponq.Ticket{Campaign: r.Campaign, User: r.User, Entry: 12345, Position: 678, EstimatedWait: 6780 * time.Millisecond, State: couponq.StateWaiting}, nil
}

func (fixedService) Status(_ context.Context, campaign, user string) (couponq.Status, error) {
	return couponq.Status{Campaign: campaign, User: user, State: couponq.StateWaiting, Entry: 12345, Position: 678}, nil
}

// discard is a ResponseWriter that keeps nothing but its header map.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkAdmitHandler is the admission handler's own cost per request
// (routing, the user, the body, the answer), against a handler that only
// drains the body and writes a fixed answer (the bench tool's no-op).
func BenchmarkAdmitHandler(b *testing.B) {
	h, err := httpapi.New(httpapi.Config{Service: fixedService{}, User: httpapi.HeaderUser("X-User")})
	if err != nil {
		b.Fatal(err)
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
		body string
	}{{"noop", noop, ""}, {"v2-empty-body", h, ""}, {"v2-request-id", h, `{"request_id":"r-1"}`}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r, _ := http.NewRequest("POST", "/campaigns/spring-sale/entries", strings.NewReader(tc.body))
				r.Header.Set("X-User", "u-123456")
				clear(w.h)
				tc.h.ServeHTTP(w, r)
			}
		})
	}
}
