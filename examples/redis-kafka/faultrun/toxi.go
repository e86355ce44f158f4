package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// toxi drives a toxiproxy server through its HTTP API: the proxies between
// the workers and Redis/Kafka, cut (disabled: every connection through them
// is closed and new ones refused) or slowed (a latency toxic) on schedule.
type toxi struct {
	api  string // http://127.0.0.1:PORT
	http *http.Client
}

func newToxi(addr string) *toxi {
	return &toxi{api: "http://" + addr, http: &http.Client{Timeout: 5 * time.Second}}
}

// do calls the API. Every call faultrun makes is idempotent (create a
// proxy or toxic under a fixed name, set a proxy's state, delete by name),
// so a call whose connection failed — toxiproxy, busy on a loaded box, can
// reset one — is sent again, up to three times: a toxic left in place by a
// lost DELETE would slow the link for the rest of the run. A DELETE sent
// again that finds nothing to delete, or a create that finds its name
// taken, means the lost call had done its work.
func (t *toxi) do(ctx context.Context, method, path string, body any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var status int
		var msg []byte
		status, msg, err = t.send(ctx, method, path, b)
		switch {
		case err != nil:
			continue // the connection failed: send it again
		case attempt > 0 && (status == http.StatusNotFound && method == http.MethodDelete ||
			status == http.StatusConflict && method == http.MethodPost):
			return nil // the lost call had done it
		case status >= 300:
			return fmt.Errorf("toxiproxy %s %s: %d: %s", method, path, status, bytes.TrimSpace(msg))
		}
		return nil
	}
	return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
}

// send makes one call and returns its status and (the start of) its body.
func (t *toxi) send(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, msg, nil
}

// proxy creates (or re-creates) a proxy listening on listen, forwarding to
// upstream.
func (t *toxi) proxy(ctx context.Context, name, listen, upstream string) error {
	_ = t.do(ctx, http.MethodDelete, "/proxies/"+name, nil) // a leftover of an earlier run
	return t.do(ctx, http.MethodPost, "/proxies", map[string]any{
		"name": name, "listen": listen, "upstream": upstream, "enabled": true})
}

func (t *toxi) remove(ctx context.Context, name string) error {
	return t.do(ctx, http.MethodDelete, "/proxies/"+name, nil)
}

// enable turns a proxy on or off; off closes every connection through it.
func (t *toxi) enable(ctx context.Context, name string, on bool) error {
	return t.do(ctx, http.MethodPost, "/proxies/"+name, map[string]any{"enabled": on})
}

// latency adds d (±jitter) to everything flowing through a proxy, both ways.
func (t *toxi) latency(ctx context.Context, name string, d, jitter time.Duration) error {
	for _, stream := range []string{"upstream", "downstream"} {
		err := t.do(ctx, http.MethodPost, "/proxies/"+name+"/toxics", map[string]any{
			"name": "latency_" + stream, "type": "latency", "stream": stream, "toxicity": 1.0,
			"attributes": map[string]any{"latency": d.Milliseconds(), "jitter": jitter.Milliseconds()}})
		if err != nil {
			return err
		}
	}
	return nil
}

// heal removes a proxy's latency toxics.
func (t *toxi) heal(ctx context.Context, name string) error {
	var errs []error
	for _, stream := range []string{"upstream", "downstream"} {
		if err := t.do(ctx, http.MethodDelete, "/proxies/"+name+"/toxics/latency_"+stream, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
