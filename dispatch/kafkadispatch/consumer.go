package kafkadispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch/wire"
)

// consumerOptions configures a consumer.
type consumerOptions struct {
	// Topic to consume. Required.
	Topic string
	// Group is the consumer group ID. Required.
	Group string
	// ConfigMap is the base librdkafka configuration (bootstrap.servers,
	// security...). Required. It is copied; the consumer sets group.id,
	// enable.auto.offset.store=false and, unless given, auto.offset.reset=earliest.
	ConfigMap kafka.ConfigMap
	// DeadLetterTopic receives messages that cannot be decoded, with their
	// reason in headers. Empty means Topic + ".dlq".
	DeadLetterTopic string
	// RetryBackoff is the pause before a failed handler sees its message
	// again. Zero means 200ms.
	RetryBackoff time.Duration
	// Logger receives logs; nil means none.
	Logger *slog.Logger

	// pollHook, for tests, stands in for each consumer's Poll.
	pollHook func(kc *kafka.Consumer, ms int) kafka.Event
}

// Dead-letter headers.
const (
	HeaderDeadReason = "couponq-dead-reason"
	HeaderDeadSource = "couponq-dead-source" // topic/partition/offset of the original
)

// consumer is a couponq.Consumer on a Kafka consumer group.
type consumer struct {
	cfg consumerOptions
	log *slog.Logger
}

var _ couponq.BatchConsumer = (*consumer)(nil)

