package memline

import (
	"context"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
)

var _ couponq.Archiver = (*Queue)(nil)

// archives holds the archived campaigns whose records are kept until a
// deadline.
type archives struct {
	until map[string]time.Time // campaign -> when its records expire
	next  time.Time            // the earliest deadline in until; zero if none
}

// Archive implements couponq.Archiver. The campaign's records stay as they
// are until retention has passed by the Queue's clock, and are dropped by
// the first call to the Queue after that (any call that looks a campaign
// up), so expiry costs nothing while no archived campaign is due. A
// retention of 0 drops them at once. The campaign is taken off the agenda.
// If entries were admitted after Archive and still wait or are in flight
// when the retention ends, nothing is dropped: the campaign is no longer
// archived. V1's counters in the Tally given to SetTally, if any, are put
// away with the records (so a campaign re-created after them starts with
// none); the Store is apart and untouched.
func (q *Queue) Archive(ctx context.Context, campaign string, retention time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("%w: couponq/memory: archive %s: negative retention %s", couponq.ErrInvalidConfig, campaign, retention)
	}
	if err := couponq.ValidateID(campaign); err != nil {
		return fmt.Errorf("couponq/memory: archive: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l != nil && (len(l.waiting) > 0 || len(l.flight) > 0) {
		return fmt.Errorf("couponq/memory: archive: %w: %s has %d waiting and %d in flight",
			couponq.ErrCampaignBusy, campaign, len(l.waiting), len(l.flight))
	}
	delete(q.agenda, campaign)
	switch {
	case retention == 0:
		q.drop(campaign)
		return nil
	case l == nil && q.tally == nil:
		return nil // no records to put away
	}
	if q.archive.until == nil {
		q.archive.until = make(map[string]time.Time)
	}
	at := q.now().Add(retention)
	q.archive.until[campaign] = at
	// Setting a later deadline anew may leave next early; expire then finds
	// nothing due and moves next on.
	if q.archive.next.IsZero() || at.Before(q.archive.next) {
		q.archive.next = at
	}
	return nil
}

// lookup returns the campaign's line, nil if there is none, after dropping
// archived campaigns whose retention has passed. q.mu must be held.
func (q *Queue) lookup(campaign string) *line {
	q.expire()
	return q.campaigns[campaign]
}

// expire drops every archived campaign whose retention has passed; while
// none is due it only compares one time. q.mu must be held.
func (q *Queue) expire() {
	if q.archive.next.IsZero() {
		return
	}
	now := q.now()
	if now.Before(q.archive.next) {
		return
	}
	var next time.Time
	for id, at := range q.archive.until {
		if now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		delete(q.archive.until, id)
		if l := q.campaigns[id]; l != nil && (len(l.waiting) > 0 || len(l.flight) > 0) {
			continue // admitted after Archive: live again
		}
		q.drop(id)
	}
	q.archive.next = next
}

// drop forgets the campaign's records, and its V1 counters in the Tally.
// q.mu must be held.
func (q *Queue) drop(campaign string) {
	delete(q.campaigns, campaign)
	delete(q.archive.until, campaign)
	if q.tally != nil {
		q.tally.drop(campaign)
	}
}

// SetTally makes Archive put away the campaign's V1 counters in t with its
// records (couponq.Archiver covers "V1's counters"). Call it before use.
func (q *Queue) SetTally(t *Tally) { q.tally = t }
