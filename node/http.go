package node

import (
	"fmt"
	"net/http"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
)

// ErrUnauthenticated may be returned by HandlerConfig.User or
// AdminConfig.Authorize: the handler answers 401 (any other error from
// Authorize answers 403).
var ErrUnauthenticated = httpapi.ErrUnauthenticated

// HandlerConfig configures Node.Handler. Zero values take the defaults
// documented on each field.
type HandlerConfig struct {
	// User returns the authenticated user's ID for a request, from the
	// host's own authentication (session, token, mTLS...). Required: the
	// handler never takes the user from the request body. An error answers
	// 401.
	User func(r *http.Request) (string, error)
	// BasePath is the path prefix the handler is mounted under, without a
	// trailing slash ("/api", say). Empty means the root.
	BasePath string
	// MaxStreams bounds the status streams open at once; one more answers
	// 503 busy with Retry-After. Zero means 20,000.
	MaxStreams int
	// MaxStreamsPerUser bounds the status streams one user holds open at
	// once, over all campaigns (tabs count); one more answers 429
	// too_many_streams with Retry-After. Zero means 8; negative, no cap.
	MaxStreamsPerUser int
	// MaxStreamsPerAddr bounds the status streams open at once from one
	// client address (ClientAddr), whatever their users; one more answers
	// 429 too_many_streams. Zero means 256; negative, no cap.
	MaxStreamsPerAddr int
	// ClientAddr returns a request's client address, for
	// MaxStreamsPerAddr; "" exempts the request from that cap. Nil means
	// the host of r.RemoteAddr. Behind a proxy or load balancer that is
	// the proxy's address, shared by every client: return the address the
	// proxy forwards (its X-Forwarded-For entry, as your proxy sets it), or
	// set MaxStreamsPerAddr negative.
	ClientAddr func(r *http.Request) string
	// RetryAfter is the Retry-After of 503 and 429 answers. Zero means 1s.
	RetryAfter time.Duration
	// WaitingRoom customises the waiting-room page: strings and
	// languages, colours, logo. The zero value is the page as shipped
	// (English and Korean).
	WaitingRoom WaitingRoom
}

// WaitingRoom customises the waiting-room page Handler serves; see its
// fields.
type WaitingRoom = httpapi.WaitingRoom

// Handler returns the public handler, for users:
//
//	POST {BasePath}/campaigns/{campaign}/entries            join the line; 202 with the ticket
//	GET  {BasePath}/campaigns/{campaign}/entries/me         the user's status; 200
//	GET  {BasePath}/campaigns/{campaign}/entries/me/events  the same, live (Server-Sent Events)
//	GET  {BasePath}/campaigns/{campaign}/wait               the waiting-room page (HTML)
//	POST {BasePath}/campaigns/{campaign}/wait               its join form, for browsers without script
//	GET  {BasePath}/wait/client.js                          the page's JS client, an ES module for hosts' own pages (client.d.ts beside it)
//
// The waiting-room page is the user's view of the line: join with one
// press, then their place, the people ahead and the estimated wait, live,
// to the outcome (a countdown before opening, the pre-queue's draw,
// "unlikely" past the remaining stock, paused, issued with its ID, sold
// out, closed, line full). Its assets are embedded; it needs no script
// from elsewhere and keeps a strict Content-Security-Policy; without
// script its form posts and it refreshes itself. It costs no Redis work
// beyond the status stream's. The user is HandlerConfig.User's, so a
// browser's request must carry what User reads (a session cookie, or a
// header a gateway sets).
//
// Errors are JSON {"error": {"code", "message"}} with couponq.Code's codes.
// The status streams of a campaign share one line read per second in this
// process, whatever their number. They end when the node stops or the
// http.Server serving them shuts down.
//
// The handler bounds what one client holds: streams per user, per address
// and in all (the Max fields), and 10 s to send a request body (past it,
// 408 and the connection closed). Each stream write has 10 s to complete
// and no write deadline holds between writes, so a server's WriteTimeout
// does not cut the streams. The http.Server still sets the rest:
// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout (the
// examples use 5 s, 10 s, 30 s and 60 s).
func (n *Node) Handler(cfg HandlerConfig) (http.Handler, error) {
	if n.svc == nil {
		return nil, fmt.Errorf("%w: node: Handler: %w", couponq.ErrInvalidConfig, ErrNoAPI)
	}
	h, err := httpapi.New(httpapi.Config{
		Service: n.svc, User: cfg.User, BasePath: cfg.BasePath, StreamMax: cfg.MaxStreams, RetryAfter: cfg.RetryAfter,
		StreamMaxPerUser: cfg.MaxStreamsPerUser, StreamMaxPerAddr: cfg.MaxStreamsPerAddr, ClientAddr: cfg.ClientAddr,
		Stats: n.queue, Catalog: n.read, Logger: n.cfg.Logger, WaitingRoom: cfg.WaitingRoom,
	})
	if err != nil {
		return nil, err
	}
	if !n.closeAtStop(h) {
		h.Close()
	}
	return h, nil
}

