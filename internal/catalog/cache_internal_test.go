package catalog

import (
	"context"
	"errors"
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

// Unknown IDs learnt within NegativeTTL are held MaxNegative at most, the
// last learnt kept: a flood of made-up IDs faster than NegativeTTL leaves
// that many behind, not one per ID, and the newest is still served
// without asking the source.
func TestCatalogCacheBoundsUnknownIDs(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := 0
	src := Func(func(_ context.Context, id string) (couponq.Campaign, error) {
		calls++
		if id == "known" {
			return couponq.Campaign{ID: "known", Stock: 1}, nil
		}
		return couponq.Campaign{}, fmt.Errorf("%w: %s", couponq.ErrUnknownCampaign, id)
	})
	k, err := NewCache(src, CacheConfig{Now: func() time.Time { return now }, NegativeTTL: time.Hour, MaxNegative: 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := k.Campaign(ctx, "known"); err != nil {
		t.Fatal(err)
	}
	for i := range 5_000 {
		if _, err := k.Campaign(ctx, fmt.Sprint("made-up-", i)); !errors.Is(err, couponq.ErrUnknownCampaign) {
			t.Fatalf("made-up-%d: %v", i, err)
		}
	}
	entries := 0
	k.slots.Range(func(any, any) bool { entries++; return true })
	if entries != 1+16 || k.size.Load() != int64(entries) {
		t.Errorf("after 5,000 unknown IDs the cache holds %d entries (counted %d), want the campaign and 16", entries, k.size.Load())
	}
	before := calls
	if _, err := k.Campaign(ctx, "made-up-4999"); !errors.Is(err, couponq.ErrUnknownCampaign) || calls != before {
		t.Errorf("the last unknown ID: %v, %d source calls (want it cached)", err, calls-before)
	}
	if _, err := k.Campaign(ctx, "made-up-0"); !errors.Is(err, couponq.ErrUnknownCampaign) || calls != before+1 {
		t.Errorf("the first unknown ID: %v, %d source calls (want it forgotten, read again)", err, calls-before)
	}
	if c, err := k.Campaign(ctx, "known"); err != nil || c.Stock != 1 {
		t.Errorf("the known campaign: %+v, %v", c, err)
	}
	if _, err := NewCache(src, CacheConfig{MaxNegative: -1}); !errors.Is(err, couponq.ErrInvalidConfig) {
		t.Errorf("negative MaxNegative: %v", err)
	}
}
