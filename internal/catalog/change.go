package catalog

import (
	"fmt"

	"github.com/couponq/couponq/couponq"
)

// CheckChange reports whether a registry may replace old with c: the
// sub-line count is fixed once created. Every registry calls it before an
// update writes (the error wraps couponq.ErrInvalidCampaign).
func CheckChange(old, c couponq.Campaign) error {
	if max(old.Shards, 1) != max(c.Shards, 1) {
		return fmt.Errorf("%w: %s: shards are fixed once created (%d, not %d)", couponq.ErrInvalidCampaign, c.ID, max(old.Shards, 1), max(c.Shards, 1))
	}
	return nil
}
