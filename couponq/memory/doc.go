// Package memory is couponq in one process: New returns the in-memory
// Backend (lines, registry, locks and V1's counters) and NewStore the
// in-memory Store. A node given no Backend, Transport or Store runs on
// these. They are goroutine-safe and keep the semantics of the shared
// backends (leases expire, entries are handed out again), and their state
// ends with the process: use them to embed couponq in a single process and
// in tests.
package memory
