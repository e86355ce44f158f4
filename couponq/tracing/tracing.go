package tracing

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/couponq/couponq/couponq"
)

// ScopeName is the instrumentation scope the Tracer's spans are reported
// under: this package's import path.
const ScopeName = "github.com/couponq/couponq/couponq/tracing"

// Span names, one per couponq stage.
const (
	SpanAdmit    = "couponq.admit"
	SpanDispatch = "couponq.dispatch"
	SpanConsume  = "couponq.consume"
	SpanIssue    = "couponq.issue"
)

// Attribute keys the Tracer sets.
const (
	// AttrCampaign is the campaign ID, on every span.
	AttrCampaign = attribute.Key("couponq.campaign")
	// AttrEntry is the entry number, when the stage knows it (> 0): not on
	// a V2 admit span, which starts before the Queue numbers the entry.
	AttrEntry = attribute.Key("couponq.entry")
	// AttrRequestID is the admitting request's ID, when it has one.
	AttrRequestID = attribute.Key("couponq.request_id")
	// AttrUser is the user ID, only with Config.RecordUser.
	AttrUser = attribute.Key("couponq.user")
	// AttrCode is couponq.Code of the error a span ended with.
	AttrCode = attribute.Key("couponq.code")
	// AttrCarrierInvalid is set (true) on a span that started a new trace
	// because the entry's carrier could not be read.
	AttrCarrierInvalid = attribute.Key("couponq.carrier_invalid")

	attrMessagingSystem = attribute.Key("messaging.system")
	attrMessagingOpType = attribute.Key("messaging.operation.type")
	attrMessagingOpName = attribute.Key("messaging.operation.name")
)

// Config configures a Tracer. The zero Config is ready to use: the global
// TracerProvider, W3C Trace Context, no user IDs, traces started at
// admission.
type Config struct {
	// TracerProvider makes the spans. Nil means otel.GetTracerProvider(),
	// read once, in New (the global provider delegates to the one set later
	// with otel.SetTracerProvider, so New may run before it). With a
	// noop.TracerProvider Start returns at once: ctx as given and a span
	// that carries nothing, so each entry keeps the trace it came with.
	TracerProvider trace.TracerProvider
	// Propagator writes a span's context into its carrier (Span.Carrier)
	// and reads it back from couponq.Entry.Trace. Nil means
	// propagation.TraceContext{}: W3C traceparent and tracestate. It is not
	// otel.GetTextMapPropagator(), whose default is a propagator that
	// injects nothing, which would silently cut every entry's trace at the
	// first hand-off; pass otel.GetTextMapPropagator() here to share the
	// process's (after setting it). Whatever it injects is carried (a
	// composite with propagation.Baggage carries the baggage too), within
	// couponq.MaxTraceLen: a carrier longer than that keeps only its
	// traceparent.
	Propagator propagation.TextMapPropagator
	// RecordUser adds the user ID to every span as couponq.user. Off by
	// default: user IDs are personal data, and a tracing backend is rarely
	// where a host wants them kept. The entry number (couponq.entry) with
	// the campaign already finds the user in the host's own records. Off,
	// it also masks the user ID in the error messages failed spans record.
	RecordUser bool
	// Roots lists the stages (couponq.StageAdmit, StageDispatch,
	// StageConsume, StageIssue) that start a new trace when they have no
	// parent: the entry carries no trace and ctx holds no span. Empty means
	// only StageAdmit, where an entry's journey begins. A later stage without
	// a parent belongs to an entry that was admitted untraced or not
	// sampled; by default it starts no span (Start costs next to nothing),
	// so sampling at admission decides the whole journey, instead of every
	// stage rolling its sampler again and leaving fragments of journeys. List
	// a later stage when the admitting processes do not trace but the
	// workers should. A carrier that cannot be read always starts a new
	// trace, at any stage.
	Roots []string
	// PropagateUnsampled makes Span.Carrier serialize a span that is not
	// sampled too (its traceparent then says "not sampled"), so later
	// stages see the decision rather than no trace at all. Off by default:
	// an unsampled entry carries nothing, so it costs no memory while it
	// waits and no bytes in its message, and with the default Roots its
	// later stages start no span either way. Turn it on when a later
	// process samples on its own and must honour the admission's "no" (a
	// parent-based sampler there would otherwise see no parent), or when a
	// propagator carries something besides the trace (baggage) that later
	// stages need for every entry.
	PropagateUnsampled bool
	// MessagingSystem, if set, is the transport's messaging.system as the
	// OpenTelemetry semantic conventions name it ("kafka" for
	// kafkadispatch): the dispatch and consume spans then also get
	// messaging.system, messaging.operation.type ("send", "process") and
	// messaging.operation.name ("dispatch", "consume"). Empty (the default)
	// leaves the messaging attributes out, which is right for the in-process
	// dispatch.Memory, which is not a messaging system. Lower-case letters,
	// digits and '_' '.' '-', at most 64 bytes.
	MessagingSystem string
}

