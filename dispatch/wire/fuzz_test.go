package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/wire"
)

// FuzzDecode feeds arbitrary bytes to Decode. It never panics; an error
// wraps ErrMalformed or ErrVersion (the package's sentinels, for the
// dead-letter path); an entry it accepts is a valid one (IDs valid, number
// positive, trace within MaxTraceLen, time in UTC) and survives
// Encode then Decode unchanged, its key being "campaign/user".
func FuzzDecode(f *testing.F) {
	at := time.UnixMicro(1_700_000_000_123_456).UTC()
	valid := []couponq.Entry{
		{Campaign: "c", User: "u", Number: 1},
		{Campaign: "spring-sale", User: "u-42", Number: 17, AdmittedAt: at, RequestID: "r-9"},
		{Campaign: "c", User: "u@x", Number: 1 << 62, AdmittedAt: time.UnixMicro(-1).UTC(), Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{Campaign: strings.Repeat("c", couponq.MaxIDLen), User: "a.b:c_d-e@f+g", Number: 9, Trace: strings.Repeat("t", couponq.MaxTraceLen)},
		{Campaign: "c", User: "u", Number: 3, Trace: "<&>\"\\\u2028é"},
	}
	for _, e := range valid {
		b := wire.Encode(e)
		f.Add(b)
		f.Add(b[:len(b)/2])    // truncated
		f.Add(b[:len(b)-1])    // no closing brace
		f.Add(append(b, b...)) // two values
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `1`, `not json`,
		`{"v":1,"campaign":"c","user":"u","entry":1}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"unknown":[1,{"a":null}]}`,
		`{"v":2,"campaign":"c","user":"u","entry":1}`,
		`{"v":1.5,"campaign":"c","user":"u","entry":1}`,
		`{"v":1,"campaign":"c","user":"u","entry":1e3}`,
		`{"v":1,"campaign":"c","user":"u","entry":-1}`,
		`{"v":1,"campaign":"c","user":"u","entry":9223372036854775808}`,
		`{"v":1,"campaign":"c{x}","user":"u","entry":1}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"request_id":""}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"admitted_at_us":-62135596800000000}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"admitted_at_us":9223372036854775807}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"trace":"\ud800"}`,
		`{"v":1,"campaign":"c","user":"u","entry":1,"trace":"` + strings.Repeat("x", couponq.MaxTraceLen+1) + `"}`,
		`{"V":1,"Campaign":"c","USER":"u","Entry":1}`,
		`{"v":1,"campaign":"c","campaign":"d","user":"u","entry":1}`,
		"{\"v\":1,\"campaign\":\"c\",\"user\":\"u\",\"entry\":1,\"trace\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := wire.Decode(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrVersion) {
				t.Fatalf("Decode(%q) = %v, which wraps neither ErrMalformed nor ErrVersion", b, err)
			}
			if errors.Is(err, wire.ErrMalformed) && errors.Is(err, wire.ErrVersion) {
				t.Fatalf("Decode(%q) = %v, which wraps both sentinels", b, err)
			}
			if e != (couponq.Entry{}) {
				t.Fatalf("Decode(%q) failed (%v) but returned %+v", b, err, e)
			}
			return
		}
		if verr := (couponq.Request{Campaign: e.Campaign, User: e.User, RequestID: e.RequestID}).Validate(); verr != nil {
			t.Fatalf("Decode(%q) accepted an entry with invalid IDs %+v: %v", b, e, verr)
		}
		if e.Number <= 0 {
			t.Fatalf("Decode(%q) accepted entry number %d", b, e.Number)
		}
		if len(e.Trace) > couponq.MaxTraceLen {
			t.Fatalf("Decode(%q) kept a trace of %d bytes, more than MaxTraceLen", b, len(e.Trace))
		}
		if !e.AdmittedAt.IsZero() && e.AdmittedAt.Location() != time.UTC {
			t.Fatalf("Decode(%q): AdmittedAt %v not in UTC", b, e.AdmittedAt)
		}
		if k := wire.Key(e); !bytes.Equal(k, []byte(e.Campaign+"/"+e.User)) {
			t.Fatalf("Key(%+v) = %q", e, k)
		}

		enc := wire.Encode(e)
		again, err := wire.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v, whose encoding %q does not decode: %v", b, e, enc, err)
		}
		if again != e {
			t.Fatalf("round trip changed the entry:\n in  %q\n got %+v\n enc %q\n got %+v", b, e, enc, again)
		}
		if enc2 := wire.Encode(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %q then %q", enc, enc2)
		}
	})
}
