package kafkadispatch_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/dispatchtest"
	"github.com/couponq/couponq/dispatch/kafkadispatch"
	"github.com/couponq/couponq/internal/kafkatest"
)

func newTransport(t *testing.T, brokers, topic string) (*kafkadispatch.Dispatcher, *kafkadispatch.Consumer) {
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: topic, ConfigMap: kafkatest.Config(brokers)})
	require.NoError(t, err)
	t.Cleanup(d.Close)
	c, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: topic, Group: topic + "-group",
		ConfigMap: kafkatest.Config(brokers), RetryBackoff: 20 * time.Millisecond})
	require.NoError(t, err)
	return d, c
}

func TestConformance(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	dispatchtest.RunWith(t, dispatchtest.Options{Wait: 60 * time.Second}, func(t *testing.T) (couponq.Dispatcher, couponq.Consumer) {
		return newTransport(t, brokers, kafkatest.Topic(t, brokers, 4))
	})
}

// The same suite on three brokers, topics replicated three times with
// min.insync.replicas=2: acks=all waits for the in-sync replicas.
func TestConformanceReplicated(t *testing.T) {
	brokers := kafkatest.Cluster(t)
	dispatchtest.RunWith(t, dispatchtest.Options{Wait: 60 * time.Second}, func(t *testing.T) (couponq.Dispatcher, couponq.Consumer) {
		return newTransport(t, brokers, kafkatest.TopicRF(t, brokers, 4, 3))
	})
}

func TestUndecodableMessageGoesToDeadLetters(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	d, c := newTransport(t, brokers, topic)

	// A poison message first, then a good entry behind it in the same partition.
	cm := kafkatest.Config(brokers)
	p, err := kafka.NewProducer(&cm)
	require.NoError(t, err)
	defer p.Close()
	report := make(chan kafka.Event, 1)
	require.NoError(t, p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
		Key: []byte("x"), Value: []byte(`{"v":99}`)}, report))
	require.NoError(t, (<-report).(*kafka.Message).TopicPartition.Error)
	good := couponq.Entry{Campaign: "c", User: "u", Number: 1, AdmittedAt: time.Now()}
	require.NoError(t, d.Dispatch(context.Background(), []couponq.Entry{good}))

	got := make(chan couponq.Entry, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(_ context.Context, e couponq.Entry) error { got <- e; return nil })
	}()
	select {
	case e := <-got:
		assert.Equal(t, good.Key(), e.Key(), "the poison message did not stall its partition")
	case <-time.After(60 * time.Second):
		t.Fatal("the good entry never arrived")
	}
	cancel()
	require.NoError(t, <-done)

	// The poison message sits in the dead-letter topic with its reason.
	ccm := kafkatest.Config(brokers)
	ccm["group.id"] = topic + "-dlq-reader"
	ccm["auto.offset.reset"] = "earliest"
	reader, err := kafka.NewConsumer(&ccm)
	require.NoError(t, err)
	defer reader.Close()
	require.NoError(t, reader.Subscribe(topic+".dlq", nil))
	m, err := reader.ReadMessage(60 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, `{"v":99}`, string(m.Value))
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	assert.Contains(t, headers[kafkadispatch.HeaderDeadReason], "unknown format version")
	assert.Contains(t, headers[kafkadispatch.HeaderDeadSource], topic+"/0/0")
}

func TestDispatchReportsUndeliverable(t *testing.T) {
	// A broker that is not there: every entry fails once ctx ends, none is "accepted".
	d, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: "t",
		ConfigMap: kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 500}})
	require.NoError(t, err)
	defer d.Close()
	batch := []couponq.Entry{{Campaign: "c", User: "a", Number: 1}, {Campaign: "c", User: "b", Number: 2}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d.Dispatch(ctx, batch)
	require.Error(t, err)
	assert.Equal(t, []bool{true, true}, couponq.FailedEntries(err, 2))
}

func TestConfigValidation(t *testing.T) {
	_, err := kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{ConfigMap: kafka.ConfigMap{}})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "topic required")
	_, err = kafkadispatch.NewDispatcher(kafkadispatch.ProducerConfig{Topic: "t",
		ConfigMap: kafka.ConfigMap{"bootstrap.servers": "x", "acks": "1"}})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig, "acks=1 refused")
	_, err = kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: "t"})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}

