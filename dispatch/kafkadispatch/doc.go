// Package kafkadispatch is couponq's transport on Apache Kafka, built on
// github.com/confluentinc/confluent-kafka-go/v2 (librdkafka, so it needs
// cgo; it is the only package of the module that does).
//
// Dispatcher is an idempotent producer (enable.idempotence=true, acks=all):
// Dispatch returns once every message of the batch has its delivery report,
// and names the entries Kafka did not acknowledge, which the throttle puts
// back in line. Messages are keyed by campaign and user and encoded in the
// versioned format of package wire.
//
// Consumer is a consumer group member that stores an offset only after the
// handler has recorded the entry's outcome, contiguously per partition (one
// goroutine per assigned partition, in order), and commits stored offsets
// before giving a partition up in a rebalance, so nothing is lost and what
// is delivered twice is absorbed by the Store. A message that cannot be
// decoded goes to the dead-letter topic with its reason in headers and does
// not stall its partition.
//
// Both take the host's kafka.ConfigMap (bootstrap servers, SASL/SSL, ...);
// a Dispatcher can also wrap the host's own *kafka.Producer. What the host
// passed in is never closed here.
package kafkadispatch
