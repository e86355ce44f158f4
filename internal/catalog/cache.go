package catalog

import (
	"context"
	"errors"
	"fmt"
	"github.com/couponq/couponq/couponq"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of CacheConfig.
const (
	DefaultTTL         = time.Second
	DefaultNegativeTTL = time.Second
	DefaultMaxStale    = 30 * time.Second
	DefaultMaxNegative = 1024
)

// CacheConfig configures a Cache. Zero values take the
// defaults documented on each field.
type CacheConfig struct {
	// TTL is how long a campaign read from the source is served before the
	// source is asked again: the bound on how long a change made in another
	// process takes to reach this one. Zero means DefaultTTL (1s);
	// negative is invalid.
	TTL time.Duration
	// NegativeTTL is how long "unknown campaign" is remembered, so requests
	// for an ID that does not exist (yet) do not each reach the source.
	// Zero means DefaultNegativeTTL (1s); negative turns it off.
	NegativeTTL time.Duration
	// MaxNegative bounds how many unknown IDs the cache holds at once: past
	// it, the one learnt longest ago is forgotten (and read from the source
	// again if asked for), so a flood of made-up IDs costs at most
	// MaxNegative entries, however many there are. Zero means
	// DefaultMaxNegative (1,024); negative is invalid.
	MaxNegative int
	// MaxStale is how old a campaign may be and still be served when the
	// source fails (an error other than couponq.ErrUnknownCampaign): up to MaxStale
	// after the last successful read, the cache keeps serving that read and
	// asks the source again once per TTL, instead of failing every request.
	// Zero means DefaultMaxStale (30s); negative turns it off, so a
	// source error fails the lookup once the value is TTL old.
	MaxStale time.Duration
	// Now is the clock; nil means time.Now. Tests set a fake one.
	Now func() time.Time
	// Logger receives a warning when the cache starts serving stale
	// campaigns and a note when the source answers again; nil means none.
	Logger *slog.Logger
}

// Cache is a Catalog that keeps each campaign its source returned for
// a short time (TTL), so the admission path does not reach a shared Registry
// on every request. It refreshes lazily: a campaign is read again only when
// it is asked for after its TTL has passed, so idle campaigns cost nothing
// and the cache runs no goroutines. Concurrent lookups of an ID that is not
// fresh make one source call and share its answer.
//
// A change written through a shared Registry reaches a process using a
// Cache within TTL (default 1s), and at once in the process that
// wrote it if that process calls Invalidate.
//
// Serving stale on source failure (MaxStale) is a trade: while the source is
// down, admission and the throttle keep running on settings at most
// MaxStale old, rather than every request failing; the cost is that a
// change written just before the outage (a pause, a close, a lower Stock)
// may take up to MaxStale, not TTL, to be seen. The Store remains the last
// word on stock, but it is told the Stock the campaign had when read, so a
// host for which a late Stock decrease or Close is worse than refusing
// requests sets MaxStale negative. Only campaigns that were found are
// served stale; an ID not read successfully before fails with the source's
// error.
//
// Memory is bounded: unknown IDs are held MaxNegative at most, the one
// learnt longest ago forgotten first, so a flood of made-up IDs leaves at
// most that many behind; campaigns are held while the source knows them,
// and entries that are no longer of any use (expired unknown IDs,
// campaigns older than MaxStale, lookups that got no answer) are swept out
// as new IDs arrive.
type Cache struct {
	src                   Catalog
	ttl, negTTL, maxStale time.Duration
	now                   func() time.Time
	log                   *slog.Logger
	slots                 sync.Map // id -> *cacheSlot
	size, sweepAt         atomic.Int64
	sweeping, degraded    atomic.Bool

	negMu sync.Mutex
	neg   []string // the unknown IDs learnt last, a ring of MaxNegative
	negAt int      // where the next one goes in neg
}

var _ Catalog = (*Cache)(nil)

// cacheSlot holds one ID's cached answer and its in-flight source call.
type cacheSlot struct {
	val  atomic.Pointer[cached] // read lock-free on the hot path
	mu   sync.Mutex             // guards call and gen changes
	call *cacheCall
	gen  uint64 // bumped by Invalidate; a call started before does not cache its answer
}

// cached is an answer of the source: a campaign, or an error wrapping
// couponq.ErrUnknownCampaign. It is never changed once stored.
type cached struct {
	c     couponq.Campaign
	err   error
	read  time.Time // when the source gave this answer
	fresh time.Time // served without asking the source until then
}

// cacheCall is one source call, shared by the lookups waiting for it.
type cacheCall struct {
	done chan struct{}
	c    couponq.Campaign
	err  error
}

// minSweep is the cache size under which no sweep runs.
const minSweep = 1024

// NewCache validates cfg and returns a Cache over src.
func NewCache(src Catalog, cfg CacheConfig) (*Cache, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: catalog cache: source Catalog is required", couponq.ErrInvalidConfig)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: catalog cache: TTL must be >= 0, got %s", couponq.ErrInvalidConfig, cfg.TTL)
	}
	if cfg.MaxNegative < 0 {
		return nil, fmt.Errorf("%w: catalog cache: MaxNegative must be >= 0, got %d", couponq.ErrInvalidConfig, cfg.MaxNegative)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxNegative == 0 {
		cfg.MaxNegative = DefaultMaxNegative
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Cache{src: src, ttl: cfg.TTL, negTTL: max(cfg.NegativeTTL, 0), maxStale: max(cfg.MaxStale, 0),
		now: cfg.Now, log: cfg.Logger, neg: make([]string, cfg.MaxNegative)}
	k.sweepAt.Store(minSweep)
	return k, nil
}

// Campaign implements Catalog: the cached campaign if it is fresh, else the
// source's answer. A call whose ctx is done fails with ctx's error.
func (k *Cache) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, err
	}
	s := k.slot(id)
	for {
		if v := s.val.Load(); v != nil && k.now().Before(v.fresh) {
			return v.c, v.err
		}
		s.mu.Lock()
		if v := s.val.Load(); v != nil && k.now().Before(v.fresh) { // filled while we waited for mu
			s.mu.Unlock()
			return v.c, v.err
		}
		call, lead, gen := s.call, s.call == nil, s.gen
		if lead {
			call = &cacheCall{done: make(chan struct{})}
			s.call = call
		}
		s.mu.Unlock()
		if lead {
			k.fetch(ctx, id, s, call, gen)
			return call.c, call.err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return couponq.Campaign{}, ctx.Err()
		}
		// The leader's own deadline or cancellation is not an answer for
		// us: ask again, leading a call of our own if need be.
		if isContextErr(call.err) {
			continue
		}
		return call.c, call.err
	}
}

