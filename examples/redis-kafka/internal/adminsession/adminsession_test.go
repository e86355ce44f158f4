package adminsession

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef-admin"

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time        { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)   { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                 { return &clock{t: time.Unix(1_700_000_000, 0)} }
func (c *clock) cfg(cfg Config) Config { cfg.Now = c.Now; return cfg }
func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = token
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = 1000 // the tests log in often from one address; TestLoginRateLimit sets its own
	}
	m, err := New(cfg)
	require.NoError(t, err)
	return m
}

// login posts the token to m's login form from remote (host:port) and
// returns the response.
func login(m *Manager, given, remote string, tweak ...func(*http.Request)) *http.Response {
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {given}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if remote != "" {
		r.RemoteAddr = remote
	}
	for _, f := range tweak {
		f(r)
	}
	w := httptest.NewRecorder()
	m.Login("/admin/live").ServeHTTP(w, r)
	return w.Result()
}

// session logs in and returns the session cookie.
func session(t *testing.T, m *Manager, tweak ...func(*http.Request)) *http.Cookie {
	t.Helper()
	res := login(m, token, "", tweak...)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	cs := res.Cookies()
	require.Len(t, cs, 1)
	require.Equal(t, CookieName, cs[0].Name)
	return cs[0]
}

// read is a GET of the admin list with the cookie (and bearer, if set).
func read(method string, c *http.Cookie, bearer string) *http.Request {
	r := httptest.NewRequest(method, "/admin/campaigns", nil)
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	return r
}

func TestLoginFormAndWrongToken(t *testing.T) {
	m := newManager(t, Config{})
	w := httptest.NewRecorder()
	m.Login("/admin/live").ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	assert.Contains(t, w.Body.String(), `<form method="post">`)
	assert.Contains(t, w.Body.String(), `action="/admin/logout"`)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	res := login(m, "wrong-token-0000", "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Empty(t, res.Cookies())
}

func TestValidSessionAuthorizesReads(t *testing.T) {
	clk := newClock()
	m := newManager(t, clk.cfg(Config{TTL: 2 * time.Hour}))
	res := login(m, token, "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/admin/live", res.Header.Get("Location"))
	c := res.Cookies()[0]

	assert.NotContains(t, c.Value, token, "the cookie never holds the token")
	assert.Len(t, strings.Split(c.Value, "."), 5, "v1.ID.ISSUED.EXPIRES.MAC")
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/admin", c.Path)
	assert.False(t, c.Secure, "plain HTTP, no trusted proxy")
	assert.Equal(t, 7200, c.MaxAge)
	assert.Equal(t, clk.Now().Add(2*time.Hour).Unix(), c.Expires.Unix())

	assert.NoError(t, m.Authorize(read(http.MethodGet, c, "")))
	assert.NoError(t, m.Authorize(read(http.MethodHead, c, "")))
	s, err := m.Check(t.Context(), c.Value)
	require.NoError(t, err)
	assert.Equal(t, clk.Now().Unix(), s.Issued.Unix())
	assert.Equal(t, clk.Now().Add(2*time.Hour).Unix(), s.Expires.Unix())

	// Two logins, two sessions.
	other := session(t, m)
	assert.NotEqual(t, c.Value, other.Value)
}

func TestSessionNeverAuthorizesChanges(t *testing.T) {
	m := newManager(t, Config{})
	c := session(t, m)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		assert.ErrorIs(t, m.Authorize(read(method, c, "")), node.ErrUnauthenticated, method)
		assert.NoError(t, m.Authorize(read(method, nil, token)), method+" with the bearer token")
		assert.ErrorIs(t, m.Authorize(read(method, c, "wrong-token-0000")), node.ErrUnauthenticated)
	}
	assert.NoError(t, m.Authorize(read(http.MethodGet, nil, token)))
	assert.ErrorIs(t, m.Authorize(read(http.MethodGet, nil, "")), node.ErrUnauthenticated)
	assert.ErrorIs(t, m.Authorize(read(http.MethodGet, nil, "wrong-token-0000")), node.ErrUnauthenticated)
	assert.ErrorIs(t, m.Authorize(read(http.MethodGet, &http.Cookie{Name: CookieName, Value: token}, "")),
		node.ErrUnauthenticated, "the raw token is no session")
}

