// Package kafkatest connects tests to the broker scripts/kafka.sh starts.
// Without it a test skips, except under CI (CI set), where it fails.
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Brokers returns the single test broker's bootstrap address.
func Brokers(t testing.TB) string {
	t.Helper()
	b := os.Getenv("COUPONQ_KAFKA_BROKERS")
	if b == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("COUPONQ_KAFKA_BROKERS is not set: run the tests with `make test` (scripts/kafka.sh starts Kafka)")
		}
		t.Skip("COUPONQ_KAFKA_BROKERS not set; `make test` starts Kafka (scripts/kafka.sh)")
	}
	return b
}

// Config returns a ConfigMap for the brokers.
func Config(brokers string) kafka.ConfigMap {
	return kafka.ConfigMap{"bootstrap.servers": brokers, "broker.address.family": "v4"}
}

var seq atomic.Int64

// Topic creates a fresh topic with the given partitions and returns its
// name; it is deleted when the test ends.
func Topic(t testing.TB, brokers string, partitions int) string {
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
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}},
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
