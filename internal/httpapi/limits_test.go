package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/httpapi"
)

// trickle sends head (a request's line and headers, announcing a body)
// over a connection of its own, then the body one byte every gap, and
// returns the answer's status line and how long the server kept the
// connection open after the head.
func trickle(t *testing.T, addr, head string, gap time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	start := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	// A guard only, far past the limits under test: the server is to close
	// the connection first.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	answer, err := io.ReadAll(conn)
	open := time.Since(start)
	close(stop)
	<-stopped
	// Closed with the rest of the body unread, the server may reset the
	// connection rather than end it: closed either way.
	if !errors.Is(err, syscall.ECONNRESET) {
		require.NoError(t, err, "the server closes the connection, after %v: %q", open, answer)
	}
	status, _, _ := strings.Cut(string(answer), "\r\n")
	return status, open
}

func admitHead(path string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: test\r\nX-User: u1\r\nContent-Type: application/json\r\n" +
		"Content-Length: 4000\r\n\r\n{"
}

// A client that sends an admission's headers and then trickles its body
// (a byte every 20 ms of a declared 4,000) is answered 408 and its
// connection closed at BodyReadTimeout, though the server sets no time
// limit of its own; a server whose ReadTimeout is shorter keeps it.
func TestBodyReadTimeoutCutsATrickledBody(t *testing.T) {
	const limit = 200 * time.Millisecond
	svc, _ := memService(t, couponq.Campaign{ID: "drop", Stock: 5})
	h, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), BasePath: "/api",
		BodyReadTimeout: limit})
	require.NoError(t, err)
	srv := httptest.NewServer(h) // no ReadTimeout, no ReadHeaderTimeout
	defer srv.Close()

	status, open := trickle(t, srv.Listener.Addr().String(), admitHead("/api/campaigns/drop/entries"), 20*time.Millisecond)
	t.Logf("a trickled admission body: %q, connection closed %v after its headers (BodyReadTimeout %v)", status, open.Round(time.Millisecond), limit)
	assert.Equal(t, "HTTP/1.1 408 Request Timeout", status)
	assert.GreaterOrEqual(t, open, limit)
	assert.Less(t, open, limit+time.Second)

	// The server's shorter ReadTimeout stands: the handler does not extend it.
	long, err := httpapi.New(httpapi.Config{Service: svc, User: httpapi.HeaderUser("X-User"), BasePath: "/api",
		BodyReadTimeout: time.Hour})
	require.NoError(t, err)
	short := httptest.NewUnstartedServer(long)
	short.Config.ReadTimeout = limit
	short.Start()
	defer short.Close()
	status, open = trickle(t, short.Listener.Addr().String(), admitHead("/api/campaigns/drop/entries"), 20*time.Millisecond)
	assert.Equal(t, "HTTP/1.1 408 Request Timeout", status)
	assert.Less(t, open, limit+time.Second)

	// A whole body in time is served as ever.
	resp, body := do(t, srv, "POST", "/api/campaigns/drop/entries", "u2", `{"request_id":"r1"}`)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "%v", body)
}

// The admin handler cuts a trickled body too, an unauthorized one
// included: its 401 comes, and the connection closes, at BodyReadTimeout
// (the server would otherwise wait for the body to discard it).
func TestAdminBodyReadTimeout(t *testing.T) {
	const limit = 200 * time.Millisecond
	env := newAdmin(t, func(c *httpapi.AdminConfig) { c.BodyReadTimeout = limit })
	addr := env.srv.Listener.Addr().String()

	head := "POST /admin/campaigns HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"
	status, open := trickle(t, addr, head, 20*time.Millisecond)
	t.Logf("a trickled admin body without credentials: %q, connection closed %v after its headers", status, open.Round(time.Millisecond))
	assert.Equal(t, "HTTP/1.1 401 Unauthorized", status)
	assert.Less(t, open, limit+time.Second)

	head = strings.Replace(head, "Host: test\r\n", "Host: test\r\nAuthorization: "+adminToken+"\r\n", 1)
	status, open = trickle(t, addr, head, 20*time.Millisecond)
	assert.Equal(t, "HTTP/1.1 408 Request Timeout", status)
	assert.GreaterOrEqual(t, open, limit)
	assert.Less(t, open, limit+time.Second)
	assert.Empty(t, env.list(t), "nothing was created")
}