// AdminConfig configures Node.AdminHandler. Zero values take the defaults
// documented on each field.
type AdminConfig struct {
	// Authorize decides whether a request may use the handler at all; it
	// runs first, for every request. Return nil to let it through, an error
	// wrapping ErrUnauthenticated for 401, any other error for 403.
	// Required: there is no default that lets anyone in.
	Authorize func(r *http.Request) error
	// BasePath is the path prefix the handler is mounted under, without a
	// trailing slash ("/admin", say). Empty means the root.
	BasePath string
	// MaxStreams bounds the live page's streams open at once. Zero means 64.
	MaxStreams int
	// MaxStreamsPerOperator bounds the live streams one operator (see
	// Operator) holds open at once; one more answers 429 too_many_streams
	// with Retry-After. Zero means 4; negative, no cap.
	MaxStreamsPerOperator int
	// Operator names who makes a request, for MaxStreamsPerOperator: the
	// operator's name from the host's own authentication, say; "" exempts
	// the request. Nil means the host of r.RemoteAddr — behind a gateway,
	// the gateway's, shared by every operator: set Operator there.
	Operator func(r *http.Request) string
}

// AdminHandler returns the operators' handler, to mount apart from the
// public one, behind Authorize:
//
//	GET    {BasePath}/campaigns              every campaign with its live numbers
//	POST   {BasePath}/campaigns              create (CreateCampaign); 201
//	GET    {BasePath}/campaigns/{id}         one campaign with its live numbers
//	PATCH  {BasePath}/campaigns/{id}         change some fields at a version (UpdateCampaign)
//	DELETE {BasePath}/campaigns/{id}         retire (RetireCampaign): ?version=N&retention=24h; 204
//	POST   {BasePath}/campaigns/{id}/pause   PauseCampaign
//	POST   {BasePath}/campaigns/{id}/resume  ResumeCampaign
//	POST   {BasePath}/campaigns/{id}/close   CloseCampaign, now
//	GET    {BasePath}/live                   the operators' live page (HTML, embedded)
//	GET    {BasePath}/live/stream            its numbers, live (Server-Sent Events)
//
// A campaign the node cannot serve is refused at create with 400
// unsupported. Writes take Content-Type: application/json (415 otherwise;
// a write without a body may leave it out), so a form or text/plain post
// from another site's page is refused. The live streams end when the node
// stops or the http.Server serving them shuts down; like the public
// handler's, they outlive a server's WriteTimeout, and request bodies have
// 10 s to arrive.
func (n *Node) AdminHandler(cfg AdminConfig) (http.Handler, error) {
	h, err := httpapi.NewAdmin(httpapi.AdminConfig{
		Campaigns: n.ops, Authorize: cfg.Authorize, BasePath: cfg.BasePath, MaxStreams: cfg.MaxStreams,
		MaxStreamsPerOperator: cfg.MaxStreamsPerOperator, Operator: cfg.Operator, Logger: n.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if !n.closeAtStop(h) {
		h.Close()
	}
	return h, nil
}

// HeaderUser returns a HandlerConfig.User that reads the user ID from a
// request header. Use it only behind a gateway that authenticates users and
// sets that header itself, stripping any copy the client sent.
func HeaderUser(name string) func(*http.Request) (string, error) {
	return httpapi.HeaderUser(name)
}
