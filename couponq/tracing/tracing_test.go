package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/tracing"
)

// sdk returns a provider that samples everything and records every span
// synchronously.
func sdk(t testing.TB, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(rec)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

func newTracer(t testing.TB, cfg tracing.Config) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.New(cfg)
	require.NoError(t, err)
	return tr
}

// request starts the span an HTTP middleware would have in the request's
// context.
func request(ctx context.Context, tp trace.TracerProvider) (context.Context, trace.Span) {
	return tp.Tracer("test").Start(ctx, "POST /entries", trace.WithSpanKind(trace.SpanKindServer))
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func byName(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			require.Nil(t, found, "one %s span", name)
			found = s
		}
	}
	require.NotNil(t, found, "a %s span", name)
	return found
}

// The admission's carrier, stored in the entry, makes the next stage (in
// another process, with another context) its child in the same trace.
func TestCarrierRoundTrip(t *testing.T) {
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp})

	rctx, req := request(context.Background(), tp)
	actx, admit := tr.Start(rctx, couponq.StageAdmit, couponq.Entry{Campaign: "spring-sale", User: "ann", RequestID: "r-1"})
	carrier := couponq.TraceFor(admit)
	admit.End(nil)
	req.End()
	asc := trace.SpanContextFromContext(actx)
	assert.Equal(t, fmt.Sprintf("00-%s-%s-01", asc.TraceID(), asc.SpanID()), carrier, "the default carrier is the W3C traceparent alone")

	e := couponq.Entry{Campaign: "spring-sale", User: "ann", Number: 7, Trace: carrier}
	dctx, dispatch := tr.Start(context.Background(), couponq.StageDispatch, e)
	e.Trace = dispatch.Carrier()
	dispatch.End(nil)
	_, consume := tr.Start(context.Background(), couponq.StageConsume, e)
	e.Trace = consume.Carrier()
	consume.End(nil)
	_, issue := tr.Start(context.Background(), couponq.StageIssue, e)
	issue.End(nil)
	assert.Equal(t, asc.TraceID(), trace.SpanContextFromContext(dctx).TraceID(), "the returned context holds the new span")

	spans := rec.Ended()
	require.Len(t, spans, 5)
	r, a := byName(t, spans, "POST /entries"), byName(t, spans, tracing.SpanAdmit)
	d, c, i := byName(t, spans, tracing.SpanDispatch), byName(t, spans, tracing.SpanConsume), byName(t, spans, tracing.SpanIssue)
	for _, s := range []sdktrace.ReadOnlySpan{a, d, c, i} {
		assert.Equal(t, r.SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
		assert.Empty(t, s.Links(), s.Name())
		assert.Equal(t, codes.Unset, s.Status().Code, s.Name())
	}
	assert.Equal(t, r.SpanContext().SpanID(), a.Parent().SpanID())
	assert.False(t, a.Parent().IsRemote(), "admit is a child of the span in ctx")
	assert.Equal(t, a.SpanContext().SpanID(), d.Parent().SpanID())
	assert.True(t, d.Parent().IsRemote(), "dispatch's parent came from the carrier")
	assert.Equal(t, d.SpanContext().SpanID(), c.Parent().SpanID())
	assert.Equal(t, c.SpanContext().SpanID(), i.Parent().SpanID())

	assert.Equal(t, trace.SpanKindInternal, a.SpanKind())
	assert.Equal(t, trace.SpanKindProducer, d.SpanKind())
	assert.Equal(t, trace.SpanKindConsumer, c.SpanKind())
	assert.Equal(t, trace.SpanKindInternal, i.SpanKind())

	assert.Equal(t, map[attribute.Key]attribute.Value{
		tracing.AttrCampaign:  attribute.StringValue("spring-sale"),
		tracing.AttrRequestID: attribute.StringValue("r-1"),
	}, attrs(a), "no entry number before the Queue gives one, no user")
	assert.Equal(t, map[attribute.Key]attribute.Value{
		tracing.AttrCampaign: attribute.StringValue("spring-sale"),
		tracing.AttrEntry:    attribute.Int64Value(7),
	}, attrs(d))
	assert.Equal(t, tracing.ScopeName, d.InstrumentationScope().Name)
}