// fetch asks the source, stores the answer in s unless Invalidate came
// first, and hands it to the lookups waiting on call.
func (k *Cache) fetch(ctx context.Context, id string, s *cacheSlot, call *cacheCall, gen uint64) {
	var v *cached
	// Deferred so that a panicking source still releases the waiters (with
	// errSourcePanicked) and the slot, while the panic goes on up the
	// leader's stack.
	call.err = errSourcePanicked
	defer func() {
		s.mu.Lock()
		stored := v != nil && s.gen == gen
		if stored {
			s.val.Store(v)
		}
		if s.call == call {
			s.call = nil
		}
		s.mu.Unlock()
		close(call.done)
		if stored && v.err != nil {
			k.learntUnknown(id)
		}
	}()
	c, err := k.src.Campaign(ctx, id)
	now := k.now()
	switch {
	case err == nil:
		v = &cached{c: c, read: now, fresh: now.Add(k.ttl)}
		if k.degraded.CompareAndSwap(true, false) {
			k.log.Info("couponq: catalog source answers again", "campaign", id)
		}
	case errors.Is(err, couponq.ErrUnknownCampaign):
		v = &cached{err: err, read: now, fresh: now.Add(k.negTTL)}
	case ctx.Err() != nil:
		// The caller gave up: nothing was learnt about the source.
	default:
		old := s.val.Load()
		if old == nil || old.err != nil || now.Sub(old.read) >= k.maxStale {
			break
		}
		// Serve the last good read, and ask the source again after TTL
		// (not on every request, which would pile onto a failing source),
		// but never past MaxStale after it was read.
		v = &cached{c: old.c, read: old.read, fresh: minTime(now.Add(k.ttl), old.read.Add(k.maxStale))}
		if k.degraded.CompareAndSwap(false, true) {
			k.log.Warn("couponq: catalog source failing, serving cached campaigns",
				"campaign", id, "age", now.Sub(old.read), "max_stale", k.maxStale, "error", err)
		}
		c, err = old.c, nil
	}
	call.c, call.err = c, err
}

