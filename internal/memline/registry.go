package memline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/catalog"
)

// Registry is a couponq.Registry held in memory, safe for concurrent use: one
// process's campaigns, for tests, single-process hosts and static catalogs
// (NewRegistry, Put). Campaigns are stored with their defaults applied and
// their times stripped of monotonic clock readings, so they compare like
// the campaigns a shared Registry returns. Every Campaign it returns is a
// copy: changing it changes nothing stored.
type Registry struct {
	mu sync.RWMutex
	m  map[string]couponq.Campaign
	// created counts each ID's creations, kept across Delete: the latest
	// Campaign.Incarnation of the ID.
	created map[string]int64
}

var _ couponq.Registry = (*Registry)(nil)

// NewRegistry returns a catalog holding cs, each at Version 1; it fails if
// one does not validate or an ID repeats.
func NewRegistry(cs ...couponq.Campaign) (*Registry, error) {
	k := &Registry{m: make(map[string]couponq.Campaign, len(cs)), created: map[string]int64{}}
	for _, c := range cs {
		if _, dup := k.m[c.ID]; dup {
			return nil, fmt.Errorf("%w: %s: listed twice", couponq.ErrInvalidCampaign, c.ID)
		}
		if err := k.Put(c); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Put adds or replaces a campaign after validating it, whatever version is
// stored: it is for static setup, not for writers racing each other (use
// Update for those). c.Version and c.Incarnation are ignored; the stored
// campaign gets one more than the version it replaces, or 1, so readers
// still see every change as a new version, and keeps the incarnation it
// replaces (a new one counts as a creation).
func (k *Registry) Put(c couponq.Campaign) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c = stored(c)
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.m[c.ID]
	c.Version = old.Version + 1
	if ok {
		c.Incarnation = old.Incarnation
	} else {
		c.Incarnation = k.create(c.ID)
	}
	k.m[c.ID] = c
	return nil
}

// Campaign implements Catalog.
func (k *Registry) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, err
	}
	k.mu.RLock()
	c, ok := k.m[id]
	k.mu.RUnlock()
	if !ok {
		return couponq.Campaign{}, fmt.Errorf("%w: %q", couponq.ErrUnknownCampaign, id)
	}
	return c, nil
}

// List implements Registry.
func (k *Registry) List(ctx context.Context) ([]couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	out := make([]couponq.Campaign, 0, len(k.m))
	for _, c := range k.m {
		out = append(out, c)
	}
	k.mu.RUnlock()
	slices.SortFunc(out, func(a, b couponq.Campaign) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Create implements Registry. A campaign that does not validate, or has a
// Version other than 0, is refused with an error wrapping
// ErrInvalidCampaign. The Registry remembers how often each ID was created,
// across Delete, for Campaign.Incarnation.
func (k *Registry) Create(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, err
	}
	if err := c.Validate(); err != nil {
		return couponq.Campaign{}, err
	}
	if c.Version != 0 {
		return couponq.Campaign{}, fmt.Errorf("%w: %s: create with version %d, must be 0", couponq.ErrInvalidCampaign, c.ID, c.Version)
	}
	c = stored(c)
	c.Version = 1
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[c.ID]; ok {
		return couponq.Campaign{}, fmt.Errorf("%w: %q", couponq.ErrCampaignExists, c.ID)
	}
	c.Incarnation = k.create(c.ID)
	k.m[c.ID] = c
	return c, nil
}

// create counts a creation of id and returns its incarnation. k.mu must
// be held.
func (k *Registry) create(id string) int64 {
	if k.created == nil {
		k.created = map[string]int64{}
	}
	k.created[id]++
	return k.created[id]
}

// Update implements Registry. A campaign that does not validate, or has no
// Version (0: it was not read from a Registry), is refused with an error
// wrapping ErrInvalidCampaign. Update does not know how many units were
// issued: a caller lowering Stock checks it against the issued count first.
func (k *Registry) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Campaign{}, err
	}
	if err := validateUpdate(c); err != nil {
		return couponq.Campaign{}, err
	}
	c = stored(c)
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.m[c.ID]
	switch {
	case !ok:
		return couponq.Campaign{}, fmt.Errorf("%w: %q", couponq.ErrUnknownCampaign, c.ID)
	case old.Version != c.Version:
		return couponq.Campaign{}, fmt.Errorf("%w: %s: stored version %d, update from version %d",
			couponq.ErrVersionConflict, c.ID, old.Version, c.Version)
	}
	if err := catalog.CheckChange(old, c); err != nil {
		return couponq.Campaign{}, err
	}
	c.Version++
	c.Incarnation = old.Incarnation
	k.m[c.ID] = c
	return c, nil
}

// validateUpdate is what every Registry checks before an update writes
// anything: the campaign validates and names the version it was read at.
func validateUpdate(c couponq.Campaign) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Version <= 0 {
		return fmt.Errorf("%w: %s: update with version %d, must name the version read (> 0)",
			couponq.ErrInvalidCampaign, c.ID, c.Version)
	}
	return nil
}

// stored is c as a Registry keeps it: defaults applied, and no monotonic
// clock readings, which only mean something inside the process that took
// them and would make == differ between equal times.
func stored(c couponq.Campaign) couponq.Campaign {
	c = c.WithDefaults()
	c.OpensAt = c.OpensAt.Round(0)
	c.ClosesAt = c.ClosesAt.Round(0)
	return c
}

// Delete implements couponq.Registry: it removes the campaign if its stored
// Version is version. A version <= 0 is refused with an error wrapping
// ErrInvalidCampaign.
func (k *Registry) Delete(ctx context.Context, id string, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if version <= 0 {
		return fmt.Errorf("%w: %s: delete with version %d, must name the version read (> 0)",
			couponq.ErrInvalidCampaign, id, version)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.m[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", couponq.ErrUnknownCampaign, id)
	case old.Version != version:
		return fmt.Errorf("%w: %s: stored version %d, delete from version %d",
			couponq.ErrVersionConflict, id, old.Version, version)
	}
	delete(k.m, id)
	return nil
}
