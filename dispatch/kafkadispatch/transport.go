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

// The group settings' defaults (Config.ConfigMap's doc).
const (
	defaultHeartbeat           = 500 * time.Millisecond
	defaultReconnectBackoffMax = time.Second
)

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
	// says otherwise is refused. Unless the map sets them, these settle how
	// fast partitions change hands (the package doc weighs each):
	//
	//   - heartbeat.interval.ms: 500, or a third of SessionTimeout if that
	//     is less. How soon a live member hears of a rebalance, and so how
	//     long partitions given up by a stopping member wait for it.
	//   - partition.assignment.strategy: cooperative-sticky. A rebalance
	//     moves only the partitions that change owner.
	//   - reconnect.backoff.max.ms: 1000 (librdkafka's own is 10000), for
	//     the producer too. The most a client waits to reconnect once a
	//     broker or the network is back.
	//   - group.instance.id: none (a dynamic member). Set it, stable per
	//     worker slot and unique in the fleet, for static membership.
	ConfigMap kafka.ConfigMap
	// SessionTimeout is how long the group waits for a worker that stopped
	// heartbeating (killed) before its partitions go to the others (or,
	// for a static member, before it gives up on the worker coming back:
	// make that longer than the brokers take to move the group coordinator,
	// see the package doc). Zero
	// means 6s, the broker's default minimum (librdkafka's own default is
	// 45s). Shorter finds a dead worker sooner but evicts a live one that
	// stalls longer (a GC pause, a starved CPU, a slow network), and the
	// broker refuses anything under its group.min.session.timeout.ms.
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
	cm := consumerMap(&cfg, base)
	d, err := newDispatcher(producerOptions{Topic: cfg.Topic, ConfigMap: base, Logger: cfg.Logger})
	if err != nil {
		return nil, err
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

// consumerMap applies SessionTimeout's default to cfg and returns the
// consumer's ConfigMap: base with the group settings the package doc
// weighs, the reconnect cap set in base too (the producer shares it).
// Properties the host set in ConfigMap win.
func consumerMap(cfg *Config, base kafka.ConfigMap) kafka.ConfigMap {
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 1), 10) }
	setDefault := func(cm kafka.ConfigMap, k, v string) {
		if _, ok := cm[k]; !ok {
			cm[k] = v
		}
	}
	setDefault(base, "reconnect.backoff.max.ms", ms(defaultReconnectBackoffMax))
	cm := kafka.ConfigMap{}
	for k, v := range base {
		cm[k] = v
	}
	setDefault(cm, "session.timeout.ms", ms(cfg.SessionTimeout))
	setDefault(cm, "heartbeat.interval.ms", ms(min(defaultHeartbeat, cfg.SessionTimeout/3)))
	setDefault(cm, "partition.assignment.strategy", "cooperative-sticky")
	return cm
}