// A tracestate travels too, in the key=value form, and comes back intact.
func TestCarrierWithTraceState(t *testing.T) {
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp})
	ts, err := trace.ParseTraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	require.NoError(t, err)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	_, admit := tr.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	carrier := admit.Carrier()
	admit.End(nil)
	assert.True(t, strings.HasPrefix(carrier, "traceparent=00-01020300000000000000000000000000-"), carrier)
	assert.Contains(t, carrier, "|tracestate=rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	assertJSONSafe(t, carrier)

	dctx, dispatch := tr.Start(context.Background(), couponq.StageDispatch, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: carrier})
	dispatch.End(nil)
	got := trace.SpanContextFromContext(dctx)
	assert.Equal(t, remote.TraceID(), got.TraceID())
	assert.Equal(t, ts.String(), got.TraceState().String())
	spans := rec.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, spans[0].SpanContext().SpanID(), spans[1].Parent().SpanID())
}

// assertJSONSafe checks that encoding/json writes the carrier verbatim
// (no escapes), so a wire message carries it byte for byte.
func assertJSONSafe(t *testing.T, carrier string) {
	t.Helper()
	b, err := json.Marshal(carrier)
	require.NoError(t, err)
	assert.Equal(t, `"`+carrier+`"`, string(b))
}

// A carrier Start cannot read starts a new trace, whatever the stage: no
// panic, no parent, the couponq.carrier_invalid attribute, and a link to
// the span in ctx if there is one.
func TestUnreadableCarrierStartsNewTrace(t *testing.T) {
	valid := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	bad := map[string]string{
		"garbage":            "garbage",
		"short":              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"upper-case hex":     strings.ToUpper(valid),
		"zero trace id":      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"zero span id":       "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"version ff":         "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"too long":           valid + strings.Repeat("-0", couponq.MaxTraceLen),
		"bad escape":         "traceparent=" + valid + "|tracestate=a%Z1",
		"cut escape":         "traceparent=" + valid + "%4",
		"empty key":          "=" + valid,
		"no traceparent":     "tracestate=rojo=1",
		"field without '='":  "traceparent=" + valid + "|x",
		"control byte":       valid + "\n",
		"non-ascii":          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
		"separator only":     "|",
		"traceparent=":       "traceparent=",
		"binary":             "\x00\xff\x01",
		"json-looking":       `{"traceparent":"` + valid + `"}`,
		"stray percent bare": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-%1",
	}
	for name, carrier := range bad {
		t.Run(name, func(t *testing.T) {
			tp, rec := sdk(t)
			tr := newTracer(t, tracing.Config{TracerProvider: tp})
			for _, stage := range []string{couponq.StageDispatch, couponq.StageConsume, couponq.StageIssue, couponq.StageAdmit} {
				_, s := tr.Start(context.Background(), stage, couponq.Entry{Campaign: "c", User: "u", Number: 3, Trace: carrier})
				assert.NotEmpty(t, s.Carrier(), "the new trace is carried on")
				s.End(nil)
			}
			ctx, consumer := request(context.Background(), tp)
			_, s := tr.Start(ctx, couponq.StageConsume, couponq.Entry{Campaign: "c", User: "u", Number: 3, Trace: carrier})
			s.End(nil)
			consumer.End()

			spans := rec.Ended()
			require.Len(t, spans, 6)
			for _, sp := range spans[:4] {
				assert.False(t, sp.Parent().IsValid(), "%s: a root", sp.Name())
				assert.Equal(t, attribute.BoolValue(true), attrs(sp)[tracing.AttrCarrierInvalid], sp.Name())
				assert.Empty(t, sp.Links())
			}
			assert.False(t, spans[4].Parent().IsValid(), "a root even with a span in ctx")
			assert.NotEqual(t, spans[5].SpanContext().TraceID(), spans[4].SpanContext().TraceID())
			require.Len(t, spans[4].Links(), 1)
			assert.Equal(t, spans[5].SpanContext().SpanID(), spans[4].Links()[0].SpanContext.SpanID(), "linked to the span in ctx")
		})
	}
}

