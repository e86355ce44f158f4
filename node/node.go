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
	"github.com/couponq/couponq/internal/issuing"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/scheduler"
	"github.com/couponq/couponq/internal/shard"
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

// Config configures a Node. Zero values take the defaults documented on
// each field.
type Config struct {
	// Roles picks what this process runs. Zero means RoleAll.
	Roles Role

	// Catalog supplies campaigns; a couponq.Registry (memline.Registry,
	// redisq.Registry) lets operators change them at runtime. Required.
	Catalog catalog.Catalog
	// CatalogTTL is how long this process serves a campaign from its cache
	// before reading it again: the bound on how long a change takes to
	// reach it. Zero means 1s; negative reads the Catalog on every use.
	CatalogTTL time.Duration

	// The backends. Leave all of Queue, Locker, Dispatcher, Consumer and
	// Store nil to run on the in-memory ones (one process only); otherwise
	// the roles' backends are required: Queue always; Locker, Dispatcher,
	// Consumer and Store for RoleWorker. The node never closes them.
	Queue      couponq.Queue
	Locker     lock.Locker
	Dispatcher couponq.Dispatcher
	Consumer   couponq.Consumer
	Store      couponq.Store
	// Agenda tracks campaigns with people waiting. Nil means the Queue's,
	// which both shipped queues implement.
	Agenda couponq.Agenda
	// Tally serves V1 (ValidateFirst) campaigns, with Locker and Dispatcher.
	// Nil means the in-memory Tally when running on in-memory backends.
	Tally couponq.Tally

	// Service, Scheduler and Issuer tune the parts. Their backend fields
	// (Catalog, Queue, Agenda, Tally, Locker, Dispatcher, Consumer, Store,
	// Recorder, Logger) are set by the node — except Issuer.Locker, the
	// optional per-user lock, which stays as given (nil keeps the issuer's
	// batch path open); everything else is theirs, with their own defaults.
	Service   admission.Config
	Scheduler scheduler.Config
	Issuer    issuing.Config

	// Logger receives logs; nil means none.
	Logger *slog.Logger
	// Tracer, if set, traces every stage of an entry's journey (see
	// couponq.Tracer; package couponq/tracing adapts OpenTelemetry): it is
	// given to the Service, Scheduler and Issuer whose own Tracer is nil.
	// Nil means no tracing.
	Tracer couponq.Tracer
}

// Node runs couponq's roles in one process. Its methods are safe for
// concurrent use.
type Node struct {
	cfg       Config
	catalog   catalog.Catalog
	svc       *admission.Service
	scheduler *scheduler.Scheduler
	issuer    *issuing.Issuer
	memory    bool
	// base is the Queue the node was given, when it put a shard.Queue in
	// front of it (nil otherwise); health checks ping it.
	base couponq.Queue

	mu      sync.Mutex
	started bool
}

