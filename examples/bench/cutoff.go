package main

// The cutoff section: what the scheduler's exact cutoff costs at the end of
// a campaign's stock. With the cutoff (the default) a tick never hands
// downstream more entries than the stock that remains undecided (Stock −
// issued − in flight), so the last units go to the lowest entry numbers and
// the line waits, a tick at a time, for the outcomes that free units; with
// scheduler.Config.NoCutoff (the baseline) every tick moves a full batch
// and the Store gives the last units to whichever entries reach it first.
// Both modes run in the same run, on the same pipeline: a Redis line, a
// scheduler of the campaign's own, Kafka with three consumers in one group,
// the Redis Store.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/redisstore"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/kafkatest"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock/redislocker"
)

var (
	cutoffOnly      = flag.Bool("cutoff-only", false, "measure only the cutoff section (drain time at the end of the stock, the exact cutoff against scheduler.Config.NoCutoff) and print it as markdown; writes it into -out's results.json and -md, leaving the rest of them as they are (needs Redis and Kafka)")
	cutoffReps      = flag.Int("cutoff-reps", 5, "cutoff section: repetitions of each scenario in each mode")
	cutoffInterval  = flag.Duration("cutoff-interval", 200*time.Millisecond, "cutoff section: the campaigns' Interval")
	cutoffScenarios = flag.String("cutoff-scenarios", "3000/1050/100,2000/537/100", "cutoff section: users/stock/BatchSize of each scenario, comma-separated")
	cutoffHeld      = flag.Float64("cutoff-held", 0.05, "cutoff section: the share of users who already hold a unit (issued in the Store outside the line)")
)

// The cutoff section's fixed parameters.
const (
	cutoffExact    = "exact"    // the scheduler's default
	cutoffBaseline = "baseline" // scheduler.Config.NoCutoff
	// cutoffPartitions and cutoffConsumers shape the transport: one topic,
	// consumers sharing a group, each with an issuer on the batch path.
	cutoffPartitions = 8
	cutoffConsumers  = 3
	// cutoffPoll is how often the line's counts are read for the moment
	// every entry has an outcome.
	cutoffPoll = 2 * time.Millisecond
	// cutoffRunTimeout bounds one run from its resume.
	cutoffRunTimeout = 2 * time.Minute
	// cutoffAdmitters admit a run's users at once.
	cutoffAdmitters = 32
)

// cutoffParams is what the section measures.
type cutoffParams struct {
	Reps      int
	Interval  time.Duration
	HeldShare float64
	// Scenarios with Users, Stock and BatchSize set.
	Scenarios []CutoffScenario
}

// CutoffResult is the cutoff section's run.
type CutoffResult struct {
	// Started is when the section's run began (-cutoff-only runs it alone,
	// after the rest of the report).
	Started                     time.Time `json:",omitzero"`
	Reps, Partitions, Consumers int
	IntervalMs                  int64
	PollMs                      float64
	HeldShare                   float64
	Scenarios                   []CutoffScenario
}

// CutoffScenario is one campaign shape, run Reps times in each mode.
type CutoffScenario struct {
	Users     int
	Stock     int64
	BatchSize int
	// Held users already hold a unit: issued in the Store, outside the line.
	Held int
	// Runs in the order they ran.
	Runs []CutoffRun
}

// CutoffRun is one run of a scenario in one mode.
type CutoffRun struct {
	Mode     string // cutoffExact or cutoffBaseline
	Rep      int    // 1-based; both modes of a repetition see the same held entries
	Campaign string
	// TailFrom is the Store's issued count after which the tail begins
	// (Stock − BatchSize, or the held units if more): at the first tick
	// that begins once the count reached it.
	TailFrom int64
	// From the resume and from the tail's start to the moment every entry
	// had an outcome; LastUnitSec from the tail's start to the last unit.
	TotalSec, TailSec, LastUnitSec float64
	// The scheduler's ticks that began between the resume (the tail's
	// start) and the moment every entry had an outcome; CappedTicks of the
	// tail's those the cutoff held under BatchSize (TickEvent.Cutoff), and
	// TailMoved the entries the tail's ticks handed downstream.
	// CappedBefore counts capped ticks before the tail: none while each
	// batch is decided within an Interval.
	Ticks, TailTicks, CappedTicks, TailMoved, CappedBefore int
	// Handed is how many entries were handed downstream in all.
	Handed int
	// The Store's issued count at the end (it must be Stock), and the
	// outcomes: entries the Store issued, rejected duplicate, rejected sold
	// out; the rest of the line resolved sold out in bulk by the line.
	StoreIssued                                    int64
	LineIssued, Duplicates, StoreSoldOut, BulkSold int
	// Inversions counts users told sold out while a user with a higher
	// entry number holds a unit.
	Inversions int
}