// answer is a stream request's answer: an open stream, or an error body.
type answer struct {
	resp *http.Response
	body map[string]any
}

// attempt asks for a status stream; an accepted one stays open until the
// test ends, a refused one is read and closed.
func (e *pushEnv) attempt(t *testing.T, campaign, user string, header ...string) answer {
	t.Helper()
	resp, cancel := e.request(t, campaign, user, header...)
	return settle(t, resp, cancel)
}

// settle keeps an accepted stream open until the test ends, and reads and
// closes a refusal.
func settle(t *testing.T, resp *http.Response, cancel context.CancelFunc) answer {
	t.Helper()
	if resp.StatusCode == http.StatusOK {
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return answer{resp: resp}
	}
	defer cancel()
	defer resp.Body.Close()
	a := answer{resp: resp}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a.body))
	return a
}

// count tallies stream attempts by answer.
type count struct{ ok, tooMany, other int }

func (c *count) add(t *testing.T, a answer) {
	t.Helper()
	resp, body := a.resp, a.body
	switch resp.StatusCode {
	case http.StatusOK:
		c.ok++
	case http.StatusTooManyRequests:
		c.tooMany++
		assert.Equal(t, "too_many_streams", code(body))
		assert.Equal(t, "3", resp.Header.Get("Retry-After"))
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	default:
		c.other++
		t.Errorf("answer %d %v", resp.StatusCode, body)
	}
}

// One user asking for 1,000 status streams gets the per-user cap's worth
// (8 by default) and 429 too_many_streams for the rest; other users are
// not held back, and a stream that ends frees its place.
func TestStatusStreamsPerUser(t *testing.T) {
	e := newPush(t, func(c *httpapi.Config) { c.RetryAfter = 3 * time.Second },
		couponq.Campaign{ID: "drop", Stock: 5}, couponq.Campaign{ID: "other", Stock: 5})
	e.admit(t, "drop", "u1", "u2")
	e.admit(t, "other", "u1")
	var c count
	var first *http.Response
	for i := range 1000 {
		a := e.attempt(t, "drop", "u1")
		c.add(t, a)
		if i == 0 {
			first = a.resp
		}
	}
	t.Logf("1,000 stream attempts as one user: %d accepted, %d answered 429", c.ok, c.tooMany)
	assert.Equal(t, count{ok: 8, tooMany: 992}, c)
	a := e.attempt(t, "other", "u1")
	assert.Equal(t, http.StatusTooManyRequests, a.resp.StatusCode, "the cap counts every campaign: %v", a.body)

	a = e.attempt(t, "drop", "u2")
	assert.Equal(t, http.StatusOK, a.resp.StatusCode, "another user is not held back")

	first.Body.Close() // the client leaves: its place frees
	require.Eventually(t, func() bool {
		return e.attempt(t, "other", "u1").resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond)
}

// Status streams from one client address are capped whatever their users;
// ClientAddr names the address (behind a proxy, the forwarded one), and ""
// exempts a request.
func TestStatusStreamsPerAddr(t *testing.T) {
	users := make([]string, 20)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	t.Run("remote address", func(t *testing.T) {
		e := newPush(t, func(c *httpapi.Config) { c.StreamMaxPerAddr = 5; c.RetryAfter = 3 * time.Second },
			couponq.Campaign{ID: "drop", Stock: 5})
		e.admit(t, "drop", users...)
		var c count
		for _, u := range users {
			c.add(t, e.attempt(t, "drop", u))
		}
		assert.Equal(t, count{ok: 5, tooMany: 15}, c)
	})
	t.Run("ClientAddr", func(t *testing.T) {
		e := newPush(t, func(c *httpapi.Config) {
			c.StreamMaxPerAddr = 5
			c.RetryAfter = 3 * time.Second
			c.ClientAddr = func(r *http.Request) string { return r.Header.Get("X-Client") }
		}, couponq.Campaign{ID: "drop", Stock: 5})
		e.admit(t, "drop", users...)
		var same, spread, exempt count
		for i, u := range users[:10] {
			same.add(t, e.attempt(t, "drop", u, "X-Client", "198.51.100.7"))
			spread.add(t, e.attempt(t, "drop", u, "X-Client", fmt.Sprintf("203.0.113.%d", i)))
		}
		for _, u := range users[10:] {
			for range 2 {
				exempt.add(t, e.attempt(t, "drop", u)) // no X-Client: ""
			}
		}
		assert.Equal(t, count{ok: 5, tooMany: 5}, same)
		assert.Equal(t, count{ok: 10}, spread)
		assert.Equal(t, count{ok: 20}, exempt)
	})
}

func TestStreamCapsDefaultsAndOff(t *testing.T) {
	users := make([]string, 300)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
	}
	e := newPush(t, func(c *httpapi.Config) { c.RetryAfter = 3 * time.Second }, couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", users...)
	var c count
	for _, u := range users {
		c.add(t, e.attempt(t, "drop", u))
	}
	assert.Equal(t, count{ok: 256, tooMany: 44}, c, "256 per address by default")

	e = newPush(t, func(c *httpapi.Config) { c.StreamMaxPerUser, c.StreamMaxPerAddr = -1, -1 },
		couponq.Campaign{ID: "drop", Stock: 5})
	e.admit(t, "drop", "u1")
	c = count{}
	for range 20 {
		c.add(t, e.attempt(t, "drop", "u1"))
	}
	assert.Equal(t, count{ok: 20}, c, "no cap when negative")
}

// liveAttempt asks for an admin live stream with the admin token and the
// given headers; an accepted one stays open until the test ends.
func (e *adminEnv) liveAttempt(t *testing.T, header ...string) answer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req := authed(t, "GET", e.srv.URL+"/admin/live/stream").WithContext(ctx)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	return settle(t, resp, cancel)
}

