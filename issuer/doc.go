// Package issuer is the consuming end of the pipeline: for each delivered
// entry it takes the per-user lock, asks the Store, records the outcome so
// Status reports it, and only then lets the delivery be committed. Store
// failures are retried with backoff; an entry that keeps failing goes to the
// DeadLetter with its reason and is recorded as rejected/failed, so no
// accepted entry ends without an outcome.
package issuer
