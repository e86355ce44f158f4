// Package node is couponq's runtime object for the common case, the way a
// river.Client is river's: one constructor takes the backends, and Start and
// Stop run admission, the scheduler and the issuer in this process.
//
//	campaigns, _ := memline.NewRegistry(couponq.Campaign{ID: "spring-sale", Stock: 1000})
//	n, _ := node.New(node.Config{Catalog: campaigns}) // in-memory backends by default
//	_ = n.Start(ctx)
//	defer n.Stop(ctx)
//	ticket, err := n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: userID})
//
// A node has roles. RoleAPI serves admission and status (Service, and so
// the HTTP handlers built on it). RoleWorker runs the scheduler — one leader
// per process group drives every campaign that has people waiting, at each
// campaign's BatchSize per Interval — and the issuer, which consumes the
// transport into the Store. The zero Roles is both; the same binary can run
// API-only and worker-only processes by setting Roles from a flag.
//
// With no backends at all a node runs on the in-memory ones (memline.Queue,
// memory.Store, dispatch.Memory, lock.Memory): the embedded default, for one
// process. For a fleet, pass the Redis queue, Locker and registry, the
// Kafka transport and a durable Store; every process then shares them.
//
// The lower-level pieces — admission.Service, scheduler.Scheduler and
// dispatch.Throttle, issuing.Issuer — stay public for hosts that need them.
package node
