package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Limiter decides whether one more request for key may go through now. It
// answers ok=false with how long until it would (retryAfter) when the key is
// over its limit; err reports the limiter itself failing (Redis
// unreachable), not a limited key. Safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Config configures the middleware. Zero values take the defaults
// documented on each field.
type Config struct {
	// Limiter decides. Required: NewMemory for one process, NewRedis for a
	// limit shared by every process.
	Limiter Limiter
	// Key returns whom a request counts against: a user ID, an address, a
	// tenant. Required. An error answers 400 bad_request; an empty key with
	// no error lets the request through unlimited (an exemption). ByHeader
	// and ByRemoteIP are ready-made. Keys longer than 128 bytes are replaced
	// by their SHA-256, so a long key costs no more memory than a short one.
	Key func(r *http.Request) (string, error)
	// FailClosed answers 503 unavailable (with Retry-After) when the Limiter
	// fails. The default, false, lets the request through: a rate limiter
	// outage should not become an API outage. Either way the failure is
	// logged at warn level, at most once a second.
	FailClosed bool
	// RetryAfter is the Retry-After of FailClosed's 503. Zero means 1s.
	RetryAfter time.Duration
	// OnLimited, if set, is called for each request answered 429 (a metric,
	// say). It must not write to the response.
	OnLimited func(r *http.Request, key string)
	// Logger receives the Limiter's failures; nil means none.
	Logger *slog.Logger
}

// ErrorResponse is the body of every error answer, the JSON error shape of
// the node's handlers (node.Node.Handler).
type ErrorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Middleware returns a net/http middleware that answers 429 rate_limited,
// with Retry-After in whole seconds rounded up, to requests whose key is
// over its limit, and passes the rest to the next handler:
//
//	mw, _ := ratelimit.Middleware(ratelimit.Config{Limiter: limiter, Key: ratelimit.ByRemoteIP()})
//	mux.Handle("/api/", mw(api))
func Middleware(cfg Config) (func(http.Handler) http.Handler, error) {
	if cfg.Limiter == nil || cfg.Key == nil {
		return nil, fmt.Errorf("%w: ratelimit: Limiter and Key are required", couponq.ErrInvalidConfig)
	}
	if cfg.RetryAfter < 0 {
		return nil, fmt.Errorf("%w: ratelimit: RetryAfter must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	m := &middleware{cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
	}, nil
}

type middleware struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// maxKeyBytes is the longest key passed to the Limiter as it is.
const maxKeyBytes = 128

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	key, err := m.cfg.Key(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "no rate limit key: "+err.Error())
		return
	}
	if key == "" {
		next.ServeHTTP(w, r)
		return
	}
	if len(key) > maxKeyBytes {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	ok, retryAfter, err := m.cfg.Limiter.Allow(r.Context(), key)
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client is gone: nothing to answer, nothing to serve
	case err != nil:
		m.warn(err)
		if m.cfg.FailClosed {
			w.Header().Set("Retry-After", seconds(m.cfg.RetryAfter))
			fail(w, http.StatusServiceUnavailable, "unavailable", "the rate limiter is unavailable, retry shortly")
			return
		}
	case !ok:
		if m.cfg.OnLimited != nil {
			m.cfg.OnLimited(r, key)
		}
		secs := seconds(retryAfter)
		w.Header().Set("Retry-After", secs)
		fail(w, http.StatusTooManyRequests, "rate_limited", "too many requests, retry in "+secs+"s")
		return
	}
	next.ServeHTTP(w, r)
}

// warn logs a Limiter failure, at most once a second: during an outage
// every request fails the same way.
func (m *middleware) warn(err error) {
	m.mu.Lock()
	now := time.Now()
	if now.Sub(m.lastLog) < time.Second {
		m.suppressed++
		m.mu.Unlock()
		return
	}
	suppressed := m.suppressed
	m.lastLog, m.suppressed = now, 0
	m.mu.Unlock()
	action := "letting requests through"
	if m.cfg.FailClosed {
		action = "refusing requests"
	}
	m.log.Warn("couponq/ratelimit: limiter failed, "+action, "err", err, "suppressed", suppressed)
}

// seconds is d in whole seconds, rounded up, at least 1.
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	var e ErrorResponse
	e.Error.Code, e.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e) // the client may be gone; nothing to do about it
}

// ErrNoKey is wrapped by the errors of ByHeader and ByRemoteIP.
var ErrNoKey = errors.New("ratelimit: no key")

// ByHeader keys requests by a header's value, such as the user ID an
// authenticating gateway sets; a request without it answers 400. Use only a
// header your own infrastructure sets and strips from client requests:
// a client that can choose its key can choose a fresh one for every
// request.
func ByHeader(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		v := r.Header.Get(name)
		if v == "" {
			return "", fmt.Errorf("%w: no %s header", ErrNoKey, name)
		}
		return v, nil
	}
}

// ByRemoteIP keys requests by the address of the connection's peer,
// r.RemoteAddr without its port (an IPv4-mapped IPv6 address counts as the
// IPv4 one).
//
// Behind a reverse proxy or load balancer that peer is the proxy, so every
// client would share one limit. The host must then pick the client's
// address itself — from the header its proxy sets (X-Forwarded-For's last
// entry added by a proxy you trust, not the first, which the client wrote)
// or from the PROXY protocol — in a Key function of its own, or in a
// middleware that rewrites r.RemoteAddr before this one.
//
// An IPv6 client usually holds a whole /64: key by prefix in your own Key
// function if one user cycling through addresses matters to you.
func ByRemoteIP() func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		host := r.RemoteAddr
		if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			host = h
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("%w: remote address %q: %v", ErrNoKey, r.RemoteAddr, err)
		}
		return addr.Unmap().WithZone("").String(), nil
	}
}
