package httpapi

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The limits' defaults (Config and AdminConfig document them).
const (
	defaultBodyReadTimeout   = 10 * time.Second
	defaultStreamMaxPerUser  = 8
	defaultStreamMaxPerAddr  = 256
	defaultStreamMaxPerAdmin = 4
)

// codeTooManyStreams answers 429 a stream past a per-user, per-address or
// per-operator cap.
const codeTooManyStreams = "too_many_streams"

// withDefault is v, or def when v is zero; a negative v (no cap) is 0.
func withDefault(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// remoteHost is the host of r.RemoteAddr: the client's address, or the
// last proxy's.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// limitBodyRead gives a request that carries a body until now + d to send
// it, so a client that sends the headers and then trickles the body (or
// never sends it) cannot hold its connection: a read past the deadline
// fails, and the server closes the connection after the answer (the
// server's own discard of an unread body stops at the deadline too). A
// server whose ReadTimeout is already at most d is left to it. Requests
// without a body (Content-Length: 0) are untouched.
func limitBodyRead(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.ContentLength == 0 || d <= 0 {
		return
	}
	if srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server); srv != nil && srv.ReadTimeout > 0 && srv.ReadTimeout <= d {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d)) // ErrNotSupported: a writer without a connection
}

// bodyTimedOut reports whether err is a body read that ran past its
// deadline.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// requestTimeout answers a request whose body did not arrive in time, and
// closes its connection (what is left of the body is not read).
func requestTimeout(w http.ResponseWriter) {
	var e ErrorResponse
	e.Error.Code, e.Error.Message = "request_timeout", "the request body did not arrive in time"
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusRequestTimeout, e)
}

// tooManyStreams answers 429 with Retry-After.
func tooManyStreams(w http.ResponseWriter, retryAfter time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	var e ErrorResponse
	e.Error.Code, e.Error.Message = codeTooManyStreams, msg
	writeJSON(w, http.StatusTooManyRequests, e)
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset aside).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// streamCounts counts the streams each key (a user, an address, an
// operator) holds, against a cap. Its caller holds the lock that guards it.
type streamCounts struct {
	max int // 0: no cap
	n   map[string]int
}

// take counts one more stream for key, unless key already holds max; an
// empty key, or no cap, always may.
func (c *streamCounts) take(key string) bool {
	if c.max <= 0 || key == "" {
		return true
	}
	if c.n[key] >= c.max {
		return false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return true
}

// give counts one stream of key's out.
func (c *streamCounts) give(key string) {
	if c.max <= 0 || key == "" {
		return
	}
	if c.n[key] <= 1 {
		delete(c.n, key)
		return
	}
	c.n[key]--
}
