package ops_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/examples/redis-kafka/internal/ops"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Observer that notes what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
	lines  node.Lines
}

func (r *recorder) note(s string) { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }

func (r *recorder) OnAdmit(ev couponq.AdmitEvent)   { r.note("admit " + ev.Campaign) }
func (r *recorder) OnTick(ev dispatch.TickEvent)    { r.note("tick " + ev.Campaign) }
func (r *recorder) OnIssue(ev issuer.Event)         { r.note("issue " + ev.Entry.Campaign) }
func (r *recorder) OnStoreCall(issuer.StoreCall)    { r.note("store") }
func (r *recorder) OnOverIssue(ev issuer.OverIssue) { r.note("over " + ev.Campaign) }
func (r *recorder) seen() []string                  { r.mu.Lock(); defer r.mu.Unlock(); return r.events }

// lineRecorder also takes the node's Lines.
type lineRecorder struct{ recorder }

func (l *lineRecorder) ObserveLines(lines node.Lines) { l.lines = lines }

func TestObserversTellEveryMember(t *testing.T) {
	plain, lines := &recorder{}, &lineRecorder{}
	o := ops.Observers{plain, lines}
	o.OnAdmit(couponq.AdmitEvent{Campaign: "a"})
	o.OnTick(dispatch.TickEvent{Campaign: "b"})
	o.OnIssue(issuer.Event{Entry: couponq.Entry{Campaign: "c"}})
	o.OnStoreCall(issuer.StoreCall{})
	o.OnOverIssue(issuer.OverIssue{Campaign: "d"})
	want := []string{"admit a", "tick b", "issue c", "store", "over d"}
	assert.Equal(t, want, plain.seen())
	assert.Equal(t, want, lines.seen())

	n, err := node.New(node.Config{Observer: o})
	require.NoError(t, err)
	assert.Same(t, n, lines.lines, "the node hands its Lines to the member that reports line gauges")
}

func TestServeShutsDownWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	addr := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	free := ln.Addr().String()
	require.NoError(t, ln.Close())
	done := make(chan error, 1)
	go func() {
		done <- ops.Serve(ctx, log, 5*time.Second, func() { addr <- free }, ops.Listener{Name: "test", Addr: free, Handler: h})
	}()
	select {
	case <-addr:
	case err := <-done:
		t.Fatalf("Serve returned before it was ready: %v", err)
	}
	res, err := http.Get("http://" + free + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	require.NoError(t, res.Body.Close())
	assert.Equal(t, "hi", string(body))
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestServeReportsAListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ready := false
	err = ops.Serve(t.Context(), slog.New(slog.DiscardHandler), time.Second, func() { ready = true },
		ops.Listener{Name: "taken", Addr: ln.Addr().String(), Handler: http.NotFoundHandler()})
	assert.Error(t, err)
	assert.False(t, ready)
}
