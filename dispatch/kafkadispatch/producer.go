package kafkadispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/wire"
)

// producerOptions configures a dispatcher.
type producerOptions struct {
	// Topic receives the entries. Required.
	Topic string
	// ConfigMap is the base librdkafka configuration (bootstrap.servers,
	// security...). Required unless Producer is set. The dispatcher sets
	// enable.idempotence=true and acks=all and refuses a map that says
	// otherwise; it is copied, never modified.
	ConfigMap kafka.ConfigMap
	// Producer, if set, is the host's own producer, used instead of one
	// built from ConfigMap. It must be idempotent. The dispatcher never
	// closes it, never reads its Events channel, and cannot rebuild it after
	// a fatal error (Dispatch then keeps failing: the host decides).
	Producer *kafka.Producer
	// Logger receives logs; nil means none.
	Logger *slog.Logger
}

// dispatcher is a couponq.Dispatcher on Kafka.
type dispatcher struct {
	cfg   producerOptions
	log   *slog.Logger
	owned bool

	mu     sync.RWMutex
	p      *kafka.Producer
	events sync.WaitGroup // drains the owned producer's Events channel
	closed bool
}

var _ couponq.Dispatcher = (*dispatcher)(nil)

// newDispatcher validates cfg and returns a dispatcher. Close it when done.
func newDispatcher(cfg producerOptions) (*dispatcher, error) {
	if cfg.Topic == "" {
		return nil, fmt.Errorf("%w: kafkadispatch: Topic is required", couponq.ErrInvalidConfig)
	}
	d := &dispatcher{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Producer != nil {
		d.p = cfg.Producer
		return d, nil
	}
	if cfg.ConfigMap == nil {
		return nil, fmt.Errorf("%w: kafkadispatch: ConfigMap or Producer is required", couponq.ErrInvalidConfig)
	}
	if _, err := producerConfig(cfg.ConfigMap); err != nil {
		return nil, err
	}
	d.owned = true
	if err := d.rebuild(); err != nil {
		return nil, err
	}
	return d, nil
}

// producerConfig copies base and enforces the idempotent producer.
func producerConfig(base kafka.ConfigMap) (kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{}
	for k, v := range base {
		cm[k] = v
	}
	for k, want := range map[string]string{"enable.idempotence": "true", "acks": "all"} {
		if v, ok := cm[k]; ok {
			s := fmt.Sprint(v)
			if s != want && !(k == "acks" && s == "-1") {
				return nil, fmt.Errorf("%w: kafkadispatch: %s=%s; the dispatcher needs %s=%s", couponq.ErrInvalidConfig, k, s, k, want)
			}
		}
		cm[k] = want
	}
	return cm, nil
}

// rebuild replaces the owned producer with a fresh one.
func (d *dispatcher) rebuild() error {
	cm, err := producerConfig(d.cfg.ConfigMap)
	if err != nil {
		return err
	}
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		return fmt.Errorf("kafkadispatch: new producer: %w", err)
	}
	old := d.p
	d.p = p
	d.events.Go(func() { d.drain(p) })
	if old != nil {
		d.events.Go(old.Close) // may block on in-flight messages; their reports went to their callers
	}
	return nil
}

// drain reads the owned producer's Events channel (errors and stray
// reports), logging what matters.
func (d *dispatcher) drain(p *kafka.Producer) {
	for ev := range p.Events() {
		if e, ok := ev.(kafka.Error); ok {
			d.log.Warn("couponq/kafkadispatch: producer", "err", e, "fatal", e.IsFatal())
		}
	}
}

// Dispatch implements couponq.Dispatcher: it produces every entry and waits
// for each delivery report (or ctx). Entries whose report is an error or
// has not come when ctx ends are reported failed; they may still reach
// Kafka, and the Store absorbs the duplicate when they are sent again.
func (d *dispatcher) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	d.mu.RLock()
	p, closed := d.p, d.closed
	d.mu.RUnlock()
	if closed {
		return errors.New("kafkadispatch: dispatcher closed")
	}
	reports := make(chan kafka.Event, len(batch)) // never blocks the producer, even after we leave
	failed := map[int]error{}
	pending := 0
	fatal := false
	for i, e := range batch {
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &d.cfg.Topic, Partition: kafka.PartitionAny},
			Key:            wire.Key(e),
			Value:          wire.Encode(e),
			Headers:        []kafka.Header{{Key: wire.HeaderFormat, Value: []byte("1")}},
			Opaque:         i,
		}
		if err := p.Produce(msg, reports); err != nil {
			failed[i] = fmt.Errorf("kafkadispatch: produce: %w", err)
			fatal = fatal || isFatal(err)
			continue
		}
		pending++
	}
	for pending > 0 {
		select {
		case <-ctx.Done():
			for i := range batch {
				if _, ok := failed[i]; !ok {
					failed[i] = fmt.Errorf("kafkadispatch: no delivery report: %w", ctx.Err())
				}
			}
			pending = 0
			// Reports that arrive later say nothing we can still act on.
			continue
		case ev := <-reports:
			m, ok := ev.(*kafka.Message)
			if !ok {
				continue
			}
			pending--
			i, _ := m.Opaque.(int)
			if err := m.TopicPartition.Error; err != nil {
				failed[i] = fmt.Errorf("kafkadispatch: delivery: %w", err)
				fatal = fatal || isFatal(err)
			}
		}
	}
	// Reports for entries we already gave up on must not count twice: the
	// map above keeps the first cause per index.
	if fatal {
		d.recover(p)
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(failed) == len(batch):
		return errors.Join((&couponq.PartialError{Failed: failed}).Unwrap()...)
	default:
		return &couponq.PartialError{Failed: failed}
	}
}

// recover rebuilds an owned producer after a fatal error (the idempotent
// producer cannot go on after one); a host's producer is left alone.
func (d *dispatcher) recover(p *kafka.Producer) {
	if !d.owned {
		d.log.Error("couponq/kafkadispatch: host producer hit a fatal error; rebuild it")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.p != p {
		return // someone else already rebuilt it
	}
	if err := d.rebuild(); err != nil {
		d.log.Error("couponq/kafkadispatch: rebuild producer", "err", err)
		return
	}
	d.log.Warn("couponq/kafkadispatch: producer rebuilt after a fatal error")
}

// Close flushes and closes the producer the dispatcher built (a host's
// producer is left open). Safe to call twice.
func (d *dispatcher) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	p := d.p
	d.mu.Unlock()
	if d.owned {
		p.Flush(5000)
		p.Close()
		d.events.Wait()
	}
}

// isFatal reports a fatal client error: the idempotent producer cannot go
// on and must be replaced.
func isFatal(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && (ke.IsFatal() || ke.Code() == kafka.ErrFatal)
}
