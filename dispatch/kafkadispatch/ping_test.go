package kafkadispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/health"
	"github.com/couponq/couponq/internal/kafkatest"
)

var _ health.Pinger = (*kafkadispatch.Dispatcher)(nil) // health.Ping(dispatcher) plugs it into readiness

func TestPing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: topic, ConfigMap: kafkatest.Config(brokers)})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Ping(ctx))
	require.NoError(t, d.Ping(context.Background()), "no deadline: the 5s default")

	d.Close()
	assert.ErrorContains(t, d.Ping(ctx), "closed")
}

// A topic the cluster does not have (and will not create) fails the ping.
func TestPingMissingTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cm := kafkatest.Config(brokers)
	cm["allow.auto.create.topics"] = false
	topic := fmt.Sprintf("cqtest-missing-%d", time.Now().UnixNano())
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: topic, ConfigMap: cm})
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = d.Ping(ctx)
	require.Error(t, err)
	t.Logf("ping: %v", err)
	assert.Contains(t, err.Error(), "kafkadispatch: topic "+topic)
}

// A host's producer is pinged the same way, and left open.
func TestPingHostProducer(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	cm := kafkatest.Config(brokers)
	cm["enable.idempotence"] = true
	p, err := kafka.NewProducer(&cm)
	require.NoError(t, err)
	defer p.Close()
	go func() { // the host drains its producer's events; Close ends the range
		for range p.Events() {
		}
	}()
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: topic, Producer: p})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, d.Ping(ctx))
	d.Close()
	assert.False(t, p.IsClosed())
}

// No broker: Ping fails within its context's deadline instead of hanging.
func TestPingUnreachable(t *testing.T) {
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: "t",
		ConfigMap: kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1"}})
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = d.Ping(ctx)
	require.Error(t, err)
	t.Logf("ping: %v", err)
	assert.Contains(t, err.Error(), "kafkadispatch: metadata for topic t")
	assert.Less(t, time.Since(start), 3*time.Second)

	done, stop := context.WithCancel(context.Background())
	stop()
	assert.ErrorIs(t, d.Ping(done), context.Canceled, "a cancelled context is not sent")
}
