package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

// The fuzzers' HTTP plumbing: requests built as a net/http server would
// hand them to a handler, and a recorder that lets a streaming answer be
// told apart from a hung one.

// fuzzRequest builds the request a net/http server would pass to the
// handler for these fuzzed parts, or nil when a server would refuse it
// before any handler ran (not a token method, a target that is not a
// request URI, a header value with control bytes).
func fuzzRequest(ctx context.Context, method, target string, header http.Header, body []byte, chunked bool) *http.Request {
	if !validMethod(method) {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(target, "/") {
		return nil
	}
	for _, vs := range header {
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil
			}
		}
	}
	r := &http.Request{
		Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: "example.com", RemoteAddr: "192.0.2.1:1234",
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	if chunked {
		r.ContentLength = -1 // Transfer-Encoding: chunked: the length is unknown
		r.TransferEncoding = []string{"chunked"}
	}
	if len(body) == 0 && !chunked {
		r.Body = http.NoBody
	}
	return r.WithContext(ctx)
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue: what a server lets through (no control bytes but tab,
// and it trims surrounding blanks, so none are left there).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return strings.Trim(v, " \t") == v
}

// streamRecorder is an httptest.ResponseRecorder safe to read while the
// handler writes, whose first flush of body bytes is signalled: an event
// stream has started, and would go on until the handler is closed.
type streamRecorder struct {
	mu      sync.Mutex
	rec     *httptest.ResponseRecorder
	once    sync.Once
	flushed chan struct{}
}

func newStreamRecorder() *streamRecorder {
	return &streamRecorder{rec: httptest.NewRecorder(), flushed: make(chan struct{})}
}

func (s *streamRecorder) Header() http.Header { return s.rec.Header() }
func (s *streamRecorder) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.WriteHeader(code)
}
func (s *streamRecorder) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Write(b)
}
func (s *streamRecorder) Flush() {
	s.mu.Lock()
	s.rec.Flush()
	n := s.rec.Body.Len()
	s.mu.Unlock()
	if n > 0 {
		s.once.Do(func() { close(s.flushed) })
	}
}

// serve runs h on r. A handler that starts a stream (flushes body bytes
// without returning) is ended with stop, then awaited. It fails t if the
// handler neither returns nor streams within 10s, or its stream outlives
// stop by 10s.
func serve(t *testing.T, h http.Handler, stop func(), w *streamRecorder, r *http.Request) (streamed bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, r)
	}()
	hung := time.NewTimer(10 * time.Second)
	defer hung.Stop()
	select {
	case <-done:
		return false
	case <-w.flushed:
	case <-hung.C:
		stop()
		t.Fatalf("%s %q: the handler neither answered nor started a stream in 10s", r.Method, r.RequestURI)
	}
	stop()
	select {
	case <-done:
	case <-hung.C:
		t.Fatalf("%s %q: a stream did not end when the handler was closed", r.Method, r.RequestURI)
	}
	return true
}

// checkErrorBody checks an error answer: JSON {"error": {"code", "message"}}
// (nothing else but an optional ticket), the code one of codes.
func checkErrorBody(t *testing.T, req string, status int, h http.Header, body []byte, codes ...string) httpapi.ErrorResponse {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: %d answered with Content-Type %q, not JSON: %q", req, status, ct, body)
	}
	var e httpapi.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: %d answered %q, not the error shape: %v", req, status, body, err)
	}
	if dec.More() {
		t.Fatalf("%s: %d answered more than one JSON value: %q", req, status, body)
	}
	found := false
	for _, c := range codes {
		found = found || e.Error.Code == c
	}
	if !found {
		t.Fatalf("%s: %d answered code %q; documented for %d: %q (body %q)", req, status, e.Error.Code, status, codes, body)
	}
	if e.Error.Message == "" {
		t.Fatalf("%s: %d %s answered without a message", req, status, e.Error.Code)
	}
	return e
}

// isRedirect tells whether the answer is net/http's ServeMux sending a
// request for an unclean path (// . ..) to its clean form, which it does
// before any route runs.
func isRedirect(r *http.Request, status int, h http.Header) bool {
	if status != http.StatusMovedPermanently && status != http.StatusTemporaryRedirect && status != http.StatusPermanentRedirect {
		return false
	}
	p := r.URL.EscapedPath()
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return h.Get("Location") != "" && (clean != p || r.URL.Path != path.Clean(r.URL.Path))
}

