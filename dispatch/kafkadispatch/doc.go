// Package kafkadispatch is couponq's transport on Apache Kafka, built on
// github.com/confluentinc/confluent-kafka-go/v2 (librdkafka, so it needs
// cgo; it is the only package of the module that does). New returns a
// Transport to give a node:
//
//	transport, err := kafkadispatch.New(kafkadispatch.Config{Brokers: "127.0.0.1:9092", Topic: "couponq-entries"})
//	defer transport.Close()
//	n, err := node.New(node.Config{Transport: transport, ...})
//
// The producing side is idempotent (enable.idempotence=true, acks=all):
// Dispatch returns once every message of the batch has its delivery
// report, and names the entries Kafka did not acknowledge, which the
// scheduler puts back in line. After a fatal producer error it builds a new
// producer. Messages are keyed by campaign and user and encoded in the
// versioned format of package wire.
//
// The consuming side is a consumer group member that stores an offset only
// after the issuer has recorded the entry's outcome, contiguously per
// partition (one goroutine per assigned partition, in order), and commits
// stored offsets before giving a partition up in a rebalance, so nothing is
// lost and what is delivered twice is absorbed by the Store. A message that
// cannot be decoded goes to the dead-letter topic (Topic + ".dlq") with its
// reason and source in headers and does not stall its partition. After a
// fatal consumer error (a static member fenced once its session expired
// during an outage, say) a new consumer joins the group in its place.
//
// # How fast partitions change hands
//
// When a worker goes away, the entries on its partitions wait until the
// group gives them to someone. What settles how long, each with its price
// (Config.ConfigMap lists the defaults):
//
//   - Config.SessionTimeout (6s): a killed worker's partitions move after
//     it. A shorter one evicts live workers that stall (a GC pause, a
//     starved CPU); the broker's group.min.session.timeout.ms is the floor.
//   - Static membership (group.instance.id in ConfigMap, off by default):
//     a worker restarted in place under the same ID gets its partitions
//     back as it joins, with no rebalance and no wait for the session of
//     its previous incarnation. Give each worker slot its own stable ID (a
//     StatefulSet ordinal, the supervisor's process name), never two
//     running workers the same one. A static member does not leave the
//     group when it stops, so one stopped for good, or killed and not
//     restarted, holds its partitions for SessionTimeout; and its
//     SessionTimeout should outlast the brokers' move of the group
//     coordinator after a broker dies (their broker.session.timeout.ms, 9s
//     by default, and the election), or its session runs out meanwhile,
//     it rejoins, is fenced as its own stale self and fails for good
//     (Consume then starts a new consumer).
//   - partition.assignment.strategy (cooperative-sticky): a rebalance
//     moves only the partitions that change owner; the others are
//     consumed throughout, where the eager strategies (range, roundrobin)
//     stop every member's partitions for every rebalance. Every member of
//     a group must use the same one: moving a running group between eager
//     and cooperative takes a full stop of its members.
//   - heartbeat.interval.ms (500ms): how soon a live member hears of a
//     rebalance and takes up the partitions a stopping member gave up; one
//     small request to the coordinator per member per interval.
//   - reconnect.backoff.max.ms (1s; librdkafka's own is 10s): the most a
//     producer or consumer waits to reconnect after a broker or the
//     network comes back; lower costs more attempts on a broker that is
//     down.
//
// A dynamic member that stops gracefully leaves the group at once, having
// committed what it decided. What a broker's own death costs (the brokers
// noticing it and electing new partition leaders, during which producing
// to its partitions waits) is the brokers' configuration, not the
// client's.
package kafkadispatch
