package couponq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ModifyAttempts is how many times Modify tries its read-change-update
// cycle before giving up on a campaign that keeps changing under it.
const ModifyAttempts = 16

// Modify changes one campaign of r by read, change, compare-and-set: it reads
// the campaign, lets fn change a copy, and updates it at the version read.
// When another writer got in between (ErrVersionConflict), it reads again and
// calls fn again on the fresh campaign, up to ModifyAttempts times with a
// short random pause between tries, so fn must be safe to call more than
// once and should only depend on the campaign it is given. An error from fn
// aborts Modify and is returned as is, with nothing written. If fn leaves
// the campaign as it was, nothing is written and the campaign is returned
// at the version read, so repeating an operator action is harmless. fn must
// not change the ID or the Version. r must read the current version (a
// Registry itself, not a CatalogCache in front of one), or every update
// from the stale read conflicts.
//
// The Registry does not know how many units were issued, so Modify does not
// stop Stock from going below that: a caller lowering Stock compares it with
// the issued count (for example couponq.IssuedCounter) first.
func Modify(ctx context.Context, r Registry, id string, fn func(*Campaign) error) (Campaign, error) {
	var err error
	for attempt := range ModifyAttempts {
		if attempt > 0 {
			if werr := pause(ctx, attempt); werr != nil {
				return Campaign{}, werr
			}
		}
		var read Campaign
		if read, err = r.Campaign(ctx, id); err != nil {
			return Campaign{}, err
		}
		c := read
		if err := fn(&c); err != nil {
			return Campaign{}, err
		}
		if c.ID != read.ID || c.Version != read.Version {
			return Campaign{}, fmt.Errorf("%w: %s: Modify's fn changed the ID or Version", ErrInvalidCampaign, id)
		}
		if c == read {
			return read, nil
		}
		var updated Campaign
		updated, err = r.Update(ctx, c)
		if !errors.Is(err, ErrVersionConflict) {
			return updated, err
		}
	}
	return Campaign{}, fmt.Errorf("couponq: modify %s: gave up after %d attempts: %w", id, ModifyAttempts, err)
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

// Pause stops the campaign's throttle (Campaign.Paused): admission goes on
// and users keep their places, but nobody is moved downstream until Resume.
// Pausing a paused campaign writes nothing.
func Pause(ctx context.Context, r Registry, id string) (Campaign, error) {
	return Modify(ctx, r, id, func(c *Campaign) error { c.Paused = true; return nil })
}

// Resume restarts the throttle of a paused campaign. Resuming a campaign
// that is not paused writes nothing.
func Resume(ctx context.Context, r Registry, id string) (Campaign, error) {
	return Modify(ctx, r, id, func(c *Campaign) error { c.Paused = false; return nil })
}

// Close ends admission to the campaign at at (ClosesAt), which may be now or
// in the future; entries admitted before it are still served. A campaign
// already set to close earlier keeps its earlier ClosesAt, so Close never
// reopens anything. at must be after the campaign's OpensAt: the error wraps
// ErrInvalidCampaign otherwise, and nothing is written.
func Close(ctx context.Context, r Registry, id string, at time.Time) (Campaign, error) {
	if at.IsZero() {
		return Campaign{}, fmt.Errorf("%w: %s: close at the zero time", ErrInvalidCampaign, id)
	}
	return Modify(ctx, r, id, func(c *Campaign) error {
		if !c.ClosesAt.IsZero() && !at.Before(c.ClosesAt) {
			return nil
		}
		if !c.OpensAt.IsZero() && !at.After(c.OpensAt) {
			return fmt.Errorf("%w: %s: cannot close at %s, not after it opens at %s",
				ErrInvalidCampaign, id, at.Format(time.RFC3339Nano), c.OpensAt.Format(time.RFC3339Nano))
		}
		c.ClosesAt = at.Round(0)
		return nil
	})
}