// Any string at all as a carrier: Start never panics, and every carrier it
// writes (all but an unsampled parent's child's) is within
// couponq.MaxTraceLen and reads back.
func FuzzStart(f *testing.F) {
	for _, s := range []string{"", "x", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01|tracestate=a=b%7Cc", "a=%", "=|=", "%%%"} {
		f.Add(s)
	}
	tp, _ := sdk(f)
	tr := newTracer(f, tracing.Config{TracerProvider: tp, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	f.Fuzz(func(t *testing.T, carrier string) {
		if carrier == "" {
			return // no parent: a consume span starts nothing (TestRoots)
		}
		ctx, s := tr.Start(context.Background(), couponq.StageConsume, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: carrier})
		c := s.Carrier()
		s.End(nil)
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !sc.IsSampled() {
			require.Empty(t, c, "an unsampled parent's child carries nothing")
			return
		}
		require.NotEmpty(t, c)
		require.LessOrEqual(t, len(c), couponq.MaxTraceLen)
		ctx, s2 := tr.Start(context.Background(), couponq.StageIssue, couponq.Entry{Campaign: "c", Trace: c})
		s2.End(nil)
		require.Equal(t, trace.SpanContextFromContext(ctx).TraceID().String(), strings.Split(strings.TrimPrefix(c, "traceparent="), "-")[1])
	})
}

// Sold out, a duplicate, a full line, a campaign not open or closed, a
// malformed or unknown request: answers, not failures. Everything else
// fails the span.
func TestEndOutcomesAndFailures(t *testing.T) {
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp})
	cases := []struct {
		err  error
		code string
		fail bool
	}{
		{nil, "", false},
		{fmt.Errorf("%w: spring-sale", couponq.ErrSoldOut), couponq.CodeSoldOut, false},
		{couponq.ErrDuplicate, couponq.CodeDuplicate, false},
		{fmt.Errorf("x: %w", couponq.ErrLineFull), couponq.CodeLineFull, false},
		{couponq.ErrNotOpen, couponq.CodeNotOpen, false},
		{couponq.ErrClosed, couponq.CodeClosed, false},
		{couponq.ErrInvalidID, couponq.CodeInvalidID, false},
		{couponq.ErrUnknownCampaign, couponq.CodeUnknownCampaign, false},
		{fmt.Errorf("redis: %w", couponq.ErrUnavailable), couponq.CodeUnavailable, true},
		{couponq.ErrBusy, couponq.CodeBusy, true},
		{context.Canceled, couponq.CodeUnavailable, true},
		{context.DeadlineExceeded, couponq.CodeUnavailable, true},
		{errors.New("boom"), couponq.CodeInternal, true},
	}
	for _, c := range cases {
		_, s := tr.Start(context.Background(), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
		s.End(c.err)
	}
	spans := rec.Ended()
	require.Len(t, spans, len(cases))
	for k, c := range cases {
		s := spans[k]
		name := fmt.Sprint(c.err)
		if c.code == "" {
			assert.NotContains(t, attrs(s), tracing.AttrCode, name)
		} else {
			assert.Equal(t, attribute.StringValue(c.code), attrs(s)[tracing.AttrCode], name)
		}
		assert.Equal(t, c.code == "" || tracing.IsOutcome(c.code), !c.fail, name)
		if c.fail {
			assert.Equal(t, codes.Error, s.Status().Code, name)
			assert.Equal(t, c.err.Error(), s.Status().Description, name)
			require.Len(t, s.Events(), 1, name)
			assert.Equal(t, "exception", s.Events()[0].Name, name)
		} else {
			assert.Equal(t, codes.Unset, s.Status().Code, name)
			assert.Empty(t, s.Events(), name)
		}
	}
}

// User IDs are personal data: off unless asked for.
func TestRecordUser(t *testing.T) {
	for _, on := range []bool{false, true} {
		tp, rec := sdk(t)
		tr := newTracer(t, tracing.Config{TracerProvider: tp, RecordUser: on})
		for _, stage := range []string{couponq.StageAdmit, couponq.StageDispatch, couponq.StageConsume, couponq.StageIssue} {
			ctx, parent := request(context.Background(), tp)
			_, s := tr.Start(ctx, stage, couponq.Entry{Campaign: "c", User: "ann@example.com", Number: 2})
			// As the issuer fails: its errors name the entry key.
			s.End(fmt.Errorf("issuer: record outcome of c/2/ann@example.com: %w", errors.New("redis: i/o timeout")))
			parent.End()
		}
		spans := rec.Ended()
		require.Len(t, spans, 8)
		for _, s := range spans {
			if s.Name() == "POST /entries" {
				continue
			}
			require.Len(t, s.Events(), 1)
			msg := attribute.NewSet(s.Events()[0].Attributes...)
			got, _ := msg.Value("exception.message")
			typ, _ := msg.Value("exception.type")
			assert.Equal(t, "exception", s.Events()[0].Name)
			assert.Equal(t, codes.Error, s.Status().Code)
			if on {
				assert.Equal(t, attribute.StringValue("ann@example.com"), attrs(s)[tracing.AttrUser], s.Name())
				assert.Equal(t, "issuer: record outcome of c/2/ann@example.com: redis: i/o timeout", got.AsString())
				assert.Equal(t, "issuer: record outcome of c/2/ann@example.com: redis: i/o timeout", s.Status().Description)
			} else {
				assert.NotContains(t, attrs(s), tracing.AttrUser, s.Name())
				for _, kv := range s.Attributes() {
					assert.NotContains(t, kv.Value.Emit(), "ann", "no attribute holds the user ID")
				}
				assert.Equal(t, "issuer: record outcome of c/2/[user]: redis: i/o timeout", got.AsString(), "masked")
				assert.Equal(t, "issuer: record outcome of c/2/[user]: redis: i/o timeout", s.Status().Description)
				assert.Equal(t, "*fmt.wrapError", typ.AsString())
			}
		}
	}
}

