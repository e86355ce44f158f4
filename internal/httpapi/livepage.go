package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The live page's assets: no build step, no external CDN.
//
//go:embed live/index.html live/live.js live/live.css
var liveFiles embed.FS

// streamWriteTimeout bounds one write to a live stream, so a client that
// stops reading frees its stream slot instead of holding it. No deadline
// holds between writes (see eventWriter).
const streamWriteTimeout = 10 * time.Second

// liveAsset is one embedded file of the live page, served as is.
type liveAsset struct {
	body  []byte
	ctype string
	etag  string
}

func loadAsset(name, ctype string) liveAsset {
	body, err := liveFiles.ReadFile("live/" + name)
	if err != nil {
		panic("httpapi: embedded live page asset missing: " + name) // the go:embed line names it
	}
	return newAsset(body, ctype)
}

// newAsset is body served as ctype, with its hash as ETag.
func newAsset(body []byte, ctype string) liveAsset {
	sum := sha256.Sum256(body)
	return liveAsset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// pageHeaders keep the page to its own origin: its script, its stylesheet
// and its stream, and no framing.
var pageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// routeLive registers the live page, its assets and the stream it reads,
// and sets up what the streams share.
func (a *admin) routeLive(basePath string) {
	a.feed = &feed{interval: a.cfg.StreamInterval, gather: a.campaigns, turn: make(chan struct{}, 1),
		onFailure: func(op string, err error) {
			a.log.Warn("couponq: http: admin: live stream: backend unavailable", "op", op, "err", err)
		}}
	a.streams = make(chan struct{}, a.cfg.MaxStreams)
	a.route(basePath+"/live/stream", map[string]http.HandlerFunc{"GET": a.stream})
	for path, asset := range map[string]liveAsset{
		"/live":          loadAsset("index.html", "text/html; charset=utf-8"),
		"/live/live.js":  loadAsset("live.js", "text/javascript; charset=utf-8"),
		"/live/live.css": loadAsset("live.css", "text/css; charset=utf-8"),
	} {
		a.route(basePath+path, map[string]http.HandlerFunc{"GET": asset.serve})
	}
}

// serve answers the asset; the ETag spares a reload its body.
func (l liveAsset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range pageHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", l.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", l.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(l.body))
}

// stream serves GET {BasePath}/live/stream; see NewAdmin.
func (a *admin) stream(w http.ResponseWriter, r *http.Request) {
	if !a.enter() {
		a.retryLater(w, "the live stream is closed: the server is stopping")
		return
	}
	defer a.open.Done()
	op := a.cfg.Operator(r)
	if !a.takeStream(op) {
		tooManyStreams(w, a.cfg.RetryAfter, fmt.Sprintf(
			"%d live streams are open for this operator, the most one may hold; close one before opening more", a.perOperator.max))
		return
	}
	defer a.giveStream(op)
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		a.retryLaterAs(w, "busy", fmt.Sprintf("%d live streams are open, the most this handler serves; retry shortly", cap(a.streams)))
		return
	}
	// The stream ends with the request, with Close, or when the server
	// serving it shuts down (Shutdown waits for streaming requests).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	shutdown := a.servers.done(r)
	go func() {
		select {
		case <-a.closing:
		case <-shutdown:
		case <-ctx.Done():
		}
		cancel()
	}()
	snap, err := a.feed.get(ctx)
	if err != nil {
		return // the client went away
	}
	if snap.err != nil {
		a.error(w, r, snap.op, snap.err) // nothing sent yet: answer as the list does
		return
	}
	if !openEventStream(w, r) {
		return
	}
	out := &sseWriter{eventWriter: newEventWriter(w, streamWriteTimeout)}
	defer out.done()
	// retry: how long EventSource waits before reconnecting after a drop.
	if err := out.write(fmt.Appendf(nil, "retry: %d\n", a.cfg.RetryAfter.Milliseconds())); err != nil {
		return
	}
	if err := out.send(snap); err != nil {
		return
	}
	a.follow(ctx, out, snap)
}

// takeStream counts a live stream in for operator op, unless op holds
// MaxStreamsPerOperator already.
func (a *admin) takeStream(op string) bool {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	return a.perOperator.take(op)
}

func (a *admin) giveStream(op string) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	a.perOperator.give(op)
}

// follow sends every newer snapshot, one per StreamInterval, and a comment
// after StreamHeartbeat without a write, until ctx ends or a write fails.
func (a *admin) follow(ctx context.Context, out *sseWriter, sent *snapshot) {
	next := time.NewTimer(time.Until(sent.at.Add(a.cfg.StreamInterval)))
	defer next.Stop()
	beat := time.NewTimer(a.cfg.StreamHeartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			err = out.comment("heartbeat")
		case <-next.C:
			var snap *snapshot
			if snap, err = a.feed.get(ctx); err != nil {
				return
			}
			next.Reset(time.Until(snap.at.Add(a.cfg.StreamInterval)))
			if snap == sent {
				continue // another gather is due before anything new
			}
			sent, err = snap, out.send(snap)
		}
		if err != nil {
			return // the client is gone or stopped reading
		}
		beat.Reset(a.cfg.StreamHeartbeat)
	}
}

// sseWriter writes Server-Sent Events, flushing each one.
type sseWriter struct {
	eventWriter
}

// send writes a snapshot: a "campaigns" event, or an "unavailable" event
// when its gather failed.
func (s *sseWriter) send(snap *snapshot) error {
	if snap.err != nil {
		return s.write([]byte("event: unavailable\ndata: " + string(snap.failure()) + "\n\n"))
	}
	return s.write([]byte("event: campaigns\ndata: " + string(snap.data) + "\n\n"))
}

// snapshot is one gather of the campaign list, shared by every stream.
type snapshot struct {
	at   time.Time // when its gather started (with the monotonic clock)
	data []byte    // the AdminCampaignList as JSON; nil if the gather failed
	op   string    // the step that failed
	err  error
}

// failure is the body of an "unavailable" event: the error answer the list
// would give, without the backend's details (they go to the log).
func (s *snapshot) failure() []byte {
	var e ErrorResponse
	e.Error.Code, e.Error.Message = "unavailable", "cannot "+s.op+": a backend is unavailable; the stream retries"
	b, _ := json.Marshal(e)
	return b
}

// feed is the campaign list the live streams share: whoever asks when the
// newest snapshot is an interval old gathers a new one, while the others
// wait for it, so at most one gather starts per interval however many
// streams are open. No goroutine of its own: the streams do the work.
type feed struct {
	interval  time.Duration
	gather    func(context.Context) (AdminCampaignList, string, error)
	onFailure func(op string, err error)
	turn      chan struct{} // capacity 1: held while reading or gathering
	last      *snapshot     // guarded by turn
}

// get returns the newest snapshot, gathering one first if there is none
// younger than the interval. It fails only when ctx ends.
func (f *feed) get(ctx context.Context) (*snapshot, error) {
	select {
	case f.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.turn }()
	if f.last != nil && time.Since(f.last.at) < f.interval {
		return f.last, nil
	}
	snap := &snapshot{at: time.Now()}
	list, op, err := f.gather(ctx)
	if err == nil {
		snap.data, err = json.Marshal(list)
		op = "encode the campaign list"
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // this stream's client left mid-gather; the next asker gathers anew
		}
		snap.data, snap.op, snap.err = nil, op, err
		f.onFailure(op, err)
	}
	f.last = snap
	return snap, nil
}
