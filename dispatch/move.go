package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/couponq/couponq/couponq"
)

// mover is the leased hand-off of one batch, the step the Throttle and the
// Scheduler share so their hand-off semantics are the same.
type mover struct {
	queue      couponq.Leaser
	dispatcher couponq.Dispatcher
	// leaseTTL bounds how long a leased batch may take to be dispatched;
	// handoff how long a dispatched entry may take to be decided;
	// dispatchTimeout one Dispatch call (and the ack or release after it).
	leaseTTL, handoff, dispatchTimeout time.Duration
}

// newMover applies the hand-off timings' documented defaults (LeaseTTL 30s,
// HandoffTimeout 5m, DispatchTimeout LeaseTTL/2), writing them back so the
// caller's config shows them, and returns the mover.
func newMover(q couponq.Leaser, d couponq.Dispatcher, leaseTTL, handoff, dispatchTimeout *time.Duration) mover {
	if *leaseTTL == 0 {
		*leaseTTL = 30 * time.Second
	}
	if *handoff == 0 {
		*handoff = 5 * time.Minute
	}
	if *dispatchTimeout == 0 {
		*dispatchTimeout = *leaseTTL / 2
	}
	return mover{queue: q, dispatcher: d, leaseTTL: *leaseTTL, handoff: *handoff, dispatchTimeout: *dispatchTimeout}
}

// move leases up to max of the campaign's oldest entries, dispatches them,
// acks what the Dispatcher took and releases the rest. Recovered leases are
// part of the batch, so they spend the same budget.
func (m mover) move(ctx context.Context, campaign string, max int) (leased, failed int, err error) {
	batch, err := m.queue.Lease(ctx, campaign, max, m.leaseTTL)
	if err != nil || len(batch) == 0 {
		return 0, 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, m.dispatchTimeout)
	derr := m.dispatcher.Dispatch(dctx, batch)
	cancel()
	var acked, released []couponq.Entry
	for i, bad := range couponq.FailedEntries(derr, len(batch)) {
		if bad {
			released = append(released, batch[i])
		} else {
			acked = append(acked, batch[i])
		}
	}
	// What the Dispatcher took must be acked even if we are stopping; if the
	// ack is lost anyway, the lease expires and the Store absorbs the resend.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.dispatchTimeout)
	defer cancel()
	var errs []error
	if derr != nil {
		errs = append(errs, fmt.Errorf("dispatch: %w", derr))
	}
	if len(acked) > 0 {
		if err := m.queue.Ack(actx, campaign, acked, m.handoff); err != nil {
			errs = append(errs, fmt.Errorf("ack: %w", err))
		}
	}
	if len(released) > 0 {
		if err := m.queue.Release(actx, campaign, released); err != nil {
			errs = append(errs, fmt.Errorf("release: %w", err))
		}
	}
	return len(batch), len(released), errors.Join(errs...)
}
