package health

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Check reports whether one dependency can serve: nil means ready. It must
// return when ctx ends (the handler's Timeout); its error's message is shown
// in the readiness answer, so it should say what is wrong without secrets.
type Check func(ctx context.Context) error

// Pinger is anything with a context-first Ping, such as
// *kafkadispatch.Dispatcher or *pgxpool.Pool.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping returns a Check that calls p.Ping. go-redis's Ping returns a command,
// not an error, so adapt it with a function literal instead:
//
//	health.Check(func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
func Ping(p Pinger) Check {
	return func(ctx context.Context) error { return p.Ping(ctx) }
}

// Config configures a Handler. Zero values take the defaults documented on
// each field.
type Config struct {
	// Checks are the readiness checks by name ("redis", "kafka", ...): the
	// names are the keys of the answer's "checks" object. May be empty, in
	// which case readiness is liveness. Names must be non-empty and checks
	// non-nil.
	Checks map[string]Check
	// Timeout bounds one run of the checks. Zero means 2s; it must not be
	// negative. Keep it below the probe's own timeout (Kubernetes'
	// timeoutSeconds defaults to 1s: raise it, or lower this).
	Timeout time.Duration
	// CacheFor is how long a readiness answer is reused after its run ends,
	// so a storm of probes costs the backends one run per CacheFor. Zero
	// means 1s; negative runs the checks for every request (concurrent
	// requests still share one run).
	CacheFor time.Duration
	// Logger receives a warning when a run fails and a notice when readiness
	// comes back; nil means none.
	Logger *slog.Logger
}

// Response is the JSON body of a liveness or readiness answer.
type Response struct {
	// Status is "ok" or, on a 503 readiness answer, "unavailable".
	Status string `json:"status"`
	// Checks maps each readiness check to "ok" or its error message.
	Checks map[string]string `json:"checks,omitempty"`
}

// ErrorResponse is the body of a 405 answer, in the JSON error shape of
// couponq's HTTP handlers.
type ErrorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Handler serves liveness and readiness. Its methods are safe for
// concurrent use.
type Handler struct {
	checks   []namedCheck
	timeout  time.Duration
	cacheFor time.Duration
	log      *slog.Logger
	now      func() time.Time // tests replace it

	mu      sync.Mutex
	current *run      // the run in progress, if any
	last    *run      // the last finished run
	lastAt  time.Time // when it finished
	waiting int       // requests waiting on current (tests read it)
	failing bool      // the last run failed (for logging transitions)
}

type namedCheck struct {
	name    string
	check   Check
	running atomic.Bool // a call has not returned yet (it ignored its deadline)
}

type run struct {
	done chan struct{} // closed when resp is set
	resp Response
	ok   bool
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: health: Timeout must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = time.Second
	}
	h := &Handler{timeout: cfg.Timeout, cacheFor: cfg.CacheFor, log: cfg.Logger, now: time.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	names := make([]string, 0, len(cfg.Checks))
	for name, c := range cfg.Checks {
		if name == "" || c == nil {
			return nil, fmt.Errorf("%w: health: check %q: names must be non-empty and checks non-nil", couponq.ErrInvalidConfig, name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	h.checks = make([]namedCheck, len(names))
	for i, name := range names {
		h.checks[i].name, h.checks[i].check = name, cfg.Checks[name]
	}
	return h, nil
}

// Liveness answers 200 {"status":"ok"} to every GET and HEAD: the process is
// up and serving HTTP. It calls no backend, so a backend outage never gets
// the process restarted.
func (h *Handler) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		writeJSON(w, r, http.StatusOK, Response{Status: "ok"})
	})
}

// Readiness runs every check concurrently, bounded by Timeout, and answers
// 200 {"status":"ok","checks":{"kafka":"ok","redis":"ok"}} when all pass, or
// 503 {"status":"unavailable","checks":{...}} with each failing check's
// error message and Retry-After (CacheFor rounded up to a second, at least
// 1). Requests that arrive while a run is in progress wait for it and share
// its answer; within CacheFor of a run's end its answer is served again
// without calling the backends. GET and HEAD only.
//
// The answer names the backends and their errors: serve it where only the
// orchestrator can reach it (an internal port), not on the public listener.
func (h *Handler) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		res, ok := h.result(r.Context())
		if !ok {
			return // the client left while another request's run went on
		}
		if res.ok {
			writeJSON(w, r, http.StatusOK, res.resp)
			return
		}
		secs := int64((max(h.cacheFor, time.Second) + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, r, http.StatusServiceUnavailable, res.resp)
	})
}