// isAdmission tells whether r is for the admission route
// (POST /api/campaigns/{campaign}/entries) as the mux matches it.
func isAdmission(r *http.Request) bool {
	seg := strings.Split(r.URL.EscapedPath(), "/")
	return r.Method == http.MethodPost && len(seg) == 5 && seg[0] == "" && seg[1] == "api" && seg[2] == "campaigns" &&
		seg[3] != "" && seg[4] == "entries"
}

// publicFixture is a fresh in-memory service whose campaigns stand in each
// state the public handler answers differently, behind a handler with
// status events on.
type publicFixture struct {
	h    *httpapi.Handler
	done couponq.Status // carol's final status on "drop"
}

const fuzzMaxBody = 4096 // Config.MaxBodyBytes' documented default

func newPublicFixture(t *testing.T) publicFixture {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	cat, err := memline.NewRegistry(
		couponq.Campaign{ID: "drop", Stock: 5, BatchSize: 10, Interval: time.Second},
		couponq.Campaign{ID: "gone", Stock: 1},
		couponq.Campaign{ID: "full", Stock: 5, MaxWaiting: 1},
		couponq.Campaign{ID: "later", Stock: 5, OpensAt: now.Add(time.Hour)},
		couponq.Campaign{ID: "over", Stock: 5, ClosesAt: now.Add(-time.Hour)},
		couponq.Campaign{ID: "multi", Stock: 5, PerUserLimit: 3},
	)
	must(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: cat, Queue: q})
	must(t, err)
	// A V1 campaign the service cannot serve: it joins the catalog after New.
	_, err = cat.Create(ctx, couponq.Campaign{ID: "gate", Stock: 5, Mode: couponq.ValidateFirst})
	must(t, err)
	for _, a := range []struct{ campaign, user string }{
		{"drop", "carol"}, {"drop", "alice"}, {"drop", "dave"}, {"gone", "bob"}, {"full", "erin"}, {"multi", "frank"},
	} {
		_, err := svc.Admit(ctx, couponq.Request{Campaign: a.campaign, User: a.user})
		must(t, err)
	}
	// drop: carol (entry 1) was issued, alice (2) waits, dave (3) is in
	// flight; gone: bob was issued and it sold out; multi: frank was issued
	// once of three; full: erin fills its line of one.
	for _, c := range []string{"drop", "gone", "multi"} {
		l, err := q.Lease(ctx, c, 1, time.Hour)
		must(t, err)
		must(t, q.Record(ctx, c, couponq.Result{Entry: l[0], State: couponq.StateIssued, IssuanceID: "iss-" + c}))
	}
	leased, err := q.Lease(ctx, "drop", 2, time.Hour)
	must(t, err)
	must(t, q.Release(ctx, "drop", leased[:1]))
	must(t, q.MarkSoldOut(ctx, "gone"))
	done, err := svc.Status(ctx, "drop", "carol")
	must(t, err)
	if done.State != couponq.StateIssued {
		t.Fatalf("fixture: carol is %s, want issued", done.State)
	}
	h, err := httpapi.New(httpapi.Config{
		Service: svc, User: httpapi.HeaderUser("X-User"), BasePath: "/api",
		Stats: q, Catalog: cat, StreamPoll: time.Hour, HeartbeatInterval: time.Hour,
	})
	must(t, err)
	return publicFixture{h: h, done: done}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzPublicHandler sends one fuzzed request (method, target, the user
// header the handler authenticates with, Last-Event-ID, Content-Type, an
// Idempotency-Key it ignores, the body, chunked or not) to the public
// handler over the in-memory backends. The handler never panics and never
// hangs; it answers only the documented statuses — never a 5xx, since the
// memory backends do not fail; every error answer is JSON
// {"error": {"code", "message"}} with a code documented for its status
// (couponq.Code's, or the handler's own bad_request, unauthenticated,
// method_not_allowed, body_too_large); a body over MaxBodyBytes is never
// admitted, answers 413 unless what lies within the limit is already
// refused (malformed JSON, an unknown field), and 413 only answers such a
// body; an admitted body is empty or one JSON value; successes have their
// documented shape. Close ends every stream.
func FuzzPublicHandler(f *testing.F) {
	seeds := []struct {
		method, target, user, lastEventID, contentType, idem string
		body                                                 string
		chunked                                              bool
	}{
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "application/json", "k-1", `{"request_id":"r-1"}`, false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", "", true},
		{"POST", "/api/campaigns/drop/entries", "alice", "", "", "", "{}", false},
		{"POST", "/api/campaigns/drop/entries", "carol", "", "", "", "", false},
		{"POST", "/api/campaigns/gone/entries", "bob", "", "", "", "", false},
		{"POST", "/api/campaigns/gone/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/full/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/later/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/over/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/gate/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/multi/entries", "frank", "", "", "", "", false},
		{"POST", "/api/campaigns/nope/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/dr%20op/entries", "zoe", "", "", "", "", false},
		{"POST", "/api/campaigns/drop/entries", "", "", "", "", "", false},
		{"POST", "/api/campaigns/drop/entries", "a{b}", "", "", "", "", false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "text/plain", "", "{", false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `{"user":"mallory"}`, false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `{"request_id":"a b"}`, false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `{"request_id":"` + strings.Repeat("x", 5000) + `"}`, false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `{"request_id":"r"}` + strings.Repeat(" ", 5000), false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `{"request_id":"r"} {"request_id":"s"}`, false},
		{"POST", "/api/campaigns/drop/entries", "zoe", "", "", "", `null`, false},
		{"GET", "/api/campaigns/drop/entries/me", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me", "carol", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me", "dave", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me", "ghost", "", "", "", "", false},
		{"HEAD", "/api/campaigns/drop/entries/me", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns/gone/entries/me", "bob", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me/events", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me/events", "carol", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me/events", "carol", "final-1", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries/me/events", "ghost", "", "", "", "", false},
		{"HEAD", "/api/campaigns/drop/entries/me/events", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/entries", "alice", "", "", "", "", false},
		{"DELETE", "/api/campaigns/drop/entries/me", "alice", "", "", "", "", false},
		{"PUT", "/api/campaigns/drop/entries/me/events", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns//entries/me", "alice", "", "", "", "", false},
		{"GET", "/api/campaigns/drop/../drop/entries/me", "alice", "", "", "", "", false},
		{"GET", "/api/nothing-here", "alice", "", "", "", "", false},
		{"GET", "/", "", "", "", "", "", false},
		{"OPTIONS", "*", "", "", "", "", "", false},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.user, s.lastEventID, s.contentType, s.idem, []byte(s.body), s.chunked)
	}
	f.Fuzz(func(t *testing.T, method, target, user, lastEventID, contentType, idem string, body []byte, chunked bool) {
		header := http.Header{}
		for k, v := range map[string]string{"X-User": user, "Last-Event-ID": lastEventID, "Content-Type": contentType, "Idempotency-Key": idem} {
			if v != "" {
				header.Set(k, v)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := fuzzRequest(ctx, method, target, header, body, chunked)
		if r == nil {
			return // a server refuses it before any handler runs
		}
		fx := newPublicFixture(t)
		defer fx.h.Close()
		w := newStreamRecorder()
		streamed := serve(t, fx.h, fx.h.Close, w, r)
		res := w.rec.Result()
		got, _ := io.ReadAll(res.Body)
		status := res.StatusCode
		req := method + " " + strconv.Quote(target)

		if len(body) > fuzzMaxBody && method == http.MethodPost && status/100 == 2 {
			t.Fatalf("%s: a body of %d bytes, over MaxBodyBytes (%d), was accepted: %d %q", req, len(body), fuzzMaxBody, status, got)
		}
		var admitBody struct {
			RequestID string `json:"request_id"`
		}
		if isAdmission(r) && user != "" && !isRedirect(r, status, res.Header) && overLimitNeeds413(body, fuzzMaxBody, &admitBody) && status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: a body of %d bytes, over MaxBodyBytes (%d), answered %d %q, not 413", req, len(body), fuzzMaxBody, status, got)
		}
		switch status {
		case http.StatusOK:
			if streamed || res.Header.Get("Content-Type") == "text/event-stream" {
				if !strings.HasSuffix(r.URL.Path, "/entries/me/events") {
					t.Fatalf("%s: a stream from a route that does not stream", req)
				}
				if r.Method != http.MethodHead && !bytes.HasPrefix(got, []byte("retry: ")) {
					t.Fatalf("%s: stream starts %q, not with retry", req, got)
				}
				if r.Method != http.MethodHead && !bytes.Contains(got, []byte("event: status\n")) {
					t.Fatalf("%s: stream %q has no status event", req, got)
				}
				return
			}
			var st httpapi.StatusResponse
			strictJSON(t, req, got, &st)
			if st.State == "" || st.Entry <= 0 {
				t.Fatalf("%s: 200 status %q", req, got)
			}
		case http.StatusAccepted:
			var tk httpapi.TicketResponse
			strictJSON(t, req, got, &tk)
			if tk.Entry <= 0 || tk.StatusURL == "" || res.Header.Get("Location") != tk.StatusURL {
				t.Fatalf("%s: 202 ticket %q, Location %q", req, got, res.Header.Get("Location"))
			}
			if len(bytes.Trim(body, " \t\r\n")) > 0 && !json.Valid(body) {
				t.Fatalf("%s: admitted with a body %q that is not one JSON value", req, body)
			}
			if couponq.ValidateID(tk.Campaign) != nil {
				t.Fatalf("%s: admitted to invalid campaign %q", req, tk.Campaign)
			}
		case http.StatusNoContent:
			if lastEventID != "final-"+strconv.FormatInt(fx.done.Entry, 10) || len(got) != 0 {
				t.Fatalf("%s: 204 (Last-Event-ID %q) with body %q", req, lastEventID, got)
			}
		case http.StatusBadRequest:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeInvalidID, "bad_request")
		case http.StatusUnauthorized:
			checkErrorBody(t, req, status, res.Header, got, "unauthenticated")
		case http.StatusForbidden:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeNotOpen, couponq.CodeClosed)
		case http.StatusNotFound:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeUnknownCampaign, couponq.CodeNotFound)
		case http.StatusMethodNotAllowed:
			checkErrorBody(t, req, status, res.Header, got, "method_not_allowed")
			if res.Header.Get("Allow") == "" {
				t.Fatalf("%s: 405 without Allow", req)
			}
		case http.StatusConflict:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeDuplicate)
		case http.StatusGone:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeSoldOut, couponq.CodeLineFull)
		case http.StatusRequestEntityTooLarge:
			checkErrorBody(t, req, status, res.Header, got, "body_too_large")
			if len(body) <= fuzzMaxBody {
				t.Fatalf("%s: 413 for a body of %d bytes, within MaxBodyBytes", req, len(body))
			}
		case http.StatusNotImplemented:
			checkErrorBody(t, req, status, res.Header, got, couponq.CodeUnsupported)
		default:
			if isRedirect(r, status, res.Header) {
				return
			}
			t.Fatalf("%s: undocumented (or, for 5xx, internal) answer %d %q", req, status, got)
		}
	})
}

