package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
)

// ErrLawBroken is wrapped by Bench's error when the Store's answers under
// load break a law: more issued than the stock, a user issued more than the
// limit, an issuance ID answered twice, or less issued than the requests
// allowed.
var ErrLawBroken = errors.New("storetest: the Store broke a law under load")

// BenchOptions configures Bench. Zero values take the defaults documented on
// each field.
type BenchOptions struct {
	// Concurrency is how many goroutines call the Store at once. Zero means 16.
	Concurrency int
	// Requests is how many requests to decide. Zero means 10,000, unless
	// Duration is set.
	Requests int
	// Duration, if positive, stops the run once it has passed (or once
	// Requests, if also set, are decided, whichever comes first). Calls in
	// progress at the deadline finish and count.
	Duration time.Duration
	// Campaigns spreads the requests round robin over this many campaigns,
	// each with Stock. Zero means 1: every call contends for one campaign,
	// the flash-sale case.
	Campaigns int
	// Stock is each campaign's stock. Zero means 1<<53, more than a run can
	// take.
	Stock int64
	// Users is how many distinct users each campaign's requests cycle
	// through; with fewer users than requests, users come back and are
	// answered duplicate once at PerUserLimit. Zero means every request
	// is a new user.
	Users int
	// PerUserLimit is each campaign's limit per user. Zero means 1.
	PerUserLimit int
	// BatchSize, above 1 and when the Store implements couponq.BatchStore,
	// decides that many consecutive requests per IssueBatch call (they may
	// name several campaigns). Otherwise each request is one Issue call.
	BatchSize int
}

// BenchResult is what Bench measured.
type BenchResult struct {
	// Requests is how many requests the Store decided; a batch counts
	// each of its requests.
	Requests int64
	// Calls is how many Store calls (Issue or IssueBatch) returned.
	Calls int64
	// Batched tells whether the calls were IssueBatch calls.
	Batched bool
	// Issued, Duplicate and SoldOut count the answers by outcome.
	Issued, Duplicate, SoldOut int64
	// Errors counts calls that returned an error; the first is Bench's error.
	Errors int64
	// Elapsed is the wall time from the first call's start to the last
	// call's end.
	Elapsed time.Duration
	// Throughput is Requests per second of Elapsed.
	Throughput float64
	// P50, P99 and Max are the latencies of one Store call.
	P50, P99, Max time.Duration
}

// String summarizes r on one line.
func (r BenchResult) String() string {
	call := "Issue"
	if r.Batched {
		call = "IssueBatch"
	}
	return fmt.Sprintf("%d requests in %v (%.0f req/s), %d %s calls (p50 %v, p99 %v, max %v): issued %d, duplicate %d, sold_out %d, errors %d",
		r.Requests, r.Elapsed.Round(time.Microsecond), r.Throughput, r.Calls, call, r.P50, r.P99, r.Max,
		r.Issued, r.Duplicate, r.SoldOut, r.Errors)
}

const (
	defaultBenchConcurrency = 16
	defaultBenchRequests    = 10_000
	defaultBenchStock       = 1 << 53
)

var benchSeq atomic.Int64

