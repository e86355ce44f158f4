package browsertest_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/httpapi"
	"github.com/couponq/couponq/internal/memline"
)

var screenshots = flag.String("screenshots", "",
	"write the waiting room's screenshots (PNG, STATE-desktop.png and STATE-phone.png) into this directory; empty means the test's temporary directory")

// userCookie carries the user in the browser tests: the host's
// authentication, as HandlerConfig.User reads it.
const userCookie = "couponq_user"

func cookieUser(r *http.Request) (string, error) {
	c, err := r.Cookie(userCookie)
	if err != nil || c.Value == "" {
		return "", fmt.Errorf("%w: no %s cookie", httpapi.ErrUnauthenticated, userCookie)
	}
	return c.Value, nil
}

// switchService is the admission service with a switch that makes every
// call fail as a backend outage does.
type switchService struct {
	*admission.Service
	down atomic.Bool
}

func (s *switchService) Admit(ctx context.Context, r couponq.Request) (couponq.Ticket, error) {
	if s.down.Load() {
		return couponq.Ticket{}, fmt.Errorf("%w: down for the test", couponq.ErrUnavailable)
	}
	return s.Service.Admit(ctx, r)
}

func (s *switchService) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	if s.down.Load() {
		return couponq.Status{}, fmt.Errorf("%w: down for the test", couponq.ErrUnavailable)
	}
	return s.Service.Status(ctx, campaign, user)
}

// room is the public handler on the in-memory line, served on 127.0.0.1;
// the test moves the line itself (lease, record), so each state is reached
// when it asks.
type room struct {
	reg *memline.Registry
	q   *memline.Queue
	svc *switchService
	srv *httptest.Server
	// cut, while set, refuses the status streams (502), as a proxy that
	// does not pass them would.
	cut atomic.Bool
}

func startRoom(t *testing.T, cs ...couponq.Campaign) *room {
	t.Helper()
	reg, err := memline.NewRegistry(cs...)
	require.NoError(t, err)
	q := memline.NewQueue(nil)
	svc, err := admission.New(admission.Config{Catalog: reg, Queue: q})
	require.NoError(t, err)
	r := &room{reg: reg, q: q, svc: &switchService{Service: svc}}
	h, err := httpapi.New(httpapi.Config{Service: r.svc, User: cookieUser, Stats: q, Catalog: reg,
		StreamPoll: 100 * time.Millisecond, RetryAfter: 200 * time.Millisecond})
	require.NoError(t, err)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.cut.Load() && strings.HasSuffix(req.URL.Path, "/events") {
			http.Error(w, "streams are not passed here", http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(h.Close)
	return r
}

func (r *room) admit(t *testing.T, campaign string, users ...string) {
	t.Helper()
	for _, u := range users {
		_, err := r.svc.Admit(context.Background(), couponq.Request{Campaign: campaign, User: u})
		require.NoError(t, err)
	}
}

// decide leases the head of campaign's line and records each entry's
// outcome: issued, or rejected for reason.
func (r *room) decide(t *testing.T, campaign string, n int, reason string) []couponq.Entry {
	t.Helper()
	es, err := r.q.Lease(context.Background(), campaign, n, time.Minute)
	require.NoError(t, err)
	require.Len(t, es, n)
	if reason == "lease only" {
		return es
	}
	for _, e := range es {
		res := couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "CPN-" + strings.ToUpper(e.User) + "-7F3A"}
		if reason != "" {
			res = couponq.Result{Entry: e, State: couponq.StateRejected, Reason: reason}
		}
		require.NoError(t, r.q.Record(context.Background(), campaign, res))
	}
	return es
}

// viewport is a browser shape the page is checked at.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
	scheme        string // prefers-color-scheme
}

var viewports = []viewport{
	{name: "desktop", width: 1280, height: 800, scheme: "light"},
	{name: "phone", width: 390, height: 844, mobile: true, scheme: "dark"},
}

// visit opens path in the page as user ("" for none) at vp.
func (r *room) visit(t *testing.T, ctx context.Context, vp viewport, user, path string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(vp.width, vp.height, func(p *emulation.SetDeviceMetricsOverrideParams, _ *emulation.SetTouchEmulationEnabledParams) {
			p.Mobile = vp.mobile
		}),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: vp.scheme}}}); err != nil {
				return err
			}
			if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
				return err
			}
			if user == "" {
				return nil
			}
			_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
				Name: userCookie, Value: user, URL: r.srv.URL, HTTPOnly: new(true)})
			return err
		}),
		chromedp.Navigate(r.srv.URL+path),
	))
}

// pageState is the JavaScript expression of the state the page shows:
// its root's data-state, once its script has taken over.
const pageState = `(() => { const r = document.getElementById("couponq-wait"); return r && r.dataset.js === "on" ? r.dataset.state : ""; })()`

