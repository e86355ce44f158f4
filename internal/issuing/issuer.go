package issuing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/lifecycle"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock"
)

// Config configures an Issuer. Zero values take the defaults documented on
// each field.
type Config struct {
	// Consumer delivers entries. Required.
	Consumer couponq.Consumer
	// Store decides and persists each issuance. Required.
	Store couponq.Store
	// Catalog supplies each entry's campaign limits. Required.
	Catalog catalog.Catalog
	// Recorder keeps outcomes so Status reports them (the Queue). Required.
	Recorder couponq.Recorder
	// Locker, if set, is used as the seed uses it: one lock per campaign and
	// user around the Store call. It only cuts contention; nil means no lock.
	Locker lock.Locker
	// LockTTL is the lock's lifetime. Zero means 5s.
	LockTTL time.Duration
	// LockWait is how long to wait for a held lock before handing the entry
	// back for redelivery. Zero means 1s.
	LockWait time.Duration
	// MaxAttempts is how many times a failing Store call is tried for one
	// delivery before the entry is dead-lettered. Zero means 10.
	MaxAttempts int
	// Backoff paces those attempts (and retries of recording the outcome).
	// Zero means 100ms doubling up to 5s, jittered.
	Backoff lock.Backoff
	// DeadLetter receives entries that kept failing. Nil means they are
	// logged at error level. Either way the entry's status becomes
	// rejected/failed: an accepted entry never ends without an outcome.
	DeadLetter issuer.DeadLetter
	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// OnIssue, if set, is called after each entry is decided (a metrics hook).
	OnIssue func(issuer.Event)
	// MaxBatch is the most entries decided together, in one
	// couponq.BatchStore.IssueBatch call and one Record call per campaign.
	// The batch path is taken when the Store is a couponq.BatchStore, the
	// Consumer a couponq.BatchConsumer and Locker is nil (a lock per user
	// around a call that decides many users would serialise unrelated
	// users; the Store's own atomicity is the guard). Zero means 100; 1
	// turns the batch path off.
	MaxBatch int
	// OnOverIssue, if set, is called when the Recorder (a
	// couponq.IssuedCounter) counts more distinct issued entries for a
	// campaign than its Stock: the Store over-issued, for example because
	// each worker ran its own in-memory Store. It is called again only when
	// the count grows further. The issuer logs the same at error level.
	OnOverIssue func(issuer.OverIssue)
	// OnStoreCall, if set, is called after every Store call (Issue, or
	// IssueBatch for a batch), failed ones included: the Store's latency,
	// as a metrics hook. It must be fast and safe for concurrent use.
	OnStoreCall func(issuer.StoreCall)
	// Tracer, if set, starts a couponq.StageConsume span per delivered
	// entry, a child of the trace the entry arrived with (Entry.Trace), and
	// a couponq.StageIssue span, its child, around the Store's decision.
	// Nil means no tracing.
	Tracer couponq.Tracer
}

// timeStore runs one Store call and reports it to OnStoreCall.
func (i *Issuer) timeStore(entries int, call func() error) error {
	if i.cfg.OnStoreCall == nil {
		return call()
	}
	start := time.Now()
	err := call()
	i.cfg.OnStoreCall(issuer.StoreCall{Entries: entries, Duration: time.Since(start), Err: err})
	return err
}

// Issuer consumes delivered entries and decides each through the Store.
type Issuer struct {
	cfg    Config
	log    *slog.Logger
	runner lifecycle.Runner

	counter  couponq.IssuedCounter // the Recorder's, if it counts
	overMu   sync.Mutex
	overSeen map[string]int64 // campaign -> highest over-issued count reported
}

