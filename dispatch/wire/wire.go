// Package wire is the message format entries travel in between the throttle
// and the issuer over a message broker. It is pure Go, so tools can read
// and write messages without cgo.
//
// Format, version 1. The message key is "campaign/user" (so one user's
// entries keep to one partition). The value is a JSON object:
//
//	{"v":1,"campaign":"spring-sale","user":"u-42","entry":17,"admitted_at_us":1700000000000000,"request_id":"r-9"}
//
// v is the format version; admitted_at_us is Unix microseconds; request_id
// may be absent; so may trace, the entry's trace context as its Tracer
// serialized it (couponq.Entry.Trace, at most couponq.MaxTraceLen bytes),
// which carries one user's trace across the broker. Readers of version 1
// ignore fields they do not know, so adding an optional field keeps v at 1. A reader refuses versions it does not know (ErrVersion) and
// anything that is not a valid entry (ErrMalformed); those messages belong
// in a dead-letter topic, never silently dropped. A message also carries the
// header "couponq-format: 1".
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Version is the format version this package writes.
const Version = 1

// HeaderFormat is the name of the header carrying the format version.
const HeaderFormat = "couponq-format"

var (
	// ErrMalformed reports a message that is not a valid entry.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrVersion reports a format version this package cannot read.
	ErrVersion = errors.New("wire: unknown format version")
)

type message struct {
	V          int    `json:"v"`
	Campaign   string `json:"campaign"`
	User       string `json:"user"`
	Entry      int64  `json:"entry"`
	AdmittedAt int64  `json:"admitted_at_us"`
	RequestID  string `json:"request_id,omitempty"`
	Trace      string `json:"trace,omitempty"`
}

// Key returns the message key of e.
func Key(e couponq.Entry) []byte { return []byte(e.Campaign + "/" + e.User) }

// Encode returns the message value of e.
func Encode(e couponq.Entry) []byte {
	var at int64
	if !e.AdmittedAt.IsZero() {
		at = e.AdmittedAt.UnixMicro()
	}
	b, _ := json.Marshal(message{V: Version, Campaign: e.Campaign, User: e.User, Entry: e.Number, AdmittedAt: at, RequestID: e.RequestID, Trace: e.Trace})
	return b // marshalling this struct cannot fail
}

// Decode reads a message value.
func Decode(b []byte) (couponq.Entry, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return couponq.Entry{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.V != Version {
		return couponq.Entry{}, fmt.Errorf("%w: %d", ErrVersion, m.V)
	}
	e := couponq.Entry{Campaign: m.Campaign, User: m.User, Number: m.Entry, RequestID: m.RequestID}
	if len(m.Trace) <= couponq.MaxTraceLen {
		e.Trace = m.Trace // a longer one is dropped: the entry goes on untraced
	}
	if m.AdmittedAt != 0 {
		e.AdmittedAt = time.UnixMicro(m.AdmittedAt).UTC()
	}
	if err := (couponq.Request{Campaign: e.Campaign, User: e.User, RequestID: e.RequestID}).Validate(); err != nil {
		return couponq.Entry{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.Number <= 0 {
		return couponq.Entry{}, fmt.Errorf("%w: entry number %d", ErrMalformed, e.Number)
	}
	return e, nil
}
