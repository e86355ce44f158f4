package catalog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/couponq/couponq/couponq"
)

// A flood of made-up IDs does not grow the cache without bound: expired
// entries are swept as new IDs arrive.
func TestCatalogCacheSweeps(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	known := Func(func(_ context.Context, id string) (couponq.Campaign, error) {
		if id == "known" {
			return couponq.Campaign{ID: "known", Stock: 1}, nil
		}
		return couponq.Campaign{}, fmt.Errorf("%w: %s", couponq.ErrUnknownCampaign, id)
	})
	k, err := NewCache(known, CacheConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := k.Campaign(ctx, "known"); err != nil {
		t.Fatal(err)
	}
	peak := int64(0)
	for i := range 20_000 {
		_, _ = k.Campaign(ctx, fmt.Sprint("made-up-", i))
		now = now.Add(time.Millisecond) // each unknown ID expires after 1,000 more
		peak = max(peak, k.size.Load())
	}
	if peak > 3*minSweep {
		t.Errorf("cache grew to %d entries with about 1,000 live", peak)
	}
	// The live campaign survives sweeps while it can still serve (stale),
	// and is read again when asked for.
	if c, err := k.Campaign(ctx, "known"); err != nil || c.Stock != 1 {
		t.Errorf("known campaign after sweeps: %+v, %v", c, err)
	}
}