// When the parent comes from the entry and ctx holds a span of another
// trace (the consumer's own), the stage's span links to it; a ctx span of
// the entry's own trace needs no link.
func TestLinksToContextSpan(t *testing.T) {
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp})
	_, admit := tr.Start(context.Background(), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	carrier := admit.Carrier()
	admit.End(nil)

	pollCtx, poll := tp.Tracer("test").Start(context.Background(), "kafka poll", trace.WithSpanKind(trace.SpanKindConsumer))
	_, consume := tr.Start(pollCtx, couponq.StageConsume, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: carrier})
	issueCarrier := consume.Carrier()
	consume.End(nil)
	poll.End()

	consumeCtx := trace.ContextWithSpanContext(context.Background(), spanContextOf(t, rec, tracing.SpanConsume))
	_, issue := tr.Start(consumeCtx, couponq.StageIssue, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: issueCarrier})
	issue.End(nil)

	spans := rec.Ended()
	a, c, p, i := byName(t, spans, tracing.SpanAdmit), byName(t, spans, tracing.SpanConsume), byName(t, spans, "kafka poll"), byName(t, spans, tracing.SpanIssue)
	assert.Equal(t, a.SpanContext().SpanID(), c.Parent().SpanID(), "the entry's trace is the parent")
	require.Len(t, c.Links(), 1)
	assert.Equal(t, p.SpanContext(), c.Links()[0].SpanContext, "linked to the consumer's span")
	assert.Equal(t, c.SpanContext().SpanID(), i.Parent().SpanID())
	assert.Empty(t, i.Links(), "ctx's span is of the same trace: no link")
}

func spanContextOf(t *testing.T, rec *tracetest.SpanRecorder, name string) trace.SpanContext {
	return byName(t, rec.Ended(), name).SpanContext()
}

// Without a parent only the Roots stages start a trace; the others cost
// nothing and carry nothing.
func TestRoots(t *testing.T) {
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp})
	ctx := context.Background()
	for _, stage := range []string{couponq.StageDispatch, couponq.StageConsume, couponq.StageIssue, "custom"} {
		got, s := tr.Start(ctx, stage, couponq.Entry{Campaign: "c", User: "u", Number: 1})
		assert.Equal(t, ctx, got)
		assert.Empty(t, s.Carrier())
		s.End(errors.New("boom"))
	}
	assert.Empty(t, rec.Ended())
	_, s := tr.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	assert.NotEmpty(t, s.Carrier())
	s.End(nil)
	require.Len(t, rec.Ended(), 1)
	assert.False(t, rec.Ended()[0].Parent().IsValid())

	tr = newTracer(t, tracing.Config{TracerProvider: tp, Roots: []string{couponq.StageConsume}})
	_, s = tr.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	assert.Empty(t, s.Carrier(), "admit is not a root stage now")
	s.End(nil)
	_, s = tr.Start(ctx, couponq.StageConsume, couponq.Entry{Campaign: "c", User: "u", Number: 1})
	s.End(nil)
	require.Len(t, rec.Ended(), 2)
	assert.Equal(t, tracing.SpanConsume, rec.Ended()[1].Name())

	// A stage the Tracer does not know still gets a span under a parent.
	pctx, parent := request(ctx, tp)
	_, s = tr.Start(pctx, "custom", couponq.Entry{Campaign: "c"})
	s.End(nil)
	parent.End()
	assert.Equal(t, "couponq.custom", rec.Ended()[2].Name())
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []tracing.Config{
		{Roots: []string{"admission"}},
		{Roots: []string{couponq.StageAdmit, ""}},
		{MessagingSystem: "Kafka"},
		{MessagingSystem: "kafka topic"},
		{MessagingSystem: strings.Repeat("k", 65)},
	} {
		_, err := tracing.New(cfg)
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "%+v", cfg)
	}
	tp, rec := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp, MessagingSystem: "kafka"})
	ctx, parent := request(context.Background(), tp)
	for _, stage := range []string{couponq.StageAdmit, couponq.StageDispatch, couponq.StageConsume, couponq.StageIssue} {
		_, s := tr.Start(ctx, stage, couponq.Entry{Campaign: "c", User: "u", Number: 1})
		s.End(nil)
	}
	parent.End()
	spans := rec.Ended()
	assert.NotContains(t, attrs(byName(t, spans, tracing.SpanAdmit)), attribute.Key("messaging.system"))
	assert.NotContains(t, attrs(byName(t, spans, tracing.SpanIssue)), attribute.Key("messaging.system"))
	d, c := attrs(byName(t, spans, tracing.SpanDispatch)), attrs(byName(t, spans, tracing.SpanConsume))
	assert.Equal(t, "kafka", d["messaging.system"].AsString())
	assert.Equal(t, "send", d["messaging.operation.type"].AsString())
	assert.Equal(t, "kafka", c["messaging.system"].AsString())
	assert.Equal(t, "process", c["messaging.operation.type"].AsString())
}