func TestExpiredSessionRefused(t *testing.T) {
	clk := newClock()
	m := newManager(t, clk.cfg(Config{TTL: time.Hour}))
	c := session(t, m)
	clk.Add(time.Hour - time.Second)
	assert.NoError(t, m.Authorize(read(http.MethodGet, c, "")))
	clk.Add(time.Second)
	err := m.Authorize(read(http.MethodGet, c, ""))
	assert.ErrorIs(t, err, node.ErrUnauthenticated)
	assert.ErrorContains(t, err, "expired")
}

func TestTamperedSessionRefused(t *testing.T) {
	clk := newClock()
	m := newManager(t, clk.cfg(Config{}))
	c := session(t, m)
	parts := strings.Split(c.Value, ".")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, ".")
	}
	flip := func(s string) string { // change the last character
		last := s[len(s)-1]
		repl := byte('A')
		if last == 'A' {
			repl = 'B'
		}
		return s[:len(s)-1] + string(repl)
	}
	later := clk.Now().Add(30 * 24 * time.Hour).Unix()
	cases := map[string]string{
		"expiry pushed out": with(3, fmt.Sprint(later)),
		"issue time moved":  with(2, fmt.Sprint(clk.Now().Unix()+1)),
		"another ID":        with(1, flip(parts[1])),
		"version":           with(0, "v2"),
		"MAC flipped":       with(4, flip(parts[4])),
		"MAC truncated":     with(4, parts[4][:len(parts[4])-1]),
		"MAC extended":      c.Value + "A",
		"MAC missing":       strings.Join(parts[:4], "."),
		"MAC empty":         with(4, ""),
		"empty":             "",
		"garbage":           "not-a-session",
		"extra field":       strings.Join(append(parts[:4:4], "x", parts[4]), "."),
	}
	for name, v := range cases {
		err := m.Authorize(read(http.MethodGet, &http.Cookie{Name: CookieName, Value: v}, ""))
		assert.ErrorIs(t, err, node.ErrUnauthenticated, name)
	}
	assert.NoError(t, m.Authorize(read(http.MethodGet, c, "")), "the untouched cookie still works")

	// Signed by another key, or for another token: refused.
	other := newManager(t, clk.cfg(Config{}))
	assert.ErrorIs(t, other.Authorize(read(http.MethodGet, c, "")), node.ErrUnauthenticated, "another process's random key")
	key := []byte(strings.Repeat("k", MinKeyLen))
	a := newManager(t, clk.cfg(Config{Key: key}))
	b := newManager(t, clk.cfg(Config{Key: key, Token: "a-new-admin-token-0123"}))
	assert.ErrorIs(t, b.Authorize(read(http.MethodGet, session(t, a), "")), node.ErrUnauthenticated, "a new token ends the sessions")
}

func TestSharedKeySharesSessions(t *testing.T) {
	key := []byte(strings.Repeat("k", MinKeyLen))
	a := newManager(t, Config{Key: key})
	b := newManager(t, Config{Key: key})
	assert.NoError(t, b.Authorize(read(http.MethodGet, session(t, a), "")))
	_, err := New(Config{Token: token, Key: []byte("short")})
	assert.Error(t, err)
	_, err = New(Config{})
	assert.Error(t, err, "no token")
}

// logout posts to m's logout route with c.
func logout(m *Manager, c *http.Cookie) *http.Response {
	r := httptest.NewRequest(http.MethodPost, m.LogoutPath(), nil)
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	m.Logout("/login").ServeHTTP(w, r)
	return w.Result()
}