// shown is the text of the one section showing.
const shown = `Array.from(document.querySelectorAll("section[data-state]")).filter(s => !s.hidden).map(s => s.innerText.replace(/\s+/g, " ").trim()).join(" | ")`

// axeResult is what the accessibility check found on one page.
type axeResult struct {
	Serious, Minor int      // violations (nodes) at serious or critical impact, and below
	Rules          []string // the rules broken, with their impact
}

// axe runs axe-core inside the page and counts its violations.
func axe(t *testing.T, ctx context.Context, source string) axeResult {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](source+";true"))
	require.NoError(t, err, "inject axe-core")
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, where: v.nodes.map(n => n.target.join(" ") + ": " + (n.any[0] && n.any[0].message || "")).join("; ")}))))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "run axe-core")
	var vs []struct {
		ID, Impact, Help, Where string
		Nodes                   int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &vs))
	var res axeResult
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			res.Serious += v.Nodes
		} else {
			res.Minor += v.Nodes
		}
		res.Rules = append(res.Rules, fmt.Sprintf("%s (%s, %d nodes: %s: %s)", v.ID, v.Impact, v.Nodes, v.Help, v.Where))
	}
	return res
}

// axeSource reads axe-core (scripts/axe.sh fetches it; COUPONQ_AXE_JS names
// it). Without it the test skips, or fails when CI is set.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("COUPONQ_AXE_JS")
	if path == "" {
		path = "../../.cache/axe/4.14.1/axe.min.js"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is missing, and CI is set: run scripts/axe.sh (%v)", err)
		}
		t.Skipf("axe-core is missing (scripts/axe.sh fetches it): %v", err)
	}
	return string(b)
}

