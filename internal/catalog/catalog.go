// Package catalog is how couponq's parts read campaigns: Catalog, the read
// side of a couponq.Registry, and Cache, which keeps each campaign read for
// a short TTL so admission, the scheduler and the issuer do not reach a
// shared registry on every request.
package catalog

import (
	"context"

	"github.com/couponq/couponq/couponq"
)

// Catalog looks campaigns up by ID. Implementations return an error wrapping
// couponq.ErrUnknownCampaign for an ID they do not know. Every
// couponq.Registry is one.
type Catalog interface {
	Campaign(ctx context.Context, id string) (couponq.Campaign, error)
}

// Func adapts a function to Catalog.
type Func func(ctx context.Context, id string) (couponq.Campaign, error)

// Campaign calls f.
func (f Func) Campaign(ctx context.Context, id string) (couponq.Campaign, error) { return f(ctx, id) }
