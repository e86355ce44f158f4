// Package adminsession is the api's admin authentication: the bearer token
// on every request, and for an operator's browser a signed session cookie
// that the login form issues in exchange for the token. The cookie never
// holds the token itself; it expires, and logging out revokes it.
//
// A session cookie's value is
//
//	v1.ID.ISSUED.EXPIRES.MAC
//
// with ID 16 random bytes and MAC the HMAC-SHA256 of "v1.ID.ISSUED.EXPIRES",
// both base64url without padding, and ISSUED and EXPIRES Unix seconds. The
// MAC's key is derived from Config.Key (random per process unless
// configured, so that a fleet of apis can share sessions) and the admin
// token, so a new token ends every session. Nothing in the value is secret:
// it proves that an api holding the key issued it, for how long, and under
// which ID logging out revokes it (Revocations).
//
// Changes to campaigns (anything but GET and HEAD) want the bearer token: a
// session cookie is good for reads only (the list, the live page and its
// stream, which a browser's EventSource cannot send a header to), so a page
// on another site can never make a logged-in operator's browser change a
// campaign.
package adminsession

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/couponq/couponq/node"
)

// CookieName is the session cookie's name.
const CookieName = "couponq_admin_session"

// Defaults of Config's zero fields.
const (
	DefaultTTL        = 8 * time.Hour
	DefaultPath       = "/admin"
	DefaultLoginBurst = 5
	DefaultLoginEvery = 12 * time.Second // with the burst of 5: 5 attempts a minute per client
)

// MinKeyLen is the shortest Config.Key New accepts.
const MinKeyLen = 32

// Config configures a Manager. Only Token is required.
type Config struct {
	// Token is the admin token: the bearer token for every request, and
	// what the login form exchanges for a session.
	Token string
	// Key signs the sessions, at least MinKeyLen bytes. Nil: 32 random
	// bytes, so sessions are good on this process alone and end when it
	// does. Give every api of a fleet the same key for sessions that any of
	// them honors (and Revocations that all of them read).
	Key []byte
	// TTL is how long a session lasts from login. Zero: DefaultTTL.
	TTL time.Duration
	// Path is the cookie's path: the admin handler's base path. The logout
	// route is Path + "/logout". Zero: DefaultPath.
	Path string
	// TrustedProxies are the addresses of the TLS-terminating proxies in
	// front of the api. From them only, X-Forwarded-Proto: https marks the
	// cookie Secure (as does a TLS connection to the api itself), and
	// X-Forwarded-For names the client the login rate limit counts.
	TrustedProxies []netip.Prefix
	// Revocations holds the IDs of sessions logged out before they expired.
	// Nil: a MemoryRevocations of its default size.
	Revocations Revocations
	// LoginBurst and LoginEvery bound the login form's POSTs per client
	// address: LoginBurst at once, then one per LoginEvery; beyond that it
	// answers 429. Zero: DefaultLoginBurst, DefaultLoginEvery.
	LoginBurst int
	LoginEvery time.Duration
	// Logger, if set, hears of logins, refusals and logouts (never a token).
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Session is what a valid session cookie says.
type Session struct {
	ID      string
	Issued  time.Time
	Expires time.Time
}

// Manager authorizes admin requests and serves login and logout.
type Manager struct {
	cfg     Config
	token   [sha256.Size]byte // the token's digest, compared in constant time
	macKey  []byte
	limiter *limiter
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Token == "" {
		return nil, errors.New("adminsession: no admin token")
	}
	if cfg.Key == nil {
		cfg.Key = make([]byte, 32)
		if _, err := rand.Read(cfg.Key); err != nil {
			return nil, err
		}
	} else if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("adminsession: the session key must have at least %d bytes", MinKeyLen)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	cfg.Path = strings.TrimSuffix(cfg.Path, "/")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Revocations == nil {
		cfg.Revocations = &MemoryRevocations{Now: cfg.Now}
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = DefaultLoginBurst
	}
	if cfg.LoginEvery <= 0 {
		cfg.LoginEvery = DefaultLoginEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mac := hmac.New(sha256.New, cfg.Key)
	mac.Write([]byte("couponq admin session v1\x00"))
	mac.Write([]byte(cfg.Token))
	return &Manager{
		cfg:     cfg,
		token:   sha256.Sum256([]byte(cfg.Token)),
		macKey:  mac.Sum(nil),
		limiter: newLimiter(cfg.LoginBurst, cfg.LoginEvery, defaultMaxClients),
	}, nil
}

// LogoutPath is where the Logout handler belongs: Path + "/logout", under
// the cookie's path so that the browser sends the session there.
func (m *Manager) LogoutPath() string { return m.cfg.Path + "/logout" }

// tokenMatches reports, in constant time, whether got is the admin token.
func (m *Manager) tokenMatches(got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], m.token[:]) == 1
}

