package couponq

import (
	"context"

	"github.com/couponq/couponq/lock"
)

// Backend is the system a fleet shares for its campaigns' lines, its
// registry and its locks: one value per system, which the node takes whole.
// redisq.New returns the Redis one, memory.New the in-memory one; a host
// with a system of its own fills one in (queuetest, registrytest,
// agendatest and locktest check the parts).
type Backend struct {
	// Name names the backend in readiness answers and logs ("redis",
	// "memory").
	Name string
	// Queue holds the lines and the recorded outcomes. The node also needs
	// it to be an Agenda, a LineStatser, a Reopener and an Archiver; a
	// Seater serves pre-queues, an IssuedCounter over-issue detection.
	Queue Queue
	// Registry is where campaigns live.
	Registry Registry
	// Locker holds the scheduler's leader lease and V1's locks.
	Locker lock.Locker
	// Tally holds V1's counters; nil means the node refuses V1
	// (ValidateFirst) campaigns.
	Tally Tally
	// Ping reports whether the backend answers, for readiness; nil means
	// there is nothing to check.
	Ping func(ctx context.Context) error
}

// Transport carries entries from the scheduler to the issuers: the
// Dispatcher one side, the Consumer the other. dispatch.NewMemory returns
// the in-process one, kafkadispatch.New the Kafka one.
type Transport interface {
	Dispatcher
	Consumer
}
