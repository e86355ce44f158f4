package kafkadispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/couponq/couponq/couponq"
)

// DefaultGroup is the consumer group when Config.Group is empty.
const DefaultGroup = "couponq-issuers"

// Config configures New. Zero values take the defaults documented on each
// field.
type Config struct {
	// Brokers are the bootstrap servers, "host:9092,host2:9092". Required
	// unless ConfigMap has bootstrap.servers.
	Brokers string
	// Topic carries the entries, one for every campaign. Required. Entries
	// that cannot be decoded go to Topic + ".dlq", with the reason in the
	// couponq-dead-reason header and the source in couponq-dead-source.
	Topic string
	// Group is the consumer group every worker of the fleet shares. Empty
	// means DefaultGroup.
	Group string
	// ConfigMap holds more librdkafka settings (SASL, SSL, ...), for the
	// producer and the consumer alike. It is copied, never changed. The
	// producer is idempotent (enable.idempotence=true, acks=all): a map that
	// says otherwise is refused.
	ConfigMap kafka.ConfigMap
	// SessionTimeout is how long the group waits for a worker that stopped
	// heartbeating (killed) before its partitions go to the others;
	// heartbeats go every third of it. Zero means 6s, the broker's default
	// minimum (librdkafka's own default is 45s).
	SessionTimeout time.Duration
	// Logger receives logs; nil means none.
	Logger *slog.Logger
}

// Transport is couponq's transport on Kafka: a couponq.Transport (and
// couponq.BatchConsumer) that can be pinged. The producer connects at New,
// the consumer joins its group when Consume is first called (a node without
// RoleWorker never does). Close it when done.
type Transport struct {
	d *dispatcher
	c *consumer
}

var _ interface {
	couponq.Transport
	couponq.BatchConsumer
} = (*Transport)(nil)

// New validates cfg and returns a Transport.
func New(cfg Config) (*Transport, error) {
	if cfg.Topic == "" {
		return nil, fmt.Errorf("%w: kafkadispatch: Topic is required", couponq.ErrInvalidConfig)
	}
	if cfg.SessionTimeout < 0 {
		return nil, fmt.Errorf("%w: kafkadispatch: SessionTimeout must be >= 0", couponq.ErrInvalidConfig)
	}
	base := kafka.ConfigMap{}
	for k, v := range cfg.ConfigMap {
		base[k] = v
	}
	if cfg.Brokers != "" {
		base["bootstrap.servers"] = cfg.Brokers
	}
	if _, ok := base["bootstrap.servers"]; !ok {
		return nil, fmt.Errorf("%w: kafkadispatch: Brokers (or bootstrap.servers in ConfigMap) is required", couponq.ErrInvalidConfig)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	d, err := newDispatcher(producerOptions{Topic: cfg.Topic, ConfigMap: base, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	cm := kafka.ConfigMap{}
	for k, v := range base {
		cm[k] = v
	}
	ms := cfg.SessionTimeout.Milliseconds()
	if _, ok := cm["session.timeout.ms"]; !ok {
		cm["session.timeout.ms"] = strconv.FormatInt(ms, 10)
	}
	if _, ok := cm["heartbeat.interval.ms"]; !ok {
		cm["heartbeat.interval.ms"] = strconv.FormatInt(max(ms/4, 1), 10)
	}
	c, err := newConsumer(consumerOptions{Topic: cfg.Topic, Group: cfg.Group, ConfigMap: cm, Logger: cfg.Logger})
	if err != nil {
		d.Close()
		return nil, err
	}
	return &Transport{d: d, c: c}, nil
}

// Dispatch implements couponq.Dispatcher: it produces every entry and
// returns once each has its delivery report, naming the ones Kafka did not
// acknowledge (*couponq.PartialError).
func (t *Transport) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	return t.d.Dispatch(ctx, batch)
}

// Consume implements couponq.Consumer: one goroutine per assigned
// partition, offsets stored only once the handler has recorded the
// outcome, stored offsets committed before a rebalance takes a partition.
func (t *Transport) Consume(ctx context.Context, h couponq.Handler) error { return t.c.Consume(ctx, h) }

// ConsumeBatches implements couponq.BatchConsumer: Consume with the
// messages a partition has at hand, up to max at once.
func (t *Transport) ConsumeBatches(ctx context.Context, max int, h couponq.BatchHandler) error {
	return t.c.ConsumeBatches(ctx, max, h)
}

// Ping reports whether Kafka answers and the topic exists with a leader for
// every partition, for readiness.
func (t *Transport) Ping(ctx context.Context) error { return t.d.Ping(ctx) }

// Close flushes and closes the producer; a Consume still running ends with
// its context. Safe to call twice.
func (t *Transport) Close() { t.d.Close() }