// parseCutoffScenarios reads "users/stock/batch,...".
func parseCutoffScenarios(s string) ([]CutoffScenario, error) {
	var out []CutoffScenario
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		parts := strings.Split(f, "/")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%q is not users/stock/batch", f)
		}
		var n [3]int
		for i, p := range parts {
			v, err := strconv.Atoi(p)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("%q is not users/stock/batch of positive integers", f)
			}
			n[i] = v
		}
		if n[1] >= n[0] {
			return nil, fmt.Errorf("%q: the stock must be below the users, so the campaign sells out", f)
		}
		out = append(out, CutoffScenario{Users: n[0], Stock: int64(n[1]), BatchSize: n[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario")
	}
	return out, nil
}

// cutoffMain runs the section alone (-cutoff-only): it prints the section,
// merges its result into results.json and puts the section into the report
// where a full render puts it; every other byte stays as it was.
func cutoffMain(o options) error {
	o.redis, o.brokers = os.Getenv("COUPONQ_REDIS_ADDR"), os.Getenv("COUPONQ_KAFKA_BROKERS")
	if o.redis == "" || o.brokers == "" {
		return errors.New("COUPONQ_REDIS_ADDR and COUPONQ_KAFKA_BROKERS must be set: run scripts/bench.sh -cutoff-only")
	}
	p, err := cutoffFlags()
	if err != nil {
		return err
	}
	ctx := context.Background()
	b, err := newBackends(ctx, o)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.runCutoffSection(ctx, p)
	if err != nil {
		return err
	}
	section := cutoffMarkdown(Report{Cutoff: &res})
	fmt.Print(section)
	return writeSection(o, "Cutoff", res, section, spliceCutoff)
}

// cutoffFlags reads the section's flags.
func cutoffFlags() (cutoffParams, error) {
	sc, err := parseCutoffScenarios(*cutoffScenarios)
	if err != nil {
		return cutoffParams{}, fmt.Errorf("bad -cutoff-scenarios: %w", err)
	}
	if *cutoffReps < 1 || *cutoffInterval <= 0 || *cutoffHeld < 0 || *cutoffHeld >= 1 {
		return cutoffParams{}, errors.New("-cutoff-reps must be >= 1, -cutoff-interval > 0 and -cutoff-held in [0, 1)")
	}
	return cutoffParams{Reps: *cutoffReps, Interval: *cutoffInterval, HeldShare: *cutoffHeld, Scenarios: sc}, nil
}

// cutoffHeading starts the section cutoffMarkdown renders.
const cutoffHeading = "## Exact cutoff: drain time at the end of the stock\n"

// spliceCutoff replaces the section in the report md, or puts it where
// markdown puts it: after the end-to-end section, before the waiting-room
// pages and status streams (else before what follows them, else at the end).
func spliceCutoff(md, section string) string {
	return spliceSection(md, cutoffHeading, section,
		[]string{sseHeading, sseOldHeading, "## Memory per waiting entry\n", "## Micro-benchmarks\n"})
}

// runCutoffSection runs every scenario Reps times in each mode, the two
// modes of a scenario back to back, the first of them alternating.
func (b *backends) runCutoffSection(ctx context.Context, p cutoffParams) (CutoffResult, error) {
	res := CutoffResult{Started: time.Now().UTC(), Reps: p.Reps, Partitions: cutoffPartitions, Consumers: cutoffConsumers,
		IntervalMs: p.Interval.Milliseconds(), PollMs: float64(cutoffPoll) / 1e6, HeldShare: p.HeldShare}
	progress("cutoff: %d consumers on %d partitions joining their group", cutoffConsumers, cutoffPartitions)
	env, err := b.newCutoffEnv(ctx, p.Interval)
	if err != nil {
		return res, err
	}
	defer env.close()
	// A small campaign first, unmeasured: connections, producer ids,
	// scripts loaded, every consumer's partitions fetched from once.
	warm := CutoffScenario{Users: 200, Stock: 50, BatchSize: 20}
	if _, err := env.run(ctx, warm, heldEntries(warm.Users, 10, 0, 0), cutoffExact, 0); err != nil {
		return res, fmt.Errorf("cutoff warm-up: %w", err)
	}
	for _, sc := range p.Scenarios {
		sc.Held = int(float64(sc.Users)*p.HeldShare + 0.5)
		sc.Runs = nil
		res.Scenarios = append(res.Scenarios, sc)
	}
	for rep := 1; rep <= p.Reps; rep++ {
		for i := range res.Scenarios {
			sc := &res.Scenarios[i]
			held := heldEntries(sc.Users, sc.Held, rep, i)
			modes := []string{cutoffExact, cutoffBaseline}
			if rep%2 == 0 {
				slices.Reverse(modes)
			}
			for _, m := range modes {
				r, err := env.run(ctx, *sc, held, m, rep)
				if err != nil {
					return res, fmt.Errorf("cutoff %d users, stock %d, batch %d, %s, repetition %d: %w", sc.Users, sc.Stock, sc.BatchSize, m, rep, err)
				}
				progress("   %s", cutoffLine(*sc, r))
				sc.Runs = append(sc.Runs, r)
			}
		}
	}
	return res, nil
}

// heldEntries picks k of the entry numbers 1..n, the same for a given
// repetition and scenario.
func heldEntries(n, k, rep, scenario int) map[int64]bool {
	rnd := rand.New(rand.NewPCG(uint64(rep), uint64(scenario)))
	held := map[int64]bool{}
	for _, i := range rnd.Perm(n)[:k] {
		held[int64(i+1)] = true
	}
	return held
}

func cutoffLine(sc CutoffScenario, r CutoffRun) string {
	return fmt.Sprintf("%d users, stock %d, batch %d, %-8s rep %d: tail %.3f s (%d ticks, %d capped), total %.3f s; store issued %d, sold out at the Store %d, in bulk %d, duplicates %d, inversions %d",
		sc.Users, sc.Stock, sc.BatchSize, r.Mode, r.Rep, r.TailSec, r.TailTicks, r.CappedTicks, r.TotalSec,
		r.StoreIssued, r.StoreSoldOut, r.BulkSold, r.Duplicates, r.Inversions)
}

// cutoffEnv is the pipeline the runs share: the Redis line, the Redis
// Store, a Kafka topic with its consumers and their issuers. Each run brings
// a campaign and a scheduler of its own.
type cutoffEnv struct {
	b        *backends
	interval time.Duration
	q        *redisline.Queue
	store    *redisstore.Store
	locker   *redislocker.Locker
	// prod is the schedulers' Dispatcher (its consuming side never runs).
	prod      *kafkadispatch.Transport
	consumers []*kafkadispatch.Transport
	issuers   []*issuing.Issuer
	runs      sync.Map // campaign ID -> *cutoffTrack
}

func (b *backends) newCutoffEnv(ctx context.Context, interval time.Duration) (_ *cutoffEnv, err error) {
	e := &cutoffEnv{b: b, interval: interval}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.q, err = redisline.New(redisline.Config{Client: b.rdb, Prefix: b.prefix}); err != nil {
		return e, err
	}
	if e.store, err = redisstore.New(redisstore.Config{Client: b.rdb, Prefix: b.prefix}); err != nil {
		return e, err
	}
	if e.locker, err = redislocker.New(b.rdb, b.prefix); err != nil {
		return e, err
	}
	topic := fmt.Sprintf("%s-cutoff%d", b.prefix, b.seq.Add(1))
	if err = createTopic(ctx, b.cm, topic, cutoffPartitions); err != nil {
		return e, err
	}
	if e.prod, err = kafkadispatch.New(kafkadispatch.Config{Topic: topic, ConfigMap: b.cm}); err != nil {
		return e, err
	}
	cat := catalog.Func(func(_ context.Context, id string) (couponq.Campaign, error) {
		t, ok := e.runs.Load(id)
		if !ok {
			return couponq.Campaign{}, couponq.ErrUnknownCampaign
		}
		return *t.(*cutoffTrack).campaign.Load(), nil
	})
	onIssue := func(ev issuer.Event) {
		if t, ok := e.runs.Load(ev.Entry.Campaign); ok {
			t.(*cutoffTrack).decided(ev)
		}
	}
	for range cutoffConsumers {
		tr, err := kafkadispatch.New(kafkadispatch.Config{Topic: topic, Group: topic + "-g", ConfigMap: b.cm})
		if err != nil {
			return e, err
		}
		e.consumers = append(e.consumers, tr)
		iss, err := issuing.New(issuing.Config{Consumer: tr, Store: cutoffStore{e.store, e}, Catalog: cat, Recorder: e.q, OnIssue: onIssue})
		if err != nil {
			return e, err
		}
		if !iss.Batching() {
			return e, errors.New("the issuer does not take the batch path")
		}
		if err := iss.Start(ctx); err != nil {
			return e, err
		}
		e.issuers = append(e.issuers, iss)
	}
	return e, kafkatest.WaitGroupStable(ctx, b.cm, topic+"-g", cutoffConsumers, cutoffPartitions)
}

func (e *cutoffEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, iss := range e.issuers {
		_ = iss.Stop(ctx)
	}
	for _, tr := range e.consumers {
		tr.Close()
	}
	if e.prod != nil {
		e.prod.Close()
	}
}

// cutoffStore is the issuers' Store: the Redis Store, telling each run's
// track what it issued as each call returns (before the issuer records the
// outcomes, so before the line can show them).
type cutoffStore struct {
	*redisstore.Store
	e *cutoffEnv
}

func (s cutoffStore) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	is, err := s.Store.Issue(ctx, r)
	if err == nil {
		s.e.stored([]couponq.IssueRequest{r}, []couponq.Issuance{is})
	}
	return is, err
}

