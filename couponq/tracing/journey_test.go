package tracing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/couponq/tracing"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/wire"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/lock"
)

// journey is one way to run the pipeline end to end.
type journey struct {
	queue func(t *testing.T) couponq.Queue // nil: memory.NewQueue
	batch bool                             // the issuer's batch path
	wire  bool                             // entries pass through wire.Encode and Decode
	v1    bool                             // a ValidateFirst campaign (no dispatch span)
	// traceState: each request arrives with a remote parent holding a
	// tracestate, so the carriers take the key=value form.
	traceState bool
}

// Each admitted user's journey is one trace: the request's span (as an HTTP
// middleware starts it) ⊃ admit ⊃ dispatch ⊃ consume ⊃ issue, whichever
// queue, hand-off and issuer path carry it.
func TestJourney(t *testing.T) {
	for name, j := range map[string]journey{
		"scheduler":                       {},
		"scheduler/batch":                 {batch: true},
		"scheduler/wire":                  {wire: true},
		"scheduler/wire/batch":            {wire: true, batch: true},
		"scheduler/wire/batch/tracestate": {wire: true, batch: true, traceState: true},
		"v1":                              {v1: true},
		"v1/wire/batch/tracestate":        {v1: true, wire: true, batch: true, traceState: true},
	} {
		t.Run(name, func(t *testing.T) { runJourney(t, j) })
	}
}

// The same through Redis: the carrier waits in the line's trace hash. Skips
// without Redis unless CI is set (then it fails): scripts/redis.sh starts
// one and writes COUPONQ_REDIS_ADDR and COUPONQ_REDIS_CLUSTER to
// .cache/servers/redis/env.
func TestJourneyRedis(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		for name, j := range map[string]journey{
			"scheduler/wire/batch/tracestate": {wire: true, batch: true, traceState: true},
			"scheduler":                       {},
		} {
			t.Run(name, func(t *testing.T) {
				j.queue = func(t *testing.T) couponq.Queue {
					q, err := redisline.New(redisline.Config{Client: c, Prefix: redistest.Prefix(t, c)})
					require.NoError(t, err)
					return q
				}
				runJourney(t, j)
			})
		}
	})
}

// wireDispatcher sends every entry through the wire format, as a broker
// transport would, before handing it on.
type wireDispatcher struct {
	t    *testing.T
	next couponq.Dispatcher
}

func (w wireDispatcher) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	out := make([]couponq.Entry, len(batch))
	for k, e := range batch {
		got, err := wire.Decode(wire.Encode(e))
		if err != nil {
			return err
		}
		if got.Trace != e.Trace {
			w.t.Errorf("wire changed the trace of %s: %q became %q", e.User, e.Trace, got.Trace)
		}
		out[k] = got
	}
	return w.next.Dispatch(ctx, out)
}