// New validates cfg and returns an Issuer.
func New(cfg Config) (*Issuer, error) {
	if cfg.Consumer == nil || cfg.Store == nil || cfg.Catalog == nil || cfg.Recorder == nil {
		return nil, fmt.Errorf("%w: issuer: Consumer, Store, Catalog and Recorder are required", couponq.ErrInvalidConfig)
	}
	if cfg.LockTTL < 0 || cfg.LockWait < 0 || cfg.MaxAttempts < 0 || cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("%w: issuer: LockTTL, LockWait, MaxAttempts and MaxBatch must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 100
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = 5 * time.Second
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = time.Second
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = 100 * time.Millisecond
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Max = max(5*time.Second, cfg.Backoff.Min)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	it := &Issuer{cfg: cfg, log: log, overSeen: map[string]int64{}}
	it.counter, _ = cfg.Recorder.(couponq.IssuedCounter)
	return it, nil
}

// Batching reports whether Run takes the batch path (see Config.MaxBatch).
func (i *Issuer) Batching() bool {
	_, bs := i.cfg.Store.(couponq.BatchStore)
	_, bc := i.cfg.Consumer.(couponq.BatchConsumer)
	return bs && bc && i.cfg.Locker == nil && i.cfg.MaxBatch > 1
}

// Run consumes until ctx is done, waits for the entries in hand, and returns
// nil (or the Consumer's error if it cannot go on).
func (i *Issuer) Run(ctx context.Context) error {
	if i.Batching() {
		return i.cfg.Consumer.(couponq.BatchConsumer).ConsumeBatches(ctx, i.cfg.MaxBatch, i.HandleBatch)
	}
	return i.cfg.Consumer.Consume(ctx, i.Handle)
}

// Start runs the issuer in a goroutine until Stop.
func (i *Issuer) Start(ctx context.Context) error { return i.runner.Start(ctx, i.Run) }

// Stop ends a run begun by Start and waits for it (or for ctx). Safe to call twice.
func (i *Issuer) Stop(ctx context.Context) error { return i.runner.Stop(ctx) }

// errPermanent marks failures no retry can fix.
var errPermanent = errors.New("issuer: permanent failure")

// Handle decides one entry: lock, Store, record, unlock. It returns nil once
// the outcome is recorded (or the entry is dead-lettered and recorded as
// failed), and an error when the delivery should be retried later. It is the
// couponq.Handler the Issuer gives its Consumer, exported for hosts that
// drive their own consumer loop.
func (i *Issuer) Handle(ctx context.Context, e couponq.Entry) (err error) {
	start := time.Now()
	if span := i.startSpan(ctx, couponq.StageConsume, &e); span != nil {
		// A dead-lettered entry returns nil (its failure is recorded), but
		// its span ends with the reason.
		var dead error
		ctx = context.WithValue(ctx, deadReasonKey{}, &dead)
		defer func() { span.End(cmp.Or(err, dead)) }()
	}
	if err := (couponq.Request{Campaign: e.Campaign, User: e.User, RequestID: e.RequestID}).Validate(); err != nil {
		return i.deadLetter(ctx, e, fmt.Errorf("%w: %w", errPermanent, err))
	}
	c, err := i.cfg.Catalog.Campaign(ctx, e.Campaign)
	if errors.Is(err, couponq.ErrUnknownCampaign) {
		return i.deadLetter(ctx, e, fmt.Errorf("%w: %w", errPermanent, err))
	}
	if err != nil {
		return fmt.Errorf("issuer: catalog: %w", err)
	}
	c = c.WithDefaults()

	if i.cfg.Locker == nil {
		return i.decide(ctx, c, e, start)
	}
	key := "couponq:issue:" + e.Campaign + ":" + e.User
	lk, err := lock.Acquire(ctx, i.cfg.Locker, key, i.cfg.LockTTL, i.cfg.LockWait, lock.Backoff{})
	switch {
	case errors.Is(err, lock.ErrNotObtained):
		// Someone is deciding this user right now; by redelivery the Store
		// will have their answer.
		return fmt.Errorf("issuer: %w: %w", couponq.ErrBusy, err)
	case err != nil:
		// A lock backend failure is no reason to stop: the Store decides.
		i.log.Warn("couponq: issuer proceeds without lock", "key", key, "err", err)
		return i.decide(ctx, c, e, start)
	}
	defer func() {
		if err := lk.Release(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, lock.ErrLockLost) {
			i.log.Warn("couponq: issuer lock release", "key", key, "err", err)
		}
	}()
	// If the lock is lost mid-way the work is cancelled and the entry comes
	// again; the Store answers the redelivery with the same outcome.
	return lock.Keep(ctx, lk, i.cfg.LockTTL, func(ctx context.Context) error { return i.decide(ctx, c, e, start) })
}

// decide asks the Store (with retries) and records the outcome.
func (i *Issuer) decide(ctx context.Context, c couponq.Campaign, e couponq.Entry, start time.Time) error {
	req := issueRequest(c, e)
	var iss couponq.Issuance
	sctx, span := i.startSpanCtx(ctx, couponq.StageIssue, &couponq.Entry{Campaign: e.Campaign, User: e.User, Number: e.Number, RequestID: e.RequestID, Trace: e.Trace})
	attempts, err := i.retry(ctx, i.cfg.MaxAttempts, func() error {
		return i.timeStore(1, func() error {
			var err error
			iss, err = i.cfg.Store.Issue(sctx, req) // the Store's own spans, if any, are the issue span's children
			return err
		})
	})
	if span != nil {
		span.End(issueErr(iss, err))
	}
	if err != nil {
		if ctx.Err() != nil {
			return err // stopping, or the lock was lost: leave it for redelivery
		}
		return i.deadLetter(ctx, e, fmt.Errorf("store failed %d times: %w", attempts, err))
	}
	res, ok := result(e, iss)
	if !ok {
		return i.deadLetter(ctx, e, fmt.Errorf("%w: store answered unknown outcome %d", errPermanent, iss.Outcome))
	}
	if err := i.record(ctx, res, iss.SoldOut || iss.Outcome == couponq.SoldOut); err != nil {
		return err
	}
	if res.State == couponq.StateIssued {
		i.checkOverIssue(ctx, c)
	}
	if i.cfg.OnIssue != nil {
		i.cfg.OnIssue(issuer.Event{Entry: e, Result: res, Attempts: attempts, Duration: time.Since(start)})
	}
	return nil
}

// issueRequest is what the Store is asked for entry e of campaign c: the
// campaign's incarnation by its store name (Campaign.StoreCampaign), so a
// re-created ID shares nothing with the incarnations before it.
func issueRequest(c couponq.Campaign, e couponq.Entry) couponq.IssueRequest {
	return couponq.IssueRequest{Campaign: c.StoreCampaign(), User: e.User, Key: c.StoreKey(e), Stock: c.Stock, PerUserLimit: c.PerUserLimit}
}

// startSpan starts the span of stage for *e, a child of the trace e carries,
// and makes e carry the new span's trace (so the next stage is its child).
// Nil without a Tracer.
func (i *Issuer) startSpan(ctx context.Context, stage string, e *couponq.Entry) couponq.Span {
	_, span := i.startSpanCtx(ctx, stage, e)
	return span
}

// startSpanCtx is startSpan that also returns the span's context (ctx
// without a Tracer).
func (i *Issuer) startSpanCtx(ctx context.Context, stage string, e *couponq.Entry) (context.Context, couponq.Span) {
	if i.cfg.Tracer == nil {
		return ctx, nil
	}
	ctx, span := i.cfg.Tracer.Start(ctx, stage, *e)
	if c := couponq.TraceFor(span); c != "" {
		e.Trace = c
	}
	return ctx, span
}

// deadReasonKey carries, in a traced Handle's context, where deadLetter
// leaves its reason for the consume span.
type deadReasonKey struct{}

// issueErr is what an issue span ends with: the Store's error, or the
// business outcome as couponq's sentinel (a Tracer can tell those apart
// from failures with couponq.Code).
func issueErr(iss couponq.Issuance, err error) error {
	switch {
	case err != nil:
		return err
	case iss.Outcome == couponq.SoldOut:
		return couponq.ErrSoldOut
	case iss.Outcome == couponq.Duplicate:
		return couponq.ErrDuplicate
	}
	return nil
}

// result turns the Store's answer into the recorded result; ok is false for
// an outcome the issuer does not know.
func result(e couponq.Entry, iss couponq.Issuance) (couponq.Result, bool) {
	res := couponq.Result{Entry: e}
	switch iss.Outcome {
	case couponq.Issued:
		res.State, res.IssuanceID = couponq.StateIssued, iss.ID
	case couponq.Duplicate:
		res.State, res.Reason = couponq.StateRejected, couponq.CodeDuplicate
	case couponq.SoldOut:
		res.State, res.Reason = couponq.StateRejected, couponq.CodeSoldOut
	default:
		return res, false
	}
	return res, true
}

// checkOverIssue compares the recorded issuances with the stock and reports
// an over-issue once per growth of the count. A failed read is only logged:
// the check is a detector, not a guard.
func (i *Issuer) checkOverIssue(ctx context.Context, c couponq.Campaign) {
	if i.counter == nil {
		return
	}
	n, err := i.counter.IssuedCount(ctx, c.ID)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the next delivery checks again
		}
		i.log.Warn("couponq: issuer could not read the issued count", "campaign", c.ID, "err", err)
		return
	}
	if n <= c.Stock {
		return
	}
	i.overMu.Lock()
	report := n > i.overSeen[c.ID]
	if report {
		i.overSeen[c.ID] = n
	}
	i.overMu.Unlock()
	if !report {
		return
	}
	i.log.Error("couponq: OVER-ISSUE: recorded issuances exceed the campaign's stock; the Store is not enforcing it (is each worker running its own in-memory Store?)",
		"campaign", c.ID, "issued", n, "stock", c.Stock)
	if i.cfg.OnOverIssue != nil {
		i.cfg.OnOverIssue(issuer.OverIssue{Campaign: c.ID, Issued: n, Stock: c.Stock})
	}
}

