package tracing

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/couponq/couponq/couponq"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// The hand-written traceparent reader agrees with
// propagation.TraceContext on every carrier it may see.
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{validTP, strings.ToUpper(validTP), validTP + "-x", "01" + validTP[2:] + "-x", "01" + validTP[2:] + "x",
		"ff" + validTP[2:], validTP[:54] + "3", validTP[:54] + "4", validTP[:53] + "ff", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "", "-", "00--", validTP[:54]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, keySep) >= 0 {
			return // not a bare carrier
		}
		got, ok := parseTraceparent(s)
		want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{traceparent: s}))
		if !plain(s) || len(s) > couponq.MaxTraceLen {
			require.False(t, ok, "outside the carrier alphabet")
			return
		}
		require.Equal(t, want.IsValid(), ok, "%q", s)
		if ok {
			require.True(t, want.Equal(got), "%q: %v != %v", s, got, want)
		}
	})
}

// The hand-written traceparent writer agrees with propagation.TraceContext.
func FuzzFormatTraceparent(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte("01234567"), byte(1))
	f.Add([]byte("0123456789abcdef"), []byte("01234567"), byte(0xff))
	f.Fuzz(func(t *testing.T, tid, sid []byte, flags byte) {
		var scc trace.SpanContextConfig
		copy(scc.TraceID[:], tid)
		copy(scc.SpanID[:], sid)
		scc.TraceFlags = trace.TraceFlags(flags)
		sc := trace.NewSpanContext(scc)
		if !sc.IsValid() {
			return
		}
		m := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), m)
		require.Equal(t, m[traceparent], formatTraceparent(sc))
	})
}

// Any extra field survives encode and parse, escaped as needed, and every
// encoded carrier is JSON-safe.
func FuzzInjector(f *testing.F) {
	f.Add("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	f.Add("baggage", "k=v;p|q%20")
	f.Add("a=b|c", "\x00\xff=")
	f.Fuzz(func(t *testing.T, k, v string) {
		if k == "" || k == traceparent {
			return
		}
		var w injector
		w.Set(traceparent, validTP)
		w.Set(k, v)
		c := w.encode()
		require.LessOrEqual(t, len(c), couponq.MaxTraceLen)
		b, err := json.Marshal(c)
		require.NoError(t, err)
		require.Equal(t, `"`+c+`"`, string(b))
		r, ok := parse(c)
		require.True(t, ok, "%q", c)
		require.Equal(t, validTP, r.Get(traceparent))
		if c == validTP {
			var full strings.Builder
			full.WriteString("traceparent=" + validTP + "|")
			writeEscaped(&full, k, true)
			full.WriteString("=")
			writeEscaped(&full, v, false)
			require.Greater(t, full.Len(), couponq.MaxTraceLen, "cut only when too long")
			return
		}
		require.Equal(t, v, r.Get(k))
		require.Equal(t, []string{traceparent, k}, r.Keys())
	})
}

func TestInjector(t *testing.T) {
	var w injector
	assert.Empty(t, w.encode())
	assert.Nil(t, w.Keys())
	w.Set("tracestate", "a=1")
	w.Set(traceparent, validTP)
	w.Set("tracestate", "a=2") // replaced, not repeated
	assert.Equal(t, []string{"tracestate", traceparent}, w.Keys())
	assert.Equal(t, "a=2", w.Get("tracestate"))
	assert.Equal(t, "traceparent="+validTP+"|tracestate=a=2", w.encode(), "traceparent first")

	w = injector{}
	w.Set("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
	assert.Equal(t, "b3=80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", w.encode(), "no traceparent: key=value")
	w.Set("x", strings.Repeat("y", couponq.MaxTraceLen))
	assert.Empty(t, w.encode(), "too long and no traceparent to keep")

	r, ok := parse(validTP)
	require.True(t, ok)
	assert.Equal(t, []string{traceparent}, r.Keys())
	assert.Empty(t, r.Get("tracestate"))
}

func TestMask(t *testing.T) {
	for _, c := range []struct{ msg, id, want string }{
		{"issuer: record outcome of spring/7/ann: timeout", "ann", "issuer: record outcome of spring/7/[user]: timeout"},
		{"lock: not obtained: couponq:issue:spring:ann after 3 attempts", "ann", "lock: not obtained: couponq:issue:spring:[user] after 3 attempts"},
		{"ann ann", "ann", "[user] [user]"},
		{"joanna and anne", "ann", "joanna and anne"},
		{"campaign a: a", "a", "campaign [user]: [user]"},
		{"u:1/u:1x", "u:1", "[user]/u:1x"},
		{"nothing here", "", "nothing here"},
		{"aaa", "aa", "aaa"},
	} {
		assert.Equal(t, c.want, mask(c.msg, c.id), "%q in %q", c.id, c.msg)
	}
}
