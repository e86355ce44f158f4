package memline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/couponq/registrytest"
	"github.com/couponq/couponq/internal/memline"
)

func TestCampaignsConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) couponq.Registry {
		k, err := memline.NewRegistry()
		require.NoError(t, err)
		return k
	})
}

// One shared registry for the whole suite, as a host would have.
func TestCampaignsConformanceShared(t *testing.T) {
	k, err := memline.NewRegistry()
	require.NoError(t, err)
	registrytest.Run(t, func(*testing.T) couponq.Registry { return k })
}

func TestCampaignsPutBumpsVersion(t *testing.T) {
	ctx := context.Background()
	k, err := memline.NewRegistry(couponq.Campaign{ID: "a", Stock: 1})
	require.NoError(t, err)
	a, err := k.Campaign(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, int64(1), a.Version, "NewCampaigns stores version 1")
	assert.Equal(t, couponq.DefaultBatchSize, a.BatchSize, "stored with defaults")

	require.NoError(t, k.Put(couponq.Campaign{ID: "a", Stock: 5, Version: 40}))
	a, err = k.Campaign(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, int64(5), a.Stock)
	assert.Equal(t, int64(2), a.Version, "Put replaces unconditionally, at the next version")

	assert.ErrorIs(t, k.Put(couponq.Campaign{ID: "a"}), couponq.ErrInvalidCampaign)
	a2, err := k.Campaign(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, a, a2, "a refused Put writes nothing")

	// Update from the version Put left.
	a.Stock = 6
	a, err = k.Update(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, int64(3), a.Version)

	_, err = memline.NewRegistry(couponq.Campaign{ID: "a", Stock: 1}, couponq.Campaign{ID: "a", Stock: 2})
	assert.ErrorIs(t, err, couponq.ErrInvalidCampaign, "an ID listed twice")
}
