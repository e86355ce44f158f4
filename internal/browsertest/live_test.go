package browsertest_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/node"
)

var screenshot = flag.String("screenshot", "",
	"write the live page's screenshot (PNG, 1280×700) to this path; empty means a file in the test's temporary directory")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The operator's credentials travel in a cookie: a browser's EventSource
// sends cookies, not an Authorization header.
const (
	adminCookie = "couponq_admin"
	adminSecret = "browser-test-admin-secret"
)

func cookieAuthorize(r *http.Request) error {
	c, err := r.Cookie(adminCookie)
	if err != nil {
		return fmt.Errorf("%w: no %s cookie", node.ErrUnauthenticated, adminCookie)
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(adminSecret)) != 1 {
		return fmt.Errorf("%w: wrong admin cookie", node.ErrUnauthenticated)
	}
	return nil
}

// chromium finds Debian's chromium; without it the test skips, or fails
// when CI is set.
func chromium(t *testing.T) string {
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed, and CI is set: run scripts/chromium.sh (%v)", err)
		}
		t.Skipf("chromium is not installed (scripts/chromium.sh installs it): %v", err)
	}
	return path
}

// pipeline is a running in-memory node (admission, scheduler, issuer) and
// its admin handler, served over HTTP on 127.0.0.1.
type pipeline struct {
	node *node.Node
	srv  *httptest.Server
	down atomic.Bool // while set, every request is refused: the page must say so and recover
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := context.Background()
	n, err := node.New(node.Config{CacheTTL: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, n.Stop(ctx))
	})
	for _, c := range []couponq.Campaign{
		{ID: "flash-300", Stock: 300, BatchSize: 50, Interval: 200 * time.Millisecond},
		{ID: "weekend-drop", Stock: 5000, BatchSize: 40, Interval: 500 * time.Millisecond},
		{ID: "vip-preview", Stock: 200, Paused: true},
		{ID: "summer-launch", Stock: 10000, OpensAt: time.Now().Add(3 * time.Hour)},
		{ID: "winter-clearance", Stock: 1000, BatchSize: 100, Interval: 100 * time.Millisecond},
	} {
		_, err := n.CreateCampaign(ctx, c)
		require.NoError(t, err)
	}
	admin, err := n.AdminHandler(node.AdminConfig{Authorize: cookieAuthorize, BasePath: "/admin"})
	require.NoError(t, err)
	p := &pipeline{node: n}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// admit puts n users in campaign's line, and returns how many got in.
func (p *pipeline) admit(t *testing.T, campaign string, n int) int {
	t.Helper()
	in := 0
	for i := range n {
		_, err := p.node.Admit(context.Background(), couponq.Request{Campaign: campaign, User: fmt.Sprintf("%s-user-%d", campaign, i)})
		if errors.Is(err, couponq.ErrSoldOut) {
			continue
		}
		require.NoError(t, err)
		in++
	}
	return in
}

// waitIssued waits until campaign has issued n units.
func (p *pipeline) waitIssued(t *testing.T, campaign string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := p.node.LineStats(context.Background(), campaign)
		require.NoError(t, err)
		return s.Issued == n && s.Waiting == 0 && s.InFlight == 0
	}, 15*time.Second, 20*time.Millisecond, "%s issues %d", campaign, n)
}

// startBrowser starts headless Chromium; it stops at the end of the test,
// before the server closes.
func startBrowser(t *testing.T, execPath string, deadline time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox, // we run as root
		chromedp.Headless,
		chromedp.WindowSize(1280, 700),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), deadline)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	return ctx
}

// field is a JavaScript expression reading a campaign's field from the
// page: its raw data-value, as the page keeps it beside the formatted text.
func field(campaign, name string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-campaign=%q] [data-field=%q]')?.dataset.value ?? "")`, campaign, name)
}