func (s cutoffStore) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	out, err := s.Store.IssueBatch(ctx, rs)
	if err == nil {
		s.e.stored(rs, out)
	}
	return out, err
}

// stored passes a Store call's issuances to their runs' tracks.
func (e *cutoffEnv) stored(rs []couponq.IssueRequest, out []couponq.Issuance) {
	now := time.Now().UnixNano()
	for i, r := range rs {
		if out[i].Outcome != couponq.Issued {
			continue
		}
		if t, ok := e.runs.Load(r.Campaign); ok {
			t.(*cutoffTrack).issuedKey(r.Key, now)
		}
	}
}

// cutoffTrack follows one run: what the catalogs answer, the issuers'
// decisions and the scheduler's ticks.
type cutoffTrack struct {
	campaign atomic.Pointer[couponq.Campaign]
	reads    atomic.Int64 // the scheduler's Catalog reads
	// issued is the Store's count as its calls return (the held units,
	// then one per key issued); tailFrom the count after which the tail
	// begins, reached at reached.
	issued            atomic.Int64
	tailFrom          int64
	reached, lastUnit atomic.Int64 // Unix ns; 0 before

	mu      sync.Mutex
	keys    map[string]bool          // issued through the line (a redelivered key answers Issued again)
	outcome map[int64]couponq.Result // by entry number, as the issuers report them
	ticks   []tickMark
}

