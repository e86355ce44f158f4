package dispatch

import (
	"time"

	"github.com/couponq/couponq/couponq"
)

// TickEvent describes one leading tick.
type TickEvent struct {
	Campaign string
	// Leased is how many entries came out of the line.
	Leased int
	// Failed is how many of them the Dispatcher did not take (back in line).
	Failed int
	// Err is the tick's error, if any (lease, dispatch as a whole, ack).
	Err      error
	Duration time.Duration
	// Rested is set by the Scheduler when the tick leased nothing and the
	// campaign came off the Agenda (its line and flight were empty).
	Rested bool
	// Held is set when the tick moved less than BatchSize (or nothing)
	// because of MaxInFlightBatches: the campaign had that many batches'
	// worth in flight.
	Held bool
	// Cutoff is set when the tick moved less than BatchSize (or nothing)
	// because that little stock remains undecided: the entries behind wait
	// for the outcomes in flight (the exact cutoff, in the package doc).
	Cutoff bool
	// PreQueue is set when the tick moved nothing because the campaign's
	// pre-queue is not seated yet (before OpensAt, or seating failed).
	PreQueue bool
	// Seating is the record of the campaign's pre-queue seating, on the
	// tick that found it done (once per process): an audit keeps it, and
	// couponq.SeatOrder(Seating.Seed, Seating.Entries) replays the order.
	Seating *couponq.Seating
}
