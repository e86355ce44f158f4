// Package scheduler is the dam a worker node runs: one leader per fleet
// moves at most BatchSize entries of each awake campaign per Interval from
// its line to the transport, with a leased hand-off, and never more than
// the stock that remains undecided (the exact cutoff, in cutoff.go). Package dispatch's doc
// has the design: the agenda, waking and resting, leadership, driving, the
// guarantees and the costs.
package scheduler
