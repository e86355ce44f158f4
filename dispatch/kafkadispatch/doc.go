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
// reason and source in headers and does not stall its partition.
package kafkadispatch
