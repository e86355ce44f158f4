package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/memline"

	"github.com/couponq/couponq/lock"
)

// Config configures a Service. Zero values take the defaults documented on
// each field.
type Config struct {
	// Catalog looks campaigns up. Required.
	Catalog catalog.Catalog
	// Queue holds V2 lines and the recorded outcomes of both modes, which
	// Status reads. Required.
	Queue couponq.Queue
	// Agenda is woken by V2 admissions, so a scheduler.Scheduler drives the
	// campaign (see Service.Admit). Nil means the Queue, if it implements
	// Agenda (both shipped lines are); otherwise admission wakes nothing.
	Agenda couponq.Agenda

	// Tally, Locker and Dispatcher serve V1 (ValidateFirst) campaigns and
	// are required only if the Catalog has one. V2 admission never touches
	// them.
	Tally      couponq.Tally
	Locker     lock.Locker
	Dispatcher couponq.Dispatcher
	// LockScope picks V1's lock key: per user (zero value) or per campaign.
	LockScope couponq.LockScope
	// LockTTL is how long a V1 lock lives if its holder dies. Zero means 5s.
	LockTTL time.Duration
	// LockWait is how long V1 admission waits for its lock before ErrBusy.
	// Zero means 2s.
	LockWait time.Duration
	// LockBackoff paces V1's retries while waiting for the lock.
	LockBackoff lock.Backoff

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// OnAdmit, if set, is called after every admission attempt (a metrics
	// hook). It must be fast and safe for concurrent use.
	OnAdmit func(couponq.AdmitEvent)
	// Tracer, if set, starts a StageAdmit span for every admission (a child
	// of the span in the request's context) and, for a fresh entry, stores
	// its trace with the entry (Admission.Trace; V1's entry carries it to
	// the Dispatcher), so the entry's later stages join the same trace.
	// Nil means no tracing.
	Tracer couponq.Tracer
}

// Service admits requests and answers status, in the mode each campaign
// selects. It is safe for concurrent use and starts no goroutines.
type Service struct {
	cfg Config
	log *slog.Logger
	// woke holds, per campaign, when this process last woke it (unix ns,
	// *atomic.Int64), so admission pre-marks a campaign at most once per
	// premarkEvery.
	woke  sync.Map
	wokeN atomic.Int64 // entries in woke, about (see remembered)
	// sealed holds the campaigns (ID and OpensAt) whose pre-queue this
	// process has marked the end of (Seater.Seal).
	sealed  sync.Map
	sealedN atomic.Int64
}

// premarkEvery is how often, at most, this process wakes a campaign before
// admitting to it.
const premarkEvery = time.Second

// rememberMax bounds woke and sealed, which hold only campaigns the Catalog
// knows, but every one of them a long-lived process ever admitted to:
// past it, a map starts over. What they remember only saves a round trip
// (a wake, a seal; both idempotent), so forgetting costs one more of it
// per campaign.
const rememberMax = 4096