// overLimitNeeds413 tells whether a handler reading body through
// MaxBytesReader(limit) must answer 413: it must when nothing it may read
// (the first limit bytes) is enough to refuse the body otherwise, that is
// when those bytes are whitespace, or a cut-off value, or one whole value
// that decodes into v followed by whitespace only. (A body that is already
// malformed within the limit may be refused 400 without reading on.)
func overLimitNeeds413(body []byte, limit int, v any) bool {
	if len(body) <= limit {
		return false
	}
	p := body[:limit]
	dec := json.NewDecoder(bytes.NewReader(p))
	var raw json.RawMessage
	switch err := dec.Decode(&raw); {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case err != nil:
		return false
	}
	if err := strictUnmarshal(raw, v); err != nil {
		return false
	}
	return len(bytes.Trim(p[dec.InputOffset():], " \t\r\n")) == 0
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// strictJSON decodes one JSON value of exactly v's shape.
func strictJSON(t *testing.T, req string, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		t.Fatalf("%s: answer %q is not a %T: %v", req, b, v, err)
	}
}

const (
	fuzzAdminToken   = "Bearer fuzz-admin"
	fuzzAdminMaxBody = 16 << 10 // AdminConfig.MaxBodyBytes' documented default
)

// fuzzAuthorize lets the admin token in, knows a viewer it does not allow
// (403) and nobody else (401).
func fuzzAuthorize(r *http.Request) error {
	switch r.Header.Get("Authorization") {
	case fuzzAdminToken:
		return nil
	case "Bearer viewer":
		return errors.New("viewers may not administer campaigns")
	}
	return fmt.Errorf("%w: unknown token", httpapi.ErrUnauthorized)
}

