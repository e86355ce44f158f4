package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// The status stream settings' defaults (Config documents them).
const (
	defaultStreamPoll         = time.Second
	defaultHeartbeatInterval  = 15 * time.Second
	defaultStreamMax          = 20_000
	defaultStreamWriteTimeout = 10 * time.Second
	// statusReadConcurrency bounds the per-user Status reads one campaign's
	// poller has under way at once.
	statusReadConcurrency = 16
	// statusCallTimeout bounds each backend call a poller makes.
	statusCallTimeout = 5 * time.Second
)

// statusHub fans each campaign's line out to the status streams open in this
// process. A campaign with at least one open stream has one poller: every
// StreamPoll it reads the line's counts once (LineStats) and the campaign
// once (Catalog) and derives from them the status of every stream whose
// entry still waits; only streams whose entry left the line (in flight, or
// decided) cost a Status read of their own. A poller stops when its last
// stream leaves, so a campaign nobody watches costs nothing.
//
// Lock order: hub.mu only; a poller takes it to snapshot its streams, never
// while calling a backend or sending to a stream.
type statusHub struct {
	svc     Service
	stats   couponq.LineStatser
	catalog catalog.Catalog
	log     *slog.Logger

	poll, heartbeat, writeTimeout, retry time.Duration
	max                                  int
	clientAddr                           func(*http.Request) string

	mu      sync.Mutex
	open    int          // streams holding a slot (of max)
	perUser streamCounts // the slots each user holds (of StreamMaxPerUser)
	perAddr streamCounts // the slots each client address holds (of StreamMaxPerAddr)
	closed  bool         // Close was called
	closing chan struct{}
	lines   map[string]*linePoller // by campaign: the pollers of campaigns with streams
	servers serverGates            // the servers streams came through, for their shutdown

	streams sync.WaitGroup // one per slot held
	pollers sync.WaitGroup // one per running poller
}

func newStatusHub(h *Handler) *statusHub {
	c := h.cfg
	hub := &statusHub{
		svc: c.Service, stats: c.Stats, catalog: c.Catalog, log: h.log,
		poll: c.StreamPoll, heartbeat: c.HeartbeatInterval, writeTimeout: c.StreamWriteTimeout, retry: c.RetryAfter,
		max: c.StreamMax, clientAddr: c.ClientAddr,
		perUser: streamCounts{max: withDefault(c.StreamMaxPerUser, defaultStreamMaxPerUser)},
		perAddr: streamCounts{max: withDefault(c.StreamMaxPerAddr, defaultStreamMaxPerAddr)},
		closing: make(chan struct{}),
		lines:   map[string]*linePoller{},
	}
	if hub.clientAddr == nil {
		hub.clientAddr = remoteHost
	}
	if hub.poll == 0 {
		hub.poll = defaultStreamPoll
	}
	if hub.heartbeat == 0 {
		hub.heartbeat = defaultHeartbeatInterval
	}
	if hub.max == 0 {
		hub.max = defaultStreamMax
	}
	if hub.writeTimeout == 0 {
		hub.writeTimeout = defaultStreamWriteTimeout
	}
	return hub
}

// Close ends every open status stream, each with a final comment, and
// returns once they have ended (a client that stopped reading holds its
// stream for StreamWriteTimeout at most) and the pollers have stopped.
// Later status stream requests answer 503 unavailable; the other routes
// are unaffected. Close is safe to call more than once and concurrently.
//
// Streams also end by themselves when the http.Server serving them shuts
// down. A host that serves the handler in some other way calls Close when
// it stops, for example with srv.RegisterOnShutdown(h.Close).
func (h *Handler) Close() {
	if h.hub != nil {
		h.hub.close()
	}
}

func (hub *statusHub) close() {
	hub.mu.Lock()
	if !hub.closed {
		hub.closed = true
		close(hub.closing)
		for _, p := range hub.lines {
			p.cancel()
		}
	}
	hub.mu.Unlock()
	hub.streams.Wait()
	hub.pollers.Wait()
}

// Why acquire refuses a stream slot, besides the Close and MaxStreams
// codes.
const (
	refusedUser = "user"
	refusedAddr = "addr"
)

// acquire takes a stream slot for user from addr; it returns "" or why
// not: couponq.CodeUnavailable (closed), refusedUser or refusedAddr (a
// cap of theirs), couponq.CodeBusy (MaxStreams).
func (hub *statusHub) acquire(user, addr string) string {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	switch {
	case hub.closed:
		return couponq.CodeUnavailable
	case !hub.perUser.take(user):
		return refusedUser
	case !hub.perAddr.take(addr):
		hub.perUser.give(user)
		return refusedAddr
	case hub.open >= hub.max:
		hub.perUser.give(user)
		hub.perAddr.give(addr)
		return couponq.CodeBusy
	}
	hub.open++
	hub.streams.Add(1)
	return ""
}

