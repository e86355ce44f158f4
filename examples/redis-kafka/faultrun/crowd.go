package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/examples/redis-kafka/faultrun/check"
	"github.com/couponq/couponq/examples/redis-kafka/internal/loadgen"
)

// The crowd is the run's users, outside the code under test: they press
// the button at their arrival time (some twice), fail over to the other api
// when theirs does not answer, and poll their status until it is an outcome.
// What each saw is what the checker holds the system to.
type crowd struct {
	apis      []string // http://127.0.0.1:PORT, api i+1 at index i
	campaigns []string
	http      *http.Client
	users     []*member

	mu      sync.Mutex
	presses []check.Press
	polls   atomic.Int64

	// notReady[i] is set while api i's /readyz, polled by watchReady, does
	// not answer 200: presses then go to another api, as a load balancer
	// sends them. Unset (every api in rotation) until watchReady runs.
	notReady []atomic.Bool
}

type member struct {
	mu sync.Mutex
	check.Client
	home int // index of the api the user presses first
}

func newCrowd(apis, campaigns []string, users int, prefix string, repeat float64, seed uint64) *crowd {
	c := &crowd{apis: apis, campaigns: campaigns, http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     30 * time.Second,
		},
	}}
	c.notReady = make([]atomic.Bool, len(apis))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c.users = make([]*member, users)
	for i := range c.users {
		presses := 1
		if rng.Float64() < repeat {
			presses = 2
		}
		c.users[i] = &member{home: i % len(apis), Client: check.Client{
			User: prefix + "-" + strconv.Itoa(i+1), Campaign: campaigns[i%len(campaigns)], Presses: presses, Final: "none"}}
	}
	return c
}

func (c *crowd) url(api int, campaign string, me bool) string {
	u := c.apis[api] + "/campaigns/" + campaign + "/entries"
	if me {
		u += "/me"
	}
	return u
}

// admit runs every user's presses: user i presses at start + arrival*i/N
// (the second press, if any, 0.5–3 s later on the other api), with at most
// conc requests in flight.
func (c *crowd) admit(ctx context.Context, start time.Time, arrival time.Duration, conc int) {
	n := len(c.users)
	var next atomic.Int64
	var later sync.WaitGroup
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				sleep(ctx, time.Until(start.Add(arrival*time.Duration(i)/time.Duration(n))))
				m := c.users[i]
				c.press(ctx, m, m.home)
				if m.Presses > 1 {
					later.Go(func() {
						sleep(ctx, 500*time.Millisecond+time.Duration(rand.Int64N(int64(2500*time.Millisecond))))
						c.press(ctx, m, (m.home+1)%len(c.apis))
					})
				}
			}
		})
	}
	wg.Wait()
	later.Wait()
}

// press is one press of the button, as a patient client behind a load
// balancer makes it: it goes to api unless the router took that one out of
// rotation; an api that does not answer, or answers 5xx, is tried again
// (alternating apis) for up to ~10 s; whatever the last answer, it is
// recorded.
func (c *crowd) press(ctx context.Context, m *member, api int) {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		api = c.route(api)
		outcome, entry, estimate := c.post(ctx, m, api)
		c.mu.Lock()
		c.presses = append(c.presses, check.Press{At: time.Now(), API: api + 1, Outcome: outcome})
		c.mu.Unlock()
		switch outcome {
		case "accepted", "repeat", "ticket":
			m.mu.Lock()
			if !m.Accepted {
				m.Accepted, m.AcceptedAt, m.Entry, m.API = true, time.Now(), entry, api+1
				m.EstimatedWaitMS = estimate
				m.Door = ""
			}
			m.mu.Unlock()
			return
		case "transport", "http_500", "http_502", "http_503", "http_504":
			if attempt < 8 && ctx.Err() == nil {
				sleep(ctx, backoff)
				backoff = min(2*backoff, 2*time.Second)
				api = (api + 1) % len(c.apis)
				continue
			}
		}
		m.mu.Lock()
		if !m.Accepted {
			m.Door = outcome
		}
		m.mu.Unlock()
		return
	}
}

func (c *crowd) post(ctx context.Context, m *member, api int) (outcome string, entry, estimateMS int64) {
	var body struct {
		Entry    int64 `json:"entry"`
		Repeat   bool  `json:"repeat"`
		Estimate int64 `json:"estimated_wait_ms"`
		Error    struct {
			Code string `json:"code"`
		} `json:"error"`
		Ticket *struct {
			Entry int64 `json:"entry"`
		} `json:"ticket"`
	}
	code, err := c.do(ctx, http.MethodPost, c.url(api, m.Campaign, false), m.User, &body)
	switch {
	case err != nil:
		return "transport", 0, 0
	case code == http.StatusAccepted && body.Repeat:
		return "repeat", body.Entry, 0
	case code == http.StatusAccepted:
		return "accepted", body.Entry, body.Estimate
	case code >= 500:
		return "http_" + strconv.Itoa(code), 0, 0
	case body.Ticket != nil: // 409/410 to a user who already holds an entry: it shows their ticket
		return "ticket", body.Ticket.Entry, 0
	case body.Error.Code != "":
		return body.Error.Code, 0, 0
	}
	return "http_" + strconv.Itoa(code), 0, 0
}