// waitFor polls a JavaScript predicate in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	start := time.Now()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "waiting for %s", what)
	t.Logf("%-58s after %v", what, time.Since(start).Round(time.Millisecond))
}

// read evaluates a JavaScript expression in the page.
func read(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	require.NoError(t, err, expr)
	return v
}

func TestLivePage(t *testing.T) {
	start := time.Now()
	browser := chromium(t)
	p := startPipeline(t)
	ctx := startBrowser(t, browser, 50*time.Second) // stops before the server closes (cleanups run last first)

	// A sale in progress elsewhere: a long line draining, a paused
	// campaign with people waiting, one closed after selling part of its
	// stock, one scheduled.
	p.admit(t, "weekend-drop", 2400)
	p.admit(t, "vip-preview", 150)
	p.admit(t, "winter-clearance", 640)
	p.waitIssued(t, "winter-clearance", 640)
	_, err := p.node.CloseCampaign(context.Background(), "winter-clearance", time.Now())
	require.NoError(t, err)

	// Without the cookie, the page and its stream are refused.
	resp, err := http.Get(p.srv.URL + "/admin/live")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 700),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
				Name: adminCookie, Value: adminSecret, URL: p.srv.URL, HTTPOnly: new(true)})
			return err
		}),
		chromedp.Navigate(p.srv.URL+"/admin/live"),
	))
	flash := func(name string) string { return field("flash-300", name) }
	waitFor(t, ctx, "the page shows flash-300, open, nobody waiting",
		flash("state")+` === "open" && `+flash("waiting")+` === "0" && `+flash("issued")+` === "0"`)
	require.Equal(t, "live", read(t, ctx, `document.getElementById("conn").dataset.conn`))
	require.Equal(t, "5", read(t, ctx, `String(document.querySelectorAll("tr[data-campaign]").length)`))

	admitted := p.admit(t, "flash-300", 500)
	t.Logf("admitted %d users to flash-300", admitted)
	waitFor(t, ctx, "waiting rises", `Number(`+flash("waiting")+`) > 0`)
	waitFor(t, ctx, "issued rises", `Number(`+flash("issued")+`) > 0`)
	waitFor(t, ctx, "flash-300 sells out: 300 issued, nobody waiting",
		flash("state")+` === "sold_out" && `+flash("issued")+` === "300" && `+flash("waiting")+` === "0"`)
	require.Equal(t, "300 / 300", read(t, ctx,
		`document.querySelector('tr[data-campaign="flash-300"] .counts').textContent.replace(/\s+/g, " ").replace(/ \d+%$/, "").trim()`))
	require.Equal(t, "paused", read(t, ctx, field("vip-preview", "state")))
	require.Equal(t, "scheduled", read(t, ctx, field("summer-launch", "state")))
	require.Equal(t, "closed", read(t, ctx, field("winter-clearance", "state")))
	waitFor(t, ctx, "weekend-drop shows a measured drain rate", field("weekend-drop", "drained_per_sec")+` !== ""`)

	takeScreenshot(t, ctx)

	// The stream drops and the server refuses it for a while: the page
	// says so, then comes back by itself.
	p.down.Store(true)
	p.srv.CloseClientConnections()
	waitFor(t, ctx, "the page shows it is disconnected",
		`document.getElementById("conn").dataset.conn === "down" && !document.getElementById("notice").hidden`)
	require.Contains(t, read(t, ctx, `document.getElementById("notice").textContent`), "retrying")
	p.down.Store(false)
	waitFor(t, ctx, "the page reconnects", `document.getElementById("conn").dataset.conn === "live" && document.getElementById("notice").hidden`)

	require.Less(t, time.Since(start), 60*time.Second)
}

// takeScreenshot writes the page as a PNG to -screenshot, or to the test's
// temporary directory.
func takeScreenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "the bars' transitions end", `document.getAnimations().length === 0`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := *screenshot
	if path == "" {
		path = filepath.Join(t.TempDir(), "live-page.png")
	}
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