func (hub *statusHub) release(user, addr string) {
	hub.mu.Lock()
	hub.open--
	hub.perUser.give(user)
	hub.perAddr.give(addr)
	hub.mu.Unlock()
	hub.streams.Done()
}

// join puts s under its campaign's poller, starting one if the campaign has
// none; false once the hub is closed.
func (hub *statusHub) join(s *statusStream) bool {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if hub.closed {
		return false
	}
	p := hub.lines[s.campaign]
	if p == nil {
		p = &linePoller{hub: hub, campaign: s.campaign, streams: map[*statusStream]struct{}{}}
		p.ctx, p.cancel = context.WithCancel(context.Background())
		hub.lines[s.campaign] = p
		hub.pollers.Add(1)
		go p.run()
	}
	p.streams[s] = struct{}{}
	s.poller = p
	return true
}

// leave takes s from its poller, and stops the poller if s was its last.
func (hub *statusHub) leave(s *statusStream) {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	p := s.poller
	delete(p.streams, s)
	if len(p.streams) == 0 {
		p.cancel()
		if hub.lines[s.campaign] == p {
			delete(hub.lines, s.campaign)
		}
	}
}

// retryField is the stream's "retry:" in milliseconds: RetryAfter plus up
// to as much again at random, so a crowd that lost its streams at once
// (a restart) does not come back at once.
func (hub *statusHub) retryField() int64 {
	ms := max(hub.retry.Milliseconds(), 1)
	return ms + rand.Int64N(ms+1)
}

// statusStream is one open status stream.
type statusStream struct {
	campaign, user string
	poller         *linePoller       // set by join, under hub.mu
	out            chan statusUpdate // capacity 1: the latest update wins

	// The poller's own (one goroutine at a time: the poller, or within a
	// tick the one reader of this stream's user).
	entry   int64          // the user's entry
	waiting bool           // the entry was waiting when last seen
	last    StatusResponse // the last status sent
	done    bool           // the final update was sent
}

// statusUpdate is what a poller tells a stream.
type statusUpdate struct {
	resp StatusResponse
	// gone, if set, ends the stream instead: the entry or its campaign is
	// no longer there (not_found, unknown_campaign).
	gone *ErrorResponse
}

func (u statusUpdate) final() bool { return u.gone != nil || couponq.State(u.resp.State).Terminal() }

// deliver hands u to the stream unless it repeats the last status. It never
// blocks: an update the stream has not taken yet is replaced.
func (s *statusStream) deliver(u statusUpdate) {
	if s.done || (u.gone == nil && u.resp == s.last) {
		return
	}
	s.last, s.done = u.resp, u.final()
	for {
		select {
		case s.out <- u:
			return
		default:
		}
		select {
		case <-s.out: // stale: the stream has not written it yet
		default:
		}
	}
}

// linePoller follows one campaign's line for the streams of the campaign.
type linePoller struct {
	hub      *statusHub
	campaign string
	streams  map[*statusStream]struct{} // guarded by hub.mu
	ctx      context.Context            // ends when the last stream leaves or the hub closes
	cancel   context.CancelFunc

	batch   []*statusStream // the tick's streams; the poller goroutine's own
	failing bool            // the last tick could not read the line (logged once per streak)
	// The campaign as the tick read it, for the statuses it reads.
	campaignNow couponq.Campaign
	known       bool
}

func (p *linePoller) run() {
	defer p.hub.pollers.Done()
	t := time.NewTicker(p.hub.poll)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.tick()
		}
	}
}

