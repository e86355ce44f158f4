package kafkadispatch

import (
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// One base ConfigMap serves the consumer and its dead-letter producer (and
// hosts often share one between their producer and consumer). librdkafka
// warns (CONFWARN) about every property meant for the other kind of client,
// so each side leaves the other's properties out. The lists name the
// properties librdkafka documents as consumer-only or producer-only that a
// host is likely to set; anything else is passed through.
var (
	consumerOnly = []string{
		"group.id", "group.instance.id", "group.protocol", "group.remote.assignor",
		"partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms",
		"coordinator.query.interval.ms", "max.poll.interval.ms", "enable.auto.commit",
		"auto.commit.interval.ms", "enable.auto.offset.store", "auto.offset.reset",
		"queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms",
		"fetch.queue.backoff.ms", "fetch.message.max.bytes", "max.partition.fetch.bytes",
		"fetch.max.bytes", "fetch.min.bytes", "fetch.error.backoff.ms", "isolation.level",
		"enable.partition.eof", "check.crcs",
	}
	producerOnly = []string{
		"transactional.id", "transaction.timeout.ms", "enable.idempotence",
		"enable.gapless.guarantee", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
		"queue.buffering.max.ms", "linger.ms", "message.send.max.retries", "retries",
		"batch.num.messages", "batch.size", "delivery.report.only.error", "request.required.acks",
		"acks", "request.timeout.ms", "message.timeout.ms", "delivery.timeout.ms", "partitioner",
		"compression.codec", "compression.type", "compression.level", "sticky.partitioning.linger.ms",
	}
)

// without returns a copy of cm without the named properties; cm is not
// changed.
func without(cm kafka.ConfigMap, names []string) kafka.ConfigMap {
	drop := make(map[string]bool, len(names))
	for _, n := range names {
		drop[n] = true
	}
	out := kafka.ConfigMap{}
	for k, v := range cm {
		if !drop[strings.TrimSpace(k)] {
			out[k] = v
		}
	}
	return out
}
