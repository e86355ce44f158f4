// Package httpapi serves couponq over net/http as JSON, with two handlers
// meant to be mounted apart.
//
// New is the public handler: admission and status for users. The user's
// identity comes from Config.User, the host's own authentication; it is
// never read from the request body.
//
// Instead of polling GET {BasePath}/campaigns/{campaign}/entries/me, a
// waiting user can follow GET {BasePath}/campaigns/{campaign}/entries/me/events
// (Server-Sent Events, for a browser's EventSource). It answers the same
// errors as the status route at connect (404 not_found without an entry),
// then streams:
//
//	retry: <ms>                 once: RetryAfter plus up to as much again, at random
//	event: status               at connect and at every change: a StatusResponse
//	data: {"state":"waiting","position":41,"estimated_wait_ms":1000,...}
//	: hb                        after HeartbeatInterval (15 s) without a write
//
// and closes after the final status (issued or rejected), which carries
// "id: final-<entry>": an EventSource that reconnects sends it back as
// Last-Event-ID and hears 204, which stops it; a page should still close
// its EventSource on a final status. A stream ends with the comment
// ": closing" when the handler's Close is called or the http.Server serving
// it shuts down (the handler registers itself with RegisterOnShutdown), and
// with an "ended" event (data: the error JSON, unknown_campaign or
// not_found) if the campaign or entry disappears. Config.StreamMax bounds
// the streams one handler holds (20,000; then 503 busy), and
// StreamMaxPerUser and StreamMaxPerAddr those of one user (8) and one
// client address (256; then 429 too_many_streams). Each write has
// StreamWriteTimeout (10 s) to complete, and no write deadline holds
// between writes, so the http.Server's WriteTimeout does not cut a stream
// (nor, on HTTP/2, does a deadline left behind reset a quiet one).
//
// Both handlers give a request body BodyReadTimeout (10 s) to arrive, from
// when they start: a client that trickles it is answered 408 and loses the
// connection, though the http.Server sets no ReadTimeout. The server's
// other limits (ReadHeaderTimeout, IdleTimeout) are the host's to set.
//
// The cost does not grow with the crowd. The streams of a campaign in one
// process share one poller, which every StreamPoll (1 s) reads the line's
// counts once (Config.Stats, couponq.LineStatser: head, waiting, in flight,
// issued, sold out) and the campaign once (Config.Catalog, a cached
// catalog), and derives every waiting user's position (entry - head + 1:
// exact while entries leave the line in turn, an upper bound while some
// were handed out of turn and went back), wait estimate and beyond_stock
// from them; a sold-out mark decides every waiting user without reading
// any. Only users whose entry left the line since the last poll or is still
// in flight get a Status read of their own, at most one per poll, 16 at a
// time. So per campaign and process, each poll costs 1 LineStats + 1
// catalog lookup + one Status per user who left the line (the throttle's
// BatchSize per Interval, plus the in-flight ones) — not one per connected
// user. One exception: when a sold-out campaign's line is resolved in bulk
// before a poll saw the sold-out mark, each stream of it is read once, like
// one round of polling. A campaign with no open stream is not read.
//
// The public handler also serves the waiting room, the page a user waits
// on: GET {BasePath}/campaigns/{campaign}/wait renders the user's state on
// the server (one Status read and a cached catalog lookup; the user's
// entry, never a write), in the language of ?lang= or Accept-Language
// (English and Korean shipped, more through Config.WaitingRoom), and its
// script (wait/wait.js, over the client module wait/client.js, typed by
// wait/client.d.ts) follows the status stream from there. Its join form
// posts to the same path (303 back to the page; a cross-origin post is
// refused 403); the script joins through the admission route instead.
// The assets are embedded and served under {BasePath}/wait/ with ETags;
// the page's Content-Security-Policy allows only its own origin, and no
// inline script or style. Past the page load, an open page costs exactly
// its status stream.
//
// NewAdmin is the operators' handler: list campaigns with their live numbers
// (waiting, in flight, issued, remaining, nominal and measured drain rate,
// state), create them, change them at a version (stock, batch size,
// interval, window, pause), pause, resume and close them. Every request
// first passes AdminConfig.Authorize, the host's own authorization; there is
// no default that lets anyone in. Changes go through a couponq.Registry, so
// every process serving the campaigns sees them; a stale version answers
// 409. The stock cannot go below the units already issued, and raising the
// stock of a sold-out campaign reopens it.
//
// The admin handler also serves a live page for operators of a sale,
// {BasePath}/live: one row per campaign with its state, waiting, in flight,
// issued of the stock (with a bar), measured and nominal drain rate and the
// wait of the last in line, updated through Server-Sent Events from
// {BasePath}/live/stream. The page is plain HTML, CSS and JavaScript
// embedded in the package (no build step, nothing from another origin). All
// open streams share one gather of the list per AdminConfig.StreamInterval,
// so many open pages cost the Registry and the Queue no more reads than one,
// and AdminConfig.MaxStreams bounds how many are open (64), and
// MaxStreamsPerOperator how many one operator holds (4). Admin writes take
// application/json only (415 otherwise): a form or text/plain body is what
// another site's page can post without a preflight. The page goes through
// Authorize like every admin route; since a browser's EventSource sends no
// Authorization header, authorize operators' browsers with a cookie or a
// gateway.
//
// Both are plain http.Handlers, so they mount in net/http, chi, gin
// (gin.WrapH), echo (echo.WrapHandler) and the like, and both answer errors
// as JSON {"error": {"code": ..., "message": ...}}.
package httpapi