// newAdminFixture is an admin handler over an in-memory Registry and Queue
// whose campaigns stand in the states the handler answers differently: drop
// (open, people waiting and one issued), done (closed, nobody waiting: it
// may be deleted at version 1), soon (scheduled: it cannot close yet), sold
// (sold out). It refuses V1 campaigns, as a node without a Tally does.
func newAdminFixture(t *testing.T) http.Handler {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	reg, err := memline.NewRegistry(
		couponq.Campaign{ID: "drop", Stock: 5, BatchSize: 10, Interval: time.Second},
		couponq.Campaign{ID: "done", Stock: 5, ClosesAt: now.Add(-time.Hour)},
		couponq.Campaign{ID: "soon", Stock: 5, OpensAt: now.Add(time.Hour)},
		couponq.Campaign{ID: "sold", Stock: 1},
	)
	must(t, err)
	q := memline.NewQueue(nil)
	for _, a := range []struct{ campaign, user string }{{"drop", "ann"}, {"drop", "bob"}, {"drop", "cy"}, {"sold", "dee"}} {
		_, err := q.Admit(ctx, couponq.Admission{Campaign: a.campaign, User: a.user, At: now})
		must(t, err)
	}
	for _, c := range []string{"drop", "sold"} {
		l, err := q.Lease(ctx, c, 1, time.Hour)
		must(t, err)
		must(t, q.Record(ctx, c, couponq.Result{Entry: l[0], State: couponq.StateIssued, IssuanceID: "iss-" + c}))
	}
	must(t, q.MarkSoldOut(ctx, "sold"))
	// A node without a Tally: it cannot serve a V1 campaign.
	refuseV1 := func(c couponq.Campaign) error {
		if c.Mode == couponq.ValidateFirst {
			return fmt.Errorf("%w: campaign %s is V1", couponq.ErrUnsupported, c.ID)
		}
		return nil
	}
	h, err := httpapi.NewAdmin(httpapi.AdminConfig{Campaigns: &catalog.Ops{Registry: reg, Lines: q, Check: refuseV1},
		Authorize: fuzzAuthorize, BasePath: "/admin", StreamInterval: time.Hour, StreamHeartbeat: time.Hour})
	must(t, err)
	t.Cleanup(h.Close)
	return h
}