// One operator holds at most MaxStreamsPerOperator live streams (4 by
// default, by client address); the next is 429 too_many_streams, and other
// operators still get theirs.
func TestLiveStreamsPerOperator(t *testing.T) {
	t.Run("by address, default", func(t *testing.T) {
		env := newAdmin(t, func(c *httpapi.AdminConfig) { fastStreams(c); c.RetryAfter = 3 * time.Second },
			couponq.Campaign{ID: "spring", Stock: 5})
		var c count
		var first *http.Response
		for i := range 20 {
			a := env.liveAttempt(t)
			c.add(t, a)
			if i == 0 {
				first = a.resp
			}
		}
		assert.Equal(t, count{ok: 4, tooMany: 16}, c)
		first.Body.Close()
		require.Eventually(t, func() bool {
			return env.liveAttempt(t).resp.StatusCode == http.StatusOK
		}, 5*time.Second, 10*time.Millisecond, "a closed stream frees its operator's place")
	})
	t.Run("Operator", func(t *testing.T) {
		env := newAdmin(t, func(c *httpapi.AdminConfig) {
			fastStreams(c)
			c.RetryAfter = 3 * time.Second
			c.MaxStreamsPerOperator = 2
			c.Operator = func(r *http.Request) string { return r.Header.Get("X-Operator") }
		}, couponq.Campaign{ID: "spring", Stock: 5})
		var ann, bo count
		for range 5 {
			ann.add(t, env.liveAttempt(t, "X-Operator", "ann"))
			bo.add(t, env.liveAttempt(t, "X-Operator", "bo"))
		}
		assert.Equal(t, count{ok: 2, tooMany: 3}, ann)
		assert.Equal(t, count{ok: 2, tooMany: 3}, bo, "one operator's streams do not keep another out")
	})
}

