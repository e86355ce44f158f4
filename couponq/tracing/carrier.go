package tracing

import (
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/couponq/couponq/couponq"
)

// The carrier is what Span.Carrier returns and Start reads from
// couponq.Entry.Trace: the fields a propagation.TextMapPropagator injects,
// in one printable-ASCII string.
//
//   - The propagator injected only "traceparent" (the default TraceContext
//     with an empty tracestate): the carrier is that value alone, e.g.
//     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" (55 bytes).
//   - Otherwise "key=value|key=value", traceparent first, then the other
//     fields in the order the propagator set them, e.g.
//     "traceparent=00-…-01|tracestate=rojo=00f067aa0ba902b7". In keys and
//     values the bytes '%' '|' '"' '\' '<' '>' '&', any byte outside
//     printable ASCII, and in keys also '=', are written %XX (upper-case
//     hex); a value may hold '=' unescaped, since a field splits at its
//     first '='.
//
// A carrier holding no '=' is the first form; no W3C traceparent holds one.
// The alphabet keeps a carrier intact through Redis, JSON (encoding/json
// escapes none of its bytes, so the wire message holds it verbatim) and
// logs. A carrier longer than couponq.MaxTraceLen (a large baggage, say) is
// cut down to its traceparent.

const (
	fieldSep = '|'
	keySep   = '='
	escape   = '%'

	traceparent = "traceparent"
)

// injector is the propagation.TextMapCarrier a propagator injects into.
// The first field lives in k0/v0, so the default propagator's single
// traceparent needs no slice.
type injector struct {
	k0, v0 string
	n      int      // fields set
	more   []string // fields after the first: key, value, key, value, ...
}

func (w *injector) Get(key string) string {
	if w.n > 0 && w.k0 == key {
		return w.v0
	}
	for i := 0; i+1 < len(w.more); i += 2 {
		if w.more[i] == key {
			return w.more[i+1]
		}
	}
	return ""
}

func (w *injector) Set(key, value string) {
	switch {
	case w.n == 0:
		w.k0, w.v0, w.n = key, value, 1
		return
	case w.k0 == key:
		w.v0 = value
		return
	}
	for i := 0; i+1 < len(w.more); i += 2 {
		if w.more[i] == key {
			w.more[i+1] = value
			return
		}
	}
	w.more = append(w.more, key, value)
	w.n++
}

func (w *injector) Keys() []string {
	if w.n == 0 {
		return nil
	}
	keys := []string{w.k0}
	for i := 0; i < len(w.more); i += 2 {
		keys = append(keys, w.more[i])
	}
	return keys
}

// encode returns the carrier of the injected fields, "" if there are none
// or none fits within couponq.MaxTraceLen.
func (w *injector) encode() string {
	if w.n == 0 {
		return ""
	}
	tp := w.Get(traceparent)
	if w.n == 1 && w.k0 == traceparent && plain(tp) {
		if len(tp) > couponq.MaxTraceLen {
			return ""
		}
		return tp
	}
	var b strings.Builder
	size := 0
	if tp != "" {
		size += len(traceparent) + 1 + len(tp)
	}
	if w.k0 != traceparent {
		size += len(w.k0) + len(w.v0) + 2
	}
	for i := 0; i+1 < len(w.more); i += 2 {
		if w.more[i] != traceparent {
			size += len(w.more[i]) + len(w.more[i+1]) + 2
		}
	}
	b.Grow(size)
	field := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(fieldSep)
		}
		writeEscaped(&b, k, true)
		b.WriteByte(keySep)
		writeEscaped(&b, v, false)
	}
	if tp != "" {
		field(traceparent, tp)
	}
	if w.k0 != traceparent {
		field(w.k0, w.v0)
	}
	for i := 0; i+1 < len(w.more); i += 2 {
		if w.more[i] != traceparent {
			field(w.more[i], w.more[i+1])
		}
	}
	if b.Len() <= couponq.MaxTraceLen {
		return b.String()
	}
	// Too long for an entry: keep what joins the trace, drop the rest.
	if tp == "" {
		return ""
	}
	if plain(tp) && len(tp) <= couponq.MaxTraceLen {
		return tp
	}
	b.Reset()
	field(traceparent, tp)
	if b.Len() > couponq.MaxTraceLen {
		return ""
	}
	return b.String()
}

// plain reports whether v can stand as a carrier on its own: no '=' (which
// marks the key=value form) and nothing that needs escaping.
func plain(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == keySep || needsEscape(c, false) {
			return false
		}
	}
	return true
}

// needsEscape reports whether c is written %XX: the carrier's own syntax
// ('%', '|', and '=' in a key), bytes outside printable ASCII, and those
// encoding/json escapes ('"', '\', and '<', '>', '&' as HTML-safe JSON
// does), so a carrier stays byte for byte the same inside a JSON message.
func needsEscape(c byte, key bool) bool {
	switch c {
	case escape, fieldSep, '"', '\\', '<', '>', '&':
		return true
	case keySep:
		return key
	}
	return c < 0x20 || c > 0x7e
}

