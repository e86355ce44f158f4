package memline

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/couponq/couponq/couponq"
)

var _ couponq.Agenda = (*Queue)(nil)

// Wake implements couponq.Agenda: it puts the campaign on the Queue's
// agenda, stamped with the time it woke; an awake campaign keeps its stamp.
func (q *Queue) Wake(ctx context.Context, campaign string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := couponq.ValidateID(campaign); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wake(campaign)
	return nil
}

// wake puts campaign on the agenda, telling the watchers when it was not
// on it; q.mu must be held.
func (q *Queue) wake(campaign string) {
	if q.agenda == nil {
		q.agenda = make(map[string]time.Time)
	}
	if _, ok := q.agenda[campaign]; !ok {
		q.agenda[campaign] = q.now()
		for ch := range q.watchers {
			select {
			case ch <- struct{}{}:
			default: // a signal is pending already
			}
		}
	}
}

// WatchWakes returns a channel that receives a signal (several wakes may
// share one) whenever a campaign that was not on the agenda is put on it,
// until ctx is done; then it is closed. The scheduler's leader reads the
// agenda at once on a signal instead of at its next poll.
func (q *Queue) WatchWakes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	q.mu.Lock()
	if q.watchers == nil {
		q.watchers = make(map[chan struct{}]struct{})
	}
	q.watchers[ch] = struct{}{}
	q.mu.Unlock()
	go func() {
		<-ctx.Done()
		q.mu.Lock()
		delete(q.watchers, ch)
		q.mu.Unlock()
		close(ch)
	}()
	return ch
}

// Awake implements couponq.Agenda: the campaigns on the agenda, longest
// awake first.
func (q *Queue) Awake(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	type woke struct {
		id string
		at time.Time
	}
	all := make([]woke, 0, len(q.agenda))
	for id, at := range q.agenda {
		all = append(all, woke{id, at})
	}
	q.mu.Unlock()
	slices.SortFunc(all, func(a, b woke) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id))
	})
	ids := make([]string, len(all))
	for i, w := range all {
		ids[i] = w.id
	}
	return ids, nil
}

// Rest implements couponq.Agenda. The check and the removal happen under
// the Queue's lock, the one admission takes, so no entry can slip in
// between. A campaign that has entries stays on (or is put back on) the
// agenda.
func (q *Queue) Rest(ctx context.Context, campaign string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if l := q.lookup(campaign); l != nil && (len(l.waiting) > 0 || len(l.flight) > 0) {
		q.wake(campaign)
		return false, nil
	}
	delete(q.agenda, campaign)
	return true, nil
}

// Sweep wakes every campaign that has entries in line or in flight and
// reports how many there are (awake already or woken now). The Scheduler
// calls it when it gains leadership (scheduler.Sweeper).
func (q *Queue) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for id, l := range q.campaigns {
		if len(l.waiting) > 0 || len(l.flight) > 0 {
			q.wake(id)
			n++
		}
	}
	return n, nil
}
