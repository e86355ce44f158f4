package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// ErrUnauthorized is what an AdminConfig.Authorize function wraps when the
// request carries no valid credentials: the handler answers 401. Any other
// error from Authorize means the caller is known but not allowed: 403.
// (ErrUnauthenticated, the public handler's sentinel, answers 401 too.)
var ErrUnauthorized = errors.New("httpapi: unauthorized")

// AdminConfig configures the admin handler. Zero values take the defaults
// documented on each field.
type AdminConfig struct {
	// Campaigns are the operators' verbs on the campaigns the handler lists
	// and changes, with their line numbers: the node's. Required.
	Campaigns *catalog.Ops
	// Authorize decides whether a request may use the handler at all; it
	// runs before anything else, for every request. Return nil to let the
	// request through, an error wrapping ErrUnauthorized for 401, any other
	// error for 403. Required: there is no default that lets anyone in.
	Authorize func(r *http.Request) error
	// BasePath is the path prefix the handler is mounted under, without a
	// trailing slash ("/admin", say). Empty means the root.
	BasePath string
	// MaxBodyBytes bounds a request body. Zero means 16 KiB.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After sent with 503 answers. Zero means 1s.
	RetryAfter time.Duration
	// StatsConcurrency is how many LineStats calls a campaign list makes at
	// once. Zero means 16.
	StatsConcurrency int
	// StreamInterval is how often the live stream ({BasePath}/live/stream)
	// sends the campaign list, and how often, at most, the list is gathered
	// for all the streams open at once. Zero means 1s.
	StreamInterval time.Duration
	// StreamHeartbeat is how long a live stream may go without writing
	// before it writes an SSE comment, so proxies do not close it as idle.
	// Zero means 15s.
	StreamHeartbeat time.Duration
	// MaxStreams bounds the live streams open at once; one more is answered
	// 503 busy with Retry-After. Zero means 64.
	MaxStreams int
	// MaxStreamsPerOperator bounds the live streams one operator (see
	// Operator) holds open at once, so one cannot take them all; one more
	// is answered 429 too_many_streams with Retry-After. Zero means 4;
	// negative, no cap.
	MaxStreamsPerOperator int
	// Operator names who makes a request, for MaxStreamsPerOperator: the
	// operator's name from the host's own authentication, say; "" exempts
	// the request from that cap. Nil means the client's address, the host
	// of r.RemoteAddr — behind a gateway or proxy, the gateway's, shared by
	// every operator: set Operator there.
	Operator func(r *http.Request) string
	// BodyReadTimeout bounds how long a request with a body may take to
	// send it, from when the handler starts: a client that sends the
	// headers and trickles the body gets 408 and its connection closed
	// (an unauthorized one its 401, and the same end). A server whose
	// ReadTimeout is shorter is left to it. Zero means 10s.
	BodyReadTimeout time.Duration
	// Now returns the current time, for campaign states, measured drain
	// rates and closing. Nil means time.Now.
	Now func() time.Time
	// Logger receives backend failures; nil means none.
	Logger *slog.Logger
}

// AdminCampaign is a campaign as the admin handler answers it: the stored
// campaign, and, embedded, its live numbers. Times are RFC 3339 in UTC, or
// null when not set.
type AdminCampaign struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// Incarnation is couponq.Campaign.Incarnation, read-only: 1 for the
	// first creation of the ID, one more each time it is created again
	// after a DELETE.
	Incarnation  int64      `json:"incarnation"`
	Stock        int64      `json:"stock"`
	PerUserLimit int        `json:"per_user_limit"`
	BatchSize    int        `json:"batch_size"`
	IntervalMS   int64      `json:"interval_ms"`
	OpensAt      *time.Time `json:"opens_at"`
	ClosesAt     *time.Time `json:"closes_at"`
	// Mode is "v2-queue-first" or "v1-validate-first" (couponq.Mode.String).
	Mode string `json:"mode"`
	// MaxWaiting caps the line (couponq.Campaign.MaxWaiting); 0 means no
	// cap.
	MaxWaiting int64 `json:"max_waiting"`
	Paused     bool  `json:"paused"`
	// Shards is the number of sub-lines (couponq.Campaign.Shards), set at
	// create and fixed after; 0 means one line.
	Shards int `json:"shards"`
	// PreQueueMS is how long before opens_at the pre-queue opens
	// (couponq.Campaign.PreQueue); 0 means none.
	PreQueueMS int64 `json:"pre_queue_ms"`
	// LiveNumbers is always there in list and get answers. An answer to a
	// change leaves it out if the change was saved but the numbers could
	// not be read.
	*LiveNumbers
}

