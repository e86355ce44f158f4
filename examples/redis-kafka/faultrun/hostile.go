package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
	"github.com/couponq/couponq/examples/redis-kafka/internal/ops"
)

// The limits the hostile phase holds the api to: the servers' timeouts
// (ops.Server, read at run time) and the handlers' documented default caps
// (node.HandlerConfig's MaxStreamsPerUser and MaxStreamsPerAddr,
// node.AdminConfig's MaxStreamsPerOperator), which the api leaves at their
// defaults.
const (
	streamsPerUser     = 8
	streamsPerAddr     = 256
	streamsPerOperator = 4
	// maxHeapGrowth is the most the api's live heap may grow over the
	// flood of unknown campaign IDs.
	maxHeapGrowth = 10 << 20
	// hostileSessionTTL is the admin session lifetime the hostile api is
	// started with, short so that expiry is seen.
	hostileSessionTTL = 3 * time.Second
	// slack is how much later than its limit a connection may be closed and
	// still count as closed by it (scheduling on a loaded 2-core machine).
	slack = 3 * time.Second
)

// hostileResult is what the hostile phase measured against one api process.
type hostileResult struct {
	// The flood of status requests for made-up campaign IDs.
	Flood          int           // requests sent
	FloodStatuses  map[int]int   // their answers by HTTP status
	FloodTook      time.Duration // how long the flood took
	HeapBefore     uint64        // the api's live heap at the last collection before the flood
	HeapAfter      uint64        // and at the last collection after it
	GCs            uint64        // collections the api ran during the flood
	RSSBefore      uint64        // the api's resident set before the flood
	RSSAfter       uint64        // and after it
	KeysBefore     int64         // Redis keys before the flood
	KeysAfter      int64         // and after it
	UnknownStreams int           // status streams asked for made-up campaigns
	StreamsOpened  int           // of those, how many opened a stream (none should)

	Probes []hostileProbe // everything else, one row each
}

// hostileProbe is one thing a hostile client tried and what came of it.
type hostileProbe struct {
	Area, Tried, Bound, Measured string
	OK                           bool
}

func (r *hostileResult) ok() bool {
	if r.HeapAfter > r.HeapBefore+maxHeapGrowth || r.KeysAfter != r.KeysBefore || r.StreamsOpened > 0 || r.GCs == 0 {
		return false
	}
	for _, p := range r.Probes {
		if !p.OK {
			return false
		}
	}
	return true
}

// hostileAPI is the api process under attack and how to reach it.
type hostileAPI struct {
	url, ops, addr, token string
	proc                  *proc
	rdb                   *redis.Client
	client                *http.Client // keeps connections alive, many to the host
}

