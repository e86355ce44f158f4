package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/couponq/couponq/internal/health"
)

// A stand-in for a client such as *kafkadispatch.Dispatcher.
type broker struct{ err error }

func (b broker) Ping(context.Context) error { return b.err }

func Example() {
	h, _ := health.New(health.Config{Checks: map[string]health.Check{
		"kafka": health.Ping(broker{}),
		// go-redis: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
		"redis": func(ctx context.Context) error { return nil },
	}})
	mux := http.NewServeMux() // an internal listener's, not the public API's
	mux.Handle("GET /livez", h.Liveness())
	mux.Handle("GET /readyz", h.Readiness())

	for _, path := range []string{"/livez", "/readyz"} {
		rr := httptest.NewRecorder()
		mux.ServeHTTP(rr, httptest.NewRequest("GET", path, nil))
		fmt.Print(path, " ", rr.Code, " ", rr.Body.String())
	}
	// Output:
	// /livez 200 {"status":"ok"}
	// /readyz 200 {"status":"ok","checks":{"kafka":"ok","redis":"ok"}}
}

func ExampleHandler_Readiness() {
	h, _ := health.New(health.Config{Checks: map[string]health.Check{
		"kafka": health.Ping(broker{err: errors.New("kafkadispatch: no leader for partition 3")}),
		"redis": func(ctx context.Context) error { return nil },
	}})
	rr := httptest.NewRecorder()
	h.Readiness().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Println(rr.Code, "Retry-After:", rr.Header().Get("Retry-After"))
	fmt.Print(rr.Body.String())
	// Output:
	// 503 Retry-After: 1
	// {"status":"unavailable","checks":{"kafka":"kafkadispatch: no leader for partition 3","redis":"ok"}}
}

func ExamplePing() {
	check := health.Ping(broker{err: errors.New("broker down")})
	fmt.Println(check(context.Background()))
	// Output: broker down
}