// LiveNumbers is where a campaign's entries stand, read from its Queue.
type LiveNumbers struct {
	// State is couponq.Campaign.State: scheduled, pre_queue, open, paused,
	// closed or sold_out.
	State string `json:"state"`
	// Admitted is how many entries were ever admitted; Waiting and InFlight
	// count those in line and handed downstream; Issued counts those
	// recorded as issued; Remaining is Stock - Issued, at least 0.
	Admitted  int64 `json:"admitted"`
	Waiting   int64 `json:"waiting"`
	InFlight  int64 `json:"in_flight"`
	Issued    int64 `json:"issued"`
	Remaining int64 `json:"remaining"`
	// RatePerSec is the throttle's nominal rate, BatchSize per Interval.
	RatePerSec float64 `json:"rate_per_sec"`
	// DrainETAMS is how long the line takes to drain at the nominal rate;
	// null while the campaign is paused.
	DrainETAMS *int64 `json:"drain_eta_ms"`
	// DrainedPerSec is the measured rate at which entries left the line
	// (admitted - waiting), between this handler's earlier look at the
	// campaign (at least a second before) and this one; null until there
	// are two such looks. Each process measures on its own.
	DrainedPerSec *float64 `json:"drained_per_sec"`
}

// AdminCampaignList is the body of a campaign list.
type AdminCampaignList struct {
	Campaigns []AdminCampaign `json:"campaigns"`
}

type admin struct {
	cfg AdminConfig
	log *slog.Logger
	mux *http.ServeMux
	ops *catalog.Ops

	mu   sync.Mutex
	seen map[string]observation // campaign ID -> last look, for DrainedPerSec

	feed    *feed         // the campaign list the live streams share
	streams chan struct{} // one token per open live stream

	opMu        sync.Mutex
	perOperator streamCounts // the live streams each operator holds; guarded by opMu

	servers serverGates    // the servers live streams came through, for their shutdown
	closeMu sync.Mutex     // guards closed, and open's Add against Close's Wait
	closed  bool           // Close was called
	closing chan struct{}  // closed by Close
	open    sync.WaitGroup // one per open live stream
}

// enter counts a live stream in, unless Close was called.
func (a *admin) enter() bool {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	if a.closed {
		return false
	}
	a.open.Add(1)
	return true
}

// observation is the handler's last look at a campaign's line.
type observation struct {
	at       time.Time
	moved    int64 // admitted - waiting
	rate     float64
	measured bool
}

