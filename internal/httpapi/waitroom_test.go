package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
)

// page fetches the waiting room as user (none: unauthenticated) and returns
// the answer's status, the page and the state it renders.
func page(t *testing.T, e *pushEnv, method, path, user string, header ...string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location"), ""
	}
	m := regexp.MustCompile(`data-state="([a-z_]+)"\s+data-strings`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "no state in the page: %s", b)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		csp := resp.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "script-src 'self'")
		assert.NotContains(t, csp, "unsafe-inline")
	}
	return resp.StatusCode, string(b), m[1]
}

// visible is the one section of the page not hidden.
func visible(t *testing.T, html string) string {
	t.Helper()
	all := regexp.MustCompile(`<section data-state="([a-z_]+)"( hidden)?>`).FindAllStringSubmatch(html, -1)
	var shown []string
	for _, m := range all {
		if m[2] == "" {
			shown = append(shown, m[1])
		}
	}
	require.Len(t, shown, 1, "exactly one section shows")
	return shown[0]
}

// The page renders the user's state on the server, so it is right before
// any script runs and without one: each state the page has, reached
// through the real handler on the in-memory line.
func TestWaitingRoomStates(t *testing.T) {
	now := time.Now()
	e := newPush(t, nil,
		couponq.Campaign{ID: "drop", Stock: 3},
		couponq.Campaign{ID: "later", Stock: 3, OpensAt: now.Add(time.Hour)},
		couponq.Campaign{ID: "pre", Stock: 3, OpensAt: now.Add(time.Hour), PreQueue: 2 * time.Hour},
		couponq.Campaign{ID: "held", Stock: 3, Paused: true},
		couponq.Campaign{ID: "over", Stock: 3, ClosesAt: now.Add(-time.Minute), OpensAt: now.Add(-time.Hour)},
		couponq.Campaign{ID: "tiny", Stock: 1, MaxWaiting: 1},
	)
	check := func(name, method, path, user string, wantStatus int, wantState string, contains ...string) string {
		t.Helper()
		status, html, state := page(t, e, method, path, user)
		assert.Equal(t, wantStatus, status, name)
		assert.Equal(t, wantState, state, name)
		assert.Equal(t, wantState, visible(t, html), name)
		for _, c := range contains {
			assert.Contains(t, html, c, name)
		}
		return html
	}
	check("no user", "GET", "/api/campaigns/drop/wait", "", 401, "signin")
	check("unknown", "GET", "/api/campaigns/nope/wait", "ann", 404, "unknown")
	check("bad id", "GET", "/api/campaigns/a%7Bb%7D/wait", "ann", 404, "unknown")
	check("not in line", "GET", "/api/campaigns/drop/wait", "ann", 200, "join", `<form method="post" action="/api/campaigns/drop/wait"`)
	check("not open", "GET", "/api/campaigns/later/wait", "ann", 200, "upcoming", "data-opens-at=\""+now.Add(time.Hour).UTC().Format("2006-01-02T15:04"))
	check("closed", "GET", "/api/campaigns/over/wait", "ann", 200, "closed")

	// The form joins and sends the browser back (303); a second press is
	// harmless.
	status, loc, _ := page(t, e, "POST", "/api/campaigns/drop/wait", "ann")
	require.Equal(t, http.StatusSeeOther, status)
	assert.Equal(t, "/api/campaigns/drop/wait", loc)
	status, _, _ = page(t, e, "POST", "/api/campaigns/drop/wait?lang=ko", "ann")
	require.Equal(t, http.StatusSeeOther, status)
	check("waiting", "GET", "/api/campaigns/drop/wait", "ann", 200, "waiting", "Your place: 1", "People ahead of you: 0")
	e.admit(t, "drop", "bob", "cy", "dee")
	check("waiting 2nd", "GET", "/api/campaigns/drop/wait", "bob", 200, "waiting", "Your place: 2", "People ahead of you: 1")
	check("beyond the stock", "GET", "/api/campaigns/drop/wait", "dee", 200, "beyond", "(4)")

	es := lease(t, e.q, "drop", 2)
	check("in flight", "GET", "/api/campaigns/drop/wait", "ann", 200, "in_flight")
	issue(t, e.q, es...)
	check("issued", "GET", "/api/campaigns/drop/wait", "ann", 200, "issued", "Issuance ID: ")
	third := lease(t, e.q, "drop", 1)[0]
	require.NoError(t, e.q.Record(t.Context(), "drop", couponq.Result{Entry: third, State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	check("sold out", "GET", "/api/campaigns/drop/wait", "cy", 200, "sold_out")

	// Refused admissions render their state.
	check("join before opening", "POST", "/api/campaigns/later/wait", "ann", 403, "upcoming")
	check("join after closing", "POST", "/api/campaigns/over/wait", "ann", 403, "closed")
	e.admit(t, "tiny", "first")
	check("line full", "POST", "/api/campaigns/tiny/wait", "ann", 410, "line_full")

	// The pre-queue: a countdown, and the rule of the draw.
	status, _, _ = page(t, e, "POST", "/api/campaigns/pre/wait", "ann")
	require.Equal(t, http.StatusSeeOther, status)
	check("pre-queue", "GET", "/api/campaigns/pre/wait", "ann", 200, "prequeue", "random draw")

	// Paused: no estimate; the status JSON says paused too.
	e.admit(t, "held", "ann")
	check("paused", "GET", "/api/campaigns/held/wait", "ann", 200, "paused")
	_, st := do(t, e.srv, "GET", "/api/campaigns/held/entries/me", "ann", "")
	assert.Equal(t, true, st["paused"])
	assert.NotContains(t, st, "estimated_wait_ms")
}

// Korean is shipped; the language comes from ?lang=, else Accept-Language,
// else English; the switch links every language.
func TestWaitingRoomLanguages(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 3})
	_, html, _ := page(t, e, "GET", "/api/campaigns/drop/wait?lang=ko", "ann")
	assert.Contains(t, html, `<html lang="ko">`)
	assert.Contains(t, html, "줄 서기")
	_, html, _ = page(t, e, "GET", "/api/campaigns/drop/wait", "ann", "Accept-Language", "fr-CA, ko-KR;q=0.8, en;q=0.5")
	assert.Contains(t, html, `<html lang="ko">`)
	_, html, _ = page(t, e, "GET", "/api/campaigns/drop/wait", "ann", "Accept-Language", "fr")
	assert.Contains(t, html, `<html lang="en">`)
	assert.Contains(t, html, `hreflang="ko"`)
	assert.Contains(t, html, `aria-current="true">English`)
}

// A host adds a language, overrides a text, sets colours and a logo; bad
// values are refused at New.
func TestWaitingRoomCustomised(t *testing.T) {
	e := newPush(t, func(c *httpapi.Config) {
		c.WaitingRoom = httpapi.WaitingRoom{
			Strings: map[string]map[string]string{
				"ja": {"language_name": "日本語", "join_button": "列に並ぶ"},
				"en": {"title": "Summer drop: {campaign}"},
			},
			Theme:   map[string]string{"--accent": "#c0392b", "--accent-dark": "#ff7a6b"},
			LogoURL: "/static/logo.svg",
		}
	}, couponq.Campaign{ID: "drop", Stock: 3})
	_, html, _ := page(t, e, "GET", "/api/campaigns/drop/wait?lang=ja", "ann")
	assert.Contains(t, html, "列に並ぶ")
	assert.Contains(t, html, "The line is open", "a key the language leaves out falls back to English")
	_, html, _ = page(t, e, "GET", "/api/campaigns/drop/wait", "ann")
	assert.Contains(t, html, "<title>Summer drop: drop</title>")
	assert.Contains(t, html, `<img class="logo" src="/static/logo.svg" alt="">`)
	resp, err := e.srv.Client().Get(e.srv.URL + "/api/wait/theme.css")
	require.NoError(t, err)
	css, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(css), "--accent: #c0392b;")
	assert.Contains(t, string(css), "prefers-color-scheme: dark")
	assert.Contains(t, string(css), "--accent: #ff7a6b;")

	svc, _ := memService(t)
	for name, wr := range map[string]httpapi.WaitingRoom{
		"theme name":   {Theme: map[string]string{"color": "red"}},
		"theme value":  {Theme: map[string]string{"--bg": "red;} body{display:none"}},
		"unknown key":  {Strings: map[string]map[string]string{"en": {"no_such_key": "x"}}},
		"new language": {Strings: map[string]map[string]string{"ja": {"join_button": "x"}}},
		"bad tag":      {Strings: map[string]map[string]string{"<b>": {"language_name": "x"}}},
		"remote logo":  {LogoURL: "https://cdn.example/logo.png"},
	} {
		_, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), WaitingRoom: wr})
		assert.ErrorIs(t, err, couponq.ErrInvalidConfig, name)
	}
}

// Another site cannot post the join form for a visitor.
func TestWaitingRoomRefusesCrossOriginJoin(t *testing.T) {
	e := newPush(t, nil, couponq.Campaign{ID: "drop", Stock: 3})
	req, err := http.NewRequest("POST", e.srv.URL+"/api/campaigns/drop/wait", strings.NewReader(url.Values{}.Encode()))
	require.NoError(t, err)
	req.Header.Set("X-User", "ann")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, html, _ := page(t, e, "GET", "/api/campaigns/drop/wait", "ann")
	assert.Equal(t, "join", visible(t, html), "nobody joined")
}

// The assets are served with their types and the page's headers.
func TestWaitingRoomAssets(t *testing.T) {
	e := newPush(t, nil)
	for path, ctype := range map[string]string{
		"/api/wait/client.js": "text/javascript", "/api/wait/wait.js": "text/javascript",
		"/api/wait/client.d.ts": "application/typescript", "/api/wait/wait.css": "text/css", "/api/wait/theme.css": "text/css",
	} {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), ctype), path)
		assert.NotEmpty(t, resp.Header.Get("ETag"), path)
	}
}