func TestLogoutRevokes(t *testing.T) {
	clk := newClock()
	rev := &MemoryRevocations{Now: clk.Now}
	m := newManager(t, clk.cfg(Config{Revocations: rev}))
	c, kept := session(t, m), session(t, m)
	assert.Equal(t, "/admin/logout", m.LogoutPath())

	res := logout(m, c)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/login", res.Header.Get("Location"))
	cleared := res.Cookies()
	require.Len(t, cleared, 1)
	assert.Equal(t, CookieName, cleared[0].Name)
	assert.Empty(t, cleared[0].Value)
	assert.Negative(t, cleared[0].MaxAge, "the browser drops it")
	assert.Equal(t, "/admin", cleared[0].Path)

	err := m.Authorize(read(http.MethodGet, c, ""))
	assert.ErrorIs(t, err, node.ErrUnauthenticated, "a copy of the cookie is refused too")
	assert.ErrorContains(t, err, "logged out")
	assert.NoError(t, m.Authorize(read(http.MethodGet, kept, "")), "another session stands")
	assert.Equal(t, 1, rev.Len())

	// The revocation lasts as long as the session would have, then goes.
	clk.Add(DefaultTTL)
	assert.ErrorIs(t, m.Authorize(read(http.MethodGet, c, "")), node.ErrUnauthenticated)

	// Without a session, or with a forged one: nothing to revoke.
	assert.Equal(t, http.StatusSeeOther, logout(m, nil).StatusCode)
	assert.Equal(t, http.StatusSeeOther, logout(m, &http.Cookie{Name: CookieName, Value: "forged"}).StatusCode)

	w := httptest.NewRecorder()
	m.Logout("/login").ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/admin/logout", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
}

// brokenRevocations fails every call.
type brokenRevocations struct{}

func (brokenRevocations) Revoke(context.Context, Session) error { return errors.New("down") }
func (brokenRevocations) Revoked(context.Context, Session) (bool, error) {
	return false, errors.New("down")
}

func TestRevocationFailureRefusesTheSession(t *testing.T) {
	m := newManager(t, Config{Revocations: brokenRevocations{}})
	c := session(t, m)
	err := m.Authorize(read(http.MethodGet, c, ""))
	require.Error(t, err)
	assert.NotErrorIs(t, err, node.ErrUnauthenticated, "403, not a login prompt")
	assert.NotContains(t, err.Error(), "down", "the backend's error stays in the log")
	assert.NoError(t, m.Authorize(read(http.MethodGet, nil, token)), "the bearer token needs no revocation check")

	res := logout(m, c)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "the operator hears the logout failed")
	assert.Empty(t, res.Cookies(), "and keeps the cookie")
}