const hexDigits = "0123456789ABCDEF"

func writeEscaped(b *strings.Builder, s string, key bool) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !needsEscape(c, key) {
			continue
		}
		b.WriteString(s[start:i])
		b.WriteByte(escape)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
		start = i + 1
	}
	b.WriteString(s[start:])
}

// extractor is the propagation.TextMapCarrier a propagator extracts from:
// a carrier that parse accepted.
type extractor struct {
	s    string
	bare bool // s is a traceparent alone
}

// parse checks a carrier's syntax; ok is false for a malformed one (then
// the entry's trace is unreadable).
func parse(s string) (extractor, bool) {
	if s == "" || len(s) > couponq.MaxTraceLen {
		return extractor{}, false
	}
	if strings.IndexByte(s, keySep) < 0 {
		return extractor{s: s, bare: true}, plain(s)
	}
	for f := range strings.SplitSeq(s, string(fieldSep)) {
		k, v, ok := strings.Cut(f, string(keySep))
		if !ok || k == "" || !validEscaped(k, true) || !validEscaped(v, false) {
			return extractor{}, false
		}
	}
	return extractor{s: s}, true
}

func validEscaped(s string, key bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == escape {
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return false
			}
			i += 2
			continue
		}
		if needsEscape(c, key) {
			return false
		}
	}
	return true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// unescape decodes a field that validEscaped accepted; it allocates only
// when the field holds an escape.
func unescape(s string) string {
	if strings.IndexByte(s, escape) < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == escape {
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func (r *extractor) Get(key string) string {
	if r.bare {
		if key == traceparent {
			return r.s
		}
		return ""
	}
	for f := range strings.SplitSeq(r.s, string(fieldSep)) {
		k, v, _ := strings.Cut(f, string(keySep))
		if unescape(k) == key {
			return unescape(v)
		}
	}
	return ""
}

func (*extractor) Set(string, string) {}

func (r *extractor) Keys() []string {
	if r.bare {
		return []string{traceparent}
	}
	var keys []string
	for f := range strings.SplitSeq(r.s, string(fieldSep)) {
		k, _, _ := strings.Cut(f, string(keySep))
		keys = append(keys, unescape(k))
	}
	return keys
}

// A W3C traceparent: version "-" trace-id "-" parent-id "-" flags, in
// lower-case hex, 55 bytes for version 00; a later version may append
// "-" and more fields.
const traceparentLen = 2 + 1 + 32 + 1 + 16 + 1 + 2

// parseTraceparent reads a bare traceparent carrier as
// propagation.TraceContext.Extract would read it with no tracestate (a
// test checks the two agree), and within this package's carrier alphabet:
// ok is false for anything else, or for a zero trace or span ID.
func parseTraceparent(s string) (trace.SpanContext, bool) {
	if len(s) < traceparentLen || len(s) > couponq.MaxTraceLen || !plain(s) ||
		s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	var ver, flags [1]byte
	var scc trace.SpanContextConfig
	if !hexInto(ver[:], s[0:2]) || ver[0] == 0xff || !hexInto(scc.TraceID[:], s[3:35]) ||
		!hexInto(scc.SpanID[:], s[36:52]) || !hexInto(flags[:], s[53:55]) {
		return trace.SpanContext{}, false
	}
	switch {
	case len(s) > traceparentLen && s[traceparentLen] != '-':
		return trace.SpanContext{}, false
	case ver[0] == 0 && (len(s) > traceparentLen+1 || flags[0] > 3):
		// Version 00 has two flags and nothing after them (TraceContext
		// lets a lone trailing '-' pass, and so do we, to read alike).
		return trace.SpanContext{}, false
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.Remote = true
	sc := trace.NewSpanContext(scc)
	return sc, sc.IsValid()
}

// hexInto decodes lower-case hex src into dst (len(src) == 2*len(dst)).
func hexInto(dst []byte, src string) bool {
	for i := range dst {
		hi, lo := lowerHex(src[2*i]), lowerHex(src[2*i+1])
		if hi < 0 || lo < 0 {
			return false
		}
		dst[i] = byte(hi<<4 | lo)
	}
	return true
}

func lowerHex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// formatTraceparent writes sc as propagation.TraceContext.Inject writes its
// traceparent (version 00, the sampled and random flags).
func formatTraceparent(sc trace.SpanContext) string {
	const digits = "0123456789abcdef"
	var b [traceparentLen]byte
	b[0], b[1], b[2], b[35], b[52] = '0', '0', '-', '-', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	for i, c := range tid {
		b[3+2*i], b[4+2*i] = digits[c>>4], digits[c&0xf]
	}
	for i, c := range sid {
		b[36+2*i], b[37+2*i] = digits[c>>4], digits[c&0xf]
	}
	f := byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))
	b[53], b[54] = digits[f>>4], digits[f&0xf]
	return string(b[:])
}