// shoot writes the page's viewport as a PNG named name into -screenshots.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getAnimations().length === 0`,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// Every state the page has, at a desktop (light) and a phone (dark)
// viewport: the page reaches it with its script running, shows that one
// section, and axe-core finds no serious or critical violation in it.
func TestWaitingRoomStates(t *testing.T) {
	browser := chromium(t)
	axeJS := axeSource(t)
	now := time.Now()
	var cs []couponq.Campaign
	for _, vp := range viewports {
		v := vp.name
		cs = append(cs,
			couponq.Campaign{ID: "drop-" + v, Stock: 100, BatchSize: 2, Interval: time.Second},
			couponq.Campaign{ID: "last-" + v, Stock: 3},
			couponq.Campaign{ID: "flight-" + v, Stock: 10},
			couponq.Campaign{ID: "won-" + v, Stock: 10},
			couponq.Campaign{ID: "gone-" + v, Stock: 10},
			couponq.Campaign{ID: "again-" + v, Stock: 10},
			couponq.Campaign{ID: "broke-" + v, Stock: 10},
			couponq.Campaign{ID: "full-" + v, Stock: 10, MaxWaiting: 1},
		)
	}
	cs = append(cs,
		couponq.Campaign{ID: "summer-launch", Stock: 500, OpensAt: now.Add(2*time.Hour + 14*time.Minute)},
		couponq.Campaign{ID: "midnight-drop", Stock: 500, OpensAt: now.Add(47 * time.Minute), PreQueue: time.Hour},
		couponq.Campaign{ID: "vip-preview", Stock: 200, Paused: true},
		couponq.Campaign{ID: "spring-sale", Stock: 200, OpensAt: now.Add(-48 * time.Hour), ClosesAt: now.Add(-time.Hour)},
	)
	r := startRoom(t, cs...)
	ctx := startBrowser(t, browser, 4*time.Minute)

	type state struct {
		name  string
		setup func(vp viewport) (user, path string) // user "" is anonymous
		click bool                                  // press the page's button, then wait for the state
		shows string                                // in the section's text
	}
	// decided puts user (suffixed with the viewport) at the head of
	// campaign's line (likewise) and decides it: issued (""), rejected for
	// reason, or only leased ("lease only").
	decided := func(campaign, user, reason string) func(viewport) (string, string) {
		return func(vp viewport) (string, string) {
			c, u := campaign+"-"+vp.name, user+"-"+vp.name
			r.admit(t, c, u)
			r.decide(t, c, 1, reason)
			return u, "/campaigns/" + c + "/wait"
		}
	}
	states := []state{
		{"signin", func(viewport) (string, string) { return "", "/campaigns/summer-launch/wait" }, false, "Sign in"},
		{"unknown", func(viewport) (string, string) { return "ann", "/campaigns/no-such-drop/wait" }, false, "no campaign"},
		{"join", func(vp viewport) (string, string) { return "joiner-" + vp.name, "/campaigns/drop-" + vp.name + "/wait" }, false, "Join the line"},
		{"upcoming", func(vp viewport) (string, string) { return "early-" + vp.name, "/campaigns/summer-launch/wait" }, false, "opens in 2 h 1"},
		{"prequeue", func(vp viewport) (string, string) {
			r.admit(t, "midnight-drop", "pre-"+vp.name)
			return "pre-" + vp.name, "/campaigns/midnight-drop/wait"
		}, false, "random draw"},
		{"waiting", func(vp viewport) (string, string) {
			d := "drop-" + vp.name
			r.admit(t, d, "a-"+vp.name, "b-"+vp.name, "c-"+vp.name, "d-"+vp.name, "mina-"+vp.name)
			return "mina-" + vp.name, "/campaigns/" + d + "/wait"
		}, false, "Your place: 5"},
		{"beyond", func(vp viewport) (string, string) {
			l := "last-" + vp.name
			r.admit(t, l, "a", "b", "c", "d", "e", "late-"+vp.name)
			return "late-" + vp.name, "/campaigns/" + l + "/wait"
		}, false, "beyond the stock"},
		{"paused", func(vp viewport) (string, string) {
			r.admit(t, "vip-preview", "x-"+vp.name, "held-"+vp.name)
			return "held-" + vp.name, "/campaigns/vip-preview/wait"
		}, false, "paused"},
		{"in_flight", decided("flight", "turn", "lease only"), false, "being issued"},
		{"issued", decided("won", "lucky", ""), false, "Issuance ID: CPN-LUCKY-"},
		{"sold_out", decided("gone", "late", couponq.CodeSoldOut), false, "Sold out"},
		{"duplicate", decided("again", "twice", couponq.CodeDuplicate), false, "already"},
		{"failed", decided("broke", "unlucky", couponq.CodeFailed), false, "contact support"},
		{"closed", func(vp viewport) (string, string) { return "after-" + vp.name, "/campaigns/spring-sale/wait" }, false, "closed"},
		{"line_full", func(vp viewport) (string, string) {
			r.admit(t, "full-"+vp.name, "first-"+vp.name)
			return "second-" + vp.name, "/campaigns/full-" + vp.name + "/wait"
		}, true, "full"},
		{"error", func(viewport) (string, string) {
			r.svc.down.Store(true)
			return "ann", "/campaigns/vip-preview/wait"
		}, false, "cannot reach"},
	}
	covered, serious, minor := 0, 0, 0
	for _, vp := range viewports {
		for _, st := range states {
			user, path := st.setup(vp)
			r.visit(t, ctx, vp, user, path)
			if st.click {
				_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](pageState+` === "join"`,
					chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
				require.NoError(t, err, "%s/%s: the join page", vp.name, st.name)
				require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`section:not([hidden]) button`))))
			}
			_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`%s === %q`, pageState, st.name),
				chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageState))
			require.NoError(t, err, "%s: the page reaches %s (it shows %q)", vp.name, st.name, got)
			text, err := chromedp.Run(ctx, chromedp.Evaluate[string](shown))
			require.NoError(t, err)
			require.Contains(t, text, st.shows, "%s/%s", vp.name, st.name)
			// Checked settled, as a user sees it: the section's fade-in
			// done, no request of the page's in progress.
			_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getAnimations().length === 0 && !document.querySelector("button:disabled")`,
				chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
			require.NoError(t, err)
			a := axe(t, ctx, axeJS)
			if a.Serious > 0 {
				t.Errorf("%s/%s: axe-core: %d serious or critical: %v", vp.name, st.name, a.Serious, a.Rules)
			} else if len(a.Rules) > 0 {
				t.Logf("%s/%s: axe-core, minor: %v", vp.name, st.name, a.Rules)
			}
			serious += a.Serious
			minor += a.Minor
			shoot(t, ctx, st.name+"-"+vp.name)
			r.svc.down.Store(false)
			covered++
		}
	}
	// In Korean, as the switch links it.
	for _, vp := range viewports {
		r.visit(t, ctx, vp, "mina-"+vp.name, "/campaigns/drop-"+vp.name+"/wait?lang=ko")
		waitFor(t, ctx, "the waiting page in Korean", pageState+` === "waiting" && `+shown+`.includes("내 순서: 5번") && document.documentElement.lang === "ko"`)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getAnimations().length === 0`,
			chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
		require.NoError(t, err)
		a := axe(t, ctx, axeJS)
		if a.Serious > 0 {
			t.Errorf("%s/waiting, Korean: axe-core: %d serious or critical: %v", vp.name, a.Serious, a.Rules)
		}
		serious += a.Serious
		minor += a.Minor
		shoot(t, ctx, "waiting-"+vp.name+"-ko")
		covered++
	}
	t.Logf("browser: waiting room: %d states × %d viewports + %d in Korean = %d pages checked; axe-core %s: %d serious or critical violations, %d minor or moderate",
		len(states), len(viewports), len(viewports), covered, axeVersion(axeJS), serious, minor)

	// The check bites: text too faint for its background is found.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const p = document.createElement("p"); p.textContent = "a faint line";
		p.style.color = "#bbbbbb"; p.style.background = "#ffffff"; document.querySelector(".card").append(p); return true; })()`))
	require.NoError(t, err)
	require.Positive(t, axe(t, ctx, axeJS).Serious, "axe-core finds faint text")
}

// axeVersion is axe-core's version, from its banner.
func axeVersion(src string) string {
	if i := strings.Index(src, "axe v"); i >= 0 {
		if f := strings.Fields(src[i+4:]); len(f) > 0 {
			return f[0]
		}
	}
	return "?"
}

// From the join button to the outcome, live: the place counts down as the
// line moves; when the server drops every connection (a restart) the page
// reconnects; when a proxy then refuses the stream, the page falls back to
// polling and still reaches the outcome.
func TestWaitingRoomLive(t *testing.T) {
	browser := chromium(t)
	r := startRoom(t, couponq.Campaign{ID: "flash", Stock: 50, BatchSize: 1, Interval: 500 * time.Millisecond})
	ctx := startBrowser(t, browser, 2*time.Minute)
	r.admit(t, "flash", "u1", "u2", "u3", "u4", "u5", "u6")
	r.visit(t, ctx, viewports[0], "mina", "/campaigns/flash/wait")
	waitFor(t, ctx, "the join page", pageState+` === "join"`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`section:not([hidden]) button`))))
	waitFor(t, ctx, "place 7 after pressing join", pageState+` === "waiting" && `+shown+`.includes("Your place: 7")`)
	waitFor(t, ctx, "the stream is live", `document.getElementById("couponq-conn").dataset.mode === "live"`)

	r.decide(t, "flash", 2, "")
	waitFor(t, ctx, "place 5 as the line moves", shown+`.includes("Your place: 5")`)

	// A restart: every connection drops; the stream comes back.
	r.srv.CloseClientConnections()
	r.decide(t, "flash", 1, "")
	waitFor(t, ctx, "place 4 after the drop", shown+`.includes("Your place: 4")`)
	waitFor(t, ctx, "live again", `document.getElementById("couponq-conn").dataset.mode === "live"`)

	// A proxy that refuses streams: the page polls.
	r.cut.Store(true)
	r.srv.CloseClientConnections()
	waitFor(t, ctx, "polling", `document.getElementById("couponq-conn").dataset.mode === "polling"`)
	r.decide(t, "flash", 3, "")
	waitFor(t, ctx, "first in line, by polling", shown+`.includes("Your place: 1")`)
	r.decide(t, "flash", 1, "")
	waitFor(t, ctx, "issued, by polling", pageState+` === "issued" && `+shown+`.includes("CPN-MINA-7F3A")`)

	// Leaving and coming back shows the same outcome.
	r.visit(t, ctx, viewports[0], "mina", "/campaigns/flash/wait")
	waitFor(t, ctx, "the same outcome after a reload", pageState+` === "issued"`)
	t.Logf("browser: waiting room live: joined at place 7, followed to issued through a dropped connection (reconnected) and a refused stream (polled)")
}

// waitAcrossLoads evaluates a predicate in the page until it holds, through
// the page's own reloads (which cut a poll short).
func waitAcrossLoads(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](predicate))
		if err == nil && ok {
			t.Logf("%-58s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		require.Less(t, time.Since(start), 20*time.Second, "waiting for %s (last error: %v)", what, err)
		time.Sleep(50 * time.Millisecond)
	}
}

// Without script, the page still works: the form joins (303 back to the
// page), the page shows the place and refreshes itself, and reaches the
// outcome.
func TestWaitingRoomWithoutScript(t *testing.T) {
	browser := chromium(t)
	r := startRoom(t, couponq.Campaign{ID: "plain", Stock: 5})
	ctx := startBrowser(t, browser, time.Minute)
	_, err := chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	require.NoError(t, err)
	r.admit(t, "plain", "u1", "u2")
	r.visit(t, ctx, viewports[1], "noscript", "/campaigns/plain/wait")
	staticState := `document.getElementById("couponq-wait").dataset.state`
	waitFor(t, ctx, "the join page, rendered by the server", staticState+` === "join" && document.getElementById("couponq-wait").dataset.js === undefined`)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`section:not([hidden]) button`)))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusOK), resp.Status, "the form's 303 lands on the page")
	waitAcrossLoads(t, ctx, "place 3 after the form posts", staticState+` === "waiting" && `+shown+`.includes("Your place: 3")`)
	r.decide(t, "plain", 3, "")
	waitAcrossLoads(t, ctx, "issued after the page refreshes itself", staticState+` === "issued"`)
	t.Logf("browser: waiting room without script: joined by the form at place 3, reached issued by the page's own refresh")
}
