package memline

import (
	"context"

	"github.com/couponq/couponq/couponq"
)

var (
	_ couponq.LineStatser = (*Queue)(nil)
	_ couponq.Reopener    = (*Queue)(nil)
)

// LineStats implements couponq.LineStatser. A campaign the Queue has never
// seen counts zero everywhere. Like the Redis Queue, it counts an entry
// whose lease ran out as in flight until the next Lease returns it to the
// line.
func (q *Queue) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	if err := ctx.Err(); err != nil {
		return couponq.LineStats{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l == nil {
		return couponq.LineStats{}, nil
	}
	var head int64
	if len(l.waiting) > 0 {
		head = l.waiting[0]
	}
	return couponq.LineStats{
		Head:     head,
		Admitted: l.seq,
		Waiting:  int64(len(l.waiting)),
		InFlight: int64(len(l.flight)),
		Issued:   l.issued,
		SoldOut:  l.soldOut,
	}, nil
}

// Reopen implements couponq.Reopener: it takes back the campaign's sold-out
// mark, so new users are admitted again and Lease hands waiting entries
// downstream instead of resolving them as sold out. Entries already resolved
// as sold out keep that outcome. Reopening a campaign that is not sold out
// (or unknown) does nothing.
func (q *Queue) Reopen(ctx context.Context, campaign string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if l := q.lookup(campaign); l != nil {
		l.soldOut = false
	}
	return nil
}
