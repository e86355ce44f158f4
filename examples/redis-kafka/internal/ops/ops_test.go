package ops_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

func TestRedactArgs(t *testing.T) {
	const tok = "the-admin-token-0123456789"
	cases := map[string][2][]string{
		"separate":       {{"api", "-admin-token", tok, "-addr", ":80"}, {"api", "-admin-token", ops.Redacted, "-addr", ":80"}},
		"inline":         {{"api", "-admin-token=" + tok}, {"api", "-admin-token=" + ops.Redacted}},
		"double dash":    {{"api", "--admin-token", tok}, {"api", "--admin-token", ops.Redacted}},
		"double inline":  {{"api", "--admin-token=" + tok}, {"api", "--admin-token=" + ops.Redacted}},
		"last, no value": {{"api", "-admin-token"}, {"api", "-admin-token"}},
		"file is fine":   {{"api", "-admin-token-file", "/run/secrets/t"}, {"api", "-admin-token-file", "/run/secrets/t"}},
		"url dsn": {{"worker", "-postgres", "postgres://couponq:s3cret@db:5432/couponq?sslmode=disable"},
			{"worker", "-postgres", "postgres://couponq:" + ops.Redacted + "@db:5432/couponq?sslmode=disable"}},
		"url dsn, no password": {{"worker", "-postgres=postgres://couponq@db/couponq"}, {"worker", "-postgres=postgres://couponq@db/couponq"}},
		"keyword dsn": {{"worker", "-postgres", "host=db user=couponq password=s3cret dbname=couponq"},
			{"worker", "-postgres", "host=db user=couponq password=" + ops.Redacted + " dbname=couponq"}},
		"quoted keyword dsn": {{"worker", "-postgres", `host=db password='s3 cret' dbname=x`},
			{"worker", "-postgres", "host=db password=" + ops.Redacted + " dbname=x"}},
		"program name kept": {{"-admin-token", "x"}, {"-admin-token", "x"}},
	}
	for name, c := range cases {
		in := append([]string(nil), c[0]...)
		assert.Equal(t, c[1], ops.RedactArgs(in), name)
		assert.Equal(t, c[0], in, name+": the input is untouched")
	}
}

func TestDebugVarsShowNoSecrets(t *testing.T) {
	const tok = "the-admin-token-0123456789"
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"api", "-admin-token", tok, "-postgres=postgres://u:pg-s3cret@db/x", "-prefix", "demo"}

	n, err := node.New(node.Config{})
	require.NoError(t, err)
	srv := httptest.NewServer(ops.Handler(n, prometheus.NewRegistry()))
	defer srv.Close()
	runtime.GC() // "heap" reports the last collection's figures
	res, err := srv.Client().Get(srv.URL + "/debug/vars")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	srv.Client().CloseIdleConnections()

	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	assert.NotContains(t, string(body), tok)
	assert.NotContains(t, string(body), "pg-s3cret")
	var vars map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &vars), "still JSON")
	var cmdline []string
	require.NoError(t, json.Unmarshal(vars["cmdline"], &cmdline))
	assert.Equal(t, []string{"api", "-admin-token", ops.Redacted, "-postgres=postgres://u:" + ops.Redacted + "@db/x", "-prefix", "demo"}, cmdline)
	assert.Contains(t, vars, "memstats", "the other variables are all there")
	var heap ops.HeapVar
	require.NoError(t, json.Unmarshal(vars["heap"], &heap))
	assert.Positive(t, heap.GCs, "collections so far")
	assert.Positive(t, heap.LiveBytes, "the live heap after the last collection")
}
