package catalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Lines is what Ops reads and changes of the campaigns' lines.
type Lines interface {
	couponq.LineStatser
	couponq.Reopener
	couponq.Archiver
}

// Ops are the operators' verbs on campaigns — create, update, pause,
// resume, close, retire — shared by the node's methods and the admin
// handler, so both check the same things in the same order.
type Ops struct {
	// Registry is where campaigns live. Required.
	Registry couponq.Registry
	// Lines counts each campaign's line, takes back a sold-out mark and
	// archives a retired campaign's records. Nil (a registry's own tests)
	// skips the stock checks and reopening, and Retire fails.
	Lines Lines
	// Cache, if set, forgets a campaign this process changed, so its own
	// parts see the change at once (the others within the cache's TTL).
	Cache *Cache
	// Check refuses a campaign the node has no backends for (it wraps
	// couponq.ErrUnsupported); nil refuses nothing.
	Check func(couponq.Campaign) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// modifyAttempts is how many times Modify tries its read-change-update
// cycle before giving up on a campaign that keeps changing under it.
const modifyAttempts = 16

func (o *Ops) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Ops) check(c couponq.Campaign) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if o.Check != nil {
		return o.Check(c)
	}
	return nil
}

func (o *Ops) forget(id string) {
	if o.Cache != nil {
		o.Cache.Invalidate(id)
	}
}

// Campaign reads one campaign from the Registry.
func (o *Ops) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	return o.Registry.Campaign(ctx, id)
}

// List reads every campaign from the Registry, ordered by ID.
func (o *Ops) List(ctx context.Context) ([]couponq.Campaign, error) {
	return o.Registry.List(ctx)
}

// LineStats counts the campaign's line.
func (o *Ops) LineStats(ctx context.Context, id string) (couponq.LineStats, error) {
	return o.Lines.LineStats(ctx, id)
}

// Create validates c, refuses what the node cannot serve, and creates it.
func (o *Ops) Create(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	if err := o.check(c); err != nil {
		return couponq.Campaign{}, err
	}
	created, err := o.Registry.Create(ctx, c)
	if err == nil {
		o.forget(created.ID)
	}
	return created, err
}

// Update replaces the campaign with c if the stored one is at c.Version.
// A Stock below the units issued is refused (ErrStockBelowIssued); a Stock
// raised above them on a sold-out campaign takes back its sold-out mark, so
// admission of new users resumes. Writing what is stored already writes
// nothing. When the update is saved but the reopen fails, Update returns
// the saved campaign with an error wrapping couponq.ErrUnavailable, so the
// caller can repeat the change at the saved version.
func (o *Ops) Update(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	return o.update(ctx, c, false)
}

// UpdateStock is Update for a change that names the stock (an operator's
// PATCH with a stock): a sold-out campaign whose stock is kept or raised
// above the units issued is reopened, so repeating a change whose reopen
// failed retries it.
func (o *Ops) UpdateStock(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	return o.update(ctx, c, true)
}

func (o *Ops) update(ctx context.Context, c couponq.Campaign, stockGiven bool) (couponq.Campaign, error) {
	old, err := o.Registry.Campaign(ctx, c.ID)
	if err != nil {
		return couponq.Campaign{}, err
	}
	if old.Version != c.Version {
		return couponq.Campaign{}, fmt.Errorf("%w: campaign %s is at version %d, not %d: it changed since it was read",
			couponq.ErrVersionConflict, c.ID, old.Version, c.Version)
	}
	if err := o.check(c); err != nil {
		return couponq.Campaign{}, err
	}
	c.Incarnation = old.Incarnation // the Registry's, not the caller's
	reopen := false
	if o.Lines != nil && (stockGiven || c.Stock != old.Stock) {
		s, err := o.Lines.LineStats(ctx, c.ID)
		if err != nil {
			return couponq.Campaign{}, fmt.Errorf("%w: read line stats: %w", couponq.ErrUnavailable, err)
		}
		if c.Stock != old.Stock && c.Stock < s.Issued {
			return couponq.Campaign{}, fmt.Errorf("%w: campaign %s: stock %d is below the %d units already issued",
				couponq.ErrStockBelowIssued, c.ID, c.Stock, s.Issued)
		}
		reopen = s.SoldOut && c.Stock > s.Issued && (c.Stock > old.Stock || stockGiven && c.Stock == old.Stock)
	}
	if c != old {
		if c, err = o.Registry.Update(ctx, c); err != nil {
			return couponq.Campaign{}, err
		}
		o.forget(c.ID)
	}
	if reopen {
		if err := o.Lines.Reopen(ctx, c.ID); err != nil {
			return c, fmt.Errorf("%w: campaign %s was saved at version %d, but its sold-out mark could not be taken back; "+
				"repeat the change at version %d with the same stock: %w", couponq.ErrUnavailable, c.ID, c.Version, c.Version, err)
		}
	}
	return c, nil
}

