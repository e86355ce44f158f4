package couponq

import "context"

// Stages of an entry's journey, as a Tracer is asked to start them.
const (
	// StageAdmit is Service.Admit: the user put in line (V2) or through the
	// gate (V1).
	StageAdmit = "admit"
	// StageDispatch is the throttle (or V1 admission) handing the entry to
	// the transport, from the lease to the transport's durable answer.
	StageDispatch = "dispatch"
	// StageConsume is the issuer deciding a delivered entry, from delivery
	// to the recorded outcome.
	StageConsume = "consume"
	// StageIssue is the Store deciding the entry (Issue, or its share of an
	// IssueBatch).
	StageIssue = "issue"
)

// Tracer starts a span for each stage of an entry's journey, so one user's
// admission, dispatch, consumption and issuance form one trace across
// processes. The trace travels with the entry as Entry.Trace: the Queue keeps
// it while the entry waits, the transport carries it (package wire puts it
// in the message), and every stage starts its span as a child of it. Package
// couponq/tracing adapts OpenTelemetry. A nil Tracer (the default everywhere)
// costs nothing.
type Tracer interface {
	// Start starts the span of stage for e. Its parent is the trace in
	// e.Trace when that is set, else the span in ctx (the admitting HTTP
	// request's, say). It returns the context for the stage's work and the
	// span. Start must be fast and safe for concurrent use; it must not fail:
	// a trace it cannot read starts a new one.
	Start(ctx context.Context, stage string, e Entry) (context.Context, Span)
}

// Span is a started stage of a Tracer.
type Span interface {
	// Carrier returns the span's context serialized for Entry.Trace (a W3C
	// traceparent, say), or "" if it is not to be propagated.
	Carrier() string
	// End ends the span; a non-nil err marks it failed.
	End(err error)
}

// MaxTraceLen bounds Entry.Trace: a longer carrier is dropped, not stored.
const MaxTraceLen = 512

// TraceFor returns the carrier of s to store in an entry: "" for a nil span
// or one whose carrier is longer than MaxTraceLen.
func TraceFor(s Span) string {
	if s == nil {
		return ""
	}
	c := s.Carrier()
	if len(c) > MaxTraceLen {
		return ""
	}
	return c
}
