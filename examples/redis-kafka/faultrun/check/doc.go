// Package check is the fault run's invariant checker. It holds a run of
// couponq to its promises — never over-issue, never more than the per-user
// limit, every accepted request ends with an outcome, first come first
// served at the cutoff (no user told sold out while one admitted after
// them holds a unit), the scheduler's pace — and measures how long the pipeline took to recover from each fault.
//
// It is independent of the code under test: it imports no couponq package.
// It reads the Store of record (PostgreSQL, pgstore's two tables) with
// plain SQL in one snapshot, the topic with a plain Kafka consumer from the
// start of every partition to its high watermark, decoding the JSON itself,
// and the records the run's crowd and watcher kept of what users were told
// (Inputs). Check returns a Report whose Violations are the broken
// invariants and whose WriteMarkdown writes the figures, the violations,
// the notes, the recovery table and how each figure is computed.
package check