// A second consumer joins mid-stream and the first leaves later: two
// rebalances with work in hand. Every entry is handled; some may come twice.
func TestRebalancesLoseNothing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 6)
	d, _ := newTransport(t, brokers, topic)
	const n = 3000
	batch := make([]couponq.Entry, n)
	for i := range batch {
		batch[i] = couponq.Entry{Campaign: "rb", User: fmt.Sprintf("u%d", i), Number: int64(i + 1), AdmittedAt: time.Now()}
	}
	for i := 0; i < n; i += 500 {
		require.NoError(t, d.Dispatch(context.Background(), batch[i:i+500]))
	}

	var mu sync.Mutex
	seen := map[string]int{}
	handled := func(ctx context.Context, e couponq.Entry) error {
		time.Sleep(500 * time.Microsecond) // work in hand when the rebalance comes
		mu.Lock()
		seen[e.Key()]++
		mu.Unlock()
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	start := func() (stop func()) {
		c, err := kafkadispatch.NewConsumer(kafkadispatch.ConsumerConfig{Topic: topic, Group: topic + "-group",
			ConfigMap: kafkatest.Config(brokers)})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Consume(ctx, handled) }()
		return func() { cancel(); require.NoError(t, <-done) }
	}
	stopA := start()
	require.Eventually(t, func() bool { return count() >= 300 }, 60*time.Second, time.Millisecond)
	stopB := start() // rebalance: A gives partitions up with work in hand
	defer stopB()
	require.Eventually(t, func() bool { return count() >= 1500 }, 60*time.Second, time.Millisecond)
	stopA() // rebalance again: B takes everything
	require.Eventually(t, func() bool { return count() == n }, 90*time.Second, 5*time.Millisecond, "every entry handled")
	mu.Lock()
	twice := 0
	for _, k := range seen {
		if k > 1 {
			twice++
		}
	}
	mu.Unlock()
	t.Logf("%d entries handled, %d of them more than once", n, twice)
}

// A consumer that fails for good (librdkafka's fatal errors: a static
// member fenced, say) is replaced by a new one: every entry is still
// handled, and Consume returns only when its context ends.
func TestFatalConsumerErrorStartsANewConsumer(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 2)
	d, _ := newTransport(t, brokers, topic)
	const n = 200
	batch := make([]couponq.Entry, n)
	for i := range batch {
		batch[i] = couponq.Entry{Campaign: "fatal", User: fmt.Sprintf("u%d", i), Number: int64(i + 1), AdmittedAt: time.Now()}
	}
	require.NoError(t, d.Dispatch(context.Background(), batch[:n/2]))

	var mu sync.Mutex
	seen := map[string]bool{}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	var consumers sync.Map // the *kafka.Consumer instances polled
	var failed atomic.Bool
	cfg := kafkadispatch.WithPollHook(kafkadispatch.ConsumerConfig{Topic: topic, Group: topic + "-group",
		ConfigMap: kafkatest.Config(brokers), RetryBackoff: 20 * time.Millisecond},
		func(kc *kafka.Consumer, ms int) kafka.Event {
			consumers.Store(kc, true)
			if count() >= n/2 && failed.CompareAndSwap(false, true) {
				return kafka.NewError(kafka.ErrFencedInstanceID, "fenced (test)", true)
			}
			return kc.Poll(ms)
		})
	c, err := kafkadispatch.NewConsumer(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(_ context.Context, e couponq.Entry) error {
			mu.Lock()
			seen[e.Key()] = true
			mu.Unlock()
			return nil
		})
	}()
	require.Eventually(t, failed.Load, 60*time.Second, time.Millisecond, "the first consumer fails")
	require.NoError(t, d.Dispatch(context.Background(), batch[n/2:]))
	require.Eventually(t, func() bool { return count() == n }, 60*time.Second, 5*time.Millisecond, "a new consumer handles the rest")
	polled := 0
	consumers.Range(func(any, any) bool { polled++; return true })
	assert.Equal(t, 2, polled, "one consumer after the failure")
	cancel()
	require.NoError(t, <-done)
}