// NewAdmin returns the operators' handler, to mount apart from the public
// one (New) behind the host's own authorization:
//
//	GET    {BasePath}/campaigns              every campaign with its live numbers; 200 {"campaigns": [...]}
//	POST   {BasePath}/campaigns              create; 201 with the campaign
//	GET    {BasePath}/campaigns/{id}         one campaign with its live numbers; 200
//	PATCH  {BasePath}/campaigns/{id}         change some fields at a version; 200
//	DELETE {BasePath}/campaigns/{id}         archive and delete a finished campaign; 204
//	POST   {BasePath}/campaigns/{id}/pause   stop the throttle; 200
//	POST   {BasePath}/campaigns/{id}/resume  restart the throttle; 200
//	POST   {BasePath}/campaigns/{id}/close   end admission now; 200
//	GET    {BasePath}/live/stream            the campaign list, live, as Server-Sent Events
//	GET    {BasePath}/live                   the operators' live page (HTML, embedded; uses the stream)
//
// Campaigns are JSON objects shaped as AdminCampaign. A create body has id
// and stock (required), and any of per_user_limit, batch_size, interval_ms,
// opens_at, closes_at, mode, max_waiting, paused, shards and pre_queue_ms;
// missing fields take couponq's defaults. A PATCH body has the version it
// read (required) and any of stock, per_user_limit, batch_size,
// interval_ms, opens_at, closes_at (null clears a time), max_waiting,
// paused and pre_queue_ms (shards are fixed once created). Stock may be
// raised or lowered, but not below the units already issued; a PATCH that
// sets the stock of a sold-out campaign above the issued count, and not
// below its stock, reopens it. Pause, resume and
// close need no version and no body; repeating one changes nothing.
//
// DELETE takes no body and two query parameters, both required: version,
// the version read, and retention, a Go duration (24h, 168h, 0s) for which
// users can still read their outcomes (for example
// DELETE /admin/campaigns/spring?version=4&retention=24h). The campaign
// must be closed or sold out, with nobody waiting or in flight (else 409
// campaign_busy); its Queue records are archived for the retention
// (0s drops them now), then it is deleted from the
// Registry. The ID may be created again at once after a retention of 0s:
// the new campaign is the ID's next incarnation (its "incarnation", one
// more), which the Store knows by a name of its own
// (couponq.Campaign.StoreCampaign), so it starts with all its stock, no
// users and entry numbers from 1, while the old incarnation's issuances
// stay in the Store under the old name; Status reads the new line. After
// a longer retention, until it ends the Queue still holds the old
// campaign's outcomes (and its sold-out mark) under the ID: reuse an ID
// only after that. Delete a campaign only once
// every process has seen it closed (the node's CacheTTL after closing):
// one that still admits would put entries in a line nobody serves. A
// failure after the archive (503, or 409 version_conflict from a writer in
// between) leaves the campaign listed with its records archived; repeating
// the DELETE (at the version read anew) archives them again and deletes it.
//
// The stream answers text/event-stream: a "campaigns" event whose data is
// the list's JSON (AdminCampaignList) at once, with the client's reconnect
// delay (retry) set to RetryAfter, then one every StreamInterval, and an
// SSE comment after StreamHeartbeat without a write;
// while the list cannot be read it sends an "unavailable" event (an error
// body) instead. It ends when the client goes away, when Close is called,
// or when the http.Server serving it shuts down (the handler registers with
// RegisterOnShutdown on its first stream), so open pages never hold a
// graceful shutdown.
// However many streams are open (at most MaxStreams, past that 503 busy;
// at most MaxStreamsPerOperator for one operator, past that 429
// too_many_streams), they share one gather of the list per
// StreamInterval: 64 open pages read the Registry and the Queue as often
// as one does. Each write to a stream has 10s to complete, and none holds
// between writes, so the http.Server's WriteTimeout does not cut it.
//
// The live page shows each campaign's state, waiting, in flight, issued of
// the stock, drain rate and the time the last in line waits, updated from
// the stream. The page, its script and its stylesheet go through Authorize
// like every route; a browser's EventSource cannot send an Authorization
// header, so hosts authorize operators' browsers with a cookie (Authorize
// reads it) or a gateway in front.
//
// Writes (POST, PATCH, DELETE) take Content-Type: application/json; one
// that carries a body must, one without a body may leave it out.
//
// Errors answer JSON {"error": {"code": ..., "message": ...}}, as the public
// handler's do: 400 bad_request (malformed or unknown JSON, or a bad DELETE
// query) / invalid_id / invalid_campaign (the campaign does not validate;
// nothing was written; "field" names the JSON field at fault) / unsupported (the node cannot serve it), 401 unauthorized, 403 forbidden, 404
// unknown_campaign / not_found, 405 method_not_allowed (with Allow), 408
// request_timeout (a body slower than BodyReadTimeout), 409
// campaign_exists / version_conflict / stock_below_issued / not_open
// (closing a campaign before it opens) / campaign_busy (deleting a campaign
// that is not finished), 413 body_too_large, 415 unsupported_media_type (a
// write whose body is not declared JSON), 429 too_many_streams (with
// Retry-After) past MaxStreamsPerOperator, 503 unavailable (with
// Retry-After) when the Registry or the Queue fails, 503 busy (with
// Retry-After) past MaxStreams.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Campaigns == nil || cfg.Campaigns.Registry == nil || cfg.Campaigns.Lines == nil || cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: httpapi: admin: Campaigns (with its Registry and Lines) and Authorize are required", couponq.ErrInvalidConfig)
	}
	if cfg.MaxBodyBytes < 0 || cfg.RetryAfter < 0 || cfg.StatsConcurrency < 0 ||
		cfg.StreamInterval < 0 || cfg.StreamHeartbeat < 0 || cfg.MaxStreams < 0 || cfg.BodyReadTimeout < 0 {
		return nil, fmt.Errorf("%w: httpapi: admin: MaxBodyBytes, RetryAfter, StatsConcurrency, StreamInterval, "+
			"StreamHeartbeat, MaxStreams and BodyReadTimeout must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.BasePath != "" && (!strings.HasPrefix(cfg.BasePath, "/") || strings.HasSuffix(cfg.BasePath, "/")) {
		return nil, fmt.Errorf("%w: httpapi: admin: BasePath %q must start and not end with /", couponq.ErrInvalidConfig, cfg.BasePath)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.StatsConcurrency == 0 {
		cfg.StatsConcurrency = 16
	}
	if cfg.StreamInterval == 0 {
		cfg.StreamInterval = time.Second
	}
	if cfg.StreamHeartbeat == 0 {
		cfg.StreamHeartbeat = 15 * time.Second
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Operator == nil {
		cfg.Operator = remoteHost
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = defaultBodyReadTimeout
	}
	a := &admin{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), ops: cfg.Campaigns,
		seen: map[string]observation{}, closing: make(chan struct{}),
		perOperator: streamCounts{max: withDefault(cfg.MaxStreamsPerOperator, defaultStreamMaxPerAdmin)}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	base := cfg.BasePath + "/campaigns"
	a.route(base, map[string]http.HandlerFunc{"GET": a.list, "POST": a.create})
	a.route(base+"/{id}", map[string]http.HandlerFunc{"GET": a.get, "PATCH": a.patch, "DELETE": a.delete})
	a.route(base+"/{id}/pause", map[string]http.HandlerFunc{"POST": a.pause})
	a.route(base+"/{id}/resume", map[string]http.HandlerFunc{"POST": a.resume})
	a.route(base+"/{id}/close", map[string]http.HandlerFunc{"POST": a.close})
	a.routeLive(cfg.BasePath)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, http.StatusNotFound, "not_found", "no such route: "+r.URL.Path)
	})
	return &Admin{a: a}, nil
}