type tickMark struct {
	start          time.Time
	leased, failed int
	cutoff         bool
}

func (t *cutoffTrack) decided(ev issuer.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, again := t.outcome[ev.Entry.Number]; !again {
		t.outcome[ev.Entry.Number] = ev.Result
	}
}

func (t *cutoffTrack) issuedKey(key string, now int64) {
	t.mu.Lock()
	again := t.keys[key]
	t.keys[key] = true
	t.mu.Unlock()
	if again {
		return
	}
	n := t.issued.Add(1)
	if n >= t.tailFrom {
		t.reached.CompareAndSwap(0, now)
	}
	if n >= t.campaign.Load().Stock {
		t.lastUnit.CompareAndSwap(0, now)
	}
}

func (t *cutoffTrack) onTick(ev dispatch.TickEvent) {
	m := tickMark{start: time.Now().Add(-ev.Duration), leased: ev.Leased, failed: ev.Failed, cutoff: ev.Cutoff}
	t.mu.Lock()
	t.ticks = append(t.ticks, m)
	t.mu.Unlock()
}

// handed is how many entries the ticks so far handed downstream.
func (t *cutoffTrack) handed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.ticks {
		n += m.leased - m.failed
	}
	return n
}

func (t *cutoffTrack) decidedCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.outcome)
}