// Tracer is a couponq.Tracer that makes OpenTelemetry spans. Build one with
// New; it is safe for concurrent use.
type Tracer struct {
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	user      bool
	unsampled bool
	off       bool // the provider is noop's: Start does nothing
	w3c       bool // the propagator is propagation.TraceContext
	stages    [numStages]stage
}

var _ couponq.Tracer = (*Tracer)(nil)

type stageIndex int

const (
	admit stageIndex = iota
	dispatch
	consume
	issue
	other
	numStages
)

// stage is what Start precomputes per stage.
type stage struct {
	name string
	opts []trace.SpanStartOption // the kind
	// attrs are the stage's fixed attributes (the messaging ones).
	attrs []attribute.KeyValue
	root  bool
}

func stageOf(name string) stageIndex {
	switch name {
	case couponq.StageAdmit:
		return admit
	case couponq.StageDispatch:
		return dispatch
	case couponq.StageConsume:
		return consume
	case couponq.StageIssue:
		return issue
	}
	return other
}

// New validates cfg and returns a Tracer. The error wraps
// couponq.ErrInvalidConfig.
func New(cfg Config) (*Tracer, error) {
	roots := cfg.Roots
	if len(roots) == 0 {
		roots = []string{couponq.StageAdmit}
	}
	for _, r := range roots {
		if stageOf(r) == other {
			return nil, fmt.Errorf("%w: tracing: Roots: unknown stage %q (want %q, %q, %q or %q)", couponq.ErrInvalidConfig,
				r, couponq.StageAdmit, couponq.StageDispatch, couponq.StageConsume, couponq.StageIssue)
		}
	}
	if err := validMessagingSystem(cfg.MessagingSystem); err != nil {
		return nil, err
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	t := &Tracer{
		tracer:    tp.Tracer(ScopeName),
		prop:      prop,
		user:      cfg.RecordUser,
		unsampled: cfg.PropagateUnsampled,
	}
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		t.off = true
	}
	switch prop.(type) {
	case propagation.TraceContext, *propagation.TraceContext:
		t.w3c = true
	}
	// Span kinds follow the messaging semantic conventions: the dispatch
	// span sends the entry to the transport (Producer), the consume span
	// processes a delivered one (Consumer). Admission and the Store's
	// decision are work inside a process (Internal): the HTTP server span
	// the admission runs in, and the Store's driver spans (Client) under the
	// issue span, are the remote calls.
	t.stages[admit] = stage{name: SpanAdmit, opts: kind(trace.SpanKindInternal)}
	t.stages[dispatch] = stage{name: SpanDispatch, opts: kind(trace.SpanKindProducer)}
	t.stages[consume] = stage{name: SpanConsume, opts: kind(trace.SpanKindConsumer)}
	t.stages[issue] = stage{name: SpanIssue, opts: kind(trace.SpanKindInternal)}
	t.stages[other] = stage{opts: kind(trace.SpanKindInternal)}
	if ms := cfg.MessagingSystem; ms != "" {
		t.stages[dispatch].attrs = []attribute.KeyValue{attrMessagingSystem.String(ms), attrMessagingOpType.String("send"), attrMessagingOpName.String("dispatch")}
		t.stages[consume].attrs = []attribute.KeyValue{attrMessagingSystem.String(ms), attrMessagingOpType.String("process"), attrMessagingOpName.String("consume")}
	}
	for _, r := range roots {
		t.stages[stageOf(r)].root = true
	}
	return t, nil
}

func kind(k trace.SpanKind) []trace.SpanStartOption {
	return []trace.SpanStartOption{trace.WithSpanKind(k)}
}

func validMessagingSystem(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("%w: tracing: MessagingSystem is longer than 64 bytes", couponq.ErrInvalidConfig)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%w: tracing: MessagingSystem %q: byte %d not allowed (lower-case letters, digits, '_' '.' '-')", couponq.ErrInvalidConfig, s, i)
		}
	}
	return nil
}

