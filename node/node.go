package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/internal/admission"
	"github.com/couponq/couponq/internal/catalog"
	"github.com/couponq/couponq/internal/health"
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/internal/shard"
	"github.com/couponq/couponq/issuer"
	"github.com/couponq/couponq/lock"
)

// Role is what a node runs.
type Role uint8

const (
	// RoleAPI serves admission and status.
	RoleAPI Role = 1 << iota
	// RoleWorker runs the scheduler and the issuer.
	RoleWorker
	// RoleAll is both; the zero Roles means RoleAll.
	RoleAll = RoleAPI | RoleWorker
)

// String returns "api", "worker" or "api+worker".
func (r Role) String() string {
	var parts []string
	if r&RoleAPI != 0 {
		parts = append(parts, "api")
	}
	if r&RoleWorker != 0 {
		parts = append(parts, "worker")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// ParseRoles reads "api", "worker", "all" or "api,worker".
func ParseRoles(s string) (Role, error) {
	var r Role
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "api":
			r |= RoleAPI
		case "worker":
			r |= RoleWorker
		case "all", "api+worker":
			r |= RoleAll
		default:
			return 0, fmt.Errorf("%w: node: unknown role %q (want api, worker or all)", couponq.ErrInvalidConfig, p)
		}
	}
	return r, nil
}

// Config configures a Node: one value per external system, then tuning.
// Zero values take the defaults documented on each field; no field is
// changed behind the host's back.
type Config struct {
	// Roles picks what this process runs. Zero means RoleAll.
	Roles Role

	// Backend is the system the fleet shares for lines, campaigns and
	// locks: redisq.New's. The zero Backend means memory.New(): one process
	// only.
	Backend couponq.Backend
	// Transport carries entries from the scheduler to the issuers (and V1
	// admissions to the issuers): kafkadispatch.New's. Nil means the
	// in-memory transport, which only serves one process.
	Transport couponq.Transport
	// Store decides and keeps issuances, shared by every worker: pgstore or
	// redisstore. Nil means memory.NewStore() with the in-memory Backend;
	// with a shared Backend a worker needs one (each would otherwise enforce
	// the stock on its own), an API-only node does not.
	Store couponq.Store
	// Observer is told of every admission, scheduler tick, decision and
	// Store call, for metrics (prom.New's, metrics.NewExpvar's). Nil means
	// none.
	Observer Observer
	// Tracer traces each entry's journey (tracing.New's). Nil means none.
	Tracer couponq.Tracer
	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// DeadLetter receives entries the issuer gave up on after MaxAttempts
	// (they are recorded rejected/failed either way). Nil means they are
	// logged at error level.
	DeadLetter issuer.DeadLetter
	// ReadinessChecks are the host's own readiness checks, by name, run
	// beside the node's (its Backend, Store and Transport). Nil means none.
	ReadinessChecks map[string]func(context.Context) error

	// CacheTTL is how long this process serves a campaign from its cache
	// before reading the registry again: the bound on how long a change
	// made elsewhere takes to reach it. Zero means 1s; negative reads the
	// registry on every use.
	CacheTTL time.Duration
	// LeaderTTL is how long the scheduler's leader lease outlives a leader
	// that stopped: a standby takes over within 4/3 of it. Zero means 10s;
	// otherwise at least 10ms.
	LeaderTTL time.Duration
	// PollInterval is how often the leading scheduler looks for campaigns
	// that woke. The Redis and in-memory backends also announce each wake,
	// so a woken campaign is moved at once and PollInterval only bounds the
	// wait when an announcement is lost (a Redis connection down). Zero
	// means 1s.
	PollInterval time.Duration
	// LeaseTTL is how long a leased batch may take to be dispatched before
	// its entries return to the line. Zero means 30s.
	LeaseTTL time.Duration
	// HandoffTimeout is how long after a dispatch an entry's outcome may
	// take before the entry is dispatched again (the Store absorbs the
	// duplicate). Zero means 5m.
	HandoffTimeout time.Duration
	// DispatchTimeout bounds one dispatch to the Transport. Zero means
	// LeaseTTL/2.
	DispatchTimeout time.Duration
	// SweepInterval is how often the leader also looks for lines that
	// missed their wake-up, besides once when it gains leadership. Zero
	// means only then; negative never.
	SweepInterval time.Duration
	// MoveWorkers is how many campaigns are moved at once. Zero means 16.
	MoveWorkers int
	// MaxInFlightBatches, if positive, bounds what a campaign may have
	// handed downstream and not yet decided to MaxInFlightBatches ×
	// BatchSize: when consumers stall, the backlog waits in the line and the
	// Store never sees more than that at once when they return. Zero means
	// no bound.
	MaxInFlightBatches int
	// MaxBatch is the most entries the issuer decides with one Store call
	// (when the Store is a couponq.BatchStore and UserLock is off). Zero
	// means 100; 1 decides one entry per call.
	MaxBatch int
	// MaxAttempts is how many times a failing Store call is tried for one
	// delivery before the entry is dead-lettered. Zero means 10.
	MaxAttempts int
	// RetryBackoff paces those attempts. Zero means 100ms doubling up to 5s,
	// jittered.
	RetryBackoff lock.Backoff
	// UserLock makes the issuer take a lock per campaign and user around
	// each Store call, as the design's consumer does. It only cuts
	// contention (the Store is the guard) and turns the batch path off.
	UserLock bool
	// LockScope picks V1's lock: per user (the zero value) or per campaign.
	LockScope couponq.LockScope
	// LockTTL is how long a lock (V1's, the issuer's per-user one) lives if
	// its holder dies. Zero means 5s.
	LockTTL time.Duration
	// LockWait is how long V1 admission (and the issuer, with UserLock)
	// waits for a held lock. Zero means 2s for V1 and 1s for the issuer.
	LockWait time.Duration
}

