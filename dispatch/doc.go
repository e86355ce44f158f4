// Package dispatch holds the throttle, the "dam" between a campaign's line
// and its downstream, and Memory, an in-process transport.
//
// A Throttle ticks every Interval. If it holds the campaign's leader lease
// it leases at most BatchSize of the oldest entries (expired leases first),
// hands them to the Dispatcher, acknowledges what the Dispatcher durably
// took and puts the rest back at the head of the line. Nothing is popped
// destructively, so a crash anywhere leaves entries to come back when their
// lease runs out; duplicates that this can cause are absorbed by the Store.
package dispatch