func TestSecureCookie(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7")
	require.NoError(t, err)
	m := newManager(t, Config{TrustedProxies: proxies})
	from := func(remote, proto string, tls *tls.ConnectionState) func(*http.Request) {
		return func(r *http.Request) {
			r.RemoteAddr = remote
			if proto != "" {
				r.Header.Set("X-Forwarded-Proto", proto)
			}
			r.TLS = tls
		}
	}
	secure := func(tweak func(*http.Request)) bool { return session(t, m, tweak).Secure }
	assert.True(t, secure(from("198.51.100.1:1234", "", &tls.ConnectionState{})), "TLS to the api itself")
	assert.True(t, secure(from("10.1.2.3:1234", "https", nil)), "a trusted proxy says https")
	assert.True(t, secure(from("192.0.2.7:1234", "HTTPS", nil)), "a trusted proxy (a single address)")
	assert.True(t, secure(from("[::ffff:10.1.2.3]:1234", "https", nil)), "IPv4-mapped")
	assert.False(t, secure(from("198.51.100.1:1234", "https", nil)), "an untrusted peer's header counts for nothing")
	assert.False(t, secure(from("192.0.2.8:1234", "https", nil)), "next to a trusted address is not trusted")
	assert.False(t, secure(from("10.1.2.3:1234", "", nil)), "a trusted proxy, plain HTTP")
	assert.False(t, secure(from("10.1.2.3:1234", "http", nil)))
	assert.False(t, secure(from("198.51.100.1:1234", "", nil)), "plain HTTP")

	// The logout's clearing cookie carries the same attributes.
	r := httptest.NewRequest(http.MethodPost, "/admin/logout", nil)
	r.TLS = &tls.ConnectionState{}
	w := httptest.NewRecorder()
	m.Logout("/login").ServeHTTP(w, r)
	assert.True(t, w.Result().Cookies()[0].Secure)

	_, err = ParseTrustedProxies("10.0.0.0/33")
	assert.Error(t, err)
	_, err = ParseTrustedProxies("proxy.example")
	assert.Error(t, err)
	none, err := ParseTrustedProxies("")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestLoginRateLimit(t *testing.T) {
	clk := newClock()
	proxies, err := ParseTrustedProxies("10.0.0.1")
	require.NoError(t, err)
	m := newManager(t, clk.cfg(Config{LoginBurst: 2, LoginEvery: 10 * time.Second, TrustedProxies: proxies}))
	const mallory = "198.51.100.9:4000"
	assert.Equal(t, http.StatusUnauthorized, login(m, "wrong-token-0000", mallory).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, login(m, "wrong-token-0001", mallory).StatusCode)
	res := login(m, token, mallory)
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "over the limit even with the right token")
	assert.Equal(t, "11", res.Header.Get("Retry-After"))
	assert.Empty(t, res.Cookies())
	assert.Equal(t, http.StatusTooManyRequests, login(m, token, "198.51.100.9:4001").StatusCode, "the address counts, not the port")

	assert.Equal(t, http.StatusSeeOther, login(m, token, "198.51.100.10:4000").StatusCode, "another client is not held up")
	clk.Add(10 * time.Second)
	assert.Equal(t, http.StatusSeeOther, login(m, token, mallory).StatusCode, "one more attempt per 10s")
	assert.Equal(t, http.StatusTooManyRequests, login(m, token, mallory).StatusCode)

	// IPv6 clients count by their /64.
	assert.Equal(t, http.StatusUnauthorized, login(m, "x", "[2001:db8::1]:1").StatusCode)
	assert.Equal(t, http.StatusUnauthorized, login(m, "x", "[2001:db8::2]:1").StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, login(m, "x", "[2001:db8::3]:1").StatusCode)

	// Behind the trusted proxy, the client is the one X-Forwarded-For names;
	// an untrusted peer's X-Forwarded-For is ignored.
	xff := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Forwarded-For", v) }
	}
	assert.Equal(t, http.StatusSeeOther, login(m, token, "10.0.0.1:80", xff("203.0.113.5")).StatusCode)
	assert.Equal(t, http.StatusSeeOther, login(m, token, "10.0.0.1:80", xff("203.0.113.5")).StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, login(m, token, "10.0.0.1:80", xff("203.0.113.5")).StatusCode)
	assert.Equal(t, http.StatusSeeOther, login(m, token, "10.0.0.1:80", xff("203.0.113.5, 203.0.113.6")).StatusCode,
		"the nearest hop counts: a client cannot pick another by prepending")
	assert.Equal(t, http.StatusTooManyRequests, login(m, token, mallory, xff("203.0.113.77")).StatusCode)
}

func TestLimiterTableBounded(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(1, time.Minute, 3)
	for i := range 3 {
		ok, _ := l.allow(fmt.Sprint("client-", i), now)
		assert.True(t, ok)
	}
	ok, _ := l.allow("client-3", now)
	assert.True(t, ok, "the table is full: newcomers share the overflow bucket")
	ok, _ = l.allow("client-4", now)
	assert.False(t, ok, "which holds one client's attempts")
	assert.Len(t, l.buckets, 4)
	now = now.Add(time.Minute)
	ok, _ = l.allow("client-5", now)
	assert.True(t, ok, "refilled buckets make room")
	assert.LessOrEqual(t, len(l.buckets), 3)
}

