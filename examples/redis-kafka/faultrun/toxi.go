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

func (t *toxi) do(ctx context.Context, method, path string, body any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return nil
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