// Modify changes one campaign by read, change, compare-and-set: it reads
// the campaign, lets fn change a copy, and updates it at the version read
// (through Update, so its checks apply). When another writer got in
// between, it reads again and calls fn again, up to a few times with a
// short random pause, so fn must be safe to call more than once. An error
// from fn aborts Modify with nothing written. If fn leaves the campaign as
// it was, nothing is written.
func (o *Ops) Modify(ctx context.Context, id string, fn func(*couponq.Campaign) error) (couponq.Campaign, error) {
	var err error
	for attempt := range modifyAttempts {
		if attempt > 0 {
			if werr := pause(ctx, attempt); werr != nil {
				return couponq.Campaign{}, werr
			}
		}
		var read couponq.Campaign
		if read, err = o.Registry.Campaign(ctx, id); err != nil {
			return couponq.Campaign{}, err
		}
		c := read
		if err := fn(&c); err != nil {
			return couponq.Campaign{}, err
		}
		if c.ID != read.ID || c.Version != read.Version {
			return couponq.Campaign{}, fmt.Errorf("%w: %s: a change may not touch the ID or the version", couponq.ErrInvalidCampaign, id)
		}
		if c == read {
			return read, nil
		}
		var updated couponq.Campaign
		updated, err = o.Update(ctx, c)
		if !errors.Is(err, couponq.ErrVersionConflict) {
			return updated, err
		}
	}
	return couponq.Campaign{}, fmt.Errorf("couponq: modify %s: gave up after %d attempts: %w", id, modifyAttempts, err)
}

// pause waits a random time up to 1ms·2^attempt (at most 64ms) before a
// retry, so writers that collided spread out instead of colliding again.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond << min(attempt, 6))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pause stops moving the campaign's line (Campaign.Paused): admission goes
// on and users keep their places. Pausing a paused campaign writes nothing.
func (o *Ops) Pause(ctx context.Context, id string) (couponq.Campaign, error) {
	return o.Modify(ctx, id, func(c *couponq.Campaign) error { c.Paused = true; return nil })
}

// Resume moves a paused campaign's line again.
func (o *Ops) Resume(ctx context.Context, id string) (couponq.Campaign, error) {
	return o.Modify(ctx, id, func(c *couponq.Campaign) error { c.Paused = false; return nil })
}

// Close ends admission to the campaign at at (ClosesAt), now or later;
// entries admitted before it are still served. A campaign set to close
// earlier keeps its earlier ClosesAt, so Close never reopens anything. A
// campaign that has not opened by at cannot close then: the error wraps
// couponq.ErrNotOpen.
func (o *Ops) Close(ctx context.Context, id string, at time.Time) (couponq.Campaign, error) {
	if at.IsZero() {
		return couponq.Campaign{}, fmt.Errorf("%w: %s: close at the zero time", couponq.ErrInvalidCampaign, id)
	}
	return o.Modify(ctx, id, func(c *couponq.Campaign) error {
		if !c.ClosesAt.IsZero() && !at.Before(c.ClosesAt) {
			return nil
		}
		if !c.OpensAt.IsZero() && !at.After(c.OpensAt) {
			return fmt.Errorf("%w: %s: cannot close at %s, not after it opens at %s",
				couponq.ErrNotOpen, id, at.Format(time.RFC3339Nano), c.OpensAt.Format(time.RFC3339Nano))
		}
		c.ClosesAt = at.Round(0)
		return nil
	})
}

// Retire puts a finished campaign away: it must be at version (the version
// read), closed or sold out, with nobody waiting or in flight (else
// couponq.ErrCampaignBusy); its line's records are archived for retention,
// so users can still read their outcomes (0 drops them now), then it is
// deleted from the Registry and its ID is free. A failure after the archive
// leaves the campaign listed with its records archived; retiring it again
// archives them again and deletes it.
func (o *Ops) Retire(ctx context.Context, id string, version int64, retention time.Duration) error {
	if retention < 0 {
		return fmt.Errorf("%w: retire %s: retention %s is negative", couponq.ErrInvalidConfig, id, retention)
	}
	c, err := o.Registry.Campaign(ctx, id)
	if err != nil {
		return err
	}
	if c.Version != version {
		return fmt.Errorf("%w: campaign %s is at version %d, not %d: it changed since it was read",
			couponq.ErrVersionConflict, id, c.Version, version)
	}
	if o.Lines == nil {
		return fmt.Errorf("%w: retire %s: no lines to archive", couponq.ErrUnsupported, id)
	}
	s, err := o.Lines.LineStats(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: read line stats: %w", couponq.ErrUnavailable, err)
	}
	switch state := c.State(o.now(), s.SoldOut); {
	case state != couponq.CampaignClosed && state != couponq.CampaignSoldOut:
		return fmt.Errorf("%w: campaign %s is %s: close it, or let it sell out, before retiring it", couponq.ErrCampaignBusy, id, state)
	case s.Waiting > 0 || s.InFlight > 0:
		return fmt.Errorf("%w: campaign %s has %d waiting and %d in flight: retire it once their outcomes are decided",
			couponq.ErrCampaignBusy, id, s.Waiting, s.InFlight)
	}
	if err := o.Lines.Archive(ctx, id, retention); err != nil {
		return err
	}
	if err := o.Registry.Delete(ctx, id, version); err != nil {
		return err
	}
	o.forget(id)
	return nil
}