// measureHostile starts one api process (a Redis of its own, the Kafka of
// scripts/kafka.sh, no worker: every admitted user stays waiting) with the
// admin token given by the deprecated -admin-token flag, and attacks it as
// a hostile client would: a flood of status requests for made-up campaign
// IDs, half-sent requests and trickled bodies, more streams than one user,
// one address or one operator may hold, the admin credentials, and
// campaign values meant to overflow. Each row of the result says what was
// tried, the bound, and what was measured.
func measureHostile(ctx context.Context, log *slog.Logger, o options, token string) (*hostileResult, error) {
	dir := filepath.Join(o.dir, "hostile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rp, raddr, err := redisServer(dir, fsyncEverysec)
	if err != nil {
		return nil, err
	}
	f := &fleet{root: o.root, dir: dir, log: log, redis: rp, rdbAddr: raddr}
	if err := rp.start(); err != nil {
		return nil, err
	}
	defer rp.stop(10 * time.Second)
	if err := f.redisReady(ctx); err != nil {
		return nil, err
	}
	brokers, err := env("COUPONQ_KAFKA_CLUSTER")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
	opsAddr := fmt.Sprintf("127.0.0.1:%d", must(freePort()))
	p := &proc{name: "api", bin: filepath.Join(o.bin, "api"), dir: dir,
		args: []string{"-addr", addr, "-ops-addr", opsAddr, "-redis", raddr, "-prefix", "hostile", "-kafka", brokers,
			"-topic", "faultrun-hostile", "-admin-token", token, "-admin-session-ttl", hostileSessionTTL.String(),
			"-trusted-proxies", "127.0.0.2"}}
	if err := p.start(); err != nil {
		return nil, err
	}
	defer p.stop(10 * time.Second)
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.awaitLog(wait, "api serving"); err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: raddr})
	defer rdb.Close()
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	a := &hostileAPI{url: "http://" + addr, ops: "http://" + opsAddr, addr: addr, token: token, proc: p, rdb: rdb,
		client: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
	if err := createCampaign(ctx, a.url, token, check.Campaign{ID: "real", Stock: 1000, BatchSize: 10, Interval: time.Second}); err != nil {
		return nil, err
	}
	sleep(ctx, 1100*time.Millisecond) // the catalog cache forgets "real" was unknown

	res := &hostileResult{FloodStatuses: map[int]int{}}
	// The connection probes take a minute (the idle one waits out
	// IdleTimeout); they run beside the flood.
	var conns []hostileProbe
	var wg sync.WaitGroup
	wg.Go(func() { conns = a.connectionProbes(ctx) })
	if err := a.flood(ctx, res); err != nil {
		wg.Wait()
		return nil, err
	}
	wg.Wait()
	res.Probes = append(res.Probes, conns...)
	log.Info("hostile: flood", "requests", res.Flood, "heap_before_mb", mib(res.HeapBefore), "heap_after_mb", mib(res.HeapAfter),
		"gcs", res.GCs, "keys_before", res.KeysBefore, "keys_after", res.KeysAfter)
	for _, step := range []func(context.Context) ([]hostileProbe, error){a.streamProbes, a.credentialProbes, a.valueProbes} {
		ps, err := step(ctx)
		if err != nil {
			return nil, err
		}
		res.Probes = append(res.Probes, ps...)
	}
	for _, pr := range res.Probes {
		log.Info("hostile: probe", "area", pr.Area, "tried", pr.Tried, "measured", pr.Measured, "ok", pr.OK)
	}
	return res, nil
}

// ghostID is the i-th made-up campaign ID: valid, about 40 bytes.
func ghostID(i int) string { return fmt.Sprintf("ghost-%08d-8c1f2a6e-4b7d-9a3f-77e2", i) }

// flood sends 200,000 status requests for distinct made-up campaign IDs, 16
// at once on kept-alive connections, after 5,000 of the same to warm up,
// and asks for a few status streams for made-up campaigns; it reads the
// api's live heap (ops' "heap" var) and resident set around it, and counts
// Redis's keys.
func (a *hostileAPI) flood(ctx context.Context, res *hostileResult) error {
	const n, senders, warm = 200_000, 16, 5_000
	send := func(from, to int, statuses map[int]int) error {
		var next atomic.Int64
		next.Store(int64(from))
		var mu sync.Mutex
		var first error
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1))
					if i > to {
						return
					}
					code, _, err := a.do(ctx, "GET", "/campaigns/"+ghostID(i)+"/entries/me", nil, "X-User", "mallory")
					mu.Lock()
					if err != nil && first == nil {
						first = err
					}
					statuses[code]++
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(first, ctx.Err())
	}
	if err := send(-warm, 0, map[int]int{}); err != nil {
		return err
	}
	before, err := a.heap(ctx)
	if err != nil {
		return err
	}
	res.HeapBefore = before.LiveBytes
	res.RSSBefore = rss(a.proc)
	if res.KeysBefore, err = a.rdb.DBSize(ctx).Result(); err != nil {
		return err
	}
	start := time.Now()
	for i := range 20 {
		res.UnknownStreams++
		code, _, err := a.do(ctx, "GET", "/campaigns/"+ghostID(n+1+i)+"/entries/me/events", nil, "X-User", "mallory", "Accept", "text/event-stream")
		if err != nil {
			return err
		}
		if code == http.StatusOK {
			res.StreamsOpened++
		}
	}
	if err := send(0, n, res.FloodStatuses); err != nil {
		return err
	}
	res.Flood = n
	res.FloodTook = time.Since(start)
	after, err := a.heap(ctx)
	if err != nil {
		return err
	}
	res.HeapAfter, res.GCs = after.LiveBytes, after.GCs-before.GCs
	res.RSSAfter = rss(a.proc)
	res.KeysAfter, err = a.rdb.DBSize(ctx).Result()
	return err
}