// Authorize is the admin handler's Authorize: "Authorization: Bearer TOKEN"
// for any request, compared in constant time; for reads (GET and HEAD)
// also a valid, unexpired, unrevoked session cookie. A refusal wraps
// node.ErrUnauthenticated (401); a failure to consult Revocations is
// another error (403): the session is refused, not trusted.
func (m *Manager) Authorize(r *http.Request) error {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if !m.tokenMatches(got) {
			return fmt.Errorf("%w: wrong admin token", node.ErrUnauthenticated)
		}
		return nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return fmt.Errorf("%w: send Authorization: Bearer <admin token>", node.ErrUnauthenticated)
	}
	_, err = m.Check(r.Context(), c.Value)
	return err
}

// Check returns the session a cookie value holds if it is valid: signed
// with this Manager's key, unexpired and not revoked.
func (m *Manager) Check(ctx context.Context, value string) (Session, error) {
	s, err := m.parse(value)
	if err != nil {
		return Session{}, fmt.Errorf("%w: invalid admin session; log in again", node.ErrUnauthenticated)
	}
	if !m.cfg.Now().Before(s.Expires) {
		return Session{}, fmt.Errorf("%w: admin session expired; log in again", node.ErrUnauthenticated)
	}
	revoked, err := m.cfg.Revocations.Revoked(ctx, s)
	if err != nil {
		m.cfg.Logger.Error("admin session: cannot consult the revocations; refusing the session", "err", err)
		return Session{}, errors.New("cannot check the admin session now; use the bearer token")
	}
	if revoked {
		return Session{}, fmt.Errorf("%w: admin session ended (logged out); log in again", node.ErrUnauthenticated)
	}
	return s, nil
}

// issue returns a new session and its cookie value.
func (m *Manager) issue() (Session, string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Session{}, "", err
	}
	now := m.cfg.Now()
	s := Session{
		ID:      base64.RawURLEncoding.EncodeToString(id),
		Issued:  time.Unix(now.Unix(), 0),
		Expires: time.Unix(now.Add(m.cfg.TTL).Unix(), 0),
	}
	payload := "v1." + s.ID + "." + strconv.FormatInt(s.Issued.Unix(), 10) + "." + strconv.FormatInt(s.Expires.Unix(), 10)
	return s, payload + "." + m.sign(payload), nil
}

