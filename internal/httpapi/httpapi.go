package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// Service is what the handler needs of *admission.Service.
type Service interface {
	Admit(ctx context.Context, r couponq.Request) (couponq.Ticket, error)
	Status(ctx context.Context, campaign, user string) (couponq.Status, error)
}

// ErrUnauthenticated may be returned by a Config.User function; any error it
// returns answers 401.
var ErrUnauthenticated = errors.New("couponq: unauthenticated")

// Config configures the handler. Zero values take the defaults documented on
// each field.
type Config struct {
	// Service admits and answers status. Required.
	Service Service
	// User returns the authenticated user's ID for a request, from the
	// host's own authentication (session, token, mTLS...). Required: the
	// handler never takes the user from the request body. An error answers 401.
	User func(r *http.Request) (string, error)
	// BasePath is the path prefix the handler is mounted under, without a
	// trailing slash ("/api", say); routes and status URLs include it.
	// Empty means the root.
	BasePath string
	// MaxBodyBytes bounds the admission body. Zero means 4096.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After sent with 503 answers. Zero means 1s.
	RetryAfter time.Duration
	// Logger receives unexpected errors; nil means none.
	Logger *slog.Logger

	// The status events route (GET .../entries/me/events, see New) needs
	// Stats and Catalog; while either is nil it answers 501 not_implemented.

	// Stats counts each campaign's line, once per StreamPoll for all the
	// streams of a campaign open in this process: the Queue
	// (memline.Queue and redisq.Queue are couponq.LineStatsers).
	Stats couponq.LineStatser
	// Catalog supplies each streamed campaign's rate and stock, read once
	// per StreamPoll per campaign: give it the cached catalog the Service
	// reads (node.Node.Catalog, a catalog.Cache), not a remote
	// Registry read on every call.
	Catalog catalog.Catalog
	// StreamPoll is how often the line of a campaign with open status
	// streams is read and the streams told of changes. Zero means 1s.
	StreamPoll time.Duration
	// HeartbeatInterval is how long a status stream may go without a write
	// before a comment line (": hb") is sent, so proxies keep it open.
	// Zero means 15s.
	HeartbeatInterval time.Duration
	// StreamMax bounds the status streams this handler holds open at once
	// (a user's second tab counts too); beyond it a new stream answers 503
	// busy with Retry-After. Zero means 20,000.
	StreamMax int
	// StreamWriteTimeout bounds each write to a status stream, so a client
	// that stops reading frees its slot. Between writes a stream holds no
	// write deadline, the http.Server's WriteTimeout included: a server
	// may set one for its other routes without cutting the streams. Zero
	// means 10s.
	StreamWriteTimeout time.Duration
	// StreamMaxPerUser bounds the status streams one user holds open at
	// once, over all campaigns (tabs count); beyond it a new stream
	// answers 429 too_many_streams with Retry-After. Zero means 8;
	// negative, no cap.
	StreamMaxPerUser int
	// StreamMaxPerAddr bounds the status streams open at once from one
	// client address (ClientAddr), whatever their users; beyond it 429
	// too_many_streams. Zero means 256; negative, no cap.
	StreamMaxPerAddr int
	// ClientAddr returns a request's client address, for StreamMaxPerAddr;
	// "" exempts the request from that cap. Nil means the host of
	// r.RemoteAddr — behind a proxy or load balancer, that is the proxy's
	// address, shared by every client: return the address the proxy
	// forwards instead (its X-Forwarded-For entry, as your proxy sets it),
	// or set StreamMaxPerAddr negative.
	ClientAddr func(r *http.Request) string
	// BodyReadTimeout bounds how long a request with a body (an admission
	// with its JSON) may take to send it, from when the handler starts: a
	// client that sends the headers and trickles the body gets 408 and its
	// connection closed. A server whose ReadTimeout is shorter is left to
	// it. Zero means 10s.
	BodyReadTimeout time.Duration
	// WaitingRoom customises the waiting-room page,
	// GET {BasePath}/campaigns/{campaign}/wait (strings, languages,
	// colours, logo). The zero value is the page as shipped.
	WaitingRoom WaitingRoom
}

// HeaderUser returns a Config.User that reads the user ID from a request
// header. Use it only behind a gateway that authenticates users and sets
// that header itself, stripping any copy the client sent.
func HeaderUser(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		u := r.Header.Get(name)
		if u == "" {
			return "", fmt.Errorf("%w: no %s header", ErrUnauthenticated, name)
		}
		return u, nil
	}
}

// Handler is the public handler New returns: an http.Handler, and Close
// to end its status streams.
type Handler struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	hub  *statusHub // nil when Stats or Catalog is missing
	wait *waitRoom
}

