// Package loadgen holds what the example's crowds (the load command and the
// fault run) share: many users' calls with bounded concurrency, and one
// user's call to an api's public handler.
package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Each runs f(0..n-1) with at most conc calls at once, until ctx ends.
func Each(ctx context.Context, conc, n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// Call makes one request as user (the X-User header the example's api
// reads), decodes the JSON answer into v (a body that is not JSON leaves v
// as it was) and returns the status code.
func Call(ctx context.Context, c *http.Client, method, url, user string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-User", user)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	_ = json.Unmarshal(b, v)
	return resp.StatusCode, nil
}