func runJourney(t *testing.T, j journey) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr, err := tracing.New(tracing.Config{TracerProvider: tp})
	require.NoError(t, err)

	c := couponq.Campaign{ID: "journey", Stock: 2, BatchSize: 10, Interval: 5 * time.Millisecond}
	if j.v1 {
		c.Mode = couponq.ValidateFirst
		c.Stock = 3 // V1 refuses past the stock at the gate, before any span but admit
	}
	catalog, err := memline.NewRegistry(c)
	require.NoError(t, err)
	var q couponq.Queue = memline.NewQueue(nil)
	if j.queue != nil {
		q = j.queue(t)
	}
	transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
	require.NoError(t, err)
	var d couponq.Dispatcher = transport
	if j.wire {
		d = wireDispatcher{t: t, next: transport}
	}
	locker := lock.NewMemory()
	svc, err := admission.New(admission.Config{Catalog: catalog, Queue: q, Tracer: tr,
		Tally: memline.NewTally(), Locker: locker, Dispatcher: d})
	require.NoError(t, err)
	type runner interface {
		Start(context.Context) error
		Stop(context.Context) error
	}
	agenda, ok := q.(couponq.Agenda)
	require.True(t, ok)
	var mover runner
	// Without the exact cutoff the third user reaches the Store, so every
	// journey runs through every stage and the Store's sold-out answer
	// shows on the issue span.
	mover, err = scheduler.New(scheduler.Config{Catalog: catalog, Agenda: agenda, Queue: q,
		Dispatcher: d, Locker: locker, PollInterval: 5 * time.Millisecond, Tracer: tr, NoCutoff: true})
	require.NoError(t, err)
	icfg := issuing.Config{Consumer: transport, Store: memory.NewStore(), Catalog: catalog, Recorder: q, Tracer: tr, MaxBatch: 1}
	if j.batch {
		icfg.MaxBatch = 0
	}
	iss, err := issuing.New(icfg)
	require.NoError(t, err)
	require.Equal(t, j.batch, iss.Batching())

	// Everyone is admitted before the pipeline runs, each inside the span
	// of their own HTTP request.
	users := []string{"ann", "bob", "cy"}
	requests := map[string]trace.SpanContext{}
	for _, u := range users {
		rctx := ctx
		if j.traceState {
			ts, err := trace.ParseTraceState("vendor=" + u + ",other=x")
			require.NoError(t, err)
			// The request arrives with a sampled remote parent and a tracestate.
			remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceIDFor(u), SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
			rctx = trace.ContextWithRemoteSpanContext(ctx, remote)
		}
		rctx, req := request(rctx, tp)
		_, err := svc.Admit(rctx, couponq.Request{Campaign: c.ID, User: u, RequestID: "req-" + u})
		req.End()
		require.NoError(t, err)
		requests[u] = req.SpanContext()
	}
	require.NoError(t, iss.Start(ctx))
	require.NoError(t, mover.Start(ctx))
	defer func() {
		require.NoError(t, mover.Stop(context.Background()))
		require.NoError(t, iss.Stop(context.Background()))
	}()
	states := map[string]couponq.State{}
	for _, u := range users {
		require.Eventually(t, func() bool {
			st, err := svc.Status(ctx, c.ID, u)
			states[u] = st.State
			return err == nil && st.State.Terminal()
		}, 20*time.Second, time.Millisecond, "user %s decided", u)
	}

	stages := []string{"POST /entries", tracing.SpanAdmit, tracing.SpanDispatch, tracing.SpanConsume, tracing.SpanIssue}
	if j.v1 {
		stages = []string{"POST /entries", tracing.SpanAdmit, tracing.SpanConsume, tracing.SpanIssue}
	}
	// A consume span ends after its outcome is recorded: wait for all.
	var traces map[trace.TraceID][]sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		traces = map[trace.TraceID][]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			traces[s.SpanContext().TraceID()] = append(traces[s.SpanContext().TraceID()], s)
		}
		for _, u := range users {
			if len(traces[requests[u].TraceID()]) < len(stages) {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "every stage of every journey ended")
	assert.Len(t, traces, len(users), "one trace per user, nothing else: %v", spanNames(rec.Ended()))

	soldOut := 0
	for _, u := range users {
		spans := traces[requests[u].TraceID()]
		require.Len(t, spans, len(stages), "user %s: %v", u, spanNames(spans))
		chain := make([]sdktrace.ReadOnlySpan, len(stages))
		for k, name := range stages {
			chain[k] = byName(t, spans, name)
		}
		assert.Equal(t, requests[u].SpanID(), chain[0].SpanContext().SpanID())
		for k := 1; k < len(chain); k++ {
			assert.Equal(t, chain[k-1].SpanContext().SpanID(), chain[k].Parent().SpanID(), "user %s: %s ⊂ %s", u, chain[k].Name(), chain[k-1].Name())
			assert.Equal(t, codes.Unset, chain[k].Status().Code, "user %s: %s", u, chain[k].Name())
			assert.Equal(t, c.ID, attrs(chain[k])[tracing.AttrCampaign].AsString())
			if j.queue == nil || k == 1 {
				// Redis keeps no request ID with a waiting entry: only the
				// admit span (and memory's later ones) know it.
				assert.Equal(t, "req-"+u, attrs(chain[k])[tracing.AttrRequestID].AsString(), "user %s: %s", u, chain[k].Name())
			}
			assert.NotContains(t, attrs(chain[k]), tracing.AttrUser)
			if j.traceState {
				assert.Equal(t, "vendor="+u+",other=x", chain[k].SpanContext().TraceState().String(), "the tracestate travelled")
			}
		}
		entry := attrs(chain[len(chain)-1])[tracing.AttrEntry].AsInt64()
		assert.Positive(t, entry)
		for _, s := range chain[2:] {
			assert.Equal(t, entry, attrs(s)[tracing.AttrEntry].AsInt64(), "%s knows the entry number", s.Name())
		}
		issue := chain[len(chain)-1]
		switch states[u] {
		case couponq.StateIssued:
			assert.NotContains(t, attrs(issue), tracing.AttrCode)
		case couponq.StateRejected:
			soldOut++
			assert.Equal(t, attribute.StringValue(couponq.CodeSoldOut), attrs(issue)[tracing.AttrCode], "sold out is an outcome, not a failure")
		}
	}
	if !j.v1 {
		assert.Equal(t, 1, soldOut, "the third user heard sold out from the Store")
	}
}

func traceIDFor(user string) trace.TraceID {
	var id trace.TraceID
	copy(id[:], "trace-"+user)
	return id
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%s(%s)", s.Name(), s.SpanContext().TraceID().String()[:8]))
	}
	return out
}

// wire.Encode and Decode keep every carrier this package writes intact:
// the bare traceparent and the key=value form (tracestate, baggage with
// escapes).
func TestWireCarriesTheCarrier(t *testing.T) {
	tp, _ := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	ts, err := trace.ParseTraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	require.NoError(t, err)
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	for name, ctx := range map[string]context.Context{
		"traceparent": context.Background(),
		"tracestate":  trace.ContextWithRemoteSpanContext(context.Background(), remote),
		"baggage":     withBaggage(t, "tenant", "a|b%c d"),
	} {
		t.Run(name, func(t *testing.T) {
			_, s := tr.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
			carrier := s.Carrier()
			s.End(nil)
			require.NotEmpty(t, carrier)
			e := couponq.Entry{Campaign: "c", User: "u", Number: 1, AdmittedAt: time.UnixMicro(1700000000000000).UTC(), Trace: carrier}
			b := wire.Encode(e)
			assert.Contains(t, string(b), `"trace":"`+carrier+`"`, "verbatim in the JSON")
			got, err := wire.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, e, got)
		})
	}
}

func withBaggage(t *testing.T, key, value string) context.Context {
	m, err := baggage.NewMemberRaw(key, value)
	require.NoError(t, err)
	b, err := baggage.New(m)
	require.NoError(t, err)
	return baggage.ContextWithBaggage(context.Background(), b)
}