// Admin is the operators' handler NewAdmin returns: an http.Handler, and
// Close to end its live streams.
type Admin struct{ a *admin }

// ServeHTTP serves the admin routes.
func (h *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.a.ServeHTTP(w, r) }

// Close ends every open live stream and returns once they have ended; later
// live stream requests answer 503 unavailable. Streams also end when the
// http.Server serving them shuts down. Safe to call more than once.
func (h *Admin) Close() {
	a := h.a
	a.closeMu.Lock()
	if !a.closed {
		a.closed = true
		close(a.closing)
	}
	a.closeMu.Unlock()
	a.open.Wait()
}

// route registers one handler per method on path, and a 405 answer naming
// them for any other method.
func (a *admin) route(path string, byMethod map[string]http.HandlerFunc) {
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PATCH", "DELETE"} { // a stable order for Allow
		if m == "HEAD" && byMethod["GET"] != nil {
			allow = append(allow, m) // the mux serves HEAD with the GET handler
		}
		if h := byMethod[m]; h != nil {
			if m != "GET" {
				h = a.jsonOnly(h)
			}
			a.mux.HandleFunc(m+" "+path, h)
			allow = append(allow, m)
		}
	}
	allowed := strings.Join(allow, ", ")
	a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		a.fail(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" not allowed here; allowed: "+allowed)
	})
}