// tick brings every stream of the campaign up to date. Its cost is one
// LineStats and one Catalog read, and one Status read per user whose entry
// is not known to be waiting: whoever left the line since the last tick or
// is still in flight. Entries leave the line at the throttle's pace
// (BatchSize per Interval), so those reads follow the drain rate, not the
// number of streams.
func (p *linePoller) tick() {
	hub := p.hub
	hub.mu.Lock()
	p.batch = p.batch[:0]
	for s := range p.streams {
		p.batch = append(p.batch, s)
	}
	hub.mu.Unlock()
	// Snapshot first, counts after: a stream that joined before the
	// snapshot read its status at connect, before these counts.
	if len(p.batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, statusCallTimeout)
	stats, err := hub.stats.LineStats(ctx, p.campaign)
	var c couponq.Campaign
	if err == nil {
		c, err = hub.catalog.Campaign(ctx, p.campaign)
	}
	cancel()
	// A campaign the Catalog no longer knows was deleted: each stream asks
	// the Service once (a kept final outcome, or unknown_campaign) and ends.
	deleted := errors.Is(err, couponq.ErrUnknownCampaign)
	if err != nil && !deleted {
		if p.ctx.Err() == nil && !p.failing {
			hub.log.Warn("couponq: http: status streams: cannot read the line; retrying every poll",
				"campaign", p.campaign, "err", err)
		}
		p.failing = true
		return
	}
	p.failing = false
	c = c.WithDefaults()
	// gap counts the entries numbered from the head up that are not waiting:
	// entries handed downstream out of turn (a lease that ran out, or a
	// batch the transport refused, went back to the head while later ones
	// were out). With no gap every entry from the head up waits, so
	// positions are exact and a sold-out mark decides them all.
	var gap int64
	if stats.Head > 0 {
		gap = stats.Admitted - stats.Head + 1 - stats.Waiting
	}
	claimed := stats.Issued + stats.InFlight
	// A pre-queue's places are drawn at OpensAt (entry numbers change), so
	// its streams read each user until a minute after opening, by when
	// every stream has read its seated entry.
	seating := c.PreQueue > 0 && time.Now().Before(c.OpensAt.Add(time.Minute))
	var reads map[string][]*statusStream
	for _, s := range p.batch {
		switch {
		case s.done:
			continue
		case deleted, seating, !s.waiting, stats.Head == 0, s.entry < stats.Head, stats.SoldOut && gap != 0:
			// Left the line (or may have): only the Service knows where it is.
			if reads == nil {
				reads = map[string][]*statusStream{}
			}
			reads[s.user] = append(reads[s.user], s)
		case stats.SoldOut:
			// Still waiting on a sold-out campaign: that is its outcome, as
			// Service.Status reports it.
			s.deliver(statusUpdate{resp: StatusResponse{Campaign: p.campaign, Entry: s.entry,
				State: string(couponq.StateRejected), Reason: string(couponq.CodeSoldOut)}})
		default:
			// Entries leave the line from the head only, so entry n waits at
			// n - Head + 1: exact without a gap, an upper bound with one.
			pos := s.entry - stats.Head + 1
			resp := StatusResponse{Campaign: p.campaign, Entry: s.entry, State: string(couponq.StateWaiting), Position: pos}
			if c.BeyondStock(pos, claimed) {
				resp.BeyondStock = true
			} else if w, known := c.EstimateWait(pos, claimed); known {
				resp.EstimatedWaitMS = w.Milliseconds()
			}
			decorate(&resp, c, true)
			s.deliver(statusUpdate{resp: resp})
		}
	}
	p.campaignNow, p.known = c, !deleted
	p.readAll(reads)
	clear(p.batch) // let streams that leave be collected
}

// readAll asks the Service for each user's status, a few users at a time,
// and updates the users' streams.
func (p *linePoller) readAll(reads map[string][]*statusStream) {
	if len(reads) == 0 {
		return
	}
	sem := make(chan struct{}, statusReadConcurrency)
	var wg sync.WaitGroup
	var failed sync.Once
	for user, streams := range reads {
		select {
		case sem <- struct{}{}:
		case <-p.ctx.Done():
		}
		if p.ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := p.read(user, streams); err != nil && p.ctx.Err() == nil {
				failed.Do(func() {
					p.hub.log.Warn("couponq: http: status streams: status read failed; retrying next poll",
						"campaign", p.campaign, "err", err)
				})
			}
		})
	}
	wg.Wait()
}

// read updates one user's streams from the Service; an error is a backend
// failure, left for the next tick.
func (p *linePoller) read(user string, streams []*statusStream) error {
	ctx, cancel := context.WithTimeout(p.ctx, statusCallTimeout)
	st, err := p.hub.svc.Status(ctx, p.campaign, user)
	cancel()
	if err != nil {
		code := couponq.Code(err)
		if code != couponq.CodeNotFound && code != couponq.CodeUnknownCampaign {
			return err
		}
		gone := &ErrorResponse{}
		gone.Error.Code, gone.Error.Message = code, err.Error()
		if code == couponq.CodeNotFound {
			gone.Error.Message = "no entry for this user"
		}
		for _, s := range streams {
			s.deliver(statusUpdate{gone: gone})
		}
		return nil
	}
	resp := statusBody(st)
	decorate(&resp, p.campaignNow, p.known)
	for _, s := range streams {
		// The user's latest entry, like GET .../entries/me: a user who
		// lined up again is followed on the new entry.
		s.entry, s.waiting = st.Entry, st.State == couponq.StateWaiting
		s.deliver(statusUpdate{resp: resp})
	}
	return nil
}

