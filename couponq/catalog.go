package couponq

import (
	"context"
	"fmt"
	"sync"
)

// Campaigns is a Catalog held in memory, safe for concurrent use. Campaigns
// are stored with their defaults applied.
type Campaigns struct {
	mu sync.RWMutex
	m  map[string]Campaign
}

// NewCampaigns returns a catalog holding cs; it fails if one does not
// validate or an ID repeats.
func NewCampaigns(cs ...Campaign) (*Campaigns, error) {
	k := &Campaigns{m: make(map[string]Campaign, len(cs))}
	for _, c := range cs {
		if _, dup := k.m[c.ID]; dup {
			return nil, fmt.Errorf("%w: %s: listed twice", ErrInvalidCampaign, c.ID)
		}
		if err := k.Put(c); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Put adds or replaces a campaign after validating it.
func (k *Campaigns) Put(c Campaign) error {
	if err := c.Validate(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[c.ID] = c.WithDefaults()
	return nil
}

// Campaign implements Catalog.
func (k *Campaigns) Campaign(ctx context.Context, id string) (Campaign, error) {
	if err := ctx.Err(); err != nil {
		return Campaign{}, err
	}
	k.mu.RLock()
	c, ok := k.m[id]
	k.mu.RUnlock()
	if !ok {
		return Campaign{}, fmt.Errorf("%w: %q", ErrUnknownCampaign, id)
	}
	return c, nil
}