// run measures one scenario in one mode: a fresh campaign, paused while its
// users are admitted and the held units issued, then resumed, until every
// entry has an outcome.
func (e *cutoffEnv) run(ctx context.Context, sc CutoffScenario, held map[int64]bool, mode string, rep int) (CutoffRun, error) {
	b := e.b
	c := couponq.Campaign{ID: fmt.Sprintf("%s-cut%d", b.prefix, b.seq.Add(1)), Stock: sc.Stock,
		BatchSize: sc.BatchSize, Interval: e.interval, Paused: true}
	r := CutoffRun{Mode: mode, Rep: rep, Campaign: c.ID, TailFrom: max(sc.Stock-int64(sc.BatchSize), int64(len(held)))}
	t := &cutoffTrack{tailFrom: r.TailFrom, keys: map[string]bool{}, outcome: map[int64]couponq.Result{}}
	t.campaign.Store(&c)
	e.runs.Store(c.ID, t)
	defer e.runs.Delete(c.ID)

	// The line, filled while the campaign is paused.
	users := make([]string, sc.Users+1) // by entry number
	var next atomic.Int64
	errs := make(chan error, cutoffAdmitters)
	var wg sync.WaitGroup
	for range cutoffAdmitters {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(sc.Users) {
					return
				}
				u := fmt.Sprintf("u%d", i)
				tk, err := e.q.Admit(ctx, couponq.Admission{Campaign: c.ID, User: u, At: time.Now()})
				if err == nil && (tk.Entry < 1 || tk.Entry > int64(sc.Users) || users[tk.Entry] != "") {
					err = fmt.Errorf("admission of %s: entry %d", u, tk.Entry)
				}
				if err != nil {
					errs <- err
					return
				}
				users[tk.Entry] = u // each entry number is written once
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, err
	}
	// The held users' units, issued outside the line (and past the
	// issuers' Store): the Store counts them, the line does not know them.
	var reqs []couponq.IssueRequest
	for n := range held {
		reqs = append(reqs, couponq.IssueRequest{Campaign: c.ID, User: users[n], Key: c.ID + "/held/" + users[n], Stock: c.Stock, PerUserLimit: 1})
	}
	if len(reqs) > 0 {
		out, err := e.store.IssueBatch(ctx, reqs)
		if err != nil {
			return r, fmt.Errorf("held units: %w", err)
		}
		for _, is := range out {
			if is.Outcome != couponq.Issued {
				return r, fmt.Errorf("held unit: %s", is.Outcome)
			}
		}
	}
	t.issued.Store(int64(len(held)))

	m, err := newMoverWith(c, e.q, e.prod, e.locker, moverOpts{
		onTick:   t.onTick,
		campaign: func() couponq.Campaign { t.reads.Add(1); return *t.campaign.Load() },
		noCutoff: mode == cutoffBaseline,
		issued:   e.store, // as a node sets it: the Store's count, held units included
	})
	if err != nil {
		return r, err
	}
	if err := m.Start(ctx); err != nil {
		return r, err
	}
	defer func() { _ = m.Stop(context.WithoutCancel(ctx)) }()
	for deadline := time.Now().Add(15 * time.Second); !m.Leading(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return r, errors.New("the scheduler did not lead within 15 s")
		}
	}
	// Resume just after a paused tick read the campaign: the first move
	// comes one Interval later in every run. (A new leader's first move
	// waits one Interval after it won: ticks before then do not count.)
	time.Sleep(e.interval)
	reads, since := t.reads.Load(), time.Now()
	for t.reads.Load() == reads {
		if time.Since(since) > 10*e.interval+5*time.Second {
			return r, errors.New("the scheduler does not tick the paused campaign")
		}
		time.Sleep(100 * time.Microsecond)
	}
	resumed := c
	resumed.Paused = false
	t.campaign.Store(&resumed)
	resume := time.Now()
	if int64(len(held)) >= r.TailFrom {
		t.reached.CompareAndSwap(0, resume.UnixNano())
	}

	// Every entry has an outcome when nothing waits and nothing is in flight.
	var resolved time.Time
	for {
		st, err := e.q.LineStats(ctx, c.ID)
		if err != nil {
			return r, err
		}
		if st.Waiting+st.InFlight == 0 {
			resolved = time.Now()
			break
		}
		if time.Since(resume) > cutoffRunTimeout {
			return r, fmt.Errorf("not resolved %s after the resume: %d waiting, %d in flight, the Store issued %d of %d",
				cutoffRunTimeout, st.Waiting, st.InFlight, t.issued.Load(), c.Stock)
		}
		time.Sleep(cutoffPoll)
	}
	if err := m.Stop(ctx); err != nil {
		return r, err
	}
	// The issuers report a decision once it is recorded: the last ones may
	// come just after the line's counts showed them.
	r.Handed = t.handed()
	for deadline := time.Now().Add(10 * time.Second); t.decidedCount() < r.Handed; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d entries handed downstream, %d decisions reported", r.Handed, t.decidedCount())
		}
	}
	if r.StoreIssued, err = e.store.IssuedCount(ctx, c.ID); err != nil {
		return r, err
	}
	if r.StoreIssued != c.Stock || t.issued.Load() != c.Stock {
		return r, fmt.Errorf("the Store issued %d of a stock of %d (its calls returned %d, held units included)", r.StoreIssued, c.Stock, t.issued.Load())
	}
	if t.reached.Load() == 0 || t.lastUnit.Load() == 0 {
		return r, fmt.Errorf("the Store's calls returned %d issued (held included) of a stock of %d", t.issued.Load(), c.Stock)
	}
	reached, lastUnit := time.Unix(0, t.reached.Load()), time.Unix(0, t.lastUnit.Load())

	t.mu.Lock()
	defer t.mu.Unlock()
	// The tail begins with the first tick that begins once the Store's
	// count reached TailFrom.
	var tailAt time.Time
	for _, k := range t.ticks {
		if !k.start.Before(reached) && (tailAt.IsZero() || k.start.Before(tailAt)) {
			tailAt = k.start
		}
	}
	if tailAt.IsZero() || tailAt.After(resolved) {
		return r, errors.New("no tick began between the Store's count reaching the tail and the line resolved")
	}
	for _, k := range t.ticks {
		if k.start.Before(resume) || k.start.After(resolved) {
			continue
		}
		r.Ticks++
		switch {
		case !k.start.Before(tailAt):
			r.TailTicks++
			r.TailMoved += k.leased - k.failed
			if k.cutoff {
				r.CappedTicks++
			}
		case k.cutoff:
			r.CappedBefore++
		}
	}
	r.TotalSec, r.TailSec, r.LastUnitSec = resolved.Sub(resume).Seconds(), resolved.Sub(tailAt).Seconds(), lastUnit.Sub(tailAt).Seconds()
	// Outcomes: the Store's decisions, then every other user's status,
	// which the line resolved in bulk once it was marked sold out.
	var soldOut []int64
	var highestIssued int64
	for n, res := range t.outcome {
		switch {
		case res.State == couponq.StateIssued:
			r.LineIssued++
			highestIssued = max(highestIssued, n)
		case res.Reason == couponq.CodeDuplicate:
			r.Duplicates++
		case res.Reason == couponq.CodeSoldOut:
			r.StoreSoldOut++
			soldOut = append(soldOut, n)
		default:
			return r, fmt.Errorf("entry %d: %s/%s", n, res.State, res.Reason)
		}
	}
	var rest []int64
	for n := int64(1); n <= int64(sc.Users); n++ {
		if _, ok := t.outcome[n]; !ok {
			rest = append(rest, n)
		}
	}
	bulk, err := e.statuses(ctx, c.ID, users, rest)
	if err != nil {
		return r, err
	}
	r.BulkSold = len(bulk)
	for _, n := range append(soldOut, bulk...) {
		if n < highestIssued {
			r.Inversions++
		}
	}
	if got := int64(len(held) + r.LineIssued); got != r.StoreIssued {
		return r, fmt.Errorf("%d held and %d issued to the line, the Store counts %d", len(held), r.LineIssued, r.StoreIssued)
	}
	return r, nil
}