// New validates cfg and builds the node's parts; nothing runs until Start.
func New(cfg Config) (*Node, error) {
	if cfg.Roles == 0 {
		cfg.Roles = RoleAll
	}
	if cfg.Roles&^RoleAll != 0 {
		return nil, fmt.Errorf("%w: node: unknown roles %d", couponq.ErrInvalidConfig, cfg.Roles)
	}
	if cfg.Catalog == nil {
		return nil, fmt.Errorf("%w: node: Catalog is required", couponq.ErrInvalidConfig)
	}
	n := &Node{cfg: cfg}
	if cfg.Queue == nil && cfg.Locker == nil && cfg.Dispatcher == nil && cfg.Consumer == nil && cfg.Store == nil {
		transport, err := dispatch.NewMemory(dispatch.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Queue, cfg.Locker, cfg.Store = memline.NewQueue(nil), lock.NewMemory(), memory.NewStore()
		cfg.Dispatcher, cfg.Consumer = transport, transport
		if cfg.Tally == nil {
			cfg.Tally = memline.NewTally()
		}
		n.memory = true
	}
	var missing []string
	need := func(ok bool, name string) {
		if !ok {
			missing = append(missing, name)
		}
	}
	need(cfg.Queue != nil, "Queue")
	if cfg.Roles&RoleWorker != 0 {
		need(cfg.Locker != nil, "Locker")
		need(cfg.Dispatcher != nil, "Dispatcher")
		need(cfg.Consumer != nil, "Consumer")
		need(cfg.Store != nil, "Store")
	}
	if cfg.Agenda == nil {
		cfg.Agenda, _ = cfg.Queue.(couponq.Agenda)
	}
	if cfg.Roles&RoleWorker != 0 {
		need(cfg.Agenda != nil, "Agenda (the Queue does not implement couponq.Agenda)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: node: roles %s need %s (or leave every backend nil for the in-memory ones)",
			couponq.ErrInvalidConfig, cfg.Roles, strings.Join(missing, ", "))
	}

	n.catalog = cfg.Catalog
	if cfg.CatalogTTL >= 0 {
		cache, err := catalog.NewCache(cfg.Catalog, catalog.CacheConfig{TTL: cfg.CatalogTTL, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		n.catalog = cache
	}
	// Sharded campaigns (Campaign.Shards) need the shard wrapper between
	// every part and the Queue; the node puts it there when the Queue can
	// carry it, is also the Agenda and is not a shard.Queue already (a host
	// that reads line counts itself builds one and hands it in). Other
	// campaigns pass through it.
	_, wrapped := cfg.Queue.(*shard.Queue)
	if b, ok := cfg.Queue.(shard.Base); ok && !wrapped && cfg.Agenda == couponq.Agenda(b) {
		sq, err := shard.New(shard.Config{Queue: b, Catalog: n.catalog, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		n.base = cfg.Queue
		cfg.Queue, cfg.Agenda = sq, sq
	}

	if cfg.Roles&RoleAPI != 0 {
		sc := cfg.Service
		sc.Catalog, sc.Queue, sc.Agenda, sc.Tally = n.catalog, cfg.Queue, cfg.Agenda, cfg.Tally
		sc.Locker, sc.Dispatcher, sc.Logger = cfg.Locker, cfg.Dispatcher, cfg.Logger
		if sc.Tracer == nil {
			sc.Tracer = cfg.Tracer
		}
		svc, err := admission.New(sc)
		if err != nil {
			return nil, err
		}
		n.svc = svc
	}
	if cfg.Roles&RoleWorker != 0 {
		dc := cfg.Scheduler
		dc.Catalog, dc.Agenda, dc.Queue = n.catalog, cfg.Agenda, cfg.Queue
		dc.Dispatcher, dc.Locker, dc.Logger = cfg.Dispatcher, cfg.Locker, cfg.Logger
		if dc.Tracer == nil {
			dc.Tracer = cfg.Tracer
		}
		sch, err := scheduler.New(dc)
		if err != nil {
			return nil, err
		}
		n.scheduler = sch
		ic := cfg.Issuer
		ic.Consumer, ic.Store, ic.Catalog, ic.Recorder, ic.Logger = cfg.Consumer, cfg.Store, n.catalog, cfg.Queue, cfg.Logger
		if ic.Tracer == nil {
			ic.Tracer = cfg.Tracer
		}
		iss, err := issuing.New(ic)
		if err != nil {
			return nil, err
		}
		n.issuer = iss
	}
	n.cfg = cfg
	return n, nil
}

// Roles returns what the node runs.
func (n *Node) Roles() Role { return n.cfg.Roles }

// Service returns the admission and status service (nil without RoleAPI),
// for httpapi.New and the like.
func (n *Node) Service() *admission.Service { return n.svc }

// Scheduler returns the node's scheduler (nil without RoleWorker).
func (n *Node) Scheduler() *scheduler.Scheduler { return n.scheduler }

// Issuer returns the node's issuer (nil without RoleWorker).
func (n *Node) Issuer() *issuing.Issuer { return n.issuer }

// Catalog returns the (cached) catalog the node's parts read.
func (n *Node) Catalog() catalog.Catalog { return n.catalog }

// Queue returns the node's queue (the in-memory one if it made it), behind
// the shard.Queue the node puts in front of a Queue that can carry one.
func (n *Node) Queue() couponq.Queue { return n.cfg.Queue }

// Store returns the node's Store (the in-memory one if it made it).
func (n *Node) Store() couponq.Store { return n.cfg.Store }

// ErrNoAPI is returned by Admit and Status on a node without RoleAPI.
var ErrNoAPI = errors.New("node: this node does not run the API role")

// Admit is Service().Admit.
func (n *Node) Admit(ctx context.Context, r couponq.Request) (couponq.Ticket, error) {
	if n.svc == nil {
		return couponq.Ticket{}, ErrNoAPI
	}
	return n.svc.Admit(ctx, r)
}

// Status is Service().Status.
func (n *Node) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	if n.svc == nil {
		return couponq.Status{}, ErrNoAPI
	}
	return n.svc.Status(ctx, campaign, user)
}

// Start starts the worker role's scheduler and issuer (the API role has
// nothing to run: it answers calls). It may be called once; calling it
// again returns an error.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return errors.New("node: already started")
	}
	n.started = true
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
	if n.cfg.Logger != nil {
		n.cfg.Logger.Info("couponq: node started", "roles", n.cfg.Roles.String(), "in_memory", n.memory)
	}
	return nil
}

// Stop stops the scheduler first (nothing more is handed downstream), then
// the issuer (entries in hand are decided or left for redelivery), and waits
// for both or for ctx. Safe to call twice, or without Start.
func (n *Node) Stop(ctx context.Context) error {
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