// Bench measures s under concurrent load and then checks its answers: per
// campaign, exactly as many issued as the stock and the users' limits allow
// (never more than the stock), no user above the limit, every issuance ID
// distinct. A violation returns an error wrapping ErrLawBroken; a Store
// error stops the run and is returned. The result is filled in either case.
//
// Only the Store calls are timed: the requests are built before the clock
// starts (unless only Duration bounds the run, in which case each worker
// builds its next request between calls), and the answers are checked after
// it stops. Every request has its own key, so none is a redelivery. Run it
// against the Store's real backend; each call uses campaigns of its own, so
// a shared database is fine.
func Bench(ctx context.Context, s couponq.Store, o BenchOptions) (BenchResult, error) {
	if s == nil {
		return BenchResult{}, errors.New("storetest: Bench needs a Store")
	}
	if o.Concurrency < 0 || o.Requests < 0 || o.Duration < 0 || o.Campaigns < 0 || o.Stock < 0 ||
		o.Users < 0 || o.PerUserLimit < 0 || o.BatchSize < 0 {
		return BenchResult{}, fmt.Errorf("storetest: Bench options must not be negative: %+v", o)
	}
	if err := ctx.Err(); err != nil {
		return BenchResult{}, err
	}
	if o.Concurrency == 0 {
		o.Concurrency = defaultBenchConcurrency
	}
	if o.Requests == 0 && o.Duration == 0 {
		o.Requests = defaultBenchRequests
	}
	if o.Campaigns == 0 {
		o.Campaigns = 1
	}
	if o.Stock == 0 {
		o.Stock = defaultBenchStock
	}
	if o.PerUserLimit == 0 {
		o.PerUserLimit = 1
	}
	bs, batched := s.(couponq.BatchStore)
	batched = batched && o.BatchSize > 1
	step := int64(1)
	if batched {
		step = int64(o.BatchSize)
	}

	// Campaign IDs of this call alone: bench-<run>-<call>-<n>.
	g := benchGen{o: o, campaigns: make([]string, o.Campaigns)}
	prefix := fmt.Sprintf("bench-%s-%d", runID, benchSeq.Add(1))
	for i := range g.campaigns {
		g.campaigns[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	limit := int64(math.MaxInt64)
	var pre []couponq.IssueRequest
	if o.Requests > 0 {
		limit = int64(o.Requests)
		pre = make([]couponq.IssueRequest, o.Requests)
		for i := range pre {
			pre[i] = g.req(int64(i))
		}
	}

	var (
		next    atomic.Int64 // the next request index to hand out
		stop    atomic.Bool
		errOnce sync.Once
		firstEr error
		workers = make([]benchWorker, o.Concurrency)
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	fail := func(err error) {
		errOnce.Do(func() { firstEr = err })
		stop.Store(true)
	}
	for w := range workers {
		wk := &workers[w]
		wg.Go(func() {
			<-start
			var rs []couponq.IssueRequest
			for !stop.Load() {
				lo := next.Add(step) - step
				if lo >= limit {
					return
				}
				hi := min(lo+step, limit)
				if pre != nil {
					rs = pre[lo:hi]
				} else {
					rs = rs[:0]
					for i := lo; i < hi; i++ {
						rs = append(rs, g.req(i))
					}
				}
				var (
					out []couponq.Issuance
					one couponq.Issuance
					err error
				)
				t0 := time.Now()
				if batched {
					out, err = bs.IssueBatch(ctx, rs)
				} else {
					one, err = s.Issue(ctx, rs[0])
				}
				d := time.Since(t0)
				wk.lat = append(wk.lat, d)
				if err != nil {
					wk.errors++
					fail(fmt.Errorf("storetest: Bench: request %d (key %q): %w", lo, rs[0].Key, err))
					continue
				}
				if !batched {
					wk.record(lo, one)
					continue
				}
				if len(out) != len(rs) {
					wk.errors++
					fail(fmt.Errorf("%w: IssueBatch of %d requests answered %d issuances", ErrLawBroken, len(rs), len(out)))
					continue
				}
				for j, iss := range out {
					wk.record(lo+int64(j), iss)
				}
			}
		})
	}
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	if o.Duration > 0 {
		timer := time.AfterFunc(o.Duration, func() { stop.Store(true) })
		defer timer.Stop()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	r := BenchResult{Batched: batched, Elapsed: elapsed}
	var lat []time.Duration
	for i := range workers {
		wk := &workers[i]
		r.Calls += int64(len(wk.lat))
		r.Errors += wk.errors
		lat = append(lat, wk.lat...)
		r.Issued += wk.issued
		r.Duplicate += wk.duplicate
		r.SoldOut += wk.soldOut
	}
	r.Requests = r.Issued + r.Duplicate + r.SoldOut
	if elapsed > 0 {
		r.Throughput = float64(r.Requests) / elapsed.Seconds()
	}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 50), percentile(lat, 99)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	if firstEr == nil && ctx.Err() != nil {
		firstEr = ctx.Err()
	}

	// Every index below decided was decided, unless a call failed.
	decided := min(next.Load(), limit)
	if err := g.verify(workers, decided, firstEr == nil); err != nil {
		return r, errors.Join(firstEr, err)
	}
	return r, firstEr
}

// BenchmarkStore runs Bench as a Go benchmark deciding b.N requests of o
// (o.Requests and o.Duration are ignored) and reports the Store's throughput
// (req/s), its p50 and p99 latency per call (p50-ns, p99-ns) and ns/op as
// the timed Store calls' wall time per request. A Store error or a broken
// law fails the benchmark.
//
//	func BenchmarkMyStore(b *testing.B) {
//		storetest.BenchmarkStore(b, newMyStore(b), storetest.BenchOptions{Concurrency: 64, BatchSize: 100})
//	}
func BenchmarkStore(b *testing.B, s couponq.Store, o BenchOptions) {
	b.Helper()
	o.Requests, o.Duration = b.N, 0
	b.ResetTimer()
	r, err := Bench(b.Context(), s, o)
	b.StopTimer()
	if err != nil {
		b.Fatalf("%v (%v)", err, r)
	}
	b.ReportMetric(float64(r.Elapsed.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(r.Throughput, "req/s")
	b.ReportMetric(float64(r.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(r.P99.Nanoseconds()), "p99-ns")
}

// percentile returns the nearest-rank pth percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(i-1, 0)]
}

// benchWorker is one goroutine's tally, merged after the run.
type benchWorker struct {
	lat                        []time.Duration
	issued, duplicate, soldOut int64
	errors                     int64
	ids                        []benchIssued
	bad                        []string // answers no request may get
	_                          [64]byte // keeps workers' hot fields off each other's cache lines
}

type benchIssued struct {
	i  int64
	id string
}

func (w *benchWorker) record(i int64, iss couponq.Issuance) {
	switch iss.Outcome {
	case couponq.Issued:
		w.issued++
		w.ids = append(w.ids, benchIssued{i, iss.ID})
		if iss.ID == "" {
			w.bad = append(w.bad, fmt.Sprintf("request %d answered %s, an issuance without an ID", i, show(iss)))
		}
	case couponq.Duplicate:
		w.duplicate++
	case couponq.SoldOut:
		w.soldOut++
	default:
		w.bad = append(w.bad, fmt.Sprintf("request %d answered %s, an outcome that does not exist", i, show(iss)))
	}
}

// benchGen builds Bench's requests: request i is entry number i/Campaigns+1
// of campaign i%Campaigns, by user (i/Campaigns)%Users.
type benchGen struct {
	o         BenchOptions
	campaigns []string
}

func (g *benchGen) req(i int64) couponq.IssueRequest {
	c, j := g.where(i)
	u := j
	if g.o.Users > 0 {
		u %= int64(g.o.Users)
	}
	e := couponq.Entry{Campaign: g.campaigns[c], User: "u" + strconv.FormatInt(u, 10), Number: j + 1}
	return couponq.IssueRequest{Campaign: e.Campaign, User: e.User, Key: e.Key(), Stock: g.o.Stock, PerUserLimit: g.o.PerUserLimit}
}

// where returns request i's campaign index and its index within the campaign.
func (g *benchGen) where(i int64) (campaign int, j int64) {
	n := int64(len(g.campaigns))
	return int(i % n), i / n
}

// verify checks the answers to requests [0, decided); exact says whether all
// of them were answered, so that the issued count must be exactly what the
// stock and limits allow.
func (g *benchGen) verify(workers []benchWorker, decided int64, exact bool) error {
	var errs []error
	broken := func(format string, args ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrLawBroken}, args...)...))
		}
	}
	issued := make([]int64, len(g.campaigns))
	perUser := map[string]int{} // key: request's campaign/user
	byID := map[string]int64{}
	for w := range workers {
		for _, msg := range workers[w].bad {
			broken("%s", msg)
		}
		for _, x := range workers[w].ids {
			r := g.req(x.i)
			c, _ := g.where(x.i)
			issued[c]++
			perUser[r.Campaign+"/"+r.User]++
			if n := perUser[r.Campaign+"/"+r.User]; n == g.o.PerUserLimit+1 {
				broken("campaign %s: user %q issued more than PerUserLimit %d", r.Campaign, r.User, g.o.PerUserLimit)
			}
			if prev, ok := byID[x.id]; ok && x.id != "" {
				broken("issuance ID %q answered for request %d (key %q) and for request %d (key %q)", x.id, prev, g.req(prev).Key, x.i, r.Key)
			}
			byID[x.id] = x.i
		}
	}
	n := int64(len(g.campaigns))
	for c, got := range issued {
		if got > g.o.Stock {
			broken("campaign %s: %d issued, above its stock of %d", g.campaigns[c], got, g.o.Stock)
			continue
		}
		if !exact {
			continue
		}
		// Requests of campaign c: indexes c, c+n, ... below decided.
		reqs := (decided - int64(c) + n - 1) / n
		possible := reqs // every request a new user
		if u := int64(g.o.Users); u > 0 && u < reqs {
			q, rem := reqs/u, reqs%u
			lim := int64(g.o.PerUserLimit)
			possible = rem*min(lim, q+1) + (u-rem)*min(lim, q)
		}
		if want := min(g.o.Stock, possible); got != want {
			broken("campaign %s: %d of %d requests issued, want %d (stock %d, %d users, PerUserLimit %d)",
				g.campaigns[c], got, reqs, want, g.o.Stock, g.o.Users, g.o.PerUserLimit)
		}
	}
	return errors.Join(errs...)
}