// statuses reads the status of the users at entry numbers ns, each of which
// must be rejected sold out, and returns their numbers.
func (e *cutoffEnv) statuses(ctx context.Context, campaign string, users []string, ns []int64) ([]int64, error) {
	var next atomic.Int64
	var bad firstError
	var wg sync.WaitGroup
	for range cutoffAdmitters {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ns) || bad.get() != nil {
					return
				}
				st, err := e.q.Status(ctx, campaign, users[ns[i]])
				switch {
				case err != nil:
					bad.set(err)
				case st.State != couponq.StateRejected || st.Reason != couponq.CodeSoldOut || st.Entry != ns[i]:
					bad.set(fmt.Errorf("user %s (entry %d) never reached the Store, yet its status is %s/%s of entry %d",
						users[ns[i]], ns[i], st.State, st.Reason, st.Entry))
				}
			}
		})
	}
	wg.Wait()
	return ns, bad.get()
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cutoffStat is one figure over a scenario's runs in one mode.
type cutoffStat struct{ med, lo, hi float64 }

func statOf(runs []CutoffRun, mode string, f func(CutoffRun) float64) cutoffStat {
	var xs []float64
	for _, r := range runs {
		if r.Mode == mode {
			xs = append(xs, f(r))
		}
	}
	if len(xs) == 0 {
		return cutoffStat{}
	}
	return cutoffStat{med: median(xs), lo: slices.Min(xs), hi: slices.Max(xs)}
}