// Admin writes take application/json only: a text/plain or form body, the
// shape of a request another site's page can send, is refused with 415
// before anything is read or written.
func TestAdminWritesTakeJSONOnly(t *testing.T) {
	env := newAdmin(t, nil, couponq.Campaign{ID: "drop", Stock: 5})
	send := func(method, path, contentType, body string) (*http.Response, map[string]any) {
		req, err := http.NewRequest(method, env.srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", adminToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := env.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp, out
	}
	create := `{"id":"new","stock":3}`
	for _, tc := range []struct{ method, path, contentType, body string }{
		{"POST", "/admin/campaigns", "text/plain", create},
		{"POST", "/admin/campaigns", "text/plain;charset=UTF-8", create},
		{"POST", "/admin/campaigns", "application/x-www-form-urlencoded", "id=new&stock=3"},
		{"POST", "/admin/campaigns", "multipart/form-data; boundary=b", "--b--"},
		{"POST", "/admin/campaigns", "", create}, // a body must say it is JSON
		{"PATCH", "/admin/campaigns/drop", "text/plain", `{"version":1,"stock":9}`},
		{"POST", "/admin/campaigns/drop/pause", "application/x-www-form-urlencoded", ""},
		{"POST", "/admin/campaigns/drop/close", "text/plain", ""},
		{"DELETE", "/admin/campaigns/drop?version=1&retention=0s", "text/plain", ""},
	} {
		resp, body := send(tc.method, tc.path, tc.contentType, tc.body)
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "%+v: %v", tc, body)
		assert.Equal(t, "unsupported_media_type", code(body), "%+v", tc)
	}
	list := env.list(t)
	require.Len(t, list, 1, "nothing was created")
	assert.EqualValues(t, 1, list[0].Version, "nothing was changed")
	assert.False(t, list[0].Paused)

	resp, body := send("POST", "/admin/campaigns", "application/json; charset=utf-8", create)
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "%v", body)
	resp, body = send("POST", "/admin/campaigns/drop/pause", "", "") // no body: no Content-Type needed
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	resp, body = send("POST", "/admin/campaigns/drop/resume", "application/json", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
}

// readBlock reads one Server-Sent Events block (up to a blank line).
func readBlock(r *bufio.Reader) (pushEvent, error) {
	var block strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return pushEvent{}, err
		}
		if line == "\n" {
			return parsePushBlock(strings.TrimSuffix(block.String(), "\n")), nil
		}
		block.WriteString(line)
	}
}

// A status stream outlives the http.Server's WriteTimeout, over HTTP/1.1
// and HTTP/2: the stream bounds its own writes, and leaves no deadline
// between them (on HTTP/2 a deadline that passes resets the stream, even a
// quiet one). Here the heartbeat comes every 3 StreamWriteTimeouts, and the
// stream is read for 10 times the server's WriteTimeout.
func TestStatusStreamOutlivesTheServersWriteTimeout(t *testing.T) {
	const writeTimeout = 60 * time.Millisecond
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/2 %v", h2), func(t *testing.T) {
			e := newPush(t, func(c *httpapi.Config) {
				c.StreamPoll = 10 * time.Millisecond
				c.HeartbeatInterval = 3 * writeTimeout / 2
				c.StreamWriteTimeout = writeTimeout / 2
			}, couponq.Campaign{ID: "drop", Stock: 5})
			e.admit(t, "drop", "u1")
			srv := httptest.NewUnstartedServer(e.h)
			srv.Config.WriteTimeout = writeTimeout
			srv.EnableHTTP2 = h2
			if h2 {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/campaigns/drop/entries/me/events", nil)
			require.NoError(t, err)
			req.Header.Set("X-User", "u1")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			if h2 {
				require.Equal(t, 2, resp.ProtoMajor)
			}
			r := bufio.NewReader(resp.Body)
			start := time.Now()
			ev, err := readBlock(r)
			require.NoError(t, err)
			assert.Equal(t, "waiting", ev.status(t).State)
			beats := 0
			for time.Since(start) < 10*writeTimeout {
				ev, err := readBlock(r)
				require.NoError(t, err, "the stream broke after %v and %d heartbeats", time.Since(start), beats)
				assert.Equal(t, []string{"hb"}, ev.comments)
				beats++
			}
			issue(t, e.q, lease(t, e.q, "drop", 1)...)
			ev, err = readBlock(r)
			require.NoError(t, err)
			assert.Equal(t, "issued", ev.status(t).State, "the final status comes through after %d heartbeats", beats)
			_, err = readBlock(r)
			assert.ErrorIs(t, err, io.EOF, "and the stream ends")
		})
	}
}

// The admin live stream outlives the http.Server's WriteTimeout too.
func TestLiveStreamOutlivesTheServersWriteTimeout(t *testing.T) {
	const writeTimeout = 60 * time.Millisecond
	env := newAdmin(t, fastStreams, couponq.Campaign{ID: "spring", Stock: 5})
	srv := httptest.NewUnstartedServer(env.admin)
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	defer srv.Close()
	s := openStreamOn(t, srv)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	start, events := time.Now(), 0
	for time.Since(start) < 10*writeTimeout {
		_, err := s.list()
		require.NoError(t, err, "the stream broke after %v and %d events", time.Since(start), events)
		events++
	}
	s.close()
}