// remembered counts one more entry of m and clears m past rememberMax.
func remembered(m *sync.Map, n *atomic.Int64) {
	if c := n.Add(1); c > rememberMax && n.CompareAndSwap(c, 0) {
		m.Clear()
	}
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Catalog == nil {
		return nil, fmt.Errorf("%w: Catalog is required", couponq.ErrInvalidConfig)
	}
	if cfg.Queue == nil {
		return nil, fmt.Errorf("%w: Queue is required", couponq.ErrInvalidConfig)
	}
	if cfg.LockTTL < 0 || cfg.LockWait < 0 {
		return nil, fmt.Errorf("%w: LockTTL and LockWait must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.LockScope != couponq.LockPerUser && cfg.LockScope != couponq.LockPerCampaign {
		return nil, fmt.Errorf("%w: unknown LockScope %d", couponq.ErrInvalidConfig, cfg.LockScope)
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = 5 * time.Second
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Agenda == nil {
		cfg.Agenda, _ = cfg.Queue.(couponq.Agenda)
	}
	svc := &Service{cfg: cfg, log: loggerOrDiscard(cfg.Logger)}
	if err := svc.checkModes(); err != nil {
		return nil, err
	}
	return svc, nil
}

// v1Ready reports whether the Service has what V1 admission needs.
func (s *Service) v1Ready() bool {
	return s.cfg.Tally != nil && s.cfg.Locker != nil && s.cfg.Dispatcher != nil
}

// checkModes refuses a Service without V1's backends whose in-memory
// Campaigns catalog lists a V1 campaign, so the gap shows at New rather than
// at the first admission. (A shared Registry is not read here: New does no
// I/O; a V1 campaign created there later gets ErrUnsupported.)
func (s *Service) checkModes() error {
	k, ok := s.cfg.Catalog.(*memline.Registry)
	if !ok || s.v1Ready() {
		return nil
	}
	cs, _ := k.List(context.Background()) // in memory: never fails
	for _, c := range cs {
		if c.Mode == couponq.ValidateFirst {
			return fmt.Errorf("%w: campaign %s is V1 (validate-first): Tally, Locker and Dispatcher are required", couponq.ErrInvalidConfig, c.ID)
		}
	}
	return nil
}

// Admit puts the request's user in line (V2) or through the gate (V1).
// Before OpensAt, a campaign with a pre-queue admits to it: the ticket has
// PreQueue set and no Position until the scheduler seats the pre-queue at
// OpensAt (the Queue must be a Seater).
//
// On success the ticket is fresh, or a repeat of the user's waiting or in
// flight entry (Ticket.Repeat). A user already served gets the earlier ticket
// with ErrDuplicate (issued) or ErrSoldOut (rejected); other errors wrap
// ErrInvalidID, ErrUnknownCampaign, ErrNotOpen, ErrClosed, ErrSoldOut,
// ErrBusy (V1 lock wait) or ErrUnavailable (a backend failed; nothing was
// accepted).
//
// A V2 admission wakes the campaign on the Agenda, so the scheduler drives
// it: before writing, if this process has not woken the campaign within the
// last second (a failure then admits nothing and answers ErrUnavailable),
// and again after writing a fresh entry into an empty line (Position 1;
// a failure then is only logged, the first wake covers it). A repeat writes
// nothing and wakes nothing more. The dispatch package's doc explains why
// this never leaves an entry unserved short of a crash in one round trip.
func (s *Service) Admit(ctx context.Context, r couponq.Request) (couponq.Ticket, error) {
	start := time.Now()
	ev := couponq.AdmitEvent{Campaign: r.Campaign}
	var span couponq.Span
	var trace string
	if s.cfg.Tracer != nil {
		ctx, span = s.cfg.Tracer.Start(ctx, couponq.StageAdmit, couponq.Entry{Campaign: r.Campaign, User: r.User, RequestID: r.RequestID})
		trace = couponq.TraceFor(span)
	}
	t, err := s.admit(ctx, r, &ev, trace)
	if span != nil {
		span.End(err)
	}
	if s.cfg.OnAdmit != nil {
		ev.Err, ev.Code, ev.Repeat, ev.Duration = err, couponq.Code(err), t.Repeat, time.Since(start)
		s.cfg.OnAdmit(ev)
	}
	return t, err
}

func (s *Service) admit(ctx context.Context, r couponq.Request, ev *couponq.AdmitEvent, trace string) (couponq.Ticket, error) {
	if err := r.Validate(); err != nil {
		return couponq.Ticket{}, err
	}
	c, err := s.campaign(ctx, r.Campaign)
	if err != nil {
		return couponq.Ticket{}, err
	}
	ev.Mode = c.Mode
	now := s.cfg.Now()
	if err := c.CheckWindow(now); err != nil {
		return couponq.Ticket{}, fmt.Errorf("%w: %s", err, c.ID)
	}
	if c.Mode == couponq.ValidateFirst {
		return s.admitV1(ctx, c, r, now, ev, trace)
	}
	pre := c.InPreQueue(now)
	if err := s.seal(ctx, c, pre); err != nil {
		return couponq.Ticket{}, err
	}
	if err := s.premark(ctx, c.ID, now); err != nil {
		return couponq.Ticket{}, err
	}
	t, err := s.cfg.Queue.Admit(ctx, couponq.Admission{
		Campaign: c.ID, User: r.User, RequestID: r.RequestID,
		PerUserLimit: c.PerUserLimit, MaxWaiting: c.MaxWaiting, At: now, Trace: trace,
	})
	if err != nil {
		return couponq.Ticket{}, backendErr("admit", err)
	}
	if !t.Repeat && t.Position == 1 {
		s.wakeAfter(ctx, c.ID, now)
	}
	if pre && t.State == couponq.StateWaiting {
		// The place is drawn at OpensAt: none to tell yet.
		t.PreQueue, t.Position, t.Claimed = true, 0, -1
		return t, repeatErr(t)
	}
	t.BeyondStock = c.BeyondStock(t.Position, t.Claimed)
	if !t.BeyondStock {
		t.EstimatedWait, _ = c.EstimateWait(t.Position, t.Claimed) // none while paused
	}
	return t, repeatErr(t)
}

// seal makes sure, once per process and opening, that a campaign with a
// pre-queue has its pre-queue's end marked (Seater.Seal) before this
// process admits anyone at or after OpensAt: every process marks before
// its first such admission, so the first mark comes before any of them.
func (s *Service) seal(ctx context.Context, c couponq.Campaign, pre bool) error {
	if c.PreQueue <= 0 {
		return nil
	}
	seater, ok := s.cfg.Queue.(couponq.Seater)
	if !ok {
		return fmt.Errorf("%w: campaign %s has a pre-queue, but the Queue cannot seat it (Seater)", couponq.ErrUnsupported, c.ID)
	}
	if pre {
		return nil
	}
	key := c.ID + "\x00" + c.OpensAt.String()
	if _, done := s.sealed.Load(key); done {
		return nil
	}
	if err := seater.Seal(ctx, c.ID); err != nil {
		return backendErr("seal", err)
	}
	if _, loaded := s.sealed.LoadOrStore(key, true); !loaded {
		remembered(&s.sealed, &s.sealedN)
	}
	return nil
}

// premark wakes the campaign before an admission, unless this process woke
// it within premarkEvery. Of concurrent admissions the first claims the
// wake and the others go on; a failed wake gives the claim back.
func (s *Service) premark(ctx context.Context, campaign string, now time.Time) error {
	if s.cfg.Agenda == nil {
		return nil
	}
	v, ok := s.woke.Load(campaign)
	if !ok {
		var loaded bool
		if v, loaded = s.woke.LoadOrStore(campaign, new(atomic.Int64)); !loaded {
			remembered(&s.woke, &s.wokeN)
		}
	}
	last := v.(*atomic.Int64)
	prev, at := last.Load(), now.UnixNano()
	if prev != 0 && at-prev < int64(premarkEvery) && at >= prev {
		return nil
	}
	if !last.CompareAndSwap(prev, at) {
		return nil // a concurrent admission claimed it
	}
	if err := s.cfg.Agenda.Wake(ctx, campaign); err != nil {
		last.CompareAndSwap(at, 0)
		return backendErr("wake", err)
	}
	return nil
}

// wakeAfter wakes the campaign after an admission wrote the first entry of
// an empty line. The entry is in, so the wake goes on even if the caller
// has gone; its failure is logged, the pre-mark having covered it.
func (s *Service) wakeAfter(ctx context.Context, campaign string, now time.Time) {
	if s.cfg.Agenda == nil {
		return
	}
	if err := s.cfg.Agenda.Wake(context.WithoutCancel(ctx), campaign); err != nil {
		s.log.Warn("couponq: wake after admission", "campaign", campaign, "err", err)
		return
	}
	if v, ok := s.woke.Load(campaign); ok {
		v.(*atomic.Int64).Store(now.UnixNano())
	}
}

// repeatErr turns a repeat of a served entry into the error the caller
// should see, keeping the ticket.
func repeatErr(t couponq.Ticket) error {
	if !t.Repeat {
		return nil
	}
	switch t.State {
	case couponq.StateIssued:
		return couponq.ErrDuplicate
	case couponq.StateRejected:
		return couponq.ErrSoldOut
	}
	return nil
}

// admitV1 is the seed's validate-first gate: lock, SADD, INCR with rollback
// on overflow, publish, answer.
func (s *Service) admitV1(ctx context.Context, c couponq.Campaign, r couponq.Request, now time.Time, ev *couponq.AdmitEvent, trace string) (couponq.Ticket, error) {
	if !s.v1Ready() {
		return couponq.Ticket{}, fmt.Errorf("%w: campaign %s is V1 (validate-first) but the Service has no Tally, Locker or Dispatcher", couponq.ErrUnsupported, c.ID)
	}
	key := "couponq:v1:" + c.ID
	if s.cfg.LockScope == couponq.LockPerUser {
		key += ":" + r.User
	}
	lockStart := time.Now()
	lk, err := lock.Acquire(ctx, s.cfg.Locker, key, s.cfg.LockTTL, s.cfg.LockWait, s.cfg.LockBackoff)
	ev.LockWait = time.Since(lockStart)
	if err != nil {
		if errors.Is(err, lock.ErrNotObtained) {
			return couponq.Ticket{}, fmt.Errorf("%w: %w", couponq.ErrBusy, err)
		}
		return couponq.Ticket{}, backendErr("lock", err)
	}
	defer func() {
		// A lost lock here only means another request may have overlapped;
		// the Store still decides.
		if err := lk.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("couponq: v1 lock release", "key", key, "err", err)
		}
	}()

	tally := s.cfg.Tally
	added, err := tally.Add(ctx, c.ID, r.User)
	if err != nil {
		return couponq.Ticket{}, backendErr("v1 add", err)
	}
	if !added {
		t := couponq.Ticket{Campaign: c.ID, User: r.User, Repeat: true, State: couponq.StateInFlight}
		if st, err := s.cfg.Queue.Status(ctx, c.ID, r.User); err == nil {
			t.Entry, t.State = st.Entry, st.State
		}
		if t.State == couponq.StateRejected {
			return t, couponq.ErrSoldOut
		}
		return t, couponq.ErrDuplicate
	}
	// rollback undoes the gate's writes; it runs detached from ctx so a
	// cancelled request still cleans up.
	rollback := func(counted bool) {
		rctx := context.WithoutCancel(ctx)
		if counted {
			if _, err := tally.Incr(rctx, c.ID, -1); err != nil {
				s.log.Error("couponq: v1 rollback decr", "campaign", c.ID, "err", err)
			}
		}
		if err := tally.Remove(rctx, c.ID, r.User); err != nil {
			s.log.Error("couponq: v1 rollback remove", "campaign", c.ID, "user", r.User, "err", err)
		}
	}
	n, err := tally.Incr(ctx, c.ID, 1)
	if err != nil {
		rollback(false)
		return couponq.Ticket{}, backendErr("v1 incr", err)
	}
	if n > c.Stock {
		rollback(true)
		return couponq.Ticket{}, fmt.Errorf("%w: %s", couponq.ErrSoldOut, c.ID)
	}
	e := couponq.Entry{Campaign: c.ID, User: r.User, Number: n, AdmittedAt: now, RequestID: r.RequestID, Trace: trace}
	if err := s.cfg.Dispatcher.Dispatch(ctx, []couponq.Entry{e}); err != nil {
		// The entry may still have reached the transport; if it did, the
		// Store's idempotency key (which includes the user) absorbs it.
		rollback(true)
		return couponq.Ticket{}, backendErr("v1 dispatch", err)
	}
	return couponq.Ticket{Campaign: c.ID, User: r.User, Entry: n, State: couponq.StateInFlight}, nil
}

// Status reports where the user's entry stands; ErrNotFound if the user has none.
func (s *Service) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	if err := (couponq.Request{Campaign: campaign, User: user}).Validate(); err != nil {
		return couponq.Status{}, err
	}
	c, err := s.campaign(ctx, campaign)
	if errors.Is(err, couponq.ErrUnknownCampaign) {
		// A deleted campaign's outcomes may still be kept (Archiver's
		// retention): a final answer is still the user's to read.
		if st, qerr := s.cfg.Queue.Status(ctx, campaign, user); qerr == nil && st.State.Terminal() {
			return st, nil
		}
		return couponq.Status{}, err
	}
	if err != nil {
		return couponq.Status{}, err
	}
	st, err := s.cfg.Queue.Status(ctx, campaign, user)
	switch {
	case err == nil && st.State == couponq.StateWaiting && c.PreQueue > 0 && s.cfg.Now().Before(c.OpensAt):
		st.PreQueue, st.Position, st.Claimed = true, 0, -1
		return st, nil
	case err == nil:
		st.BeyondStock = c.BeyondStock(st.Position, st.Claimed)
		if !st.BeyondStock {
			st.EstimatedWait, _ = c.EstimateWait(st.Position, st.Claimed) // none while paused
		}
		return st, nil
	case !errors.Is(err, couponq.ErrNotFound):
		return couponq.Status{}, backendErr("status", err)
	case c.Mode != couponq.ValidateFirst || s.cfg.Tally == nil:
		return couponq.Status{}, err
	}
	// V1: a user who passed the gate and has no recorded outcome yet is in flight.
	in, err := s.cfg.Tally.Has(ctx, campaign, user)
	if err != nil {
		return couponq.Status{}, backendErr("status", err)
	}
	if !in {
		return couponq.Status{}, fmt.Errorf("%w: %s/%s", couponq.ErrNotFound, campaign, user)
	}
	return couponq.Status{Campaign: campaign, User: user, State: couponq.StateInFlight}, nil
}

func (s *Service) campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	c, err := s.cfg.Catalog.Campaign(ctx, id)
	if err != nil {
		if errors.Is(err, couponq.ErrUnknownCampaign) {
			return couponq.Campaign{}, err
		}
		return couponq.Campaign{}, backendErr("catalog", err)
	}
	return c.WithDefaults(), nil
}

// backendErr passes couponq's own sentinels and context errors through and
// marks anything else as ErrUnavailable.
func backendErr(op string, err error) error {
	for _, known := range []error{couponq.ErrSoldOut, couponq.ErrInvalidID, couponq.ErrNotFound, couponq.ErrUnavailable, couponq.ErrUnknownCampaign,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("%w: %s: %w", couponq.ErrUnavailable, op, err)
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
