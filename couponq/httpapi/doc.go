// Package httpapi serves couponq over net/http as JSON, with two handlers
// meant to be mounted apart.
//
// New is the public handler: admission and status for users. The user's
// identity comes from Config.User, the host's own authentication; it is
// never read from the request body.
//
// NewAdmin is the operators' handler: list campaigns with their live numbers
// (waiting, in flight, issued, remaining, nominal and measured drain rate,
// state), create them, change them at a version (stock, batch size,
// interval, window, pause), pause, resume and close them. Every request
// first passes AdminConfig.Authorize, the host's own authorization; there is
// no default that lets anyone in. Changes go through a couponq.Registry, so
// every process serving the campaigns sees them; a stale version answers
// 409. The stock cannot go below the units already issued, and raising the
// stock of a sold-out campaign reopens it (couponq.Reopener).
//
// The admin handler also serves a live page for operators of a sale,
// {BasePath}/live: one row per campaign with its state, waiting, in flight,
// issued of the stock (with a bar), measured and nominal drain rate and the
// wait of the last in line, updated through Server-Sent Events from
// {BasePath}/live/stream. The page is plain HTML, CSS and JavaScript
// embedded in the package (no build step, nothing from another origin). All
// open streams share one gather of the list per AdminConfig.StreamInterval,
// so many open pages cost the Registry and the Queue no more reads than one,
// and AdminConfig.MaxStreams bounds how many are open. The page goes through
// Authorize like every admin route; since a browser's EventSource sends no
// Authorization header, authorize operators' browsers with a cookie or a
// gateway.
//
// Both are plain http.Handlers, so they mount in net/http, chi, gin
// (gin.WrapH), echo (echo.WrapHandler) and the like, and both answer errors
// as JSON {"error": {"code": ..., "message": ...}}.
package httpapi
