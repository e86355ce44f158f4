package kafkadispatch_test

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
)

func TestConsumerMapDefaults(t *testing.T) {
	base := kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:9092"}
	cm, cfg := kafkadispatch.ConsumerMap(kafkadispatch.Config{}, base)
	assert.Equal(t, kafka.ConfigMap{
		"bootstrap.servers":             "127.0.0.1:9092",
		"reconnect.backoff.max.ms":      "1000",
		"session.timeout.ms":            "6000",
		"heartbeat.interval.ms":         "500",
		"partition.assignment.strategy": "cooperative-sticky",
	}, cm)
	assert.Equal(t, "1000", base["reconnect.backoff.max.ms"], "the producer shares the reconnect cap")
	assert.Equal(t, 6*time.Second, cfg.SessionTimeout)
	assert.NotContains(t, cm, "group.instance.id", "a dynamic member unless the host names an instance")
}

func TestConsumerMapKeepsTheHostsSettings(t *testing.T) {
	base := kafka.ConfigMap{"bootstrap.servers": "b", "heartbeat.interval.ms": 700, "group.instance.id": "worker-1",
		"partition.assignment.strategy": "range", "reconnect.backoff.max.ms": 250}
	cm, _ := kafkadispatch.ConsumerMap(kafkadispatch.Config{SessionTimeout: 15 * time.Second}, base)
	assert.Equal(t, "worker-1", cm["group.instance.id"])
	assert.Equal(t, "range", cm["partition.assignment.strategy"])
	assert.Equal(t, "15000", cm["session.timeout.ms"])
	assert.Equal(t, 700, cm["heartbeat.interval.ms"])
	assert.Equal(t, 250, cm["reconnect.backoff.max.ms"])

	cm, _ = kafkadispatch.ConsumerMap(kafkadispatch.Config{SessionTimeout: 900 * time.Millisecond}, kafka.ConfigMap{})
	assert.Equal(t, "300", cm["heartbeat.interval.ms"], "a third of a short session")
}

func TestNewRefusesNegativeSessionTimeout(t *testing.T) {
	_, err := kafkadispatch.New(kafkadispatch.Config{Brokers: "127.0.0.1:1", Topic: "t", SessionTimeout: -time.Second})
	require.Error(t, err)
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}
