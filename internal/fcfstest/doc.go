// Package fcfstest holds the conformance test of couponq's first come,
// first served promise on the production shape: real Redis (redisq as the
// Backend, redisstore as the Store) and real Kafka (kafkadispatch, 8
// partitions), one API node and three worker nodes, wired through the
// public surface a host uses (node.New).
//
// The promise it checks is the exact cutoff: the stock goes to the users
// at the head of the line, so no user is told "sold out" while a user
// admitted after them (a higher entry number) holds a unit — such a pair is
// an inversion, and the test counts them. Alongside, it checks that the
// Store issued exactly the stock, that users who already held their
// per-user limit before the sale end rejected as duplicates, and that no
// user holds more than the limit; and it measures, without asserting, how
// far V1 (validate-first) strays from call order under concurrent
// requests.
//
// The package has no code of its own: everything is in its test, which
// needs the servers scripts/redis.sh and scripts/kafka.sh start (it skips
// without them, and fails under CI) and cgo, for the Kafka transport.
// scripts/test.sh runs it in a step of its own, verbosely, so its figures
// (the lines starting "fcfs:") show in `make test`:
//
//	. .cache/servers/redis/env; . .cache/servers/kafka-1/env
//	go test -race -count=1 -v -run TestFirstComeFirstServed ./internal/fcfstest
package fcfstest