// result returns a fresh cached run, the run in progress, or a new run made
// in the calling goroutine. It reports false if ctx ended while waiting for
// another caller's run.
func (h *Handler) result(ctx context.Context) (*run, bool) {
	h.mu.Lock()
	if h.last != nil && h.now().Sub(h.lastAt) < h.cacheFor {
		res := h.last
		h.mu.Unlock()
		return res, true
	}
	if cur := h.current; cur != nil {
		h.waiting++
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.waiting--; h.mu.Unlock() }()
		select {
		case <-cur.done:
			return cur, true
		case <-ctx.Done():
			return nil, false
		}
	}
	cur := &run{done: make(chan struct{})}
	h.current = cur
	h.mu.Unlock()

	// The run belongs to every waiter, not just this request: a client that
	// hangs up does not cut it short for the others.
	cur.resp, cur.ok = h.runChecks(context.WithoutCancel(ctx))

	h.mu.Lock()
	h.current, h.last, h.lastAt = nil, cur, h.now()
	wasFailing := h.failing
	h.failing = !cur.ok
	h.mu.Unlock()
	close(cur.done)

	switch {
	case !cur.ok:
		h.log.Warn("couponq/health: not ready", "checks", cur.resp.Checks)
	case wasFailing:
		h.log.Info("couponq/health: ready again")
	}
	return cur, true
}

// grace is how long a run waits, past its deadline, for checks to return
// after their context ended, so that a check honouring its context leaves
// no goroutine behind the request.
const grace = 250 * time.Millisecond

// runChecks calls every check in its own goroutine and waits until all have
// returned, or until the deadline and a short grace have passed; a check
// still running then is reported as timed out.
func (h *Handler) runChecks(parent context.Context) (Response, bool) {
	resp := Response{Status: "ok", Checks: make(map[string]string, len(h.checks))}
	if len(h.checks) == 0 {
		return resp, true
	}
	ctx, cancel := context.WithTimeout(parent, h.timeout)
	defer cancel()
	type outcome struct {
		i   int
		err error
	}
	results := make(chan outcome, len(h.checks)) // buffered: a late check never blocks
	pending := 0
	for i := range h.checks {
		c := &h.checks[i]
		if !c.running.CompareAndSwap(false, true) {
			// An earlier call has not returned despite its deadline: do not
			// pile another goroutine on it.
			resp.Checks[c.name] = "still running from an earlier run (the check does not return when its context ends)"
			continue
		}
		pending++
		go func() {
			err := call(ctx, c.check)
			c.running.Store(false) // before the result, so the next run never sees it still running
			results <- outcome{i, err}
		}()
	}
	expired, late := ctx.Done(), (<-chan time.Time)(nil)
	for pending > 0 {
		select {
		case o := <-results:
			pending--
			name := h.checks[o.i].name
			switch {
			case o.err == nil:
				resp.Checks[name] = "ok"
			case ctx.Err() != nil:
				resp.Checks[name] = fmt.Sprintf("timed out after %s: %v", h.timeout, o.err)
			case o.err.Error() == "":
				resp.Checks[name] = "failed"
			default:
				resp.Checks[name] = o.err.Error()
			}
		case <-expired:
			expired = nil // closed for good: select on it once
			t := time.NewTimer(grace)
			defer t.Stop()
			late = t.C
		case <-late:
			for i := range h.checks {
				if name := h.checks[i].name; resp.Checks[name] == "" {
					resp.Checks[name] = fmt.Sprintf("timed out after %s", h.timeout)
				}
			}
			pending = 0
		}
	}
	for _, v := range resp.Checks {
		if v != "ok" {
			resp.Status = "unavailable"
			return resp, false
		}
	}
	return resp, true
}

// call runs c, turning a panic into an error so that one broken check cannot
// take the process down with it.
func call(ctx context.Context, c Check) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return c(ctx)
}

func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	var e ErrorResponse
	e.Error.Code, e.Error.Message = "method_not_allowed", "use GET or HEAD"
	writeJSON(w, r, http.StatusMethodNotAllowed, e)
	return false
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}
