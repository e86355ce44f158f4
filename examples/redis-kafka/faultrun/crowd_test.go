package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
)

// A press that gets no answer, or a 5xx, is tried again at the other api;
// the 202 that finally comes is what the user holds.
func TestPressFailsOverToTheOtherAPI(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable"}}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"entry":7,"state":"waiting"}`))
	}))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens: a transport error

	c := newCrowd([]string{down.URL, up.URL}, []string{"c"}, 1, "u", 0, 1)
	m := c.users[0]
	c.press(context.Background(), m, 0)
	if !m.Accepted || m.Entry != 7 || m.API != 2 {
		t.Fatalf("user after the press: %+v", m.Client)
	}
	var outcomes []string
	for _, p := range c.pressLog() {
		outcomes = append(outcomes, p.Outcome)
	}
	// transport at api-1, 503 at api-2, transport at api-1 again, then 202 at api-2.
	want := []string{"transport", "http_503", "transport", "accepted"}
	if len(outcomes) != len(want) {
		t.Fatalf("presses %v, want %v", outcomes, want)
	}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Fatalf("presses %v, want %v", outcomes, want)
		}
	}
}

// A 4xx answer is final: no retry, and the user is not accepted.
func TestPressSoldOutIsFinal(t *testing.T) {
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"error":{"code":"sold_out"}}`))
	}))
	defer api.Close()
	c := newCrowd([]string{api.URL}, []string{"c"}, 1, "u", 0, 1)
	m := c.users[0]
	c.press(context.Background(), m, 0)
	if m.Accepted || m.Door != "sold_out" || calls.Load() != 1 {
		t.Fatalf("user %+v after %d calls", m.Client, calls.Load())
	}
}

// Status polls read outcomes, and not_found (an entry the line forgot) is
// remembered even if a later poll finds it again.
func TestPollReadsOutcomes(t *testing.T) {
	var polls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch polls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found"}}`))
		case 2:
			_, _ = w.Write([]byte(`{"state":"waiting"}`))
		default:
			_, _ = w.Write([]byte(`{"state":"issued","issuance_id":"abc"}`))
		}
	}))
	defer api.Close()
	c := newCrowd([]string{api.URL}, []string{"c"}, 1, "u", 0, 1)
	m := c.users[0]
	m.Accepted = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := c.poll(ctx, 1, 1000, time.Millisecond, func() bool { return true }); left != 0 {
		t.Fatalf("%d left undecided", left)
	}
	got := c.clients()[0]
	if got.Final != "issued" || got.IssuanceID != "abc" || !got.NotFoundSeen || !got.Terminal() {
		t.Fatalf("client %+v", got)
	}
}

// The router takes an api whose /readyz fails out of rotation: presses
// meant for it go to the other, and none fails.
func TestPressAvoidsAnAPIThatIsNotReady(t *testing.T) {
	var draining atomic.Bool
	draining.Store(true)
	var hits [2]atomic.Int64
	apis := make([]*httptest.Server, 2)
	for i := range apis {
		apis[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" {
				if i == 0 && draining.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			hits[i].Add(1)
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"entry":1,"state":"waiting"}`))
		}))
		defer apis[i].Close()
	}
	c := newCrowd([]string{apis[0].URL, apis[1].URL}, []string{"c"}, 2, "u", 0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.watchReady(ctx, []string{apis[0].URL, apis[1].URL}, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return !c.ready(0) && c.ready(1) })
	c.press(context.Background(), c.users[0], 0)
	if hits[0].Load() != 0 || hits[1].Load() != 1 || c.users[0].API != 2 {
		t.Fatalf("a press meant for the draining api-1: api-1 got %d, api-2 %d; the user: %+v", hits[0].Load(), hits[1].Load(), c.users[0].Client)
	}
	draining.Store(false)
	waitFor(t, func() bool { return c.ready(0) })
	c.press(context.Background(), c.users[1], 0)
	if hits[0].Load() != 1 {
		t.Fatalf("api-1 back in rotation got %d presses, want 1", hits[0].Load())
	}
	for _, p := range c.pressLog() {
		if p.Outcome != "accepted" {
			t.Fatalf("a press failed: %+v", p)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reusedEntries counts numbers given to two or more accepted clients;
// clients never accepted do not count.
func TestReusedEntries(t *testing.T) {
	cs := []check.Client{
		{User: "a", Accepted: true, Entry: 1}, {User: "b", Accepted: true, Entry: 1},
		{User: "c", Accepted: true, Entry: 2}, {User: "d", Accepted: false, Entry: 2},
		{User: "e", Accepted: true, Entry: 3}, {User: "f", Accepted: true, Entry: 3}, {User: "g", Accepted: true, Entry: 3},
	}
	if got := reusedEntries(cs); got != 2 {
		t.Fatalf("reusedEntries = %d, want 2", got)
	}
}