// heap reads the api's "heap" var from its operations port.
func (a *hostileAPI) heap(ctx context.Context) (ops.HeapVar, error) {
	var vars struct {
		Heap ops.HeapVar `json:"heap"`
	}
	code, body, err := a.do(ctx, "GET", a.ops+"/debug/vars", nil)
	if err != nil {
		return vars.Heap, err
	}
	if code != http.StatusOK {
		return vars.Heap, fmt.Errorf("/debug/vars: %d", code)
	}
	return vars.Heap, json.Unmarshal(body, &vars)
}

// rss is a process's resident set in bytes (Linux), 0 if unknown.
func rss(p *proc) uint64 {
	p.mu.Lock()
	pid := 0
	if p.cmd != nil && p.cmd.Process != nil {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// do sends one request (path relative to the api unless a full URL) with
// header pairs, and returns the status and the body.
func (a *hostileAPI) do(ctx context.Context, method, path string, body []byte, header ...string) (int, []byte, error) {
	u := path
	if !strings.HasPrefix(u, "http") {
		u = a.url + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// connectionProbes hold connections open the ways a slow or hostile client
// does, concurrently, and time how long the api keeps each.
func (a *hostileAPI) connectionProbes(ctx context.Context) []hostileProbe {
	srv := ops.Server(nil)
	admitBody := "POST /campaigns/real/entries HTTP/1.1\r\nHost: x\r\nX-User: trickler\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
	adminBody := "POST /admin/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + a.token + "\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
	loginBody := "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n"
	probes := []struct {
		tried  string
		bound  time.Duration
		limit  string
		opener string // sent at once
		full   bool   // the opener is a whole request; its answer is read, then the connection idles
		drip   bool   // one byte every 4 s after the opener
	}{
		{"half-sent request: `GET /healthz HTTP/1.1` and one header, then nothing", srv.ReadHeaderTimeout, "ReadHeaderTimeout", "GET /healthz HTTP/1.1\r\nHost: x\r\n", false, false},
		{"one whole request, then the kept-alive connection idles", srv.IdleTimeout, "IdleTimeout", "GET /campaigns/real/entries/me HTTP/1.1\r\nHost: x\r\nX-User: idler\r\n\r\n", true, false},
		{"`POST /login`, Content-Length 4000, one space every 4 s, no credentials", srv.ReadTimeout, "ReadTimeout", loginBody, false, true},
		{"`POST .../entries`, Content-Length 4000, one space every 4 s", srv.ReadTimeout, "ReadTimeout / the handler's body deadline", admitBody, false, true},
		{"admin `POST /admin/campaigns` with the token, Content-Length 4000, one space every 4 s", srv.ReadTimeout, "ReadTimeout / AdminConfig.BodyReadTimeout", adminBody, false, true},
	}
	out := make([]hostileProbe, len(probes))
	var wg sync.WaitGroup
	for i, pr := range probes {
		wg.Go(func() {
			held, answer, err := a.hold(ctx, pr.opener, pr.full, pr.drip, pr.bound+time.Minute)
			row := hostileProbe{Area: "connections", Tried: pr.tried,
				Bound: fmt.Sprintf("closed by %s (%s)", pr.limit, pr.bound)}
			switch {
			case err != nil:
				row.Measured = "error: " + err.Error()
			default:
				row.Measured = fmt.Sprintf("closed after %.1f s; %s", held.Seconds(), answer)
				row.OK = held <= pr.bound+slack
			}
			out[i] = row
		})
	}
	wg.Wait()
	return out
}

// hold dials the api, sends opener, (if full) reads the answer to it,
// (if drip) sends a space every 4 s, and returns how long the api kept the
// connection from the opener's last byte (or from the answer, if full),
// and the status line it sent before closing, if any.
func (a *hostileAPI) hold(ctx context.Context, opener string, full, drip bool, limit time.Duration) (time.Duration, string, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := io.WriteString(c, opener); err != nil {
		return 0, "", err
	}
	since := time.Now()
	rd := bufio.NewReader(c)
	if full {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			return 0, "", fmt.Errorf("the whole request's answer: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		since = time.Now()
	}
	stop := make(chan struct{})
	defer close(stop)
	if drip {
		go func() {
			t := time.NewTicker(4 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if _, err := c.Write([]byte(" ")); err != nil { // JSON's whitespace: the body stays valid so far
						return
					}
				}
			}
		}()
	}
	// Read until the api closes: whatever it sends first is its answer.
	answer := "no answer"
	first, err := rd.ReadString('\n')
	if s := strings.TrimSpace(first); s != "" {
		answer = "answered `" + s + "`"
		_, err = io.Copy(io.Discard, rd)
	}
	held := time.Since(since)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return held, answer, fmt.Errorf("still open after %s", limit)
	}
	return held, answer, nil
}

// streamProbes open more status streams than one user, one address, and
// admin live streams than one operator may hold, all at once, and count
// how many the api accepted.
func (a *hostileAPI) streamProbes(ctx context.Context) ([]hostileProbe, error) {
	// Users in line, so that their status streams stay open (no worker
	// runs: they wait).
	const distinct = 1000
	for i := range distinct {
		if code, body, err := a.do(ctx, "POST", "/campaigns/real/entries", nil, "X-User", fmt.Sprintf("s%04d", i)); err != nil || code != http.StatusAccepted {
			return nil, fmt.Errorf("admit s%04d: %d %s %v", i, code, body, err)
		}
	}
	var out []hostileProbe
	row := func(tried string, cap int, capName string, attempts int, path func(i int) string, header func(i int) []string) error {
		accepted, refused, retry, other, err := a.streams(ctx, attempts, path, header)
		if err != nil {
			return err
		}
		out = append(out, hostileProbe{Area: "streams", Tried: tried,
			Bound:    fmt.Sprintf("at most %d (%s), the rest 429 with Retry-After", cap, capName),
			Measured: fmt.Sprintf("%d accepted, %d answered 429 (%d with Retry-After), %d other", accepted, refused, retry, other),
			OK:       accepted <= cap && accepted > 0 && refused == attempts-accepted && retry == refused})
		return nil
	}
	// One address's streams first: those of one user come next, and
	// whatever the api has not yet counted out of the first probe when
	// they start still leaves a user's cap within the address's.
	if err := row("1,000 status streams at once from one address, 1,000 users", streamsPerAddr, "MaxStreamsPerAddr", distinct,
		func(int) string { return "/campaigns/real/entries/me/events" },
		func(i int) []string { return []string{"X-User", fmt.Sprintf("s%04d", i)} }); err != nil {
		return nil, err
	}
	if err := row("1,000 status streams at once as one user (`X-User: s0000`)", streamsPerUser, "MaxStreamsPerUser", distinct,
		func(int) string { return "/campaigns/real/entries/me/events" },
		func(int) []string { return []string{"X-User", "s0000"} }); err != nil {
		return nil, err
	}
	if err := row("64 admin live streams at once as one operator (the token)", streamsPerOperator, "MaxStreamsPerOperator", 64,
		func(int) string { return "/admin/live/stream" },
		func(int) []string { return []string{"Authorization", "Bearer " + a.token} }); err != nil {
		return nil, err
	}
	return out, nil
}

// streams opens attempts event streams at once, holds the accepted ones
// until every attempt has its answer, then closes them all.
func (a *hostileAPI) streams(ctx context.Context, attempts int, path func(int) string, header func(int) []string) (accepted, refused, retry, other int, err error) {
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: -1, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the accepted streams
	var mu sync.Mutex
	var open []io.Closer
	var wg sync.WaitGroup
	var first error
	for i := range attempts {
		wg.Go(func() {
			req, e := http.NewRequestWithContext(sctx, "GET", a.url+path(i), nil)
			if e != nil {
				mu.Lock()
				first = cmp(first, e)
				mu.Unlock()
				return
			}
			req.Header.Set("Accept", "text/event-stream")
			h := header(i)
			for j := 0; j+1 < len(h); j += 2 {
				req.Header.Set(h[j], h[j+1])
			}
			resp, e := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				first = cmp(first, e)
				return
			}
			switch resp.StatusCode {
			case http.StatusOK:
				accepted++
				open = append(open, resp.Body)
			case http.StatusTooManyRequests:
				refused++
				if resp.Header.Get("Retry-After") != "" {
					retry++
				}
				resp.Body.Close()
			default:
				other++
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	cancel()
	for _, b := range open {
		b.Close()
	}
	return accepted, refused, retry, other, first
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// credentialProbes try the admin credentials as someone who reads the
// operations port, steals a cookie, or forges a write would.
func (a *hostileAPI) credentialProbes(ctx context.Context) ([]hostileProbe, error) {
	var out []hostileProbe
	add := func(tried, bound, measured string, ok bool) {
		out = append(out, hostileProbe{Area: "admin credentials", Tried: tried, Bound: bound, Measured: measured, OK: ok})
	}
	// The token came by flag: the ops port's readers must not see it.
	code, vars, err := a.do(ctx, "GET", a.ops+"/debug/vars", nil)
	if err != nil {
		return nil, err
	}
	leaked := bytes.Contains(vars, []byte(a.token))
	add("read `/debug/vars` on the operations port of an api started with `-admin-token TOKEN`",
		"the token nowhere in it", fmt.Sprintf("%d, %d bytes, token present: %s, `cmdline` redacted: %s", code, len(vars),
			yesNo(leaked), yesNo(bytes.Contains(vars, []byte(ops.Redacted)))), !leaked && code == http.StatusOK)

	withCookie := func(method, path string, c *http.Cookie, body []byte, header ...string) (int, error) {
		code, _, err := a.do(ctx, method, path, body, append([]string{"Cookie", c.Name + "=" + c.Value}, header...)...)
		return code, err
	}

	c, err := a.login(ctx, "")
	if err != nil {
		return nil, err
	}
	issued := time.Now()
	add("log in at `/login` with the token; look at the cookie",
		"a signed session, not the token; HttpOnly, SameSite=Strict, expiring",
		fmt.Sprintf("contains the token: %s; HttpOnly %s; SameSite=Strict %s; Max-Age %d s; Secure %s (plain HTTP)",
			yesNo(strings.Contains(c.Value, a.token)), yesNo(c.HttpOnly), yesNo(c.SameSite == http.SameSiteStrictMode), c.MaxAge, yesNo(c.Secure)),
		!strings.Contains(c.Value, a.token) && c.HttpOnly && c.SameSite == http.SameSiteStrictMode && c.MaxAge > 0 && c.MaxAge <= int(hostileSessionTTL.Seconds()) && !c.Secure)
	read, err := withCookie("GET", "/admin/campaigns", c, nil)
	if err != nil {
		return nil, err
	}
	write, err := withCookie("POST", "/admin/campaigns/real/pause", c, []byte(`{}`), "Content-Type", "application/json")
	if err != nil {
		return nil, err
	}
	add("use the session cookie to read the list, then to pause a campaign",
		"reads 200; writes refused (cookies are for reads)", fmt.Sprintf("read %d, write %d", read, write),
		read == http.StatusOK && write == http.StatusUnauthorized || read == http.StatusOK && write == http.StatusForbidden)

	sleep(ctx, time.Until(issued.Add(hostileSessionTTL+500*time.Millisecond)))
	expired, err := withCookie("GET", "/admin/campaigns", c, nil)
	if err != nil {
		return nil, err
	}
	add(fmt.Sprintf("use the cookie again %.1f s after login (the api runs with `-admin-session-ttl %s`)", time.Since(issued).Seconds(), hostileSessionTTL),
		"refused: the session expired", fmt.Sprintf("%d", expired), expired == http.StatusUnauthorized)

	c2, err := a.login(ctx, "")
	if err != nil {
		return nil, err
	}
	before, err := withCookie("GET", "/admin/campaigns", c2, nil)
	if err != nil {
		return nil, err
	}
	out1, err := withCookie("POST", "/admin/logout", c2, nil)
	if err != nil {
		return nil, err
	}
	after, err := withCookie("GET", "/admin/campaigns", c2, nil)
	if err != nil {
		return nil, err
	}
	add("log in, log out (`POST /admin/logout`), replay the old cookie", "refused: logout revokes the session",
		fmt.Sprintf("before logout %d, logout %d, replayed after %d", before, out1, after),
		before == http.StatusOK && after == http.StatusUnauthorized)

	viaProxy, err := a.login(ctx, "127.0.0.2")
	if err != nil {
		return nil, err
	}
	add("log in through a trusted TLS-terminating proxy (`X-Forwarded-Proto: https` from `-trusted-proxies`)", "the cookie is Secure",
		fmt.Sprintf("Secure %s", yesNo(viaProxy.Secure)), viaProxy.Secure)

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		code, _, err := a.do(ctx, "POST", "/admin/campaigns", []byte(`{"id":"forged","stock":1}`), "Authorization", "Bearer "+a.token, "Content-Type", ct)
		if err != nil {
			return nil, err
		}
		add(fmt.Sprintf("admin write with the token, body sent as `%s` (the shape of a cross-site form)", ct),
			"415: admin writes take application/json only", fmt.Sprintf("%d", code), code == http.StatusUnsupportedMediaType)
	}

	// Guessing the token: the login's rate limit.
	tries, limited := 0, 0
	for range 30 {
		code, _, err := a.do(ctx, "POST", "/login", []byte("token=guess"), "Content-Type", "application/x-www-form-urlencoded")
		if err != nil {
			return nil, err
		}
		tries++
		if code == http.StatusTooManyRequests {
			limited++
		}
	}
	add("30 logins with a wrong token from one address, back to back", "rate-limited (429) before 30",
		fmt.Sprintf("%d answered 401, %d answered 429", tries-limited, limited), limited > 0)
	return out, nil
}

// login posts the token to /login and returns the session cookie. With
// from (a loopback address other than 127.0.0.1, standing for a
// TLS-terminating proxy of -trusted-proxies), the connection comes from
// there and says the client came over TLS.
func (a *hostileAPI) login(ctx context.Context, from string) (*http.Cookie, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if from != "" {
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, "POST", a.url+"/login", strings.NewReader(url.Values{"token": {a.token}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if from != "" {
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("login (from %q): %s, no session cookie", from, resp.Status)
}

// valueProbes create campaigns whose values would overflow the pipeline's
// arithmetic, and pause a campaign to see what a waiting user is told.
func (a *hostileAPI) valueProbes(ctx context.Context) ([]hostileProbe, error) {
	var out []hostileProbe
	for _, v := range []struct{ field, value string }{
		{"batch_size", "2305843009213693952"}, // 2^61
		{"batch_size", "9223372036854775807"}, // 2^63-1
		{"interval_ms", "9223372036854"},      // about 292 years
		{"stock", "9223372036854775807"},      // 2^63-1
		{"per_user_limit", "9223372036854775807"},
		{"max_waiting", "9223372036854775807"},
		{"shards", "1000000"},
		{"pre_queue_ms", "9223372036854"},
	} {
		body := fmt.Sprintf(`{"id":"huge","stock":10,%q:%s}`, v.field, v.value)
		if v.field == "stock" {
			body = fmt.Sprintf(`{"id":"huge","stock":%s}`, v.value)
		}
		code, resp, err := a.do(ctx, "POST", "/admin/campaigns", []byte(body), "Authorization", "Bearer "+a.token, "Content-Type", "application/json")
		if err != nil {
			return nil, err
		}
		var e struct {
			Error struct{ Code, Field string }
		}
		_ = json.Unmarshal(resp, &e)
		out = append(out, hostileProbe{Area: "campaign values", Tried: fmt.Sprintf("create a campaign with `%s: %s`", v.field, v.value),
			Bound:    "400 invalid_campaign naming the field",
			Measured: fmt.Sprintf("%d %s, field `%s`", code, e.Error.Code, e.Error.Field),
			OK:       code == http.StatusBadRequest && e.Error.Code == "invalid_campaign" && e.Error.Field == v.field})
	}
	// Paused: no estimate.
	if code, body, err := a.do(ctx, "POST", "/admin/campaigns/real/pause", []byte(`{}`), "Authorization", "Bearer "+a.token, "Content-Type", "application/json"); err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("pause: %d %s %v", code, body, err)
	}
	sleep(ctx, 1100*time.Millisecond) // the catalog cache
	code, body, err := a.do(ctx, "GET", "/campaigns/real/entries/me", nil, "X-User", "s0500")
	if err != nil {
		return nil, err
	}
	out = append(out, hostileProbe{Area: "campaign values", Tried: "a waiting user asks for their status while the campaign is paused",
		Bound: "no estimated wait (unknown while paused)", Measured: fmt.Sprintf("%d, estimated_wait_ms present: %s", code, yesNo(bytes.Contains(body, []byte("estimated_wait_ms")))),
		OK: code == http.StatusOK && !bytes.Contains(body, []byte("estimated_wait_ms"))})
	return out, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