// pairedRatios is, per repetition with both modes, exact's figure over the
// baseline's.
func pairedRatios(runs []CutoffRun, f func(CutoffRun) float64) []float64 {
	by := map[int]map[string]float64{}
	for _, r := range runs {
		if by[r.Rep] == nil {
			by[r.Rep] = map[string]float64{}
		}
		by[r.Rep][r.Mode] = f(r)
	}
	var out []float64
	for _, rep := range slices.Sorted(maps.Keys(by)) {
		m := by[rep]
		ex, ok1 := m[cutoffExact]
		bl, ok2 := m[cutoffBaseline]
		if ok1 && ok2 && bl > 0 {
			out = append(out, ex/bl)
		}
	}
	return out
}

func tailSec(r CutoffRun) float64  { return r.TailSec }
func totalSec(r CutoffRun) float64 { return r.TotalSec }

// cutoffMarkdown renders the section; "" if the run has none.
func cutoffMarkdown(rep Report) string {
	res := rep.Cutoff
	if res == nil || len(res.Scenarios) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(cutoffHeading + "\n")
	w("This section alone: `scripts/bench.sh -cutoff-only` (needs Redis and Kafka; it rewrites this section and its\n")
	w("part of results.json, nothing else; `-cutoff-reps`, `-cutoff-interval`, `-cutoff-scenarios` and `-cutoff-held`\n")
	w("vary it). The full `scripts/bench.sh` runs it too.\n\n")
	w("The scheduler's exact cutoff (the default) never hands downstream more entries than the stock that remains\n")
	w("undecided, Stock − issued − in flight, so the last units go to the lowest entry numbers; its price is drain time\n")
	w("at the end of the stock, where a tick may move fewer than BatchSize and the line waits for the outcomes in flight\n")
	w("(a user rejected `duplicate` frees the unit the cutoff held for them, and the next tick moves one more entry).\n")
	w("The baseline is `scheduler.Config.NoCutoff`: every tick moves up to BatchSize and the Store gives the last units\n")
	w("to whichever entries in flight reach it first. **Both modes ran in this same run, on this machine**")
	if !res.Started.IsZero() {
		w(" (the section's\nrun began %s)", res.Started.Format("2006-01-02 15:04 UTC"))
	}
	w(", on the same pipeline: each scenario in both modes\nback to back, %d repetitions, the mode that goes first alternating.\n\n", res.Reps)
	w("Each run: a fresh campaign (BatchSize per Interval of %d ms), paused while its users are admitted into its line in\n", res.IntervalMs)
	w("Redis (the Redis backend's line); %.0f%% of the users, picked by entry number (the same in both modes of a\n", 100*res.HeldShare)
	w("repetition), already hold a unit, issued by a direct `Store.Issue` under a key that is no line entry's, so their\n")
	w("entries are rejected `duplicate` when they reach the Store. Then the campaign is resumed (just after a paused tick\n")
	w("read it, so the first move comes one Interval later) and a scheduler of its own moves the line → Kafka\n")
	w("(`kafkadispatch`, %d partitions) → %d consumers in one group, each with an issuer on the batch path (a worker per\n", res.Partitions, res.Consumers)
	w("assigned partition, so the last batch's entries reach the Store in varying order) → the Redis Store (`redisstore`),\n")
	w("outcomes recorded in Redis. The scheduler reads the Store's issued count (`scheduler.Config.Issued`, as a node\n")
	w("sets it), which includes the held units. The Store's count reached the stock in every run.\n\n")
	w("- *tail start*: the start of the first scheduler tick that begins once the Store's issued count (held units\n")
	w("  included) has reached Stock − BatchSize — when the issuer's Store call that took it there returned, before the\n")
	w("  outcomes are recorded: the first tick that may find less than a batch of stock undecided. Before it both modes\n")
	w("  move a full batch a tick as long as each batch is decided within an Interval (*capped before the tail*, in the\n")
	w("  runs' details, counts the exact cutoff's ticks that were not).\n")
	w("- *resolved*: the first read of the line's counts (`LineStats`, every %g ms) after the resume with Waiting +\n", res.PollMs)
	w("  InFlight = 0: every entry has an outcome (after the last unit the line is marked sold out and the next tick\n")
	w("  resolves the rest of it in bulk).\n")
	w("- *tail drain*: tail start → resolved; *total drain*: resume → resolved; *last unit*: tail start → the return of\n")
	w("  the Store call that issued the last unit.\n")
	w("- *ticks in the tail*: the scheduler's ticks of the campaign that began from tail start to resolved; *capped*: those\n")
	w("  the cutoff held under BatchSize (`TickEvent.Cutoff`).\n")
	w("- *sold out at the Store*: entries handed downstream that the Store rejected `sold_out` (handed beyond the stock).\n")
	w("- *inversions*: users told sold out while a user with a higher entry number holds a unit.\n\n")
	w("Median (min–max) over the repetitions:\n\n")
	w("| users | stock | batch | held | mode | tail drain s | total drain s | last unit s | ticks in the tail | of them capped | entries moved in the tail | sold out at the Store | inversions: runs with any, max |\n")
	w("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range res.Scenarios {
		for _, mode := range []string{cutoffExact, cutoffBaseline} {
			tail, total := statOf(sc.Runs, mode, tailSec), statOf(sc.Runs, mode, totalSec)
			last := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return r.LastUnitSec })
			ticks := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return float64(r.TailTicks) })
			capped := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return float64(r.CappedTicks) })
			moved := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return float64(r.TailMoved) })
			sold := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return float64(r.StoreSoldOut) })
			inv := statOf(sc.Runs, mode, func(r CutoffRun) float64 { return float64(r.Inversions) })
			withInv, runs := 0, 0
			for _, r := range sc.Runs {
				if r.Mode == mode {
					runs++
					if r.Inversions > 0 {
						withInv++
					}
				}
			}
			name := "exact (default)"
			if mode == cutoffBaseline {
				name = "baseline (`NoCutoff`)"
			}
			w("| %d | %d | %d | %d | %s | %.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) | %s | %s | %s | %s | %d of %d, %.0f |\n",
				sc.Users, sc.Stock, sc.BatchSize, sc.Held, name, tail.med, tail.lo, tail.hi, total.med, total.lo, total.hi,
				last.med, last.lo, last.hi, ticks.count(), capped.count(), moved.count(), sold.count(), withInv, runs, inv.hi)
		}
	}
	w("\nExact over baseline (the ratio of the medians; in brackets the range of the ratios within a repetition):\n\n")
	w("| users | stock | batch | tail drain, exact / baseline | total drain, exact / baseline |\n|---:|---:|---:|---:|---:|\n")
	for _, sc := range res.Scenarios {
		tr, to := pairedRatios(sc.Runs, tailSec), pairedRatios(sc.Runs, totalSec)
		w("| %d | %d | %d | %s (%s) | %s (%s) |\n", sc.Users, sc.Stock, sc.BatchSize,
			ratio(statOf(sc.Runs, cutoffExact, tailSec).med, statOf(sc.Runs, cutoffBaseline, tailSec).med), ratioRange(tr),
			ratio(statOf(sc.Runs, cutoffExact, totalSec).med, statOf(sc.Runs, cutoffBaseline, totalSec).med), ratioRange(to))
	}
	w("\nThe tail is counted in ticks, so its time scales with the Interval (%d ms here; the default is 1 s). The exact\n", res.IntervalMs)
	w("tail's extra ticks come from entries rejected `duplicate` in a capped batch: their units are free only once they\n")
	w("are decided, and the next tick moves that many more entries. With no such rejections (a line of newcomers who\n")
	w("hold nothing) every entry of the capped tick gets a unit, the Store sells out at once, and the exact tail takes as\n")
	w("many ticks as the baseline's.\n\n")
	w("<details><summary>Every run, in the order they ran</summary>\n\n")
	w("| users | stock | rep | mode | tail drain s | total drain s | last unit s | ticks (in the tail, capped; capped before the tail) | handed downstream | issued to the line / duplicates / sold out at the Store / in bulk | inversions |\n")
	w("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range res.Scenarios {
		for _, r := range sc.Runs {
			w("| %d | %d | %d | %s | %.3f | %.3f | %.3f | %d (%d, %d; %d) | %d | %d / %d / %d / %d | %d |\n", sc.Users, sc.Stock, r.Rep, r.Mode,
				r.TailSec, r.TotalSec, r.LastUnitSec, r.Ticks, r.TailTicks, r.CappedTicks, r.CappedBefore, r.Handed,
				r.LineIssued, r.Duplicates, r.StoreSoldOut, r.BulkSold, r.Inversions)
		}
	}
	w("\n</details>\n\n")
	return b.String()
}

// count renders a count's median and range.
func (s cutoffStat) count() string {
	med := strconv.FormatFloat(s.med, 'f', -1, 64)
	if s.lo == s.hi {
		return med
	}
	return fmt.Sprintf("%s (%g–%g)", med, s.lo, s.hi)
}

func ratioRange(rs []float64) string {
	if len(rs) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(rs), slices.Max(rs))
}
