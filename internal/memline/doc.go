// Package memory holds in-memory implementations of couponq's Queue, Store
// and Tally: goroutine-safe, with the same semantics as the server-backed
// ones (leases expire, entries are handed out again), for embedding in a
// single process and for fast tests. Their state ends with the process.
package memline