// status asks for a user's status at api, trying the other apis if it does
// not answer; "unknown" if none does.
func (c *crowd) status(ctx context.Context, user, campaign string, api int) (state, issuance string) {
	for k := range c.apis {
		var st struct {
			State      string `json:"state"`
			Reason     string `json:"reason"`
			IssuanceID string `json:"issuance_id"`
			Error      struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		c.polls.Add(1)
		code, err := c.do(ctx, http.MethodGet, c.url((api+k)%len(c.apis), campaign, true), user, &st)
		switch {
		case err != nil || code >= 500:
			continue
		case code != http.StatusOK && st.Error.Code != "":
			return st.Error.Code, "" // not_found: the line does not know the entry; unknown_campaign
		case code != http.StatusOK:
			return "http_" + strconv.Itoa(code), ""
		case st.State == "rejected":
			return "rejected:" + st.Reason, ""
		}
		return st.State, st.IssuanceID
	}
	return "unknown", ""
}

// poll asks every accepted user without an outcome for their status, round
// after round, until all have one or ctx ends; at most rate polls a second.
// It returns how many are still without an outcome.
func (c *crowd) poll(ctx context.Context, conc int, rate float64, pause time.Duration, stopWhenDone func() bool) int {
	tick := time.Duration(float64(time.Second) / rate)
	for {
		var pending []*member
		for _, m := range c.users {
			m.mu.Lock()
			if m.Accepted && !m.Terminal() {
				pending = append(pending, m)
			}
			m.mu.Unlock()
		}
		if (len(pending) == 0 && stopWhenDone()) || ctx.Err() != nil {
			return len(pending)
		}
		gate := time.NewTicker(tick)
		work := make(chan *member)
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for m := range work {
					c.pollOne(ctx, m)
				}
			})
		}
	feed:
		for _, m := range pending {
			select {
			case <-ctx.Done():
				break feed
			case <-gate.C:
			}
			select {
			case <-ctx.Done():
				break feed
			case work <- m:
			}
		}
		close(work)
		wg.Wait()
		gate.Stop()
		sleep(ctx, pause)
	}
}

func (c *crowd) pollOne(ctx context.Context, m *member) {
	m.mu.Lock()
	user, campaign, home := m.User, m.Campaign, m.home
	m.mu.Unlock()
	state, id := c.status(ctx, user, campaign, (home+1)%len(c.apis))
	m.mu.Lock()
	defer m.mu.Unlock()
	if state == "unknown" && m.Final != "none" {
		return // no answer says nothing new
	}
	if state == "not_found" {
		m.NotFoundSeen = true
	}
	if state != m.Final {
		m.Final, m.FinalAt = state, time.Now()
	}
	if state == "issued" {
		m.IssuanceID = id
	}
}

// undecided counts accepted users without an outcome.
func (c *crowd) undecided() int {
	n := 0
	for _, m := range c.users {
		m.mu.Lock()
		if m.Accepted && !m.Terminal() {
			n++
		}
		m.mu.Unlock()
	}
	return n
}

func (c *crowd) do(ctx context.Context, method, url, user string, v any) (int, error) {
	return loadgen.Call(ctx, c.http, method, url, user, v)
}

// clients returns what every user saw.
func (c *crowd) clients() []check.Client {
	out := make([]check.Client, len(c.users))
	for i, m := range c.users {
		m.mu.Lock()
		out[i] = m.Client
		if out[i].Final == "none" {
			out[i].Final = "unknown"
		}
		m.mu.Unlock()
	}
	return out
}

func (c *crowd) pressLog() []check.Press {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]check.Press(nil), c.presses...)
}

// writeJSONL writes one JSON object per line.
func writeJSONL[T any](file string, rows []T) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint("faultrun: ", err))
	}
	return v
}

// route is where a press meant for api goes: api itself unless its /readyz
// failed at the last look, else the next api in rotation; api when none
// is (a load balancer with no healthy target tries them anyway).
func (c *crowd) route(api int) int {
	for k := range c.apis {
		if a := (api + k) % len(c.apis); !c.notReady[a].Load() {
			return a
		}
	}
	return api
}

// ready reports whether api i is in rotation.
func (c *crowd) ready(i int) bool { return !c.notReady[i].Load() }

// watchReady polls every api's /readyz (ops[i] is api i's ops base URL)
// every interval, as a load balancer's health check does, until ctx ends:
// an api that does not answer 200 within the interval is out of rotation
// until it does.
func (c *crowd) watchReady(ctx context.Context, ops []string, interval time.Duration) {
	client := &http.Client{Timeout: interval, Transport: &http.Transport{Proxy: nil}}
	var wg sync.WaitGroup
	for i, base := range ops {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				ok := false
				if req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil); err == nil {
					if resp, err := client.Do(req); err == nil {
						ok = resp.StatusCode == http.StatusOK
						resp.Body.Close()
					}
				}
				c.notReady[i].Store(!ok)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// askWhereTheyStand has every accepted client among clients ask once,
// through crowd, where they stand (64 at once), and hands each client with
// its answer to add, one call at a time ("" for a client never accepted,
// who does not ask).
func askWhereTheyStand(ctx context.Context, crowd *crowd, clients []check.Client, add func(i int, c check.Client, state string)) {
	var mu sync.Mutex
	loadgen.Each(ctx, 64, len(clients), func(i int) {
		c := clients[i]
		state := ""
		if c.Accepted {
			state, _ = crowd.status(ctx, c.User, c.Campaign, 0)
		}
		mu.Lock()
		defer mu.Unlock()
		add(i, c, state)
	})
}

// reusedEntries counts the entry numbers that more than one accepted
// client among clients was given (a Redis that lost its last writes hands
// them out again).
func reusedEntries(clients []check.Client) int {
	byEntry := map[int64]int{}
	for _, c := range clients {
		if c.Accepted {
			byEntry[c.Entry]++
		}
	}
	n := 0
	for _, k := range byEntry {
		if k > 1 {
			n++
		}
	}
	return n
}
