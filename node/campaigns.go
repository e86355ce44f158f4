package node

import (
	"context"
	"time"

	"github.com/couponq/couponq/couponq"
)

// CreateCampaign validates c and creates it in the registry at Version 1.
// A campaign this node has no backends for is refused with an error
// wrapping couponq.ErrUnsupported (V1 without a Tally, a pre-queue or
// sub-lines on a Queue that cannot serve them); one that does not validate
// wraps couponq.ErrInvalidCampaign; a taken ID couponq.ErrCampaignExists.
func (n *Node) CreateCampaign(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	return n.ops.Create(ctx, c)
}

// UpdateCampaign replaces the campaign with c if it is still at c.Version
// (else couponq.ErrVersionConflict): stock, batch size, interval, window,
// line cap, pause. Shards are fixed once created. A Stock below the units
// issued is refused (couponq.ErrStockBelowIssued); a Stock raised on a
// sold-out campaign reopens it to new users. Every process sees the change
// within its CacheTTL, this one at once.
func (n *Node) UpdateCampaign(ctx context.Context, c couponq.Campaign) (couponq.Campaign, error) {
	return n.ops.Update(ctx, c)
}

// PauseCampaign stops moving the campaign's line: admission goes on and
// users keep their places. Pausing a paused campaign writes nothing.
func (n *Node) PauseCampaign(ctx context.Context, id string) (couponq.Campaign, error) {
	return n.ops.Pause(ctx, id)
}

// ResumeCampaign moves a paused campaign's line again.
func (n *Node) ResumeCampaign(ctx context.Context, id string) (couponq.Campaign, error) {
	return n.ops.Resume(ctx, id)
}

// CloseCampaign ends admission at at (now or later): new users hear
// couponq.ErrClosed, and entries admitted before are still served. A
// campaign set to close earlier keeps its earlier time; one that has not
// opened by at cannot close then (couponq.ErrNotOpen).
func (n *Node) CloseCampaign(ctx context.Context, id string, at time.Time) (couponq.Campaign, error) {
	return n.ops.Close(ctx, id, at)
}

// RetireCampaign puts a finished campaign away. It must be at version,
// closed or sold out, with nobody waiting or in flight (else
// couponq.ErrCampaignBusy). Its line's records are kept for retention, so
// users can still read their outcomes (0 drops them now), and it leaves the
// registry. Its ID may be created again: at once after a retention of 0,
// otherwise once the retention ends (until then the line still holds the
// old outcomes, sold-out mark included, under the ID). The re-created
// campaign is the ID's next incarnation (couponq.Campaign.Incarnation),
// which the Store knows by its own name (Campaign.StoreCampaign): it
// starts with all its stock and no users, while the old incarnation's
// issuances stay in the Store under the old name. Retire a campaign only
// once every process has seen it closed (CacheTTL after closing). The
// Store's records are the host's and are not touched.
func (n *Node) RetireCampaign(ctx context.Context, id string, version int64, retention time.Duration) error {
	return n.ops.Retire(ctx, id, version, retention)
}

// Campaign reads one campaign from the registry; couponq.ErrUnknownCampaign
// if there is none.
func (n *Node) Campaign(ctx context.Context, id string) (couponq.Campaign, error) {
	return n.ops.Campaign(ctx, id)
}

// Campaigns lists every campaign in the registry, ordered by ID.
func (n *Node) Campaigns(ctx context.Context) ([]couponq.Campaign, error) {
	return n.ops.List(ctx)
}

// LineStats counts the campaign's entries by where they are (every
// sub-line of a sharded campaign together).
func (n *Node) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	return n.ops.LineStats(ctx, campaign)
}
