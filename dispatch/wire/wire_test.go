package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/wire"
)

func TestRoundTrip(t *testing.T) {
	e := couponq.Entry{Campaign: "c", User: "u@x", Number: 42, AdmittedAt: time.UnixMicro(1_700_000_000_123_456).UTC(), RequestID: "r1"}
	got, err := wire.Decode(wire.Encode(e))
	require.NoError(t, err)
	assert.Equal(t, e, got)
	assert.Equal(t, "c/u@x", string(wire.Key(e)))
	noTime := couponq.Entry{Campaign: "c", User: "u", Number: 1}
	got, err = wire.Decode(wire.Encode(noTime))
	require.NoError(t, err)
	assert.Equal(t, noTime, got)
}

// The trace carrier travels in the message; a reader of the format without
// it (an older issuer) still reads the entry, and a carrier past
// couponq.MaxTraceLen is dropped rather than refused.
func TestTrace(t *testing.T) {
	e := couponq.Entry{Campaign: "c", User: "u", Number: 7, Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	b := wire.Encode(e)
	assert.Contains(t, string(b), `"trace":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`)
	got, err := wire.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, e, got)
	assert.NotContains(t, string(wire.Encode(couponq.Entry{Campaign: "c", User: "u", Number: 7})), "trace", "absent when untraced")

	long := e
	long.Trace = strings.Repeat("x", couponq.MaxTraceLen+1)
	got, err = wire.Decode(wire.Encode(long))
	require.NoError(t, err)
	assert.Empty(t, got.Trace)
}

func TestRefusesBadMessages(t *testing.T) {
	for in, want := range map[string]error{
		`not json`: wire.ErrMalformed,
		`{"v":2,"campaign":"c","user":"u","entry":1}`:    wire.ErrVersion,
		`{"campaign":"c","user":"u","entry":1}`:          wire.ErrVersion,
		`{"v":1,"campaign":"c","user":"","entry":1}`:     wire.ErrMalformed,
		`{"v":1,"campaign":"c","user":"u","entry":0}`:    wire.ErrMalformed,
		`{"v":1,"campaign":"c{x}","user":"u","entry":1}`: wire.ErrMalformed,
	} {
		_, err := wire.Decode([]byte(in))
		assert.ErrorIs(t, err, want, in)
	}
}

func BenchmarkEncode(b *testing.B) {
	e := couponq.Entry{Campaign: "spring-sale", User: "user-0000042", Number: 123456, AdmittedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.Encode(e)
	}
}

func BenchmarkDecode(b *testing.B) {
	v := wire.Encode(couponq.Entry{Campaign: "spring-sale", User: "user-0000042", Number: 123456, AdmittedAt: time.Now()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
}