// jsonOnly refuses a write whose body is not declared JSON: 415
// unsupported_media_type. A form or text/plain body, or a body without a
// Content-Type, is what another site's page can send without a CORS
// preflight; a write without a body may leave the Content-Type out.
func (a *admin) jsonOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if (ct != "" || r.ContentLength != 0) && !isJSON(ct) {
			what := fmt.Sprintf("Content-Type %q", ct)
			if ct == "" {
				what = "a body without a Content-Type"
			}
			a.fail(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
				"admin writes take Content-Type: application/json, not "+what)
			return
		}
		next(w, r)
	}
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limitBodyRead(w, r, a.cfg.BodyReadTimeout)
	if err := a.cfg.Authorize(r); err != nil {
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrUnauthenticated) {
			a.fail(w, http.StatusUnauthorized, "unauthorized", err.Error())
		} else {
			a.fail(w, http.StatusForbidden, "forbidden", err.Error())
		}
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	out, op, err := a.campaigns(r.Context())
	if err != nil {
		a.error(w, r, op, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// campaigns gathers every campaign with its live numbers: the list's answer
// and the live stream's events. On failure op names the step that failed.
func (a *admin) campaigns(ctx context.Context) (out AdminCampaignList, op string, err error) {
	cs, err := a.ops.List(ctx)
	if err != nil {
		return out, "list campaigns", err
	}
	stats, err := a.lineStats(ctx, cs)
	if err != nil {
		return out, "read line stats", err
	}
	now := a.cfg.Now()
	out.Campaigns = make([]AdminCampaign, len(cs))
	for i, c := range cs {
		out.Campaigns[i] = a.view(c, &stats[i], now)
	}
	a.forgetAllBut(cs)
	return out, "", nil
}

// lineStats reads the stats of every campaign, StatsConcurrency at a time,
// and stops at the first failure.
func (a *admin) lineStats(ctx context.Context, cs []couponq.Campaign) ([]couponq.LineStats, error) {
	out := make([]couponq.LineStats, len(cs))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(cs), a.cfg.StatsConcurrency) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(cs) {
					return
				}
				s, err := a.ops.LineStats(ctx, cs[i].ID)
				if err != nil {
					cancel(fmt.Errorf("campaign %s: %w", cs[i].ID, err))
					return
				}
				out[i] = s
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func (a *admin) get(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	c, err := a.ops.Campaign(r.Context(), id)
	if err != nil {
		if errors.Is(err, couponq.ErrUnknownCampaign) {
			a.forget(id)
		}
		a.error(w, r, "read campaign", err)
		return
	}
	s, err := a.ops.LineStats(r.Context(), id)
	if err != nil {
		a.error(w, r, "read line stats", err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(c, &s, a.cfg.Now()))
}

func (a *admin) create(w http.ResponseWriter, r *http.Request) {
	fields, ok := a.body(w, r)
	if !ok {
		return
	}
	c, err := createFields(fields)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err := c.Validate(); err != nil {
		a.invalidCampaign(w, err)
		return
	}
	created, err := a.ops.Create(r.Context(), c)
	if err != nil {
		a.error(w, r, "create campaign", err)
		return
	}
	w.Header().Set("Location", a.cfg.BasePath+"/campaigns/"+created.ID)
	a.answer(w, r, http.StatusCreated, created)
}

func (a *admin) patch(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	fields, ok := a.body(w, r)
	if !ok {
		return
	}
	p, err := patchFields(fields)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx := r.Context()
	old, err := a.ops.Campaign(ctx, id)
	if err != nil {
		a.error(w, r, "read campaign", err)
		return
	}
	if old.Version != p.version {
		a.fail(w, http.StatusConflict, "version_conflict", fmt.Sprintf(
			"campaign %s is at version %d, not %d: it changed since it was read; read it again", id, old.Version, p.version))
		return
	}
	c := old
	p.apply(&c)
	if err := c.Validate(); err != nil {
		a.invalidCampaign(w, err)
		return
	}
	update := a.ops.Update
	if p.stock != nil {
		update = a.ops.UpdateStock
	}
	saved, err := update(ctx, c)
	if err != nil && saved.Version != 0 {
		// Saved, but the sold-out mark is still there: say at which version
		// to repeat the change.
		a.log.Warn("couponq: http: admin: reopen failed after a stock update", "campaign", id, "version", saved.Version, "err", err)
		a.retryLater(w, fmt.Sprintf("campaign %s was saved at version %d, but its sold-out mark could not be taken back; "+
			"repeat the PATCH with version %d and the same stock to retry", id, saved.Version, saved.Version))
		return
	}
	if err != nil {
		a.error(w, r, "update campaign", err)
		return
	}
	a.answer(w, r, http.StatusOK, saved)
}

func (a *admin) pause(w http.ResponseWriter, r *http.Request) {
	a.modify(w, r, "pause", func(ctx context.Context, id string) (couponq.Campaign, error) {
		return a.ops.Pause(ctx, id)
	})
}

func (a *admin) resume(w http.ResponseWriter, r *http.Request) {
	a.modify(w, r, "resume", func(ctx context.Context, id string) (couponq.Campaign, error) {
		return a.ops.Resume(ctx, id)
	})
}

func (a *admin) close(w http.ResponseWriter, r *http.Request) {
	a.modify(w, r, "close", func(ctx context.Context, id string) (couponq.Campaign, error) {
		c, err := a.ops.Close(ctx, id, a.cfg.Now())
		if errors.Is(err, couponq.ErrNotOpen) {
			// The one way a stored campaign fails to close now: it has not
			// opened yet. That is a state of the campaign, not a bad request.
			return c, &conflict{code: "not_open", err: err}
		}
		return c, err
	})
}

// delete archives a finished campaign's Queue records and deletes it from
// the Registry; see NewAdmin.
func (a *admin) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	version, retention, err := deleteParams(r.URL.Query())
	if err != nil {
		a.fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err := a.ops.Retire(r.Context(), id, version, retention); err != nil {
		a.error(w, r, "retire campaign", err)
		return
	}
	a.forget(id)
	w.WriteHeader(http.StatusNoContent)
}

// deleteParams reads a DELETE's query: version and retention, both
// required, and nothing else.
func deleteParams(q url.Values) (version int64, retention time.Duration, err error) {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if name != "version" && name != "retention" {
			return 0, 0, fmt.Errorf("unknown query parameter %q; the parameters are version and retention", name)
		}
		if len(q[name]) > 1 {
			return 0, 0, fmt.Errorf("query parameter %q is given %d times", name, len(q[name]))
		}
	}
	if !q.Has("version") {
		return 0, 0, errors.New(`"version" is required: the campaign's version the delete is based on (> 0)`)
	}
	if version, err = strconv.ParseInt(q.Get("version"), 10, 64); err != nil || version <= 0 {
		return 0, 0, fmt.Errorf(`"version" must be an integer > 0, got %q`, q.Get("version"))
	}
	if !q.Has("retention") {
		return 0, 0, errors.New(`"retention" is required: how long users can still read their outcomes, ` +
			`as a duration such as 24h or 168h; 0s drops them now`)
	}
	if retention, err = time.ParseDuration(q.Get("retention")); err != nil || retention < 0 {
		return 0, 0, fmt.Errorf(`"retention" must be a duration >= 0 such as 24h or 0s, got %q`, q.Get("retention"))
	}
	return version, retention, nil
}

// conflict is a 409 answer with its code.
type conflict struct {
	code string
	err  error
}

func (e *conflict) Error() string { return e.err.Error() }
func (e *conflict) Unwrap() error { return e.err }

// modify serves the body-less, version-less actions.
func (a *admin) modify(w http.ResponseWriter, r *http.Request, op string, fn func(context.Context, string) (couponq.Campaign, error)) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	c, err := fn(r.Context(), id)
	var cf *conflict
	switch {
	case errors.As(err, &cf):
		a.fail(w, http.StatusConflict, cf.code, cf.Error())
	case err != nil:
		a.error(w, r, op+" campaign", err)
	default:
		a.answer(w, r, http.StatusOK, c)
	}
}

// answer writes a changed campaign with its live numbers, or without them
// if they cannot be read: the change is saved, so it must not look failed.
func (a *admin) answer(w http.ResponseWriter, r *http.Request, status int, c couponq.Campaign) {
	var s *couponq.LineStats
	if got, err := a.ops.LineStats(r.Context(), c.ID); err != nil {
		a.log.Warn("couponq: http: admin: line stats unavailable after a change", "campaign", c.ID, "err", err)
	} else {
		s = &got
	}
	writeJSON(w, status, a.view(c, s, a.cfg.Now()))
}

// view renders c, with its live numbers if s is not nil.
func (a *admin) view(c couponq.Campaign, s *couponq.LineStats, now time.Time) AdminCampaign {
	c = c.WithDefaults()
	v := AdminCampaign{
		ID: c.ID, Version: c.Version, Incarnation: max(c.Incarnation, 1), Stock: c.Stock, PerUserLimit: c.PerUserLimit, BatchSize: c.BatchSize,
		IntervalMS: c.Interval.Milliseconds(), OpensAt: utc(c.OpensAt), ClosesAt: utc(c.ClosesAt),
		Mode: c.Mode.String(), MaxWaiting: c.MaxWaiting, Paused: c.Paused,
		Shards: c.Shards, PreQueueMS: c.PreQueue.Milliseconds(),
	}
	if s == nil {
		return v
	}
	live := &LiveNumbers{
		State:    string(c.State(now, s.SoldOut)),
		Admitted: s.Admitted, Waiting: s.Waiting, InFlight: s.InFlight, Issued: s.Issued,
		Remaining:     max(0, c.Stock-s.Issued),
		RatePerSec:    round(float64(c.BatchSize)/c.Interval.Seconds(), 1000),
		DrainedPerSec: a.drained(c.ID, now, s.Admitted-s.Waiting),
	}
	if !c.Paused { // none while paused; 0 for an empty line
		w, _ := c.EstimateWait(s.Waiting, s.Issued+s.InFlight)
		eta := w.Milliseconds()
		live.DrainETAMS = &eta
	}
	v.LiveNumbers = live
	return v
}

// drained records a look at a campaign whose line has moved entries out
// (admitted - waiting) so far, and returns the rate measured over at least
// a second since the previous recorded look, or the last such rate.
func (a *admin) drained(id string, now time.Time, moved int64) *float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.seen[id]
	if !ok || now.Before(o.at) {
		a.seen[id] = observation{at: now, moved: moved}
		return nil
	}
	if elapsed := now.Sub(o.at); elapsed >= time.Second {
		// Expired leases going back to the line make the count drop; the
		// rate of a line that gave entries back is 0, not negative.
		rate := round(max(0, float64(moved-o.moved)/elapsed.Seconds()), 100)
		a.seen[id] = observation{at: now, moved: moved, rate: rate, measured: true}
		return &rate
	}
	if !o.measured {
		return nil
	}
	rate := o.rate
	return &rate
}