// newConsumer validates cfg and returns a consumer. It connects in Consume.
func newConsumer(cfg consumerOptions) (*consumer, error) {
	if cfg.Topic == "" || cfg.Group == "" || cfg.ConfigMap == nil {
		return nil, fmt.Errorf("%w: kafkadispatch: Topic, Group and ConfigMap are required", couponq.ErrInvalidConfig)
	}
	if cfg.RetryBackoff < 0 {
		return nil, fmt.Errorf("%w: kafkadispatch: RetryBackoff must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = cfg.Topic + ".dlq"
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 200 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &consumer{cfg: cfg, log: log}, nil
}

// session is one Consume call's consumer and its partition workers.
type session struct {
	c       *consumer
	ctx     context.Context
	h       couponq.BatchHandler
	max     int
	kc      *kafka.Consumer
	dlq     *kafka.Producer
	workers map[int32]*worker
	wg      sync.WaitGroup
}

type worker struct {
	msgs chan *kafka.Message
	stop context.CancelFunc
	done chan struct{}
}

// Consume implements couponq.Consumer. Each assigned partition gets one
// goroutine that calls h for its messages in order and stores an offset only
// after h returned nil; a failed h sees the same message again after
// RetryBackoff, so a partition never skips an entry. When ctx ends it stops
// the workers (the handler in hand gets a cancelled context and, unless it
// returns nil, its message comes again), commits the stored offsets and
// leaves the group (a static member keeps its place for its next
// incarnation). A consumer that fails for good (librdkafka's fatal errors)
// is closed and a new one joins the group in its place after RetryBackoff;
// Consume returns only when ctx ends or a consumer cannot be made.
func (c *consumer) Consume(ctx context.Context, h couponq.Handler) error {
	return c.ConsumeBatches(ctx, 1, h.Batch())
}

// ConsumeBatches implements couponq.BatchConsumer. It is Consume with
// batches: a partition's worker hands h the messages it has fetched already,
// up to max, in partition order, and stores the offset past the last one
// only after h returned nil; a failed h sees the same batch again.
// Undecodable messages go to the dead-letter topic and are left out of the
// batch.
func (c *consumer) ConsumeBatches(ctx context.Context, max int, h couponq.BatchHandler) error {
	if h == nil {
		return fmt.Errorf("%w: kafkadispatch: nil handler", couponq.ErrInvalidConfig)
	}
	if max < 1 {
		return fmt.Errorf("%w: kafkadispatch: batch max must be >= 1, got %d", couponq.ErrInvalidConfig, max)
	}
	for {
		err := c.consume(ctx, max, h)
		if !errors.Is(err, errFatal) || ctx.Err() != nil {
			return err
		}
		// A fatal error ends a librdkafka consumer for good (a static
		// member fenced after its session expired during an outage, say):
		// what it decided is committed or comes again, and a new consumer
		// joins the group in its place.
		c.log.Warn("couponq/kafkadispatch: consumer failed; starting a new one", "err", err, "after", c.cfg.RetryBackoff)
		if !sleep(ctx, c.cfg.RetryBackoff) {
			return nil
		}
	}
}

// errFatal marks a librdkafka consumer's fatal error: the consumer cannot
// go on, a new one can.
var errFatal = errors.New("fatal consumer error")

// consume is one consumer's life: it joins the group, consumes until ctx
// ends or the consumer fails for good, then commits, leaves and closes.
func (c *consumer) consume(ctx context.Context, max int, h couponq.BatchHandler) error {
	cm := without(c.cfg.ConfigMap, producerOnly)
	cm["group.id"] = c.cfg.Group
	cm["enable.auto.offset.store"] = false
	cm["enable.auto.commit"] = true // commits what we stored, periodically
	if _, ok := cm["auto.offset.reset"]; !ok {
		cm["auto.offset.reset"] = "earliest"
	}
	kc, err := kafka.NewConsumer(&cm)
	if err != nil {
		return fmt.Errorf("kafkadispatch: new consumer: %w", err)
	}
	pm, err := producerConfig(without(c.cfg.ConfigMap, consumerOnly))
	if err != nil {
		kc.Close()
		return err
	}
	dlq, err := kafka.NewProducer(&pm)
	if err != nil {
		kc.Close()
		return fmt.Errorf("kafkadispatch: new dead-letter producer: %w", err)
	}
	s := &session{c: c, ctx: ctx, h: h, max: max, kc: kc, dlq: dlq, workers: map[int32]*worker{}}
	var drain sync.WaitGroup
	drain.Go(func() {
		for range dlq.Events() { // reports are awaited per message; this drains the rest
		}
	})
	defer func() {
		dlq.Flush(5000)
		dlq.Close()
		drain.Wait()
	}()
	if err := kc.Subscribe(c.cfg.Topic, s.rebalance); err != nil {
		kc.Close()
		return fmt.Errorf("kafkadispatch: subscribe: %w", err)
	}
	err = s.poll()
	s.stopAll()
	if errors.Is(err, errFatal) {
		// Nothing more can be committed. Closing a consumer fenced as a
		// static member can hang in librdkafka; past fatalCloseWait it is
		// left behind, so that a new consumer can take its place.
		closed := make(chan struct{})
		go func() { _ = kc.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(fatalCloseWait):
			c.log.Warn("couponq/kafkadispatch: failed consumer did not close; leaving it", "after", fatalCloseWait)
		}
		return err
	}
	if _, cerr := kc.Commit(); cerr != nil && !isNoOffset(cerr) {
		c.log.Warn("couponq/kafkadispatch: final commit", "err", cerr)
	}
	if cerr := kc.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("kafkadispatch: close consumer: %w", cerr)
	}
	return err
}

// fatalCloseWait bounds closing a consumer that failed for good.
const fatalCloseWait = 5 * time.Second

func (s *session) poll() error {
	for s.ctx.Err() == nil {
		var ev kafka.Event
		if hook := s.c.cfg.pollHook; hook != nil {
			ev = hook(s.kc, 100)
		} else {
			ev = s.kc.Poll(100)
		}
		switch e := ev.(type) {
		case *kafka.Message:
			w := s.workers[e.TopicPartition.Partition]
			if w == nil {
				continue // not ours any more; it will be delivered to the owner
			}
			select {
			case w.msgs <- e:
			case <-s.ctx.Done():
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafkadispatch: %w: %w", errFatal, e)
			}
			s.c.log.Warn("couponq/kafkadispatch: consumer", "err", e)
		}
	}
	return nil
}

// rebalance starts workers for assigned partitions and, before partitions
// are given up, stops their workers and commits what they stored. The
// client does the assign/unassign itself after this returns.
func (s *session) rebalance(kc *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		for _, tp := range e.Partitions {
			s.start(tp.Partition)
		}
		s.c.log.Info("couponq/kafkadispatch: partitions assigned", "partitions", partitions(e.Partitions), "owned", len(s.workers))
	case kafka.RevokedPartitions:
		for _, tp := range e.Partitions {
			s.stop(tp.Partition)
		}
		lost := kc.AssignmentLost()
		s.c.log.Info("couponq/kafkadispatch: partitions revoked", "partitions", partitions(e.Partitions), "owned", len(s.workers), "lost", lost)
		if lost {
			return nil // someone else owns them already; a commit would fail
		}
		if _, err := kc.Commit(); err != nil && !isNoOffset(err) {
			s.c.log.Warn("couponq/kafkadispatch: commit on revoke", "err", err)
		}
	}
	return nil
}

