// Command load is a crowd for the example's api processes: it admits -users
// distinct users, spread round-robin over the -campaigns (user i joins
// campaign i mod len) and over the api -addr list (user i posts to address
// i mod len and asks for their status at the next one, so every answer about
// an entry comes from a process that did not admit it whenever there are two
// or more). A -repeat fraction of users press twice; -arrival spreads the
// posts evenly over that long instead of sending them as fast as -conc
// allows. Then it polls every admitted user's status until each has an
// outcome or -timeout passes, and prints a summary per campaign and in all:
//
//	go run ./load -addr 127.0.0.1:8080,127.0.0.1:8081 -campaigns gold,silver,bronze -users 10000 -arrival 10s
//
// It only talks to loopback addresses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/internal/loadgen"
)

type options struct {
	addrs, campaigns []string
	prefix           string
	users, conc      int
	repeat           float64
	arrival          time.Duration
	timeout, poll    time.Duration
}

func main() {
	var o options
	addrs := flag.String("addr", "127.0.0.1:8080", "the api addresses, comma-separated (loopback only)")
	campaigns := flag.String("campaigns", "launch", "campaign IDs, comma-separated: users are spread over them round-robin")
	flag.StringVar(&o.prefix, "prefix", "u", "user IDs are PREFIX-1 … PREFIX-N")
	flag.IntVar(&o.users, "users", 20000, "distinct users")
	flag.IntVar(&o.conc, "conc", 200, "requests in flight at once")
	flag.Float64Var(&o.repeat, "repeat", 0, "fraction of users who press twice (0 to 1)")
	flag.DurationVar(&o.arrival, "arrival", 0, "spread the users' first posts evenly over this long (0: as fast as -conc allows)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "how long to wait for every admitted user's outcome")
	flag.DurationVar(&o.poll, "poll", 500*time.Millisecond, "pause between status rounds")
	flag.Parse()
	o.addrs, o.campaigns = split(*addrs), split(*campaigns)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// user is one member of the crowd.
type user struct {
	id, campaign string
	admit, ask   *client // where it posts, where it asks
}

func run(o options) error {
	if o.users < 1 || o.conc < 1 || o.repeat < 0 || o.repeat > 1 || o.timeout <= 0 || o.poll <= 0 || o.arrival < 0 {
		return errors.New("need -users >= 1, -conc >= 1, 0 <= -repeat <= 1, -arrival >= 0, -timeout > 0, -poll > 0")
	}
	if len(o.addrs) == 0 || len(o.campaigns) == 0 {
		return errors.New("need at least one -addr and one campaign")
	}
	for _, a := range o.addrs {
		if err := loopback(a); err != nil {
			return err
		}
	}
	httpc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback: never through a proxy
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:        o.conc * len(o.addrs),
			MaxIdleConnsPerHost: o.conc,
			MaxConnsPerHost:     o.conc,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	clients := map[string]*client{} // "addr campaign" -> client
	cl := func(addr, campaign string) *client {
		k := addr + " " + campaign
		if clients[k] == nil {
			clients[k] = &client{base: "http://" + addr + "/campaigns/" + campaign + "/entries", http: httpc}
		}
		return clients[k]
	}
	users := make([]user, o.users)
	for i := range users {
		campaign := o.campaigns[i%len(o.campaigns)]
		users[i] = user{id: o.prefix + "-" + strconv.Itoa(i+1), campaign: campaign,
			admit: cl(o.addrs[i%len(o.addrs)], campaign), ask: cl(o.addrs[(i+1)%len(o.addrs)], campaign)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.arrival+o.timeout+time.Minute)
	defer cancel()
	fmt.Printf("load: users=%d campaigns=%s apis=%s arrival=%s repeat=%.2f\n", o.users,
		strings.Join(o.campaigns, ","), strings.Join(o.addrs, ","), o.arrival, o.repeat)

	// Admission.
	start := time.Now()
	var admitted []int // users answered 202 as a new entry
	var mu sync.Mutex
	door := map[string]counter{} // campaign -> answers at the door
	for _, c := range o.campaigns {
		door[c] = counter{}
	}
	loadgen.Each(ctx, o.conc, len(users), func(i int) {
		if o.arrival > 0 {
			sleep(ctx, time.Until(start.Add(o.arrival*time.Duration(i)/time.Duration(len(users)))))
		}
		presses := 1
		if o.repeat > 0 && rand.Float64() < o.repeat {
			presses = 2
		}
		u := users[i]
		for range presses {
			a := u.admit.admit(ctx, u.id)
			mu.Lock()
			door[u.campaign].inc(a)
			if a == "accepted" {
				admitted = append(admitted, i)
			}
			mu.Unlock()
		}
	})
	admitTook := time.Since(start)
	all := counter{}
	for _, c := range o.campaigns {
		for k, v := range door[c] {
			all[k] += v
		}
	}
	fmt.Printf("admission: posts=%d in %s (%.0f/s) %s\n", all.sum(), admitTook.Round(time.Millisecond),
		float64(all.sum())/admitTook.Seconds(), all)

	// Outcomes.
	deadline := time.Now().Add(o.timeout)
	pending := admitted
	outcomes := map[string]counter{} // campaign -> outcomes
	for _, c := range o.campaigns {
		outcomes[c] = counter{}
	}
	ids := map[string]bool{}
	dupIDs := map[string]int{}
	last := time.Time{}
	for round := 1; len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil; round++ {
		var still []int
		loadgen.Each(ctx, o.conc, len(pending), func(j int) {
			u := users[pending[j]]
			st := u.ask.status(ctx, u.id)
			mu.Lock()
			defer mu.Unlock()
			switch st.State {
			case "issued":
				outcomes[u.campaign].inc("issued")
				if ids[u.campaign+"/"+st.IssuanceID] {
					dupIDs[u.campaign]++
				}
				ids[u.campaign+"/"+st.IssuanceID] = true
			case "rejected":
				outcomes[u.campaign].inc("rejected_" + st.Reason)
			default: // waiting, in_flight, or an error: ask again
				still = append(still, pending[j])
			}
		})
		pending = still
		if time.Since(last) >= 2*time.Second || len(pending) == 0 {
			last = time.Now()
			var parts []string
			for _, c := range o.campaigns {
				parts = append(parts, fmt.Sprintf("%s[issued=%d rejected=%d]", c, outcomes[c]["issued"], outcomes[c].sum()-outcomes[c]["issued"]))
			}
			fmt.Printf("status round %d after %s: decided=%d still_waiting=%d %s\n", round,
				time.Since(start).Round(time.Millisecond), len(admitted)-len(pending), len(pending), strings.Join(parts, " "))
		}
		if len(pending) > 0 {
			sleep(ctx, o.poll)
		}
	}
	waiting := map[string]int{}
	for _, i := range pending {
		waiting[users[i].campaign]++
	}
	var tot [9]int
	for _, c := range o.campaigns {
		d, out := door[c], outcomes[c]
		failed := out.sum() - out["issued"] - out["rejected_sold_out"] - out["rejected_duplicate"]
		row := [9]int{usersOf(users, c), d["accepted"], out["issued"], out["rejected_sold_out"],
			out["rejected_duplicate"], failed, waiting[c], d["sold_out"], d.errors()}
		for k := range tot {
			tot[k] += row[k]
		}
		fmt.Printf("summary campaign=%s %s duplicate_issuance_ids=%d\n", c, fields(row), dupIDs[c])
	}
	dup := 0
	for _, n := range dupIDs {
		dup += n
	}
	fmt.Printf("summary all %s duplicate_issuance_ids=%d elapsed=%s\n", fields(tot), dup, time.Since(start).Round(time.Millisecond))
	return nil
}

func usersOf(users []user, campaign string) (n int) {
	for _, u := range users {
		if u.campaign == campaign {
			n++
		}
	}
	return n
}

func fields(r [9]int) string {
	return fmt.Sprintf("users=%d admitted=%d issued=%d rejected_sold_out=%d rejected_dup=%d failed=%d still_waiting=%d door_sold_out=%d errors=%d",
		r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
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
	return loadgen.Call(ctx, c.http, method, url, user, v)
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
