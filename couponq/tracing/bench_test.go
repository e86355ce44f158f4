package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/tracing"
)

// BenchmarkStart measures one stage as the pipeline runs it: Start, Carrier,
// End. "admit" starts a root (no parent); "dispatch" continues the trace an
// entry carries. Providers: noop's; the SDK sampling nothing (an entry
// sampled out at the parent, the common case at a 1% ratio); the SDK
// sampling everything into an in-memory exporter (synchronously, so the
// export is in the time).
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	const carrier = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampled := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	admit := couponq.Entry{Campaign: "spring-sale", User: "user-42", RequestID: "r-9"}
	dispatch := couponq.Entry{Campaign: "spring-sale", User: "user-42", Number: 1234, Trace: carrier}
	exp := tracetest.NewInMemoryExporter()
	providers := []struct {
		name string
		tp   trace.TracerProvider
		// reset, if set, empties the exporter now and then, so memory stays flat.
		reset func()
	}{
		{"noop", noop.NewTracerProvider(), nil},
		{"sdk-unsampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample()))), nil},
		{"sdk-inmemory", sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), exp.Reset},
	}
	for _, p := range providers {
		tr, err := tracing.New(tracing.Config{TracerProvider: p.tp})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			stage string
			e     couponq.Entry
		}{{couponq.StageAdmit, admit}, {couponq.StageDispatch, dispatch}} {
			e := c.e
			if p.name == "sdk-unsampled" && c.stage == couponq.StageDispatch {
				e.Trace = unsampled // as PropagateUnsampled would carry it
			}
			b.Run(p.name+"/"+c.stage, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					_, s := tr.Start(ctx, c.stage, e)
					_ = s.Carrier()
					s.End(nil)
					if n++; p.reset != nil && n%4096 == 0 {
						p.reset()
					}
				}
			})
		}
		if sdk, ok := p.tp.(*sdktrace.TracerProvider); ok {
			_ = sdk.Shutdown(ctx)
		}
	}
	// A stage with no parent that is not a root stage: what a worker pays
	// for an entry that was sampled out at admission (it carries nothing).
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(ctx) }()
	tr, err := tracing.New(tracing.Config{TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sdk/dispatch-untraced-entry", func(b *testing.B) {
		b.ReportAllocs()
		e := dispatch
		e.Trace = ""
		for b.Loop() {
			_, s := tr.Start(ctx, couponq.StageDispatch, e)
			_ = s.Carrier()
			s.End(nil)
		}
	})
}