// errSourcePanicked is what lookups sharing a source call get when the call
// panicked.
var errSourcePanicked = errors.New("couponq: catalog cache: source panicked")

// Invalidate makes the next lookup of id ask the source, for a process that
// has just changed the campaign and wants to see its own write at once.
// Lookups that start after Invalidate returns do not share a source call
// that started before it. The campaign last read stays available as the
// stale fallback (MaxStale).
func (k *Cache) Invalidate(id string) {
	x, ok := k.slots.Load(id)
	if !ok {
		return
	}
	s := x.(*cacheSlot)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.call = nil // the call in flight finishes for its own waiters only
	if v := s.val.Load(); v != nil {
		expired := *v
		expired.fresh = time.Time{}
		s.val.Store(&expired)
	}
}

// learntUnknown notes that id's slot now holds "unknown campaign", and
// forgets the unknown ID learnt MaxNegative such notes ago, so the cache
// holds at most MaxNegative of them.
func (k *Cache) learntUnknown(id string) {
	k.negMu.Lock()
	old := k.neg[k.negAt]
	k.neg[k.negAt] = id
	k.negAt = (k.negAt + 1) % len(k.neg)
	k.negMu.Unlock()
	if old != "" && old != id {
		k.forgetUnknown(old)
	}
}

// forgetUnknown drops id's slot if it holds "unknown campaign" and has no
// source call in flight. A lookup that holds the slot already still gets
// its answer; the next one asks the source.
func (k *Cache) forgetUnknown(id string) {
	x, ok := k.slots.Load(id)
	if !ok {
		return
	}
	s := x.(*cacheSlot)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.val.Load(); s.call == nil && v != nil && v.err != nil && k.slots.CompareAndDelete(id, s) {
		k.size.Add(-1)
	}
}

// slot returns id's slot, making it if need be.
func (k *Cache) slot(id string) *cacheSlot {
	if x, ok := k.slots.Load(id); ok {
		return x.(*cacheSlot)
	}
	x, loaded := k.slots.LoadOrStore(id, new(cacheSlot))
	if !loaded && k.size.Add(1) >= k.sweepAt.Load() {
		k.sweep()
	}
	return x.(*cacheSlot)
}

// sweep drops the slots that can no longer serve anything and have no call
// in flight: unknown IDs past NegativeTTL, campaigns past both TTL and
// MaxStale, and IDs whose lookups were all cancelled. It runs when the cache
// has doubled since the last sweep, so its cost is spread over the
// insertions that grew it. A dropped ID is simply read from the source
// again when next asked for.
func (k *Cache) sweep() {
	if !k.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer k.sweeping.Store(false)
	now := k.now()
	k.slots.Range(func(key, x any) bool {
		s := x.(*cacheSlot)
		s.mu.Lock()
		v := s.val.Load()
		dead := s.call == nil && (v == nil ||
			!now.Before(v.fresh) && (v.err != nil || now.Sub(v.read) >= k.maxStale))
		if dead && k.slots.CompareAndDelete(key, s) {
			k.size.Add(-1)
		}
		s.mu.Unlock()
		return true
	})
	k.sweepAt.Store(max(2*k.size.Load(), minSweep))
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
