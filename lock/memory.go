package lock

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a Locker within one process, safe for concurrent use. Locks
// expire after their TTL exactly as a Redis lock does, so it serves as the
// embedded default and as a fast test backend.
type Memory struct {
	mu    sync.Mutex
	held  map[string]memHold
	token atomic.Uint64
	now   func() time.Time
}

type memHold struct {
	token   uint64
	expires time.Time
}

// NewMemory returns an empty in-memory Locker.
func NewMemory() *Memory {
	return &Memory{held: make(map[string]memHold), now: time.Now}
}

// Obtain implements Locker.
func (m *Memory) Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("lock: ttl must be > 0, got %s", ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	if h, ok := m.held[key]; ok && now.Before(h.expires) {
		return nil, fmt.Errorf("%w: %s", ErrNotObtained, key)
	}
	tok := m.token.Add(1)
	m.held[key] = memHold{token: tok, expires: now.Add(ttl)}
	return &memLock{m: m, key: key, token: tok}, nil
}

// sweep drops expired holds once the map has grown, so one-off keys (a lock
// per user) do not accumulate. Called with mu held.
func (m *Memory) sweep(now time.Time) {
	if len(m.held) < 1024 {
		return
	}
	for k, h := range m.held {
		if !now.Before(h.expires) {
			delete(m.held, k)
		}
	}
}

type memLock struct {
	m     *Memory
	key   string
	token uint64
}

func (l *memLock) Refresh(ctx context.Context, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("lock: ttl must be > 0, got %s", ttl)
	}
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	now := l.m.now()
	h, ok := l.m.held[l.key]
	if !ok || h.token != l.token || !now.Before(h.expires) {
		return fmt.Errorf("%w: %s", ErrLockLost, l.key)
	}
	l.m.held[l.key] = memHold{token: l.token, expires: now.Add(ttl)}
	return nil
}

func (l *memLock) Release(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	h, ok := l.m.held[l.key]
	if !ok || h.token != l.token {
		return fmt.Errorf("%w: %s", ErrLockLost, l.key)
	}
	delete(l.m.held, l.key)
	if !l.m.now().Before(h.expires) {
		return fmt.Errorf("%w: %s", ErrLockLost, l.key)
	}
	return nil
}
