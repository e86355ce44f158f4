// Package kafkatest connects tests to the brokers scripts/kafka.sh starts.
package kafkatest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/couponq/couponq/internal/testenv"
)

// Brokers returns the single test broker's bootstrap address.
func Brokers(t testing.TB) string {
	return testenv.Need(t, "COUPONQ_KAFKA_BROKERS", "scripts/kafka.sh")
}

// Cluster returns the 3-broker cluster's bootstrap addresses
// (scripts/kafka.sh start 3: replication factor 3, min.insync.replicas 2).
func Cluster(t testing.TB) string {
	return testenv.Need(t, "COUPONQ_KAFKA_CLUSTER", "scripts/kafka.sh start 3")
}

// Config returns a ConfigMap for the brokers.
func Config(brokers string) kafka.ConfigMap {
	return kafka.ConfigMap{"bootstrap.servers": brokers, "broker.address.family": "v4"}
}

var seq atomic.Int64

// Topic creates a fresh topic with the given partitions (replication factor
// 1) and returns its name; it is deleted when the test ends.
func Topic(t testing.TB, brokers string, partitions int) string {
	return TopicRF(t, brokers, partitions, 1)
}

// TopicRF is Topic with a replication factor.
func TopicRF(t testing.TB, brokers string, partitions, rf int) string {
	t.Helper()
	name := fmt.Sprintf("cqtest-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
	cm := Config(brokers)
	admin, err := kafka.NewAdminClient(&cm)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: rf}},
		kafka.SetAdminOperationTimeout(20*time.Second))
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("create topic %s: %v", r.Topic, r.Error)
		}
	}
	t.Cleanup(func() {
		cm := Config(brokers)
		admin, err := kafka.NewAdminClient(&cm)
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = admin.DeleteTopics(ctx, []string{name, name + ".dlq"})
	})
	return name
}

// WaitGroupStable waits, up to 60 s or ctx, until the consumer group is
// stable with members members, each holding partitions and all of them
// partitions assigned, so what follows runs on every consumer. It answers
// an error (with the group's last state) when that does not happen.
func WaitGroupStable(ctx context.Context, cm kafka.ConfigMap, group string, members, partitions int) error {
	admin, err := kafka.NewAdminClient(&cm)
	if err != nil {
		return err
	}
	defer admin.Close()
	deadline := time.Now().Add(60 * time.Second)
	last := "not described yet"
	for time.Now().Before(deadline) && ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := admin.DescribeConsumerGroups(dctx, []string{group})
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case len(res.ConsumerGroupDescriptions) != 1:
			last = fmt.Sprintf("%d descriptions", len(res.ConsumerGroupDescriptions))
		default:
			d := res.ConsumerGroupDescriptions[0]
			holding, assigned := 0, 0
			for _, m := range d.Members {
				if n := len(m.Assignment.TopicPartitions); n > 0 {
					holding++
					assigned += n
				}
			}
			if d.State == kafka.ConsumerGroupStateStable && len(d.Members) == members && holding == members && assigned == partitions {
				return nil
			}
			last = fmt.Sprintf("state %s, %d members, %d holding partitions, %d partitions assigned", d.State, len(d.Members), holding, assigned)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("consumer group %s not stable with %d members over %d partitions within 60 s: %s", group, members, partitions, last)
}