// New returns the admission and status handler:
//
//	POST {BasePath}/campaigns/{campaign}/entries            admit the user; 202 with the ticket
//	GET  {BasePath}/campaigns/{campaign}/entries/me         the user's status; 200
//	GET  {BasePath}/campaigns/{campaign}/entries/me/events  the user's status as Server-Sent Events
//	GET  {BasePath}/campaigns/{campaign}/wait               the waiting-room page (HTML); POST: its join form
//	GET  {BasePath}/wait/{client.js,client.d.ts,wait.js,wait.css,theme.css}  the page's assets
//
// The events route streams "status" events, each a StatusResponse, at
// connect and whenever the status changes, and closes after the final one
// (issued or rejected); see the package doc for the events and their cost.
// It needs Config.Stats and Config.Catalog (501 not_implemented without).
// Streams end when the http.Server serving them shuts down (the handler
// registers with Server.RegisterOnShutdown itself) and on Close; hosts that
// serve it otherwise call Close on shutdown.
//
// The admission body is optional JSON, {"request_id": "..."}. Errors answer
// JSON {"error": {"code": ..., "message": ...}} with 400 invalid_id /
// bad_request, 401 unauthenticated, 403 not_open / closed, 404
// unknown_campaign / not_found, 405 method_not_allowed (with Allow), 408
// request_timeout (a body slower than BodyReadTimeout), 409 duplicate, 410
// sold_out / line_full, 413 body_too_large, 429 too_many_streams (with
// Retry-After: a user or address past StreamMaxPerUser or
// StreamMaxPerAddr), 501 unsupported, 503 busy / unavailable (with
// Retry-After), 500 internal. The codes of the Service's errors are
// couponq.Code's.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil || cfg.User == nil {
		return nil, fmt.Errorf("%w: httpapi: Service and User are required", couponq.ErrInvalidConfig)
	}
	if cfg.MaxBodyBytes < 0 || cfg.RetryAfter < 0 {
		return nil, fmt.Errorf("%w: httpapi: MaxBodyBytes and RetryAfter must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.StreamPoll < 0 || cfg.HeartbeatInterval < 0 || cfg.StreamMax < 0 || cfg.StreamWriteTimeout < 0 || cfg.BodyReadTimeout < 0 {
		return nil, fmt.Errorf("%w: httpapi: StreamPoll, HeartbeatInterval, StreamMax, StreamWriteTimeout and BodyReadTimeout must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.BasePath != "" && (!strings.HasPrefix(cfg.BasePath, "/") || strings.HasSuffix(cfg.BasePath, "/")) {
		return nil, fmt.Errorf("%w: httpapi: BasePath %q must start and not end with /", couponq.ErrInvalidConfig, cfg.BasePath)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4096
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = defaultBodyReadTimeout
	}
	wait, err := newWaitRoom(cfg.WaitingRoom)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), wait: wait}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats != nil && cfg.Catalog != nil {
		h.hub = newStatusHub(h)
	}
	h.mux.HandleFunc("POST "+cfg.BasePath+"/campaigns/{campaign}/entries", h.admit)
	h.mux.HandleFunc("GET "+cfg.BasePath+"/campaigns/{campaign}/entries/me", h.status)
	h.mux.HandleFunc("GET "+cfg.BasePath+"/campaigns/{campaign}/entries/me/events", h.events)
	h.notAllowed(cfg.BasePath+"/campaigns/{campaign}/entries", "POST")
	h.notAllowed(cfg.BasePath+"/campaigns/{campaign}/entries/me", "GET, HEAD")
	h.notAllowed(cfg.BasePath+"/campaigns/{campaign}/entries/me/events", "GET, HEAD")
	h.routeWaitRoom()
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { // the mux's own 404 is plain text
		h.fail(w, http.StatusNotFound, couponq.CodeNotFound, "no such route: "+r.URL.Path, nil)
	})
	return h, nil
}

// notAllowed answers other methods on path with 405 and the allowed ones,
// as JSON like every other error (the mux's own 405 is plain text).
func (h *Handler) notAllowed(path, allowed string) {
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		h.fail(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" not allowed here; allowed: "+allowed, nil)
	})
}

// ServeHTTP serves the routes New lists.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limitBodyRead(w, r, h.cfg.BodyReadTimeout)
	h.mux.ServeHTTP(w, r)
}

