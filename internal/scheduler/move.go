package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
)

// mover is the leased hand-off of one batch.
type mover struct {
	queue      couponq.Leaser
	dispatcher couponq.Dispatcher
	// leaseTTL bounds how long a leased batch may take to be dispatched;
	// handoff how long a dispatched entry may take to be decided;
	// dispatchTimeout one Dispatch call (and the ack or release after it).
	leaseTTL, handoff, dispatchTimeout time.Duration
	// tracer, if set, starts a StageDispatch span per leased entry.
	tracer couponq.Tracer
}

// newMover applies the hand-off timings' documented defaults (LeaseTTL 30s,
// HandoffTimeout 5m, DispatchTimeout LeaseTTL/2), writing them back so the
// caller's config shows them, and returns the mover.
func newMover(q couponq.Leaser, d couponq.Dispatcher, tracer couponq.Tracer, leaseTTL, handoff, dispatchTimeout *time.Duration) mover {
	if *leaseTTL == 0 {
		*leaseTTL = 30 * time.Second
	}
	if *handoff == 0 {
		*handoff = 5 * time.Minute
	}
	if *dispatchTimeout == 0 {
		*dispatchTimeout = *leaseTTL / 2
	}
	return mover{queue: q, dispatcher: d, tracer: tracer, leaseTTL: *leaseTTL, handoff: *handoff, dispatchTimeout: *dispatchTimeout}
}

// move leases up to max of the campaign's oldest entries, dispatches them,
// acks what the Dispatcher took and releases the rest. Recovered leases are
// part of the batch, so they spend the same budget.
func (m mover) move(ctx context.Context, campaign string, max int) (leased, failed int, err error) {
	batch, err := m.queue.Lease(ctx, campaign, max, m.leaseTTL)
	if err != nil || len(batch) == 0 {
		return 0, 0, err
	}
	spans := m.startSpans(ctx, batch)
	dctx, cancel := context.WithTimeout(ctx, m.dispatchTimeout)
	derr := m.dispatcher.Dispatch(dctx, batch)
	cancel()
	var acked, released []couponq.Entry
	for i, bad := range couponq.FailedEntries(derr, len(batch)) {
		if spans != nil {
			spans[i].End(entryErr(derr, i, bad))
		}
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

// startSpans starts a StageDispatch span per entry, each a child of the
// entry's admission trace, and makes the span the trace the entry carries
// downstream. Nil without a Tracer.
func (m mover) startSpans(ctx context.Context, batch []couponq.Entry) []couponq.Span {
	if m.tracer == nil {
		return nil
	}
	spans := make([]couponq.Span, len(batch))
	for i, e := range batch {
		_, spans[i] = m.tracer.Start(ctx, couponq.StageDispatch, e)
		if c := couponq.TraceFor(spans[i]); c != "" {
			batch[i].Trace = c
		}
	}
	return spans
}

// entryErr is the error of entry i of a Dispatch that answered err: its own
// cause in a PartialError, err for a failed entry otherwise, nil for an
// accepted one.
func entryErr(err error, i int, failed bool) error {
	if !failed {
		return nil
	}
	var pe *couponq.PartialError
	if errors.As(err, &pe) && pe.Failed[i] != nil {
		return pe.Failed[i]
	}
	return err
}

// checkInFlightBound validates a MaxInFlightBatches setting: not negative,
// and, when set, a Queue that can count what is in flight.
func checkInFlightBound(q couponq.Leaser, batches int) error {
	if batches < 0 {
		return fmt.Errorf("MaxInFlightBatches must be >= 0, got %d", batches)
	}
	if _, ok := q.(couponq.LineStatser); batches > 0 && !ok {
		return errors.New("MaxInFlightBatches needs a Queue that implements couponq.LineStatser")
	}
	return nil
}

// inFlightRoom is how many of the campaign's entries a tick may move under
// a MaxInFlightBatches bound: batch, less whatever would take the entries
// in flight past batches × batch. st is the tick's LineStats if it read
// them already.
func inFlightRoom(ctx context.Context, q couponq.Leaser, st *couponq.LineStats, campaign string, batch, batches int) (int, error) {
	if st == nil {
		read, err := q.(couponq.LineStatser).LineStats(ctx, campaign)
		if err != nil {
			return 0, fmt.Errorf("in flight: %w", err)
		}
		st = &read
	}
	return inFlightLimit(batch, batches, st.InFlight), nil
}

// inFlightLimit is inFlightRoom's arithmetic: min(batch, batches × batch −
// inFlight), at least 0. The product saturates at math.MaxInt64 (a
// wrapped product would hold every tick at 0, and the line would never
// move again, with nothing logged), and so does the difference.
func inFlightLimit(batch, batches int, inFlight int64) int {
	if batch <= 0 || batches <= 0 {
		return 0
	}
	bound := int64(math.MaxInt64)
	if int64(batches) <= math.MaxInt64/int64(batch) {
		bound = int64(batches) * int64(batch)
	}
	room := bound - max(inFlight, 0) // both >= 0: no overflow
	return int(max(0, min(room, int64(batch))))
}

// seats keeps, per process, which campaigns' pre-queues are seated, so a
// tick asks the Queue at most until seating is done.
type seats struct {
	mu   sync.Mutex
	done map[string]time.Time // campaign -> the OpensAt it was seated for
}

// ready reports whether the campaign's entries may be leased: always for a
// campaign without a pre-queue; for one with a pre-queue (Campaign.PreQueue)
// not before OpensAt, and from then on only once the Queue (a
// couponq.Seater) has seated it. Seating is begun (with a fresh random
// seed, which the Queue records) or resumed here; the tick that sees it
// done gets the record, which is logged for the audit.
func (s *seats) ready(ctx context.Context, q couponq.Leaser, c couponq.Campaign, now time.Time, log *slog.Logger) (bool, *couponq.Seating, error) {
	if c.PreQueue <= 0 {
		return true, nil, nil
	}
	if now.Before(c.OpensAt) {
		return false, nil, nil
	}
	s.mu.Lock()
	at, ok := s.done[c.ID]
	s.mu.Unlock()
	if ok && at.Equal(c.OpensAt) {
		return true, nil, nil
	}
	seater, ok := q.(couponq.Seater)
	if !ok {
		return false, nil, fmt.Errorf("campaign %s has a pre-queue, but the Queue cannot seat it (couponq.Seater)", c.ID)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	st, err := seater.Seat(ctx, c.ID, binary.LittleEndian.Uint64(b[:]))
	if err != nil {
		return false, nil, fmt.Errorf("seat pre-queue: %w", err)
	}
	if !st.Done {
		return false, nil, fmt.Errorf("seat pre-queue: %s not done", c.ID)
	}
	s.mu.Lock()
	if s.done == nil {
		s.done = make(map[string]time.Time)
	}
	s.done[c.ID] = c.OpensAt
	s.mu.Unlock()
	log.Info("couponq: pre-queue seated", "campaign", c.ID, "seed", st.Seed, "entries", st.Entries)
	return true, &st, nil
}