// forgetAllBut bounds the handler's memory to the campaigns that exist.
func (a *admin) forgetAllBut(cs []couponq.Campaign) {
	keep := make(map[string]struct{}, len(cs))
	for _, c := range cs {
		keep[c.ID] = struct{}{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.seen {
		if _, ok := keep[id]; !ok {
			delete(a.seen, id)
		}
	}
}

func (a *admin) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, id)
}

func (a *admin) pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if err := couponq.ValidateID(id); err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_id", fmt.Sprintf("campaign ID %q: %v", id, err))
		return "", false
	}
	return id, true
}

// body reads a request body that must be one JSON object, within
// MaxBodyBytes, and returns its fields undecoded.
func (a *admin) body(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var fields map[string]json.RawMessage
	err := decodeOne(dec, &fields)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.fail(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is over %d bytes", tooBig.Limit))
		return nil, false
	case errors.Is(err, io.EOF):
		a.fail(w, http.StatusBadRequest, "bad_request", "the body must be a JSON object; it is empty")
		return nil, false
	case bodyTimedOut(err):
		requestTimeout(w)
		return nil, false
	case err != nil:
		a.fail(w, http.StatusBadRequest, "bad_request", "the body must be one JSON object: "+err.Error())
		return nil, false
	case fields == nil:
		a.fail(w, http.StatusBadRequest, "bad_request", "the body must be a JSON object, not null")
		return nil, false
	}
	return fields, true
}

