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
	// RetryAfter is the Retry-After of 503 answers. Zero means 1s.
	RetryAfter time.Duration
}

// Handler returns the public handler, for users:
//
//	POST {BasePath}/campaigns/{campaign}/entries            join the line; 202 with the ticket
//	GET  {BasePath}/campaigns/{campaign}/entries/me         the user's status; 200
//	GET  {BasePath}/campaigns/{campaign}/entries/me/events  the same, live (Server-Sent Events)
//
// Errors are JSON {"error": {"code", "message"}} with couponq.Code's codes.
// The status streams of a campaign share one line read per second in this
// process, whatever their number. They end when the node stops or the
// http.Server serving them shuts down.
func (n *Node) Handler(cfg HandlerConfig) (http.Handler, error) {
	if n.svc == nil {
		return nil, fmt.Errorf("%w: node: Handler: %w", couponq.ErrInvalidConfig, ErrNoAPI)
	}
	h, err := httpapi.New(httpapi.Config{
		Service: n.svc, User: cfg.User, BasePath: cfg.BasePath, StreamMax: cfg.MaxStreams, RetryAfter: cfg.RetryAfter,
		Stats: n.queue, Catalog: n.read, Logger: n.cfg.Logger,
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
// unsupported. The live streams end when the node stops or the http.Server
// serving them shuts down.
func (n *Node) AdminHandler(cfg AdminConfig) (http.Handler, error) {
	h, err := httpapi.NewAdmin(httpapi.AdminConfig{
		Campaigns: n.ops, Authorize: cfg.Authorize, BasePath: cfg.BasePath, MaxStreams: cfg.MaxStreams,
		Logger: n.cfg.Logger,
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
