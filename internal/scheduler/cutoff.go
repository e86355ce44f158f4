package scheduler

import (
	"context"
	"fmt"
	"math"

	"github.com/couponq/couponq/couponq"
)

// room is what a leadership knows of a campaign's undecided stock: at its
// last read, Stock − issued − in flight was at least units, less what was
// leased since. Nothing but a lease lowers the true figure while the stock
// stays put (an outcome turns an entry in flight into an issued unit, or
// frees its unit), so units is a lower bound until Stock changes: ticks
// that need no more than it skip the reads.
type room struct {
	known bool
	stock int64 // the Stock it was read against
	units int64
}

func (r *room) spend(leased int) {
	if r.known {
		r.units = undecided(r.units, int64(leased), 0)
	}
}

// cutoff bounds a tick's move of up to want entries by the campaign's
// undecided stock, so that every entry handed downstream has a unit
// waiting for it unless its user is over their limit: capped reports that
// it moved fewer than want for that reason. It reads the line's counts
// (returned, for the in-flight bound to reuse; nil when the room known
// sufficed) and then the issued count — in that order, so an entry decided
// between the two reads is counted twice rather than not at all.
//
// A sold-out line is leased in full: Lease resolves its waiting entries in
// bulk. A campaign with no room and nothing in flight moves one entry, its
// head, so the Store (the last word) answers for it: issued if the
// Queue's and the Store's counts left a unit after all, sold out otherwise,
// which marks the line sold out and resolves the rest; waiting on a count
// that never moves would strand the line.
func (s *Scheduler) cutoff(ctx context.Context, c couponq.Campaign, want int, r *room) (n int, capped bool, st *couponq.LineStats, err error) {
	if r.known && r.stock == c.Stock && r.units >= int64(want) {
		return want, false, nil, nil
	}
	read, err := s.cfg.Queue.(couponq.LineStatser).LineStats(ctx, c.ID)
	if err != nil {
		r.known = false
		return 0, false, nil, fmt.Errorf("cutoff: line stats: %w", err)
	}
	st = &read
	issued := read.Issued
	if s.cfg.Issued != nil {
		if issued, err = s.cfg.Issued.IssuedCount(ctx, c.StoreCampaign()); err != nil {
			r.known = false
			return 0, false, st, fmt.Errorf("cutoff: issued count: %w", err)
		}
	}
	if read.SoldOut {
		r.known = false
		return want, false, st, nil
	}
	units := undecided(c.Stock, issued, read.InFlight) // an int below only when under want
	*r = room{known: true, stock: c.Stock, units: units}
	switch {
	case units >= int64(want):
		return want, false, st, nil
	case units > 0:
		return int(units), true, st, nil
	case read.InFlight == 0 && read.Waiting > 0:
		return 1, true, st, nil
	case read.Waiting == 0 && read.InFlight == 0:
		return want, false, st, nil // nothing to hold back: the campaign may rest
	}
	return 0, true, st, nil
}

// undecided is the stock that remains undecided, stock − issued − inFlight,
// the counts taken as at least 0. It saturates rather than wraps around,
// whatever the counts (a Stock that validates is at most 10^15, so only a
// broken count could take it there).
func undecided(stock, issued, inFlight int64) int64 {
	u := stock
	for _, n := range [2]int64{issued, inFlight} {
		n = max(n, 0)
		if u < math.MinInt64+n {
			return math.MinInt64
		}
		u -= n
	}
	return u
}
