package main

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

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const adminToken = "test-admin-token-0123456789"

func TestRouter(t *testing.T) {
	n, campaigns, err := newNode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	router, err := newRouter(n, campaigns, demoUsers, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
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

	for _, token := range []string{"ann-token", "bo-token"} {
		if code, body := do("POST", "/api/campaigns/spring-sale/entries", token); code != http.StatusAccepted {
			t.Fatalf("admit with %s: %d %s", token, code, body)
		}
	}
	for _, token := range []string{"ann-token", "bo-token"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := do("GET", "/api/campaigns/spring-sale/entries/me", token)
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
		if code, body := do("POST", "/api/campaigns/spring-sale/entries", token); code != http.StatusUnauthorized {
			t.Errorf("admit with token %q: %d %s, want 401", token, code, body)
		}
	}
	if code, body := do("GET", "/admin/campaigns", adminToken); code != http.StatusOK || !strings.Contains(body, `"spring-sale"`) {
		t.Errorf("admin list with the token: %d %s", code, body)
	}
	for _, token := range []string{"", "ann-token"} {
		if code, body := do("GET", "/admin/campaigns", token); code != http.StatusUnauthorized {
			t.Errorf("admin list with token %q: %d %s, want 401", token, code, body)
		}
	}
}

// run shuts down cleanly when its context ends (goleak checks that nothing
// is left running).
func TestRunShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.DiscardHandler), "127.0.0.1:0", adminToken) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if err := run(t.Context(), slog.New(slog.DiscardHandler), "127.0.0.1:0", "short"); err == nil {
		t.Error("run accepted a short admin token")
	}
}