// adminRoute names the route an escaped path is for, as the mux matches it:
// "list" (/campaigns), "one" (/campaigns/{id}), "action" (/campaigns/{id}/
// pause|resume|close), "live", "asset", "stream", or "" for none; id is the
// unescaped {id}.
func adminRoute(escaped string) (route, id string) {
	rest, ok := strings.CutPrefix(escaped, "/admin/")
	if !ok {
		return "", ""
	}
	seg := strings.Split(rest, "/")
	switch {
	case len(seg) == 1 && seg[0] == "campaigns":
		return "list", ""
	case len(seg) == 1 && seg[0] == "live":
		return "live", ""
	case len(seg) == 2 && seg[0] == "live" && seg[1] == "stream":
		return "stream", ""
	case len(seg) == 2 && seg[0] == "live" && (seg[1] == "live.js" || seg[1] == "live.css"):
		return "asset", ""
	case len(seg) >= 2 && len(seg) <= 3 && seg[0] == "campaigns":
		id, err := url.PathUnescape(seg[1])
		if err != nil {
			return "", ""
		}
		if len(seg) == 2 {
			return "one", id
		}
		if seg[2] == "pause" || seg[2] == "resume" || seg[2] == "close" {
			return "action", id
		}
	}
	return "", ""
}

// FuzzAdminHandler sends one fuzzed request (method, target with its query,
// Authorization, Content-Type, body, chunked or not) to the admin handler
// over the in-memory backends. It never panics or hangs; every answer is a
// documented status, never a 5xx (the memory backends do not fail, and one
// stream is far from MaxStreams); every error answer is JSON
// {"error": {"code", "message"}} with a code documented for its status;
// nothing passes without the admin token; no write succeeds with a body
// not declared JSON (415); a JSON create or change whose body is
// over MaxBodyBytes answers 413 unless what lies within the limit is already
// refused (malformed JSON), and 413 only answers such a body; successes have
// their documented shape.
func FuzzAdminHandler(f *testing.F) {
	create := `{"id":"new","stock":10,"per_user_limit":2,"batch_size":5,"interval_ms":500,"opens_at":"2030-01-01T00:00:00Z","closes_at":null,"mode":"v2-queue-first","max_waiting":100,"paused":false}`
	for _, s := range []struct {
		method, target, auth, contentType, body string
		chunked                                 bool
	}{
		{"GET", "/admin/campaigns", fuzzAdminToken, "", "", false},
		{"GET", "/admin/campaigns", "", "", "", false},
		{"GET", "/admin/campaigns", "Bearer viewer", "", "", false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", create, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", create, true},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"drop","stock":1}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"x y","stock":1}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":0}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":1,"version":3}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":1,"mode":"v1-validate-first","interval_ms":-1}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":1,"mode":"v1-validate-first"}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":1} {}`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `{"id":"n","stock":1}` + strings.Repeat(" ", fuzzAdminMaxBody), false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/json", `null`, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "", ``, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "", create, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "text/plain", create, false},
		{"POST", "/admin/campaigns", fuzzAdminToken, "application/x-www-form-urlencoded", "id=n&stock=1", false},
		{"POST", "/admin/campaigns/drop/pause", fuzzAdminToken, "multipart/form-data; boundary=x", "", false},
		{"GET", "/admin/campaigns/drop", fuzzAdminToken, "", "", false},
		{"GET", "/admin/campaigns/nope", fuzzAdminToken, "", "", false},
		{"GET", "/admin/campaigns/a%7Bb%7D", fuzzAdminToken, "", "", false},
		{"PATCH", "/admin/campaigns/drop", fuzzAdminToken, "application/json", `{"version":1,"stock":50,"interval_ms":500}`, false},
		{"PATCH", "/admin/campaigns/drop", fuzzAdminToken, "application/json", `{"version":1,"stock":0}`, false},
		{"PATCH", "/admin/campaigns/sold", fuzzAdminToken, "application/json", `{"version":1,"stock":3}`, false},
		{"PATCH", "/admin/campaigns/drop", fuzzAdminToken, "application/json", `{"version":2,"paused":true}`, false},
		{"PATCH", "/admin/campaigns/drop", fuzzAdminToken, "application/json", `{"version":1,"opens_at":"not a time","closes_at":null}`, false},
		{"PATCH", "/admin/campaigns/drop", fuzzAdminToken, "application/json", `{"version":1,"max_waiting":-5}`, false},
		{"DELETE", "/admin/campaigns/done?version=1&retention=24h", fuzzAdminToken, "", "", false},
		{"DELETE", "/admin/campaigns/drop?version=1&retention=0s", fuzzAdminToken, "", "", false},
		{"DELETE", "/admin/campaigns/done?version=1", fuzzAdminToken, "", "", false},
		{"DELETE", "/admin/campaigns/done?version=1&retention=-1s&x=2", fuzzAdminToken, "", "", false},
		{"POST", "/admin/campaigns/drop/pause", fuzzAdminToken, "", "", false},
		{"POST", "/admin/campaigns/drop/resume", fuzzAdminToken, "", "", false},
		{"POST", "/admin/campaigns/drop/close", fuzzAdminToken, "", "", false},
		{"POST", "/admin/campaigns/soon/close", fuzzAdminToken, "", "", false},
		{"GET", "/admin/campaigns/drop/close", fuzzAdminToken, "", "", false},
		{"GET", "/admin/live", fuzzAdminToken, "", "", false},
		{"HEAD", "/admin/live/live.js", fuzzAdminToken, "", "", false},
		{"GET", "/admin/live/live.css", fuzzAdminToken, "", "", false},
		{"GET", "/admin/live/stream", fuzzAdminToken, "", "", false},
		{"HEAD", "/admin/live/stream", fuzzAdminToken, "", "", false},
		{"GET", "/admin/nothing", fuzzAdminToken, "", "", false},
		{"GET", "/admin/campaigns/../campaigns", fuzzAdminToken, "", "", false},
	} {
		f.Add(s.method, s.target, s.auth, s.contentType, []byte(s.body), s.chunked)
	}
	f.Fuzz(func(t *testing.T, method, target, auth, contentType string, body []byte, chunked bool) {
		header := http.Header{}
		if auth != "" {
			header.Set("Authorization", auth)
		}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := fuzzRequest(ctx, method, target, header, body, chunked)
		if r == nil {
			return
		}
		h := newAdminFixture(t)
		w := newStreamRecorder()
		streamed := serve(t, h, cancel, w, r) // a live stream ends with its request's context
		res := w.rec.Result()
		got, _ := io.ReadAll(res.Body)
		status := res.StatusCode
		req := method + " " + strconv.Quote(target)
		route, id := adminRoute(r.URL.EscapedPath())
		authorized := auth == fuzzAdminToken
		ct := r.Header.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		declaredJSON := mt == "application/json" || ct == "" && r.ContentLength == 0

		if !authorized && status/100 != 4 {
			t.Fatalf("%s: without the admin token (Authorization %q): %d %q", req, auth, status, got)
		}
		if !declaredJSON && method != http.MethodGet && method != http.MethodHead && status/100 == 2 {
			t.Fatalf("%s: a write with Content-Type %q and %d body bytes: %d %q, not refused", req, ct, len(body), status, got)
		}
		var fields map[string]json.RawMessage
		if authorized && declaredJSON && overLimitNeeds413(body, fuzzAdminMaxBody, &fields) && status != http.StatusRequestEntityTooLarge && !isRedirect(r, status, res.Header) &&
			(route == "list" && method == http.MethodPost || route == "one" && method == http.MethodPatch && couponq.ValidateID(id) == nil) {
			t.Fatalf("%s: a body of %d bytes, over MaxBodyBytes (%d): %d %q, not 413", req, len(body), fuzzAdminMaxBody, status, got)
		}
		switch status {
		case http.StatusOK, http.StatusCreated:
			ct := res.Header.Get("Content-Type")
			switch {
			case streamed || ct == "text/event-stream":
				if route != "stream" || status != http.StatusOK {
					t.Fatalf("%s: %d stream from a route that does not stream", req, status)
				}
				if method != http.MethodHead && !bytes.HasPrefix(got, []byte("retry: ")) {
					t.Fatalf("%s: stream starts %q, not with retry", req, got)
				}
			case route == "live" || route == "asset":
				if status != http.StatusOK || !strings.HasPrefix(ct, "text/") {
					t.Fatalf("%s: %d with Content-Type %q", req, status, ct)
				}
			case route == "list" && method != http.MethodPost:
				var l httpapi.AdminCampaignList
				strictJSON(t, req, got, &l)
				if len(l.Campaigns) != 4 {
					t.Fatalf("%s: %d campaigns listed, want 4: %q", req, len(l.Campaigns), got)
				}
			default:
				var c httpapi.AdminCampaign
				strictJSON(t, req, got, &c)
				if couponq.ValidateID(c.ID) != nil || c.Version < 1 || c.Stock < 1 {
					t.Fatalf("%s: %d %q", req, status, got)
				}
				if status == http.StatusCreated && res.Header.Get("Location") != "/admin/campaigns/"+c.ID {
					t.Fatalf("%s: 201 with Location %q", req, res.Header.Get("Location"))
				}
			}
		case http.StatusNoContent:
			if route != "one" || method != http.MethodDelete || len(got) != 0 {
				t.Fatalf("%s: 204 %q", req, got)
			}
		case http.StatusBadRequest:
			checkErrorBody(t, req, status, res.Header, got, "bad_request", "invalid_id", "invalid_campaign", couponq.CodeUnsupported)
		case http.StatusUnauthorized:
			checkErrorBody(t, req, status, res.Header, got, "unauthorized")
		case http.StatusForbidden:
			checkErrorBody(t, req, status, res.Header, got, "forbidden")
		case http.StatusNotFound:
			checkErrorBody(t, req, status, res.Header, got, "unknown_campaign", "not_found")
		case http.StatusMethodNotAllowed:
			checkErrorBody(t, req, status, res.Header, got, "method_not_allowed")
			if res.Header.Get("Allow") == "" {
				t.Fatalf("%s: 405 without Allow", req)
			}
		case http.StatusConflict:
			checkErrorBody(t, req, status, res.Header, got, "campaign_exists", "version_conflict", "stock_below_issued", "not_open", "campaign_busy")
		case http.StatusRequestEntityTooLarge:
			checkErrorBody(t, req, status, res.Header, got, "body_too_large")
			if len(body) <= fuzzAdminMaxBody {
				t.Fatalf("%s: 413 for a body of %d bytes, within MaxBodyBytes", req, len(body))
			}
		case http.StatusUnsupportedMediaType:
			checkErrorBody(t, req, status, res.Header, got, "unsupported_media_type")
			if declaredJSON {
				t.Fatalf("%s: 415 for Content-Type %q with %d body bytes", req, ct, len(body))
			}
		default:
			if isRedirect(r, status, res.Header) {
				return
			}
			t.Fatalf("%s: undocumented (or, for 5xx, internal) answer %d %q", req, status, got)
		}
	})
}