// events serves GET {BasePath}/campaigns/{campaign}/entries/me/events.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	hub := h.hub
	if hub == nil {
		h.fail(w, http.StatusNotImplemented, "not_implemented",
			"status events are not served here: the handler needs Config.Stats and Config.Catalog", nil)
		return
	}
	// Before anything is written: a stream whose first event went out is
	// one a Shutdown that starts now must end.
	shutdown := hub.servers.done(r)
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	addr := hub.clientAddr(r)
	switch code := hub.acquire(user, addr); code {
	case couponq.CodeUnavailable:
		h.retryLater(w, code, "the server is shutting down, retry shortly")
		return
	case refusedUser:
		tooManyStreams(w, hub.retry, fmt.Sprintf(
			"this user has %d status streams open, the most one user may hold; close one (another tab?) before opening more", hub.perUser.max))
		return
	case refusedAddr:
		tooManyStreams(w, hub.retry, fmt.Sprintf(
			"%d status streams are open from this address, the most one address may hold; retry later", hub.perAddr.max))
		return
	case couponq.CodeBusy:
		h.retryLater(w, code, fmt.Sprintf("%d status streams are open, the most this server holds; retry shortly", hub.max))
		return
	}
	defer hub.release(user, addr)
	campaign := r.PathValue("campaign")
	st, err := h.cfg.Service.Status(r.Context(), campaign, user)
	if err != nil {
		h.error(w, r, err, nil)
		return
	}
	first, final := statusBody(st), st.State.Terminal()
	h.decorateFromCatalog(r.Context(), &first)
	if final && r.Header.Get("Last-Event-ID") == finalEventID(st.Entry) {
		// An EventSource reconnecting after the final event: 204 tells it
		// to stop reconnecting.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !openEventStream(w, r) {
		return
	}
	// Each write has StreamWriteTimeout; none holds between writes, so the
	// http.Server's WriteTimeout, meant for quick answers, does not cut
	// the stream.
	out := &statusEventWriter{eventWriter: newEventWriter(w, hub.writeTimeout)}
	defer out.done()
	if err := out.status(first, hub.retryField()); err != nil || final {
		return
	}
	s := &statusStream{campaign: campaign, user: user, out: make(chan statusUpdate, 1),
		entry: st.Entry, waiting: st.State == couponq.StateWaiting, last: first}
	if !hub.join(s) {
		_ = out.comment("closing")
		return
	}
	defer hub.leave(s)
	hub.follow(r.Context(), shutdown, out, s)
}

// follow writes the stream's updates, and a heartbeat after HeartbeatInterval
// without a write, until the final update, the client leaves (ctx), a write
// fails, or the hub or the server (shutdown) closes.
func (hub *statusHub) follow(ctx context.Context, shutdown <-chan struct{}, out *statusEventWriter, s *statusStream) {
	beat := time.NewTimer(hub.heartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-hub.closing:
			_ = out.comment("closing")
			return
		case <-shutdown:
			_ = out.comment("closing")
			return
		case <-beat.C:
			err = out.comment("hb")
		case u := <-s.out:
			if u.gone != nil {
				_ = out.gone(u.gone)
				return
			}
			if err = out.status(u.resp, 0); err == nil && u.final() {
				return
			}
		}
		if err != nil {
			return // the client is gone or stopped reading
		}
		beat.Reset(hub.heartbeat)
	}
}

// finalEventID is the id of a stream's final event. An EventSource sends it
// back as Last-Event-ID when it reconnects, and hears 204.
func finalEventID(entry int64) string { return "final-" + strconv.FormatInt(entry, 10) }

// statusEventWriter writes a status stream's events, each flushed under a
// write deadline.
type statusEventWriter struct {
	eventWriter
	buf []byte
}

// status writes a "status" event (after a "retry:" field if retry > 0); the
// final status carries the id finalEventID.
func (o *statusEventWriter) status(resp StatusResponse, retry int64) error {
	data, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	b := o.buf[:0]
	if retry > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, retry, 10)
		b = append(b, '\n')
	}
	b = append(b, "event: status\n"...)
	if couponq.State(resp.State).Terminal() {
		b = append(b, "id: "...)
		b = append(b, finalEventID(resp.Entry)...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	o.buf = b
	return o.write(b)
}

// gone writes the "ended" event that closes a stream whose entry or
// campaign is gone.
func (o *statusEventWriter) gone(e *ErrorResponse) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return o.write(append(append([]byte("event: ended\ndata: "), data...), "\n\n"...))
}