// TicketResponse is the 202 body of an admission (and the body of a 409/410
// for a user already served).
type TicketResponse struct {
	Campaign string `json:"campaign"`
	Entry    int64  `json:"entry"`
	Position int64  `json:"position"`
	// EstimatedWaitMS is absent when there is no estimate (not waiting,
	// beyond the stock, the campaign paused).
	EstimatedWaitMS int64  `json:"estimated_wait_ms,omitempty"`
	State           string `json:"state"`
	Repeat          bool   `json:"repeat"`
	// BeyondStock: the position is past the stock that remains; unless
	// entries ahead fail, the answer will be sold out.
	BeyondStock bool `json:"beyond_stock,omitempty"`
	// PreQueue: the user is in the campaign's pre-queue; the place is drawn
	// at opening, so position is 0 until then.
	PreQueue  bool   `json:"pre_queue,omitempty"`
	StatusURL string `json:"status_url"`
}

// StatusResponse is the 200 body of a status lookup.
type StatusResponse struct {
	Campaign        string `json:"campaign"`
	Entry           int64  `json:"entry"`
	State           string `json:"state"`
	Position        int64  `json:"position,omitempty"`
	EstimatedWaitMS int64  `json:"estimated_wait_ms,omitempty"`
	IssuanceID      string `json:"issuance_id,omitempty"`
	Reason          string `json:"reason,omitempty"`
	BeyondStock     bool   `json:"beyond_stock,omitempty"`
	PreQueue        bool   `json:"pre_queue,omitempty"`
	// Paused: the user waits on a paused campaign; the line moves again
	// when it resumes, and there is no wait estimate meanwhile.
	Paused bool `json:"paused,omitempty"`
	// OpensAt is when a pre-queue's places are drawn and the line opens
	// (RFC 3339, UTC), while the user is in the pre-queue.
	OpensAt string `json:"opens_at,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Field is the JSON name of the field an invalid_campaign answer
		// is about ("interval_ms"), when the error names one.
		Field string `json:"field,omitempty"`
	} `json:"error"`
	// Ticket is the user's earlier ticket, on duplicate and sold_out answers
	// to a user who already had an entry.
	Ticket *TicketResponse `json:"ticket,omitempty"`
}

type admitBody struct {
	RequestID string `json:"request_id"`
}

func (h *Handler) admit(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	var body admitBody
	if r.ContentLength != 0 { // an empty body (the usual case) needs no decoder
		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := decodeOne(dec, &body); err != nil && !errors.Is(err, io.EOF) {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.fail(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error(), nil)
				return
			}
			if bodyTimedOut(err) {
				requestTimeout(w)
				return
			}
			h.fail(w, http.StatusBadRequest, "bad_request", "body must be empty or JSON {\"request_id\": \"...\"}: "+err.Error(), nil)
			return
		}
	}
	campaign := r.PathValue("campaign")
	t, err := h.cfg.Service.Admit(r.Context(), couponq.Request{Campaign: campaign, User: user, RequestID: body.RequestID})
	if err != nil {
		var prior *TicketResponse
		if t.Entry != 0 {
			prior = h.ticket(campaign, t)
		}
		h.error(w, r, err, prior)
		return
	}
	resp := h.ticket(campaign, t)
	w.Header()["Location"] = []string{resp.StatusURL}
	writeTicket(w, http.StatusAccepted, resp)
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	st, err := h.cfg.Service.Status(r.Context(), r.PathValue("campaign"), user)
	if err != nil {
		h.error(w, r, err, nil)
		return
	}
	resp := statusBody(st)
	h.decorateFromCatalog(r.Context(), &resp)
	writeJSON(w, http.StatusOK, resp)
}

// statusBody is the StatusResponse of st, for the status route and the
// status events alike.
func statusBody(st couponq.Status) StatusResponse {
	return StatusResponse{
		Campaign: st.Campaign, Entry: st.Entry, State: string(st.State), Position: st.Position,
		EstimatedWaitMS: st.EstimatedWait.Milliseconds(), IssuanceID: st.IssuanceID, Reason: string(st.Reason),
		BeyondStock: st.BeyondStock, PreQueue: st.PreQueue,
	}
}

func (h *Handler) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, err := h.cfg.User(r)
	if err != nil {
		h.fail(w, http.StatusUnauthorized, "unauthenticated", err.Error(), nil)
		return "", false
	}
	return u, true
}

func (h *Handler) ticket(campaign string, t couponq.Ticket) *TicketResponse {
	return &TicketResponse{
		Campaign: campaign, Entry: t.Entry, Position: t.Position, EstimatedWaitMS: t.EstimatedWait.Milliseconds(),
		State: string(t.State), Repeat: t.Repeat, BeyondStock: t.BeyondStock, PreQueue: t.PreQueue,
		StatusURL: h.cfg.BasePath + "/campaigns/" + campaign + "/entries/me",
	}
}

// statusOf is the HTTP status of each couponq.Code the handler answers.
var statusOf = map[string]int{
	couponq.CodeInvalidID:       http.StatusBadRequest,
	couponq.CodeUnknownCampaign: http.StatusNotFound,
	couponq.CodeNotFound:        http.StatusNotFound,
	couponq.CodeNotOpen:         http.StatusForbidden,
	couponq.CodeClosed:          http.StatusForbidden,
	couponq.CodeDuplicate:       http.StatusConflict,
	couponq.CodeSoldOut:         http.StatusGone,
	couponq.CodeLineFull:        http.StatusGone,
	couponq.CodeUnsupported:     http.StatusNotImplemented,
}

// error answers err with its couponq.Code.
func (h *Handler) error(w http.ResponseWriter, r *http.Request, err error, prior *TicketResponse) {
	code := couponq.Code(err)
	switch code {
	case couponq.CodeBusy:
		h.retryLater(w, code, "too many requests at once, retry shortly")
		return
	case couponq.CodeUnavailable:
		if r.Context().Err() == nil {
			h.log.Warn("couponq: http: backend unavailable", "path", r.URL.Path, "err", err)
		}
		h.retryLater(w, code, "a backend is unavailable, retry shortly")
		return
	case couponq.CodeNotFound:
		h.fail(w, http.StatusNotFound, code, "no entry for this user", nil)
		return
	case couponq.CodeUnsupported:
		h.log.Error("couponq: http: campaign mode not served here", "path", r.URL.Path, "err", err)
	}
	status, ok := statusOf[code]
	if !ok {
		h.log.Error("couponq: http: unexpected error", "path", r.URL.Path, "err", err)
		h.fail(w, http.StatusInternalServerError, couponq.CodeInternal, "internal error", nil)
		return
	}
	if code != couponq.CodeDuplicate && code != couponq.CodeSoldOut && code != couponq.CodeLineFull {
		prior = nil
	}
	h.fail(w, status, code, err.Error(), prior)
}

func (h *Handler) retryLater(w http.ResponseWriter, code, msg string) {
	secs := int64((h.cfg.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	h.fail(w, http.StatusServiceUnavailable, code, msg, nil)
}

func (h *Handler) fail(w http.ResponseWriter, status int, code, msg string, prior *TicketResponse) {
	var e ErrorResponse
	e.Error.Code, e.Error.Message, e.Ticket = code, msg, prior
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

// The answers' fixed header values, shared: a handler that appends to one
// gets a copy (their capacity is their length), so sharing them is safe.
var (
	contentTypeJSON = []string{"application/json"}
	cacheNoStore    = []string{"no-store"}
)

func setJSONHeaders(h http.Header) {
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheNoStore
}

// writeTicket writes t as writeJSON would, without reflection: admission is
// the hot path (see BenchmarkAdmitHandler).
func writeTicket(w http.ResponseWriter, status int, t *TicketResponse) {
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	bp := bufPool.Get().(*[]byte)
	b := t.appendJSON((*bp)[:0])
	_, _ = w.Write(b) // the client may be gone; nothing to do about it
	*bp = b
	bufPool.Put(bp)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSON appends t's JSON, byte for byte what encoding/json's Encoder
// writes (the newline included).
func (t *TicketResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"campaign":`...)
	b = appendJSONString(b, t.Campaign)
	b = append(b, `,"entry":`...)
	b = strconv.AppendInt(b, t.Entry, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, t.Position, 10)
	if t.EstimatedWaitMS != 0 {
		b = append(b, `,"estimated_wait_ms":`...)
		b = strconv.AppendInt(b, t.EstimatedWaitMS, 10)
	}
	b = append(b, `,"state":`...)
	b = appendJSONString(b, t.State)
	b = append(b, `,"repeat":`...)
	b = strconv.AppendBool(b, t.Repeat)
	if t.BeyondStock {
		b = append(b, `,"beyond_stock":true`...)
	}
	if t.PreQueue {
		b = append(b, `,"pre_queue":true`...)
	}
	b = append(b, `,"status_url":`...)
	b = appendJSONString(b, t.StatusURL)
	return append(b, "}\n"...)
}

// appendJSONString appends s quoted as encoding/json quotes it: as is when
// every byte is printable ASCII that needs no escape (IDs always are),
// through encoding/json otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeOne decodes the one JSON value a request body may hold into v.
// Nothing may follow it, and reading on to the end also holds the whole
// body, not just its first value, to the reader's limit: what runs past an
// http.MaxBytesReader's limit after the value is that reader's
// *http.MaxBytesError (413), anything else after it "more than one JSON
// value" (400). An empty body is io.EOF.
func decodeOne(dec *json.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, extra := dec.Token(); errors.As(extra, new(*http.MaxBytesError)) {
		return extra
	} else if !errors.Is(extra, io.EOF) {
		return errors.New("more than one JSON value")
	}
	return nil
}