// record stores the outcome (and the sold-out mark), retrying until ctx is
// done; an error hands the entry back for redelivery, where the Store gives
// the same outcome again.
func (i *Issuer) record(ctx context.Context, res couponq.Result, soldOut bool) error {
	if err := i.recordAll(ctx, res.Entry.Campaign, []couponq.Result{res}, soldOut); err != nil {
		return fmt.Errorf("issuer: record outcome of %s: %w", res.Entry.Key(), err)
	}
	return nil
}

// recordAll records results of one campaign in one Record call (and the
// sold-out mark), with retries.
func (i *Issuer) recordAll(ctx context.Context, campaign string, results []couponq.Result, soldOut bool) error {
	_, err := i.retry(ctx, i.cfg.MaxAttempts, func() error {
		if err := i.cfg.Recorder.Record(ctx, campaign, results...); err != nil {
			return err
		}
		if soldOut {
			return i.cfg.Recorder.MarkSoldOut(ctx, campaign)
		}
		return nil
	})
	return err
}

func (i *Issuer) deadLetter(ctx context.Context, e couponq.Entry, reason error) error {
	if dead, ok := ctx.Value(deadReasonKey{}).(*error); ok {
		*dead = reason
	}
	if i.cfg.DeadLetter != nil {
		if err := i.cfg.DeadLetter.DeadLetter(ctx, e, reason); err != nil {
			return fmt.Errorf("issuer: dead-letter %s: %w", e.Key(), err)
		}
	} else {
		i.log.Error("couponq: entry dead-lettered", "key", e.Key(), "reason", reason)
	}
	res := couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeFailed}
	if err := i.record(ctx, res, false); err != nil {
		return err
	}
	if i.cfg.OnIssue != nil {
		i.cfg.OnIssue(issuer.Event{Entry: e, Result: res})
	}
	return nil
}

// retry calls fn up to attempts times with jittered exponential backoff,
// stopping early on success, a permanent error or ctx. It returns how many
// calls it made and the last error.
func (i *Issuer) retry(ctx context.Context, attempts int, fn func() error) (int, error) {
	delay := i.cfg.Backoff.Min
	for n := 1; ; n++ {
		err := fn()
		if err == nil || n >= attempts || errors.Is(err, errPermanent) {
			return n, err
		}
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return n, errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, i.cfg.Backoff.Max)
	}
}