// sign returns payload's MAC, base64url.
func (m *Manager) sign(payload string) string {
	mac := hmac.New(sha256.New, m.macKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var errInvalid = errors.New("invalid session")

// parse checks value's MAC (in constant time) and returns the session it
// holds, expired or not.
func (m *Manager) parse(value string) (Session, error) {
	dot := strings.LastIndexByte(value, '.')
	if dot < 0 {
		return Session{}, errInvalid
	}
	payload, sig := value[:dot], value[dot+1:]
	if !hmac.Equal([]byte(sig), []byte(m.sign(payload))) {
		return Session{}, errInvalid
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 4 || parts[0] != "v1" || parts[1] == "" {
		return Session{}, errInvalid
	}
	issued, err1 := strconv.ParseInt(parts[2], 10, 64)
	expires, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return Session{}, errInvalid
	}
	return Session{ID: parts[1], Issued: time.Unix(issued, 0), Expires: time.Unix(expires, 0)}, nil
}

// cookie returns the session cookie for value, Secure if r came over TLS.
func (m *Manager) cookie(r *http.Request, value string, expires time.Time, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: m.cfg.Path, Expires: expires, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: m.overTLS(r)}
}

// overTLS reports whether the browser reached us over TLS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto.
func (m *Manager) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !m.trusted(remoteAddr(r)) {
		return false
	}
	for _, h := range r.Header.Values("X-Forwarded-Proto") {
		for p := range strings.SplitSeq(h, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "https") {
				return true
			}
		}
	}
	return false
}

func (m *Manager) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range m.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the address the login rate limit counts: the peer's, or
// behind trusted proxies the nearest untrusted address in X-Forwarded-For.
// IPv6 addresses count by their /64.
func (m *Manager) client(r *http.Request) string {
	a := remoteAddr(r)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if m.trusted(a) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			a = hop
			if !m.trusted(hop) {
				break
			}
		}
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}

// Login serves a form that takes the admin token and, if it is right,
// sets a new session cookie (HttpOnly, SameSite=Strict, Secure over TLS,
// for Path, expiring with the session) and sends the browser to next. Its
// POSTs are rate-limited per client address (429 beyond the limit).
func (m *Manager) Login(next string) http.Handler {
	form := `<!doctype html><title>couponq admin</title><form method="post">` +
		`<label>Admin token <input type="password" name="token" autofocus></label> <button>Open the live page</button></form>` +
		`<form method="post" action="` + html.EscapeString(m.LogoutPath()) + `"><button>Log out</button></form>`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = fmt.Fprint(w, form)
			return
		}
		client := m.client(r)
		if ok, retry := m.limiter.allow(client, m.cfg.Now()); !ok {
			m.cfg.Logger.Warn("admin login rate-limited", "client", client)
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+1)))
			http.Error(w, "too many login attempts; try again later", http.StatusTooManyRequests)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if !m.tokenMatches(r.PostFormValue("token")) {
			m.cfg.Logger.Warn("admin login refused: wrong token", "client", client)
			http.Error(w, "wrong admin token", http.StatusUnauthorized)
			return
		}
		s, value, err := m.issue()
		if err != nil {
			http.Error(w, "cannot start a session", http.StatusInternalServerError)
			return
		}
		m.cfg.Logger.Info("admin login", "client", client, "session", s.ID, "expires", s.Expires)
		http.SetCookie(w, m.cookie(r, value, s.Expires, int(s.Expires.Sub(s.Issued).Seconds())))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// Logout ends the browser's session: it revokes the session's ID until the
// session would have expired, clears the cookie and sends the browser to
// next. It answers POST only; mount it at LogoutPath. If the revocation
// cannot be recorded it answers 503 and keeps the cookie, so the operator
// knows the session still stands.
func (m *Manager) Logout(next string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST to log out", http.StatusMethodNotAllowed)
			return
		}
		if c, err := r.Cookie(CookieName); err == nil {
			if s, err := m.parse(c.Value); err == nil && m.cfg.Now().Before(s.Expires) {
				if err := m.cfg.Revocations.Revoke(r.Context(), s); err != nil {
					m.cfg.Logger.Error("admin logout: cannot revoke the session", "session", s.ID, "err", err)
					http.Error(w, "cannot end the session now; try again", http.StatusServiceUnavailable)
					return
				}
				m.cfg.Logger.Info("admin logout", "session", s.ID)
			}
		}
		http.SetCookie(w, m.cookie(r, "", time.Unix(0, 0), -1))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// ParseTrustedProxies parses a comma-separated list of IP addresses and
// CIDR prefixes ("10.0.0.0/8,192.0.2.7"); empty is none.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
