package kafkadispatch

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// The transport's two halves, for the package's tests.
type (
	Dispatcher     = dispatcher
	Consumer       = consumer
	ProducerConfig = producerOptions
	ConsumerConfig = consumerOptions
)

var (
	NewDispatcher = newDispatcher
	NewConsumer   = newConsumer
)

// ConsumerMap is New's consumer ConfigMap, for the package's tests.
func ConsumerMap(cfg Config, base kafka.ConfigMap) (kafka.ConfigMap, Config) {
	cm := consumerMap(&cfg, base)
	return cm, cfg
}

// WithPollHook sets the consumer's Poll stand-in, for tests.
func WithPollHook(cfg ConsumerConfig, hook func(kc *kafka.Consumer, ms int) kafka.Event) ConsumerConfig {
	cfg.pollHook = hook
	return cfg
}