func TestMemoryRevocationsBounded(t *testing.T) {
	clk := newClock()
	rev := &MemoryRevocations{Max: 3, Now: clk.Now}
	m := newManager(t, clk.cfg(Config{Revocations: rev, TTL: time.Hour}))
	var cs []*http.Cookie
	for range 5 {
		cs = append(cs, session(t, m))
	}
	for _, c := range cs[:3] {
		require.Equal(t, http.StatusSeeOther, logout(m, c).StatusCode)
	}
	assert.Equal(t, 3, rev.Len())
	for _, c := range cs[3:] {
		assert.NoError(t, m.Authorize(read(http.MethodGet, c, "")))
	}

	// Expired entries make room.
	clk.Add(time.Hour)
	fresh := session(t, m)
	require.Equal(t, http.StatusSeeOther, logout(m, fresh).StatusCode)
	assert.Equal(t, 1, rev.Len())
	assert.ErrorIs(t, m.Authorize(read(http.MethodGet, fresh, "")), node.ErrUnauthenticated)

	// Overflowing with live sessions: every session issued so far is
	// refused, none of the revoked ones comes back.
	var live []*http.Cookie
	for range 3 {
		live = append(live, session(t, m))
	}
	standing := session(t, m)
	for _, c := range live {
		require.Equal(t, http.StatusSeeOther, logout(m, c).StatusCode)
	}
	assert.Equal(t, 0, rev.Len(), "forgotten")
	for _, c := range append(live, fresh, standing) {
		assert.ErrorIs(t, m.Authorize(read(http.MethodGet, c, "")), node.ErrUnauthenticated)
	}
	clk.Add(time.Second)
	assert.NoError(t, m.Authorize(read(http.MethodGet, session(t, m), "")), "a new login works")
}

func TestRedisRevocations(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		rev := RedisRevocations{Client: c, Prefix: fmt.Sprintf("adminsession-test-%d", time.Now().UnixNano())}
		a := newManager(t, Config{Key: []byte(strings.Repeat("k", MinKeyLen)), Revocations: rev, TTL: time.Minute})
		b := newManager(t, Config{Key: []byte(strings.Repeat("k", MinKeyLen)), Revocations: rev, TTL: time.Minute})
		out, kept := session(t, a), session(t, a)
		assert.NoError(t, b.Authorize(read(http.MethodGet, out, "")))
		require.Equal(t, http.StatusSeeOther, logout(a, out).StatusCode)
		assert.ErrorIs(t, b.Authorize(read(http.MethodGet, out, "")), node.ErrUnauthenticated, "a logout through one api holds on every api")
		assert.NoError(t, b.Authorize(read(http.MethodGet, kept, "")))

		s, err := a.parse(out.Value)
		require.NoError(t, err)
		ttl, err := c.PTTL(t.Context(), rev.key(s.ID)).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, time.Duration(0), "the entry expires")
		assert.LessOrEqual(t, ttl, time.Minute, "with the session")
		require.NoError(t, c.Del(t.Context(), rev.key(s.ID)).Err())

		// An expired session needs no entry.
		require.NoError(t, rev.Revoke(t.Context(), Session{ID: "gone", Expires: time.Now().Add(-time.Second)}))
		n, err := c.Exists(t.Context(), rev.key("gone")).Result()
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}

func TestParseKeepsNoPrefixAmbiguity(t *testing.T) {
	// The MAC covers the whole payload: a value whose payload is a prefix
	// or an extension of a signed one does not verify.
	m := newManager(t, Config{})
	_, v, err := m.issue()
	require.NoError(t, err)
	s, err := m.parse(v)
	require.NoError(t, err)
	assert.Len(t, s.ID, 22)
	dot := strings.LastIndexByte(v, '.')
	_, err = m.parse(v[:dot] + "0." + v[dot+1:])
	assert.Error(t, err)
}