// Start implements couponq.Tracer. The span's parent is the trace in
// e.Trace when that is set and readable, else the span in ctx. When the
// parent comes from e.Trace and ctx holds a span of another trace (a
// consumer's own span, say), the new span links to it, so each trace finds
// the other. A carrier that cannot be read (malformed, too long, not a
// valid trace context) starts a new trace, with the attribute
// couponq.carrier_invalid and a link to ctx's span if it has one. With no
// parent at all, only the stages in Config.Roots start a (root) span; the
// others return ctx and a span that does nothing.
//
// The couponq attributes are set once the sampler has decided, and only on
// a recording span, so a span sampled out costs no attribute work; a
// Sampler therefore sees a span's name, kind, parent and links, not its
// attributes.
func (t *Tracer) Start(ctx context.Context, stageName string, e couponq.Entry) (context.Context, couponq.Span) {
	if t.off {
		return ctx, noSpan{}
	}
	si := stageOf(stageName)
	st := &t.stages[si]
	ctxSC := trace.SpanContextFromContext(ctx)
	parent := ctx
	var link trace.SpanContext
	invalid := false
	if e.Trace != "" {
		if pctx, psc, ok := t.extract(ctx, ctxSC.IsValid(), e.Trace); ok {
			parent = pctx
			if ctxSC.IsValid() && ctxSC.TraceID() != psc.TraceID() {
				link = ctxSC
			}
		} else {
			invalid, link = true, ctxSC
		}
	} else if !ctxSC.IsValid() && !st.root {
		return ctx, noSpan{}
	}

	opts := st.opts[:1:1] // the kind; never appended to in place
	if link.IsValid() || invalid {
		opts = make([]trace.SpanStartOption, 1, 3)
		opts[0] = st.opts[0]
		if link.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: link}))
		}
		if invalid {
			opts = append(opts, trace.WithNewRoot())
		}
	}
	name := st.name
	if si == other {
		name = "couponq." + stageName
	}
	sctx, s := t.tracer.Start(parent, name, opts...)
	if s.IsRecording() {
		s.SetAttributes(t.attributes(st, e, invalid)...)
	} else if sc := s.SpanContext(); !sc.IsValid() || (!sc.IsSampled() && !t.unsampled) {
		// Nothing to end and nothing to carry: spare the wrapper.
		return sctx, noSpan{}
	}
	sp := &span{t: t, ctx: sctx, s: s}
	if !t.user {
		sp.user = e.User
	}
	return sctx, sp
}