// Node is couponq's runtime object: admission and status (RoleAPI), the
// scheduler and the issuer (RoleWorker), the operators' verbs on campaigns,
// the HTTP handlers, and readiness. Its methods are safe for concurrent use.
type Node struct {
	cfg       Config
	backend   couponq.Backend
	transport couponq.Transport
	store     couponq.Store
	queue     line // the Backend's, behind the sub-line wrapper when it can carry one
	cache     *catalog.Cache
	read      catalog.Catalog // the cache, or the registry itself
	ops       *catalog.Ops
	svc       *admission.Service
	scheduler *scheduler.Scheduler
	issuer    *issuing.Issuer
	log       *slog.Logger
	memory    bool // the Backend is the in-memory one (memory.New)
	local     bool // the Transport is the in-memory one the node made

	healthOnce sync.Once
	health     *health.Handler

	mu       sync.Mutex
	started  bool
	stopped  bool
	handlers []interface{ Close() } // to close at Stop
}

// New validates cfg and builds the node; nothing runs until Start.
func New(cfg Config) (*Node, error) {
	if cfg.Roles == 0 {
		cfg.Roles = RoleAll
	}
	if cfg.Roles&^RoleAll != 0 {
		return nil, fmt.Errorf("%w: node: unknown roles %d", couponq.ErrInvalidConfig, cfg.Roles)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, backend: cfg.Backend, transport: cfg.Transport, store: cfg.Store, log: log}
	if b := n.backend; b.Queue == nil && b.Registry == nil && b.Locker == nil && b.Tally == nil && b.Ping == nil {
		n.backend = memory.New()
	}
	_, n.memory = n.backend.Queue.(*memline.Queue)
	switch {
	case n.store != nil:
	case n.memory:
		n.store = memory.NewStore()
	case cfg.Roles&RoleWorker != 0:
		return nil, fmt.Errorf("%w: node: a worker needs a Store with the %s Backend (a Store every worker shares: pgstore, redisstore)",
			couponq.ErrInvalidConfig, n.backend.Name)
	}
	if n.transport == nil {
		t, err := dispatch.NewMemory(dispatch.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		n.transport, n.local = t, true
	}
	if err := checkBackend(n.backend); err != nil {
		return nil, err
	}
	for name, check := range cfg.ReadinessChecks {
		if name == "" || check == nil || name == "store" || name == "transport" || name == n.backend.Name || name == "backend" {
			return nil, fmt.Errorf("%w: node: ReadinessChecks[%q]: a check needs a name of its own (not the Backend's, \"store\" or \"transport\") and a func",
				couponq.ErrInvalidConfig, name)
		}
	}
	agenda := n.backend.Queue.(couponq.Agenda)

	n.read = n.backend.Registry
	if cfg.CacheTTL >= 0 {
		cache, err := catalog.NewCache(n.backend.Registry, catalog.CacheConfig{TTL: cfg.CacheTTL, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		n.cache, n.read = cache, cache
	}
	// Sharded campaigns (Campaign.Shards) need the sub-line wrapper between
	// every part and the Queue; other campaigns pass through it.
	n.queue = n.backend.Queue.(line) // checkBackend saw to it
	if b, ok := n.backend.Queue.(shard.Base); ok {
		sq, err := shard.New(shard.Config{Queue: b, Catalog: n.read, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		n.queue, agenda = sq, sq
	}
	n.ops = &catalog.Ops{Registry: n.backend.Registry, Lines: n.queue, Cache: n.cache, Check: n.serves}

	obs := cfg.Observer
	if cfg.Roles&RoleAPI != 0 {
		ac := admission.Config{
			Catalog: n.read, Queue: n.queue, Agenda: agenda, Tally: n.backend.Tally, Locker: n.backend.Locker,
			Dispatcher: n.v1Dispatcher(), LockScope: cfg.LockScope, LockTTL: cfg.LockTTL, LockWait: cfg.LockWait,
			Logger: cfg.Logger, Tracer: cfg.Tracer,
		}
		if obs != nil {
			ac.OnAdmit = obs.OnAdmit
		}
		svc, err := admission.New(ac)
		if err != nil {
			return nil, err
		}
		n.svc = svc
	}
	if cfg.Roles&RoleWorker != 0 {
		sc := scheduler.Config{
			Catalog: n.read, Agenda: agenda, Queue: n.queue, Dispatcher: n.transport, Locker: n.backend.Locker,
			LeaderTTL: cfg.LeaderTTL, PollInterval: cfg.PollInterval, Workers: cfg.MoveWorkers,
			LeaseTTL: cfg.LeaseTTL, HandoffTimeout: cfg.HandoffTimeout, DispatchTimeout: cfg.DispatchTimeout,
			SweepInterval: cfg.SweepInterval, MaxInFlightBatches: cfg.MaxInFlightBatches,
			Logger: cfg.Logger, Tracer: cfg.Tracer,
		}
		ic := issuing.Config{
			Consumer: n.transport, Store: n.store, Catalog: n.read, Recorder: n.queue,
			LockTTL: cfg.LockTTL, LockWait: cfg.LockWait, MaxAttempts: cfg.MaxAttempts, Backoff: cfg.RetryBackoff,
			DeadLetter: cfg.DeadLetter, MaxBatch: cfg.MaxBatch, Logger: cfg.Logger, Tracer: cfg.Tracer,
		}
		if cfg.UserLock {
			ic.Locker = n.backend.Locker
		}
		sc.Issued, _ = n.store.(couponq.IssuedCounter)
		if obs != nil {
			sc.OnTick = obs.OnTick
			ic.OnIssue, ic.OnStoreCall, ic.OnOverIssue = obs.OnIssue, obs.OnStoreCall, obs.OnOverIssue
		}
		sch, err := scheduler.New(sc)
		if err != nil {
			return nil, err
		}
		iss, err := issuing.New(ic)
		if err != nil {
			return nil, err
		}
		n.scheduler, n.issuer = sch, iss
	}
	if lo, ok := obs.(LineObserver); ok {
		lo.ObserveLines(n)
	}
	return n, nil
}

// line is what the node needs of a Backend's Queue.
type line interface {
	couponq.Queue
	couponq.Agenda
	couponq.LineStatser
	couponq.Reopener
	couponq.Archiver
}

// checkBackend reports what a Backend lacks.
func checkBackend(b couponq.Backend) error {
	var missing []string
	if b.Queue == nil {
		missing = append(missing, "Queue")
	} else {
		for _, need := range []struct {
			ok   bool
			name string
		}{
			{is[couponq.Agenda](b.Queue), "an Agenda"}, {is[couponq.LineStatser](b.Queue), "a LineStatser"},
			{is[couponq.Reopener](b.Queue), "a Reopener"}, {is[couponq.Archiver](b.Queue), "an Archiver"},
		} {
			if !need.ok {
				missing = append(missing, "a Queue that is "+need.name)
			}
		}
	}
	if b.Registry == nil {
		missing = append(missing, "Registry")
	}
	if b.Locker == nil {
		missing = append(missing, "Locker")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: node: the Backend %q lacks %s", couponq.ErrInvalidConfig, b.Name, strings.Join(missing, ", "))
	}
	return nil
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// serves reports whether the node has the backends a campaign needs: V1
// needs the Backend's Tally and a Transport an issuer consumes, a pre-queue
// a Queue that seats. (Every Backend the node accepts carries sub-lines.)
// The error wraps couponq.ErrUnsupported.
func (n *Node) serves(c couponq.Campaign) error {
	switch {
	case c.Mode == couponq.ValidateFirst && n.backend.Tally == nil:
		return fmt.Errorf("%w: campaign %s is V1 (%s), which needs a Backend with a Tally; the %s Backend has none",
			couponq.ErrUnsupported, c.ID, c.Mode, n.backend.Name)
	case c.Mode == couponq.ValidateFirst && n.v1Dispatcher() == nil:
		return fmt.Errorf("%w: campaign %s is V1 (%s), which hands entries to the Transport from the request; "+
			"this node's Transport is in this process, which runs no issuer: give the node a Transport",
			couponq.ErrUnsupported, c.ID, c.Mode)
	case c.PreQueue > 0 && !is[couponq.Seater](n.backend.Queue):
		return fmt.Errorf("%w: campaign %s has a pre-queue, which the %s Backend's Queue cannot seat",
			couponq.ErrUnsupported, c.ID, n.backend.Name)
	}
	return nil
}

// v1Dispatcher is where V1 admission hands entries: the Transport, unless
// it is the in-process one and this process runs no issuer to consume it.
func (n *Node) v1Dispatcher() couponq.Dispatcher {
	if n.local && n.cfg.Roles&RoleWorker == 0 {
		return nil
	}
	return n.transport
}

// Roles returns what the node runs.
func (n *Node) Roles() Role { return n.cfg.Roles }

// ErrNoAPI is returned by Admit and Status on a node without RoleAPI.
var ErrNoAPI = errors.New("node: this node does not run the API role")

// Admit puts the user in the campaign's line (V2) or through the gate (V1).
// On success the ticket is fresh, or a repeat of the user's waiting or in
// flight entry (Ticket.Repeat). A user already served gets the earlier
// ticket with couponq.ErrDuplicate (issued) or couponq.ErrSoldOut
// (rejected); other errors wrap ErrInvalidID, ErrUnknownCampaign,
// ErrNotOpen, ErrClosed, ErrSoldOut (ErrLineFull), ErrUnsupported, ErrBusy
// (V1's lock wait) or ErrUnavailable (a backend failed; nothing was
// accepted). Before OpensAt, a campaign with a pre-queue admits to it
// (Ticket.PreQueue, no position until it is seated at OpensAt).
func (n *Node) Admit(ctx context.Context, r couponq.Request) (couponq.Ticket, error) {
	if n.svc == nil {
		return couponq.Ticket{}, ErrNoAPI
	}
	return n.svc.Admit(ctx, r)
}

// Status reports where the user's entry stands: waiting (with its position,
// estimated wait and whether it is beyond the stock that remains), in
// flight, issued or rejected; couponq.ErrNotFound if the user has none. A
// retired campaign's outcomes answer for their retention.
func (n *Node) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	if n.svc == nil {
		return couponq.Status{}, ErrNoAPI
	}
	return n.svc.Status(ctx, campaign, user)
}

// Start starts the worker role's scheduler and issuer (the API role has
// nothing to run: it answers calls). They run until Stop, whatever becomes
// of ctx, so a host may start the node with its signal context and still
// shut its servers down before it stops the node. A node runs once: Start
// after Start, or after Stop, returns an error.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return errors.New("node: stopped; a node runs once")
	case n.started:
		return errors.New("node: already started")
	}
	if n.issuer != nil {
		if err := n.issuer.Start(ctx); err != nil {
			return err
		}
	}
	if n.scheduler != nil {
		if err := n.scheduler.Start(ctx); err != nil {
			if n.issuer != nil {
				_ = n.issuer.Stop(ctx)
			}
			return err
		}
	}
	n.started = true
	n.log.Info("couponq: node started", "roles", n.cfg.Roles.String(), "backend", n.backend.Name)
	return nil
}

// Stop ends every stream the node's handlers serve, stops the scheduler
// (nothing more is handed downstream), then the issuer (entries in hand are
// decided or left for redelivery), and waits for them or for ctx. Safe to
// call twice, or without Start. The node closes nothing it was given.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	handlers := n.handlers
	n.handlers, n.stopped = nil, true
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range handlers {
		wg.Go(h.Close)
	}
	wg.Wait()
	var errs []error
	if n.scheduler != nil {
		if err := n.scheduler.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("scheduler: %w", err))
		}
	}
	if n.issuer != nil {
		if err := n.issuer.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("issuer: %w", err))
		}
	}
	return errors.Join(errs...)
}

// closeAtStop registers a handler to close at Stop; false if Stop ran.
func (n *Node) closeAtStop(h interface{ Close() }) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return false
	}
	n.handlers = append(n.handlers, h)
	return true
}
