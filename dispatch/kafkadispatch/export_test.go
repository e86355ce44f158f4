package kafkadispatch

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
