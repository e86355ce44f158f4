// Package demotest checks a framework example's router the same way for
// every framework: users admitted with their tokens are issued, requests
// without a user token get 401, and the admin API answers only the admin
// token.
package demotest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/couponq/couponq/examples/internal/demo"
)

// AdminToken is the admin token the checks use.
const AdminToken = "test-admin-token-0123456789"

// Router checks router end to end over HTTP on the demo node.
func Router(t *testing.T, router demo.Router) {
	n, campaigns, err := demo.NewNode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	h, err := router(n, campaigns, AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	do := func(method, path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	entries := "/api/campaigns/" + demo.Campaign + "/entries"

	for _, token := range []string{"ann-token", "bo-token"} {
		if code, body := do("POST", entries, token); code != http.StatusAccepted {
			t.Fatalf("admit with %s: %d %s", token, code, body)
		}
	}
	for _, token := range []string{"ann-token", "bo-token"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := do("GET", entries+"/me", token)
			if code != http.StatusOK {
				t.Fatalf("status with %s: %d %s", token, code, body)
			}
			var st struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("status with %s: %v: %s", token, err, body)
			}
			if st.State == "issued" {
				break
			}
			if st.State != "waiting" && st.State != "in_flight" || time.Now().After(deadline) {
				t.Fatalf("status with %s: %s", token, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	for _, token := range []string{"", "nobody-token"} {
		if code, body := do("POST", entries, token); code != http.StatusUnauthorized {
			t.Errorf("admit with token %q: %d %s, want 401", token, code, body)
		}
	}
	if code, body := do("GET", "/admin/campaigns", AdminToken); code != http.StatusOK || !strings.Contains(body, `"`+demo.Campaign+`"`) {
		t.Errorf("admin list with the token: %d %s", code, body)
	}
	for _, token := range []string{"", "ann-token"} {
		if code, body := do("GET", "/admin/campaigns", token); code != http.StatusUnauthorized {
			t.Errorf("admin list with token %q: %d %s, want 401", token, code, body)
		}
	}
}

// Shutdown checks that demo.Serve with router returns cleanly when its
// context ends, and refuses a short admin token.
func Shutdown(t *testing.T, router demo.Router) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- demo.Serve(ctx, slog.New(slog.DiscardHandler), "127.0.0.1:0", AdminToken, router) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := demo.Serve(t.Context(), slog.New(slog.DiscardHandler), "127.0.0.1:0", "short", router); err == nil {
		t.Error("Serve accepted a short admin token")
	}
}
