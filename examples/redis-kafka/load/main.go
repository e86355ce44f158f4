// Command load is a crowd for the example's api: it admits -users distinct
// users (-conc at a time; a -repeat fraction of them press twice), counts the
// answers, then polls every admitted user's status until each has an outcome
// or -timeout passes, and prints a summary:
//
//	go run ./load -addr 127.0.0.1:8080 -campaign launch -users 20000 -conc 200
//
// It only talks to a loopback address.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	addr, campaign, prefix string
	users, conc            int
	repeat                 float64
	timeout, poll          time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "the api's address (loopback only)")
	flag.StringVar(&o.campaign, "campaign", "launch", "campaign ID")
	flag.StringVar(&o.prefix, "prefix", "u", "user IDs are PREFIX-1 … PREFIX-N")
	flag.IntVar(&o.users, "users", 20000, "distinct users")
	flag.IntVar(&o.conc, "conc", 200, "requests in flight at once")
	flag.Float64Var(&o.repeat, "repeat", 0, "fraction of users who press twice (0 to 1)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "how long to wait for every admitted user's outcome")
	flag.DurationVar(&o.poll, "poll", 500*time.Millisecond, "pause between status rounds")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.users < 1 || o.conc < 1 || o.repeat < 0 || o.repeat > 1 || o.timeout <= 0 || o.poll <= 0 {
		return errors.New("need -users >= 1, -conc >= 1, 0 <= -repeat <= 1, -timeout > 0, -poll > 0")
	}
	if err := loopback(o.addr); err != nil {
		return err
	}
	c := &client{
		base: "http://" + o.addr + "/campaigns/" + o.campaign + "/entries",
		http: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil, // loopback: never through a proxy
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				MaxIdleConns:        o.conc,
				MaxIdleConnsPerHost: o.conc,
				MaxConnsPerHost:     o.conc,
				IdleConnTimeout:     30 * time.Second,
			},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+time.Minute)
	defer cancel()

	// Admission.
	start := time.Now()
	users := make([]string, o.users)
	for i := range users {
		users[i] = o.prefix + "-" + strconv.Itoa(i+1)
	}
	var admitted []string // answered 202 as a new entry
	var mu sync.Mutex
	tally := counter{}
	each(ctx, o.conc, len(users), func(i int) {
		presses := 1
		if o.repeat > 0 && rand.Float64() < o.repeat {
			presses = 2
		}
		for range presses {
			a := c.admit(ctx, users[i])
			mu.Lock()
			tally.inc(a)
			if a == "accepted" {
				admitted = append(admitted, users[i])
			}
			mu.Unlock()
		}
	})
	admitTook := time.Since(start)
	fmt.Printf("admission: posts=%d in %s (%.0f/s) %s\n", tally.sum(), admitTook.Round(time.Millisecond),
		float64(tally.sum())/admitTook.Seconds(), tally)

	// Outcomes.
	deadline := time.Now().Add(o.timeout)
	pending := admitted
	outcomes := counter{}
	ids := map[string]bool{}
	dupIDs := 0
	last := time.Time{}
	for round := 1; len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil; round++ {
		var still []string
		each(ctx, o.conc, len(pending), func(i int) {
			st := c.status(ctx, pending[i])
			mu.Lock()
			defer mu.Unlock()
			switch st.State {
			case "issued":
				outcomes.inc("issued")
				if ids[st.IssuanceID] {
					dupIDs++
				}
				ids[st.IssuanceID] = true
			case "rejected":
				outcomes.inc("rejected_" + st.Reason)
			default: // waiting, in_flight, or an error: ask again
				still = append(still, pending[i])
			}
		})
		pending = still
		if time.Since(last) >= 2*time.Second || len(pending) == 0 {
			last = time.Now()
			fmt.Printf("status round %d after %s: decided=%d still_waiting=%d %s\n", round,
				time.Since(start).Round(time.Millisecond), len(admitted)-len(pending), len(pending), outcomes)
		}
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(o.poll):
			}
		}
	}
	failed := outcomes.sum() - outcomes["issued"] - outcomes["rejected_sold_out"] - outcomes["rejected_duplicate"]
	fmt.Printf("summary: users=%d admitted=%d issued=%d rejected_sold_out=%d rejected_dup=%d failed=%d still_waiting=%d door_sold_out=%d errors=%d duplicate_issuance_ids=%d elapsed=%s\n",
		o.users, len(admitted), outcomes["issued"], outcomes["rejected_sold_out"], outcomes["rejected_duplicate"], failed,
		len(pending), tally["sold_out"], tally.errors(), dupIDs, time.Since(start).Round(time.Millisecond))
	return nil
}

// loopback refuses an address that is not on this machine's loopback.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only a loopback address (127.0.0.1, ::1, localhost) is allowed", addr)
	}
	return nil
}

// each runs f(0..n-1) with at most conc calls at once.
func each(ctx context.Context, conc, n int, f func(i int)) {
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

type client struct {
	base string
	http *http.Client
}

// admit POSTs one entry, retrying 503s a few times, and names the answer:
// accepted (a new entry), repeat (the user already had one), sold_out (410
// to a newcomer), or another error code.
func (c *client) admit(ctx context.Context, user string) string {
	for attempt := 1; ; attempt++ {
		var body struct {
			Repeat bool `json:"repeat"`
			Error  struct {
				Code string `json:"code"`
			} `json:"error"`
			Ticket *struct{} `json:"ticket"` // on 409/410 to a user who already has an entry
		}
		code, err := c.do(ctx, http.MethodPost, c.base, user, &body)
		switch {
		case err != nil:
			if attempt < 3 && ctx.Err() == nil {
				continue
			}
			return "error_transport"
		case code == http.StatusAccepted && body.Repeat:
			return "repeat"
		case code == http.StatusAccepted:
			return "accepted"
		case code == http.StatusServiceUnavailable && attempt < 5:
			sleep(ctx, 200*time.Millisecond)
			continue
		case body.Ticket != nil:
			return "repeat" // 409 duplicate or 410 sold_out for a user already served
		case body.Error.Code != "":
			return body.Error.Code // sold_out (410), busy, unavailable, ...
		}
		return "error_http_" + strconv.Itoa(code)
	}
}

type status struct {
	State      string `json:"state"`
	Reason     string `json:"reason"`
	IssuanceID string `json:"issuance_id"`
}

func (c *client) status(ctx context.Context, user string) status {
	var st status
	if code, err := c.do(ctx, http.MethodGet, c.base+"/me", user, &st); err != nil || code != http.StatusOK {
		return status{State: "unknown"}
	}
	return st
}

func (c *client) do(ctx context.Context, method, url, user string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-User", user)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	_ = json.Unmarshal(b, v) // a body that is not JSON leaves v empty
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// counter counts named answers.
type counter map[string]int

func (c counter) inc(k string) { c[k]++ }

// errors counts the answers that are none of the expected ones.
func (c counter) errors() int {
	return c.sum() - c["accepted"] - c["repeat"] - c["sold_out"]
}

func (c counter) sum() (n int) {
	for _, v := range c {
		n += v
	}
	return n
}

func (c counter) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}
