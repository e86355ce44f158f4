package kafkadispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// pingTimeout bounds a Ping whose context has no deadline.
const pingTimeout = 5 * time.Second

// Ping reports whether the dispatcher can reach Kafka and produce to its
// topic: it asks the cluster for the topic's metadata through the
// dispatcher's own producer (no message is written) and fails if the
// request does not come back, the topic is unknown or has no partitions, or
// a partition has no leader. It waits until ctx's deadline, or 5s if ctx has
// none; librdkafka's call cannot be interrupted otherwise, so a cancelled
// ctx is only noticed before the call. It fits health.Ping:
//
//	health.Ping(dispatcher)
//
// A broker configured with auto.create.topics.enable creates a missing
// topic on a producer's metadata request (librdkafka's
// allow.auto.create.topics is true for producers), just as it would on the
// first Dispatch.
func (d *dispatcher) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.RLock()
	p, closed := d.p, d.closed
	d.mu.RUnlock()
	if closed {
		return errors.New("kafkadispatch: dispatcher closed")
	}
	timeout := pingTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if timeout < time.Millisecond {
		return context.DeadlineExceeded
	}
	topic := d.cfg.Topic
	deadline := time.Now().Add(timeout)
	for try := 0; ; try++ {
		md, err := p.GetMetadata(&topic, false, int(time.Until(deadline)/time.Millisecond))
		if err != nil {
			return fmt.Errorf("kafkadispatch: metadata for topic %s: %w", topic, err)
		}
		err = checkTopic(md, topic)
		// A topic the broker creates on this very request is answered as
		// unknown: ask once more, a moment later, within the deadline.
		var ke kafka.Error
		if err == nil || try > 0 || !errors.As(err, &ke) || ke.Code() != kafka.ErrUnknownTopicOrPart ||
			time.Until(deadline) < 500*time.Millisecond {
			return err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkTopic reads a metadata answer for one topic.
func checkTopic(md *kafka.Metadata, topic string) error {
	tm, ok := md.Topics[topic]
	if !ok {
		return fmt.Errorf("kafkadispatch: topic %s missing from the metadata answer", topic)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("kafkadispatch: topic %s: %w", topic, tm.Error)
	}
	if len(tm.Partitions) == 0 {
		return fmt.Errorf("kafkadispatch: topic %s has no partitions", topic)
	}
	for _, part := range tm.Partitions {
		if part.Leader < 0 {
			return fmt.Errorf("kafkadispatch: topic %s partition %d has no leader", topic, part.ID)
		}
	}
	return nil
}