// extract reads a carrier: the context to start the span in, holding the
// carrier's span context as the remote parent (and whatever else the
// propagator extracts, baggage say), and that span context; ok is false if
// the carrier holds no valid span context. hide says ctx holds a span,
// which must not be mistaken for the carrier's.
func (t *Tracer) extract(ctx context.Context, hide bool, carrier string) (context.Context, trace.SpanContext, bool) {
	if t.w3c && strings.IndexByte(carrier, keySep) < 0 {
		// The default propagator and a bare traceparent: read it here,
		// without a TextMapCarrier to allocate.
		sc, ok := parseTraceparent(carrier)
		if !ok {
			return nil, trace.SpanContext{}, false
		}
		return trace.ContextWithRemoteSpanContext(ctx, sc), sc, true
	}
	r, ok := parse(carrier)
	if !ok {
		return nil, trace.SpanContext{}, false
	}
	base := ctx
	if hide {
		base = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	pctx := t.prop.Extract(base, &r)
	sc := trace.SpanContextFromContext(pctx)
	return pctx, sc, sc.IsValid()
}

// attributes returns the couponq attributes of e's span at stage st.
func (t *Tracer) attributes(st *stage, e couponq.Entry, invalid bool) []attribute.KeyValue {
	n := 1 + len(st.attrs)
	if e.Number > 0 {
		n++
	}
	if e.RequestID != "" {
		n++
	}
	if t.user {
		n++
	}
	if invalid {
		n++
	}
	attrs := make([]attribute.KeyValue, 0, n)
	attrs = append(attrs, st.attrs...)
	attrs = append(attrs, AttrCampaign.String(e.Campaign))
	if e.Number > 0 {
		attrs = append(attrs, AttrEntry.Int64(e.Number))
	}
	if e.RequestID != "" {
		attrs = append(attrs, AttrRequestID.String(e.RequestID))
	}
	if t.user {
		attrs = append(attrs, AttrUser.String(e.User))
	}
	if invalid {
		attrs = append(attrs, AttrCarrierInvalid.Bool(true))
	}
	return attrs
}

// span is a started stage.
type span struct {
	t   *Tracer
	ctx context.Context // holds s, for the propagator
	s   trace.Span
	// user is the user ID to keep out of error messages; "" with
	// Config.RecordUser.
	user string
}

// Carrier implements couponq.Span: the span's context as the propagator
// injects it, in the carrier encoding; "" for an invalid span context, or
// one not sampled unless Config.PropagateUnsampled.
func (s *span) Carrier() string {
	sc := s.s.SpanContext()
	if !sc.IsValid() || (!sc.IsSampled() && !s.t.unsampled) {
		return ""
	}
	if s.t.w3c && sc.TraceState().Len() == 0 {
		// The default propagator would inject the traceparent alone: write
		// it here, in one allocation.
		return formatTraceparent(sc)
	}
	var w injector
	s.t.prop.Inject(s.ctx, &w)
	return w.encode()
}

// End implements couponq.Span. A non-nil err sets couponq.code to
// couponq.Code(err); whether it also marks the span failed is up to
// IsOutcome: an outcome leaves the status Unset, anything else records err
// (an "exception" event) and sets the status to Error with err's message.
// Unless Config.RecordUser, the user ID is masked in that message: errors
// such as the issuer's name the entry key, campaign/number/user.
func (s *span) End(err error) {
	if err != nil && s.s.IsRecording() {
		code := couponq.Code(err)
		s.s.SetAttributes(AttrCode.String(code))
		if !IsOutcome(code) {
			msg := err.Error()
			if masked := mask(msg, s.user); masked != msg {
				msg = masked
				s.s.AddEvent("exception", trace.WithAttributes(
					attribute.String("exception.type", fmt.Sprintf("%T", err)),
					attribute.String("exception.message", msg)))
			} else {
				s.s.RecordError(err)
			}
			s.s.SetStatus(codes.Error, msg)
		}
	}
	s.s.End()
}

// userMask stands for a user ID masked in an error message.
const userMask = "[user]"

// mask replaces every occurrence of id in msg that is a word of its own —
// not part of a longer run of ID bytes — with userMask. ':' and '/' end a
// word, as they separate the parts of lock and entry keys.
func mask(msg, id string) string {
	if id == "" || !strings.Contains(msg, id) {
		return msg
	}
	var b strings.Builder
	last := 0
	for from := 0; ; {
		j := strings.Index(msg[from:], id)
		if j < 0 {
			break
		}
		j += from
		end := j + len(id)
		if (j == 0 || !wordByte(msg[j-1])) && (end == len(msg) || !wordByte(msg[end])) {
			b.WriteString(msg[last:j])
			b.WriteString(userMask)
			last, from = end, end
		} else {
			from = j + 1
		}
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '@' || c == '+'
}

// noSpan is the span of a stage Start did not trace.
type noSpan struct{}

func (noSpan) Carrier() string { return "" }
func (noSpan) End(error)       {}

// outcomes are the codes that are answers, not failures.
var outcomes = []string{
	couponq.CodeSoldOut, couponq.CodeDuplicate, couponq.CodeLineFull,
	couponq.CodeNotOpen, couponq.CodeClosed,
	couponq.CodeInvalidID, couponq.CodeUnknownCampaign,
}

// IsOutcome reports whether an error with couponq code c is a normal
// outcome of a stage rather than a failure; End leaves such a span's
// status Unset. The outcomes are the answers couponq gives by design:
//
//	sold_out, duplicate, line_full   the stock, the user's limit or the line cap said no
//	not_open, closed                 the campaign's window or an operator said no
//	invalid_id, unknown_campaign     the caller asked for something malformed or absent
//	                                 (like an HTTP 4xx, which OpenTelemetry leaves Unset
//	                                 on a server span)
//
// Every other code is a failure (status Error, the error recorded as an
// event): unavailable (a backend down, or the context ended before the
// stage finished), busy, internal (any error couponq does not know), and
// the operator codes (invalid_campaign, invalid_config, campaign_exists,
// version_conflict, stock_below_issued, campaign_busy, not_found,
// unsupported), which no traced stage should meet.
func IsOutcome(code string) bool { return slices.Contains(outcomes, code) }