// error answers a failed Registry or Queue call.
func (a *admin) error(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, couponq.ErrUnknownCampaign):
		a.fail(w, http.StatusNotFound, "unknown_campaign", err.Error())
	case errors.Is(err, couponq.ErrCampaignExists):
		a.fail(w, http.StatusConflict, "campaign_exists", err.Error())
	case errors.Is(err, couponq.ErrVersionConflict):
		a.fail(w, http.StatusConflict, "version_conflict", err.Error())
	case errors.Is(err, couponq.ErrCampaignBusy):
		a.fail(w, http.StatusConflict, "campaign_busy", err.Error())
	case errors.Is(err, couponq.ErrStockBelowIssued):
		a.fail(w, http.StatusConflict, couponq.CodeStockBelowIssued, err.Error())
	case errors.Is(err, couponq.ErrUnsupported):
		a.fail(w, http.StatusBadRequest, couponq.CodeUnsupported, err.Error())
	case errors.Is(err, couponq.ErrInvalidCampaign):
		a.invalidCampaign(w, err)
	case errors.Is(err, couponq.ErrInvalidID):
		a.fail(w, http.StatusBadRequest, "invalid_id", err.Error())
	default:
		if r.Context().Err() == nil {
			a.log.Warn("couponq: http: admin: backend unavailable", "op", op, "path", r.URL.Path, "err", err)
		}
		a.retryLater(w, "cannot "+op+": a backend is unavailable, retry shortly")
	}
}

// jsonFields are the admin API's names of the Campaign fields.
var jsonFields = map[string]string{
	"ID": "id", "Version": "version", "Stock": "stock", "PerUserLimit": "per_user_limit", "BatchSize": "batch_size",
	"Interval": "interval_ms", "OpensAt": "opens_at", "ClosesAt": "closes_at", "Mode": "mode",
	"MaxWaiting": "max_waiting", "Shards": "shards", "PreQueue": "pre_queue_ms",
}

// invalidCampaign answers 400 invalid_campaign for a campaign that does not
// validate, with the JSON name of the field at fault.
func (a *admin) invalidCampaign(w http.ResponseWriter, err error) {
	var e ErrorResponse
	e.Error.Code, e.Error.Message = "invalid_campaign", err.Error()
	var fe interface{ CampaignField() string }
	if errors.As(err, &fe) {
		e.Error.Field = jsonFields[fe.CampaignField()]
	}
	writeJSON(w, http.StatusBadRequest, e)
}

func (a *admin) retryLater(w http.ResponseWriter, msg string) {
	a.retryLaterAs(w, "unavailable", msg)
}

// retryLaterAs answers 503 with code and Retry-After.
func (a *admin) retryLaterAs(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Retry-After", fmt.Sprint(int64((a.cfg.RetryAfter+time.Second-1)/time.Second)))
	a.fail(w, http.StatusServiceUnavailable, code, msg)
}

