// Package lock defines the Locker couponq takes lease locks from, an
// in-memory Locker, and Acquire, which waits for a lock with backoff.
//
// In couponq a lock cuts contention (V1's per-request gate, the issuer's
// per-user section) and elects the one throttle that leads a campaign. It is
// never what keeps stock and duplicates right: the Store is.
package lock
