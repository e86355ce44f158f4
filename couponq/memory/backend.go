package memory

import (
	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/lock"
)

// New returns an empty in-memory Backend, named "memory": a line per
// campaign with its agenda, a registry, a Locker and V1's Tally, all in
// this process. It has nothing to ping.
func New() couponq.Backend {
	registry, _ := memline.NewRegistry() // empty: cannot fail
	q, tally := memline.NewQueue(nil), memline.NewTally()
	q.SetTally(tally) // Archive puts V1's counters away with the line
	return couponq.Backend{
		Name:     "memory",
		Queue:    q,
		Registry: registry,
		Locker:   lock.NewMemory(),
		Tally:    tally,
	}
}
