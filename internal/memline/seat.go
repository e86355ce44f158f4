package memline

import (
	"context"
	"fmt"

	"github.com/couponq/couponq/couponq"
)

var _ couponq.Seater = (*Queue)(nil)

// Seat implements couponq.Seater. The Queue seats the whole pre-queue
// under its lock, in one go, so the first call records the seating done
// and no caller ever sees it half applied; later calls return that record
// and change nothing, whatever their seed. A seat swaps the users (with
// their request ID and trace) waiting at two entry numbers, while each
// number keeps its admission time, so Lease, Status, Admit's repeat
// answers and Record all see the new order. The record is the campaign's
// like its other state: Archive forgets it with the rest.
func (q *Queue) Seat(ctx context.Context, campaign string, seed uint64) (couponq.Seating, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Seating{}, err
	}
	if err := couponq.ValidateID(campaign); err != nil {
		return couponq.Seating{}, fmt.Errorf("couponq/memory: seat: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.line(campaign)
	if l.seat == nil {
		n := l.seq
		if l.sealed {
			n = l.seal
		}
		l.seat = &couponq.Seating{Seed: seed, Entries: n}
		couponq.SeatSwaps(seed, n, func(_, i, j int64) bool {
			l.swap(i, j)
			return true
		})
		l.seat.Done = true
	}
	return *l.seat, nil
}

// Seal implements couponq.Seater: the first call marks the pre-queue's end
// at the last entry number now.
func (q *Queue) Seal(ctx context.Context, campaign string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := couponq.ValidateID(campaign); err != nil {
		return fmt.Errorf("couponq/memory: seal: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.line(campaign)
	if !l.sealed {
		l.seal, l.sealed = l.seq, true
	}
	return nil
}

// swap exchanges the users waiting at entry numbers i and j; the numbers
// and their admission times stay with the places. It does nothing unless
// both numbers wait and differ.
func (l *line) swap(i, j int64) {
	if i == j || l.rank(i) == 0 || l.rank(j) == 0 {
		return
	}
	ei, ej := l.entries[i], l.entries[j]
	atI, atJ := ei.AdmittedAt, ej.AdmittedAt
	ei.Number, ei.AdmittedAt = j, atJ
	ej.Number, ej.AdmittedAt = i, atI
	l.entries[i], l.entries[j] = ej, ei
	l.users[ej.User].entry = i
	l.users[ei.User].entry = j
}
