package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
)

// MemoryConfig configures a Memory transport.
type MemoryConfig struct {
	// Workers is how many handlers each Consume call runs at once. Zero
	// means 1, which hands entries to the Store in dispatch order; more
	// workers decide the entries in flight in any order, which the exact
	// cutoff makes harmless (every entry in flight has its unit).
	Workers int
	// RedeliveryDelay is how long an entry whose handler failed waits before
	// it is delivered again. Zero means 50ms.
	RedeliveryDelay time.Duration
	// Reject, if set, is asked about every dispatched entry; a non-nil
	// answer fails that entry's dispatch. It lets tests inject transport
	// failures.
	Reject func(couponq.Entry) error
}

// Memory is an in-process transport: a couponq.Dispatcher and the
// couponq.Consumer that drains it, with at-least-once delivery. Several
// Consume calls share its entries like members of one consumer group. It is
// the embedded default and the fast test backend; it holds entries only as
// long as the process lives.
type Memory struct {
	cfg    MemoryConfig
	mu     sync.Mutex
	ready  []couponq.Entry
	notify chan struct{}
}

var (
	_ couponq.Dispatcher    = (*Memory)(nil)
	_ couponq.BatchConsumer = (*Memory)(nil)
)

// NewMemory returns an empty Memory transport.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.Workers < 0 || cfg.RedeliveryDelay < 0 {
		return nil, fmt.Errorf("%w: dispatch: Workers and RedeliveryDelay must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.RedeliveryDelay == 0 {
		cfg.RedeliveryDelay = 50 * time.Millisecond
	}
	return &Memory{cfg: cfg, notify: make(chan struct{}, 1)}, nil
}

// Dispatch implements couponq.Dispatcher.
func (m *Memory) Dispatch(ctx context.Context, batch []couponq.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	failed := map[int]error{}
	m.mu.Lock()
	for i, e := range batch {
		if m.cfg.Reject != nil {
			if err := m.cfg.Reject(e); err != nil {
				failed[i] = err
				continue
			}
		}
		m.ready = append(m.ready, e)
	}
	m.mu.Unlock()
	m.wake()
	if len(failed) == len(batch) && len(batch) > 0 {
		return errors.Join((&couponq.PartialError{Failed: failed}).Unwrap()...)
	}
	if len(failed) > 0 {
		return &couponq.PartialError{Failed: failed}
	}
	return nil
}

// Len returns how many entries wait for delivery (not counting those in a
// handler right now).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ready)
}

// Consume implements couponq.Consumer.
func (m *Memory) Consume(ctx context.Context, h couponq.Handler) error {
	return m.ConsumeBatches(ctx, 1, h.Batch())
}

// ConsumeBatches implements couponq.BatchConsumer: each worker takes up to
// max entries that are ready and hands them to h together.
func (m *Memory) ConsumeBatches(ctx context.Context, max int, h couponq.BatchHandler) error {
	if h == nil {
		return fmt.Errorf("%w: dispatch: nil handler", couponq.ErrInvalidConfig)
	}
	if max < 1 {
		return fmt.Errorf("%w: dispatch: batch max must be >= 1, got %d", couponq.ErrInvalidConfig, max)
	}
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Go(func() { m.work(ctx, max, h) })
	}
	wg.Wait()
	return nil
}

func (m *Memory) work(ctx context.Context, max int, h couponq.BatchHandler) {
	for {
		batch, ok := m.next(ctx, max)
		if !ok {
			return
		}
		if err := h(ctx, batch); err != nil {
			// Not committed: deliver again after a pause (at once if we are stopping).
			t := time.NewTimer(m.cfg.RedeliveryDelay)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			m.mu.Lock()
			m.ready = append(m.ready, batch...)
			m.mu.Unlock()
			m.wake()
		}
	}
}

// next waits for ready entries and takes up to max of them.
func (m *Memory) next(ctx context.Context, max int) ([]couponq.Entry, bool) {
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		m.mu.Lock()
		if len(m.ready) > 0 {
			n := min(max, len(m.ready))
			batch := make([]couponq.Entry, n)
			copy(batch, m.ready)
			clear(m.ready[:n])
			m.ready = m.ready[n:]
			more := len(m.ready) > 0
			m.mu.Unlock()
			if more {
				m.wake() // let another worker in
			}
			return batch, true
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-m.notify:
		}
	}
}

func (m *Memory) wake() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}
