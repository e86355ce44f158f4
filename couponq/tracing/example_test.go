package tracing_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/tracing"
	"github.com/couponq/couponq/node"
)

// A node traced with OpenTelemetry: each user's admission, dispatch,
// consumption and issuance are one trace under the user's HTTP request.
func Example() {
	ctx := context.Background()
	// In production: an OTLP exporter behind sdktrace.WithBatcher, and a
	// sampler such as sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)).
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(ctx)

	tracer, err := tracing.New(tracing.Config{TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	n, err := node.New(node.Config{
		Tracer:       tracer, // admission, the scheduler and the issuer share it
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	if err := n.Start(ctx); err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	if _, err := n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 2, Interval: 10 * time.Millisecond}); err != nil {
		panic(err)
	}

	users := []string{"ann", "bo", "cy"}
	requests := map[string]trace.TraceID{}
	for _, user := range users {
		// What an HTTP middleware (otelhttp, say) puts in the request's context.
		rctx, req := tp.Tracer("example").Start(ctx, "POST /entries", trace.WithSpanKind(trace.SpanKindServer))
		_, _ = n.Admit(rctx, couponq.Request{Campaign: "spring-sale", User: user})
		req.End()
		requests[user] = req.SpanContext().TraceID()
	}
	// Each journey's last span ends just after its outcome; wait, bounded.
	// ann's and bo's have five spans; cy's ends in the line, told sold out
	// there with no Store call (the exact cutoff hands the issuer only as
	// many entries as there are units), so it has two.
	for deadline := time.Now().Add(10 * time.Second); len(exporter.GetSpans()) < 5*2+2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for _, user := range users {
		fmt.Printf("%s: %s\n", user, chainOf(exporter.GetSpans(), requests[user]))
	}
	// Output:
	// ann: POST /entries > couponq.admit > couponq.dispatch > couponq.consume > couponq.issue
	// bo: POST /entries > couponq.admit > couponq.dispatch > couponq.consume > couponq.issue
	// cy: POST /entries > couponq.admit
}

// chainOf lists the spans of one trace from its root down, each the parent
// of the next, with the couponq.code the last one ended with.
func chainOf(spans tracetest.SpanStubs, id trace.TraceID) string {
	children := map[trace.SpanID]tracetest.SpanStub{}
	var s tracetest.SpanStub
	for _, sp := range spans {
		if sp.SpanContext.TraceID() != id {
			continue
		}
		if sp.Parent.IsValid() {
			children[sp.Parent.SpanID()] = sp
		} else {
			s = sp
		}
	}
	names := []string{s.Name}
	for {
		c, ok := children[s.SpanContext.SpanID()]
		if !ok {
			break
		}
		names, s = append(names, c.Name), c
	}
	out := strings.Join(names, " > ")
	for _, a := range s.Attributes {
		if a.Key == tracing.AttrCode {
			out += " (" + a.Value.AsString() + ")"
		}
	}
	return out
}
