package kafkadispatch

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/kafkatest"
)

func TestFatalErrorRebuildsProducer(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	d, err := newDispatcher(producerOptions{Topic: topic, ConfigMap: kafkatest.Config(brokers)})
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entry := []couponq.Entry{{Campaign: "c", User: "u", Number: 1}}
	require.NoError(t, d.Dispatch(ctx, entry))

	d.mu.RLock()
	broken := d.p
	d.mu.RUnlock()
	broken.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, "injected by the test")
	err = d.Dispatch(ctx, entry)
	require.Error(t, err, "a dispatch on a fatally failed producer must not claim success")

	d.mu.RLock()
	rebuilt := d.p
	d.mu.RUnlock()
	assert.NotSame(t, broken, rebuilt, "the producer was rebuilt")
	assert.NoError(t, d.Dispatch(ctx, entry), "and the next dispatch goes through")
}
