// Package tracing adapts couponq's Tracer to OpenTelemetry, so each user's
// journey — admitted, dispatched, consumed, issued — is one trace, across
// the processes it passes through. It lives in its own module, so the core
// module does not require OpenTelemetry.
//
// # A trace
//
// With an HTTP middleware that starts a span per request (otelhttp, say), a
// user who was issued a coupon leaves one trace:
//
//	POST /api/campaigns/spring-sale/entries   (the middleware's, Server)   API process
//	└─ couponq.admit                          Internal                     API process
//	   └─ couponq.dispatch                    Producer                     the scheduler's leader
//	      └─ couponq.consume                  Consumer                     a worker
//	         └─ couponq.issue                 Internal                     the same worker
//
// A V1 (ValidateFirst) admission dispatches inside the request, so there
// its consume span is the admit span's child. The admit span ends when the
// request is answered; the entry may wait in line for minutes before its
// dispatch span starts, so expect a gap: that gap is the wait, and it is
// what a trace of a flash sale is usually read for.
//
// Between processes the trace travels in the entry (couponq.Entry.Trace):
// the admit span's context is stored with the waiting entry (in the
// in-memory line, or in the Redis backend's per-campaign trace hash), the
// dispatch span replaces it
// before the entry goes to the transport (wire's "trace" field in a Kafka
// message), and the consume span's is handed to the issue span. Every hop is
// parent to child, so a backend draws one tree per user.
//
// # Wiring
//
// One Tracer serves admission, the scheduler and the issuer; give it to
// the node as node.Config.Tracer:
//
//	import (
//		sdktrace "go.opentelemetry.io/otel/sdk/trace"
//
//		"github.com/couponq/couponq/couponq/tracing"
//		"github.com/couponq/couponq/node"
//	)
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithBatcher(exporter), // an OTLP exporter, say
//		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
//	)
//	tracer, err := tracing.New(tracing.Config{TracerProvider: tp})
//	n, err := node.New(node.Config{Tracer: tracer, ...})
//
// Admission takes its parent from the request's context, so mount the
// node's Handler behind the tracing middleware. Every process of
// the group should run a Tracer with the same Propagator (the default is
// fine); a process without one passes entries on with the trace they came
// with, so the chain skips that stage rather than breaking.
//
// # The carrier
//
// Span.Carrier is the span's context as the Propagator (default
// propagation.TraceContext) injects it. With the default propagator and no
// tracestate it is the W3C traceparent alone, 55 bytes:
//
//	00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//
// Anything more (a tracestate, or baggage with a composite propagator) is
// written "traceparent=…|tracestate=…", each field escaped so the carrier
// is printable ASCII that JSON writes verbatim and Redis stores as is. A
// carrier that would pass couponq.MaxTraceLen (512 bytes) keeps only its
// traceparent. A carrier Start cannot read — malformed, cut, from another
// propagator — starts a new trace, marked couponq.carrier_invalid; it
// never fails the stage.
//
// When a stage's parent comes from the entry and its context holds a span
// of another trace (a consumer library's own span, say), the stage's span
// links to that span, so either trace leads to the other.
//
// # Spans
//
// Names: couponq.admit, couponq.dispatch, couponq.consume, couponq.issue.
// Kinds follow the OpenTelemetry messaging conventions: the dispatch span
// sends the entry to the transport (Producer) and the consume span
// processes what was delivered (Consumer); admission and the Store's
// decision are work inside a process (Internal): the remote calls around
// them are the request's server span and, where the Store's driver is
// instrumented, its client spans. Config.MessagingSystem ("kafka") adds the
// messaging.* attributes to dispatch and consume; without it (the default)
// there are none, since the in-process transport is no messaging system.
//
// Attributes: couponq.campaign always; couponq.entry (the entry number)
// once there is one, so not on a V2 admit span; couponq.request_id when the
// request had one; couponq.user only with Config.RecordUser (user IDs are
// personal data; the entry number finds the user in the host's records).
// Without RecordUser the user ID is also masked, as "[user]", in the error
// message a failed span records (the issuer's errors name the entry key,
// the locks' errors the lock key, and both keys hold it).
//
// A span ended with an error gets couponq.code (couponq.Code of it). Sold
// out, duplicate, line full, not open, closed, and a malformed or unknown
// campaign or ID are answers, not failures: their spans keep status Unset.
// Any other error (unavailable, busy, internal, a context that ended)
// records the error and sets status Error. IsOutcome has the list.
//
// # Sampling
//
// Sample at the root, once per journey: for a flash sale of a million
// users, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)) in every
// process traces about 10,000 journeys whole and none in part. The
// decision is made where the trace starts — the request's span, or the
// admit span without one — and every later stage follows it: an entry
// sampled out carries no carrier (Config.PropagateUnsampled changes that),
// and a stage with no parent starts nothing unless Config.Roots lists it.
// A ratio at the workers instead would trace fragments of journeys.
//
// # Cost
//
// Start with a noop.TracerProvider returns at once: about 8 ns, no
// allocation. A stage of an entry sampled out at admission (no carrier, no
// parent) costs about 25 ns and nothing allocated. With the SDK, a span the
// sampler drops costs about 0.35 µs and 2 allocations at admission, 0.6 µs
// and 4 when it continues a carried (unsampled) trace — the SDK's and the
// API's own; the couponq attributes are only built for recording spans. A
// recorded stage, including the carrier and a synchronous in-memory export,
// costs about 5 µs and 9–11 allocations (BenchmarkStart, on a 2-core AMD
// EPYC).
//
// A traced entry also carries its carrier while it waits. In Redis that is
// one field of the campaign's trace hash, keyed by user, from admission to
// the entry's outcome: about the carrier's length plus the user ID's plus
// 15 bytes while the hash is small (up to 128 traced entries waiting, as a
// listpack), and plus about 55 bytes beyond — measured 83 and 124 bytes per
// entry with a 55-byte traceparent and 13-byte user IDs. Only sampled
// entries pay it: at 1% of a million waiting users, about 1.2 MB. In a
// Kafka message the carrier adds its length plus 11 bytes.
package tracing
