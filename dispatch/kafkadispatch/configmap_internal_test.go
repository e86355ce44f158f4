package kafkadispatch

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
)

func TestWithoutLeavesOutTheOtherSidesProperties(t *testing.T) {
	base := kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:9092", "session.timeout.ms": 6000, "linger.ms": 5,
		"auto.offset.reset": "latest", "client.id": "x"}
	forProducer := without(base, consumerOnly)
	assert.Equal(t, kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 5, "client.id": "x"}, forProducer)
	forConsumer := without(base, producerOnly)
	assert.Equal(t, kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:9092", "session.timeout.ms": 6000,
		"auto.offset.reset": "latest", "client.id": "x"}, forConsumer)
	assert.Len(t, base, 5, "the host's map is not changed")
}