func (a *admin) fail(w http.ResponseWriter, status int, code, msg string) {
	var e ErrorResponse
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// round rounds x to 1/per.
func round(x, per float64) float64 { return math.Round(x*per) / per }

// Field decoding. Bodies are decoded field by field, so an error names the
// field and what it should hold, and an unknown field is refused.

// maxIntervalMS is the longest interval_ms a time.Duration holds.
const maxIntervalMS = math.MaxInt64 / int64(time.Millisecond)

func createFields(fields map[string]json.RawMessage) (couponq.Campaign, error) {
	var c couponq.Campaign
	for _, name := range slices.Sorted(maps.Keys(fields)) { // the same error for the same body
		raw, err := fields[name], error(nil)
		switch name {
		case "id":
			err = decodeField(name, raw, &c.ID)
		case "stock":
			err = decodeField(name, raw, &c.Stock)
		case "per_user_limit":
			err = decodeField(name, raw, &c.PerUserLimit)
		case "batch_size":
			err = decodeField(name, raw, &c.BatchSize)
		case "interval_ms":
			c.Interval, err = decodeInterval(raw)
		case "opens_at":
			err = decodeTime(name, raw, &c.OpensAt)
		case "closes_at":
			err = decodeTime(name, raw, &c.ClosesAt)
		case "mode":
			c.Mode, err = decodeMode(raw)
		case "max_waiting":
			err = decodeField(name, raw, &c.MaxWaiting)
		case "paused":
			err = decodeField(name, raw, &c.Paused)
		case "shards":
			err = decodeField(name, raw, &c.Shards)
		case "pre_queue_ms":
			c.PreQueue, err = decodeMillis(name, raw)
		case "version", "incarnation":
			err = fmt.Errorf("%q: not allowed on create: the registry sets it", name)
		default:
			err = unknownField(name, "id, stock, per_user_limit, batch_size, interval_ms, opens_at, closes_at, mode, max_waiting, paused, shards, pre_queue_ms")
		}
		if err != nil {
			return couponq.Campaign{}, err
		}
	}
	return c, nil
}

// campaignPatch holds the fields a PATCH sets; nil means untouched.
type campaignPatch struct {
	version           int64
	stock             *int64
	perUser, batch    *int
	interval          *time.Duration
	opensAt, closesAt *time.Time // the zero time clears
	maxWaiting        *int64
	paused            *bool
	preQueue          *time.Duration
}

func patchFields(fields map[string]json.RawMessage) (campaignPatch, error) {
	var p campaignPatch
	hasVersion := false
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw, err := fields[name], error(nil)
		switch name {
		case "version":
			hasVersion = true
			err = decodeField(name, raw, &p.version)
		case "stock":
			p.stock = new(int64)
			err = decodeField(name, raw, p.stock)
		case "per_user_limit":
			p.perUser = new(int)
			err = decodeField(name, raw, p.perUser)
		case "batch_size":
			p.batch = new(int)
			err = decodeField(name, raw, p.batch)
		case "interval_ms":
			p.interval = new(time.Duration)
			*p.interval, err = decodeInterval(raw)
		case "opens_at":
			p.opensAt = new(time.Time)
			err = decodeTime(name, raw, p.opensAt)
		case "closes_at":
			p.closesAt = new(time.Time)
			err = decodeTime(name, raw, p.closesAt)
		case "max_waiting":
			p.maxWaiting = new(int64)
			err = decodeField(name, raw, p.maxWaiting)
		case "paused":
			p.paused = new(bool)
			err = decodeField(name, raw, p.paused)
		case "pre_queue_ms":
			p.preQueue = new(time.Duration)
			*p.preQueue, err = decodeMillis(name, raw)
		case "shards":
			err = errors.New(`"shards": fixed once created (a user's sub-line is derived from it)`)
		default:
			err = unknownField(name, "version, stock, per_user_limit, batch_size, interval_ms, opens_at, closes_at, max_waiting, paused, pre_queue_ms")
		}
		if err != nil {
			return campaignPatch{}, err
		}
	}
	if !hasVersion || p.version <= 0 {
		return campaignPatch{}, errors.New(`"version" is required: the campaign's version the change is based on (> 0)`)
	}
	return p, nil
}

func (p campaignPatch) apply(c *couponq.Campaign) {
	if p.stock != nil {
		c.Stock = *p.stock
	}
	if p.perUser != nil {
		c.PerUserLimit = *p.perUser
	}
	if p.batch != nil {
		c.BatchSize = *p.batch
	}
	if p.interval != nil {
		c.Interval = *p.interval
	}
	if p.opensAt != nil {
		c.OpensAt = *p.opensAt
	}
	if p.closesAt != nil {
		c.ClosesAt = *p.closesAt
	}
	if p.maxWaiting != nil {
		c.MaxWaiting = *p.maxWaiting
	}
	if p.paused != nil {
		c.Paused = *p.paused
	}
	if p.preQueue != nil {
		c.PreQueue = *p.preQueue
	}
}

// decodeField decodes a field that must not be null.
func decodeField[T any](name string, raw json.RawMessage, dst *T) error {
	if string(raw) == "null" {
		return fmt.Errorf("%q must not be null", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%q must be %s, got %s", name, kind(*dst), raw)
	}
	return nil
}

func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "true or false"
	}
	return "an integer"
}

// decodeTime decodes an RFC 3339 time, or null (the zero time).
func decodeTime(name string, raw json.RawMessage, dst *time.Time) error {
	if string(raw) == "null" {
		*dst = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("%q must be an RFC 3339 time or null, got %s", name, raw)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%q must be an RFC 3339 time or null: %w", name, err)
	}
	*dst = t
	return nil
}

func decodeInterval(raw json.RawMessage) (time.Duration, error) {
	return decodeMillis("interval_ms", raw)
}

// decodeMillis decodes a field of whole milliseconds into a Duration.
func decodeMillis(name string, raw json.RawMessage) (time.Duration, error) {
	var ms int64
	if err := decodeField(name, raw, &ms); err != nil {
		return 0, err
	}
	if ms > maxIntervalMS || ms < -maxIntervalMS {
		return 0, fmt.Errorf(`%q %d is out of range (at most %d)`, name, ms, maxIntervalMS)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func decodeMode(raw json.RawMessage) (couponq.Mode, error) {
	var s string
	if err := decodeField("mode", raw, &s); err != nil {
		return 0, err
	}
	for _, m := range []couponq.Mode{couponq.QueueFirst, couponq.ValidateFirst} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf(`"mode" must be %q or %q, got %q`, couponq.QueueFirst, couponq.ValidateFirst, s)
}

func unknownField(name, known string) error {
	return fmt.Errorf("unknown field %q; the fields are %s", name, known)
}