// Sampled out at the parent: by default nothing is carried, so the entry
// costs nothing downstream; with PropagateUnsampled the "no" is carried
// and honoured.
func TestUnsampled(t *testing.T) {
	tp, rec := sdk(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	tr := newTracer(t, tracing.Config{TracerProvider: tp})
	_, s := tr.Start(context.Background(), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	assert.Empty(t, s.Carrier())
	s.End(errors.New("boom"))

	tr = newTracer(t, tracing.Config{TracerProvider: tp, PropagateUnsampled: true})
	_, s = tr.Start(context.Background(), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	c := s.Carrier()
	s.End(nil)
	assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`, c)

	// A process that samples everything at the root still honours it.
	tp2, rec2 := sdk(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	tr2 := newTracer(t, tracing.Config{TracerProvider: tp2, PropagateUnsampled: true})
	_, s = tr2.Start(context.Background(), couponq.StageDispatch, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: c})
	assert.Equal(t, strings.Split(c, "-")[1], strings.Split(s.Carrier(), "-")[1], "the same (unsampled) trace goes on")
	s.End(nil)
	assert.Empty(t, rec.Ended())
	assert.Empty(t, rec2.Ended())
}

// A no-op provider: Start hands ctx back and allocates nothing.
func TestNoopProvider(t *testing.T) {
	tr := newTracer(t, tracing.Config{TracerProvider: noop.NewTracerProvider()})
	ctx := context.Background()
	e := couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	allocs := testing.AllocsPerRun(100, func() {
		got, s := tr.Start(ctx, couponq.StageDispatch, e)
		if got != ctx || s.Carrier() != "" {
			panic("noop")
		}
		s.End(errors.ErrUnsupported)
	})
	assert.Zero(t, allocs)
}

// Baggage set with a composite propagator rides along; a carrier that
// would pass couponq.MaxTraceLen keeps only its traceparent.
func TestBaggage(t *testing.T) {
	tp, _ := sdk(t)
	tr := newTracer(t, tracing.Config{TracerProvider: tp, Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	m, err := baggage.NewMember("tenant", "acme|eu")
	require.NoError(t, err)
	b, err := baggage.New(m)
	require.NoError(t, err)
	ctx := baggage.ContextWithBaggage(context.Background(), b)
	_, s := tr.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	c := s.Carrier()
	s.End(nil)
	assert.Contains(t, c, "|baggage=tenant=acme%7Ceu", "'|' escaped")
	assertJSONSafe(t, c)
	dctx, s := tr.Start(context.Background(), couponq.StageDispatch, couponq.Entry{Campaign: "c", User: "u", Number: 1, Trace: c})
	s.End(nil)
	assert.Equal(t, "acme|eu", baggage.FromContext(dctx).Member("tenant").Value())

	big, err := baggage.NewMember("big", strings.Repeat("x", couponq.MaxTraceLen))
	require.NoError(t, err)
	b, err = baggage.New(big)
	require.NoError(t, err)
	_, s = tr.Start(baggage.ContextWithBaggage(context.Background(), b), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	c = s.Carrier()
	s.End(nil)
	assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, c, "cut down to the traceparent")
}

// The zero Config uses the global provider, even one set after New.
func TestGlobalProvider(t *testing.T) {
	tr := newTracer(t, tracing.Config{})
	tp, rec := sdk(t)
	otel.SetTracerProvider(tp)
	_, s := tr.Start(context.Background(), couponq.StageAdmit, couponq.Entry{Campaign: "c", User: "u"})
	s.End(nil)
	require.Len(t, rec.Ended(), 1)
	assert.Equal(t, tracing.SpanAdmit, rec.Ended()[0].Name())
}