func (s *session) start(partition int32) {
	if s.workers[partition] != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	w := &worker{msgs: make(chan *kafka.Message, 256), stop: cancel, done: make(chan struct{})}
	s.workers[partition] = w
	s.wg.Go(func() {
		defer close(w.done)
		batch := make([]*kafka.Message, 0, s.max)
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-w.msgs:
				batch = append(batch[:0], m)
			}
		fill:
			for len(batch) < s.max {
				select {
				case m := <-w.msgs:
					batch = append(batch, m)
				default:
					break fill
				}
			}
			if !s.handle(ctx, batch) {
				return
			}
		}
	})
}

// stop ends a partition's worker after the message in hand and waits for it.
func (s *session) stop(partition int32) {
	w := s.workers[partition]
	if w == nil {
		return
	}
	delete(s.workers, partition)
	w.stop()
	<-w.done
}

func (s *session) stopAll() {
	for p := range s.workers {
		s.stop(p)
	}
	s.wg.Wait()
}

// handle processes a partition's batch of messages until it is handled and
// its undecodable messages dead-lettered (true), or ctx ends first (false:
// no offset stored, so the batch comes again).
func (s *session) handle(ctx context.Context, msgs []*kafka.Message) bool {
	entries := make([]couponq.Entry, 0, len(msgs))
	for _, m := range msgs {
		e, err := wire.Decode(m.Value)
		if err != nil {
			if !s.retry(ctx, "dead-letter", func() error { return s.deadLetter(ctx, m, err) }) {
				return false
			}
			continue
		}
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		what := "handler " + entries[0].Key()
		if len(entries) > 1 {
			what = fmt.Sprintf("handler of %d entries from %s", len(entries), entries[0].Key())
		}
		if !s.retry(ctx, what, func() error { return s.h(ctx, entries) }) {
			return false
		}
	}
	next := msgs[len(msgs)-1].TopicPartition
	next.Offset++
	if _, serr := s.kc.StoreOffsets([]kafka.TopicPartition{next}); serr != nil {
		// The partition was revoked meanwhile: the new owner sees the
		// messages again and the Store gives the same outcomes.
		s.c.log.Warn("couponq/kafkadispatch: store offset", "err", serr)
	}
	return true
}

// retry calls fn until it succeeds (true) or ctx ends (false), pausing
// RetryBackoff after each failure.
func (s *session) retry(ctx context.Context, what string, fn func() error) bool {
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.c.log.Warn("couponq/kafkadispatch: failed; retrying", "what", what, "err", err)
		if !sleep(ctx, s.c.cfg.RetryBackoff) {
			return false
		}
	}
}

func (s *session) deadLetter(ctx context.Context, m *kafka.Message, reason error) error {
	topic := s.c.cfg.DeadLetterTopic
	src := fmt.Sprintf("%s/%d/%d", *m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset)
	headers := append([]kafka.Header{
		{Key: HeaderDeadReason, Value: []byte(reason.Error())},
		{Key: HeaderDeadSource, Value: []byte(src)},
	}, m.Headers...)
	report := make(chan kafka.Event, 1)
	if err := s.dlq.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: headers,
	}, report); err != nil {
		return err
	}
	select {
	case ev := <-report:
		if dm, ok := ev.(*kafka.Message); ok && dm.TopicPartition.Error != nil {
			return dm.TopicPartition.Error
		}
		s.c.log.Warn("couponq/kafkadispatch: message dead-lettered", "source", src, "reason", reason)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func isNoOffset(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrNoOffset
}

// partitions lists the partition numbers of tps, for logs.
func partitions(tps []kafka.TopicPartition) []int32 {
	out := make([]int32, len(tps))
	for i, tp := range tps {
		out[i] = tp.Partition
	}
	return out
}
