package ratelimit

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/couponq/couponq/couponq"
)

// DefaultMaxKeys is MemoryConfig.MaxKeys' default.
const DefaultMaxKeys = 100_000

// MemoryConfig configures a Memory limiter.
type MemoryConfig struct {
	// Rate is every key's limit. Required.
	Rate Rate
	// MaxKeys bounds how many keys are tracked at once. Zero means
	// DefaultMaxKeys (100,000: some tens of megabytes); it must not be
	// negative.
	MaxKeys int
}

// Memory is a Limiter that keeps one token bucket (golang.org/x/time/rate)
// per key in this process: each process counts on its own, so N processes
// let through up to N times the rate. Use Redis for one limit across them.
//
// Memory stays bounded without a background goroutine. Keys are kept in
// least-recently-used order; each Allow first forgets a few keys unused for
// as long as an empty bucket takes to fill (Burst / rate: their buckets are
// full again, the same as new ones, so forgetting them changes nothing),
// and when MaxKeys keys are still tracked, a new key pushes out the least
// recently used one, whose next request then starts with a full bucket.
// Each Allow is O(1), amortized.
type Memory struct {
	limit   rate.Limit
	burst   int
	fill    time.Duration
	maxKeys int
	now     func() time.Time // tests replace it

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  *list.List // of *bucket, most recently used first
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory validates cfg and returns a Memory limiter.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.Rate.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("%w: ratelimit: MaxKeys must be >= 0", couponq.ErrInvalidConfig)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	return &Memory{
		limit: rate.Limit(cfg.Rate.perSecond()), burst: cfg.Rate.burst(), fill: cfg.Rate.fill(),
		maxKeys: cfg.MaxKeys, now: time.Now,
		keys: map[string]*list.Element{}, lru: list.New(),
	}, nil
}

// trimPerCall bounds how many idle keys one Allow forgets, so no request
// pays for a large sweep.
const trimPerCall = 64

// Allow implements Limiter. It never fails.
func (m *Memory) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < trimPerCall; i++ {
		back := m.lru.Back()
		if back == nil || now.Sub(back.Value.(*bucket).last) < m.fill {
			break
		}
		m.remove(back)
	}
	var b *bucket
	if el, ok := m.keys[key]; ok {
		b = el.Value.(*bucket)
		m.lru.MoveToFront(el)
	} else {
		if len(m.keys) >= m.maxKeys {
			m.remove(m.lru.Back())
		}
		b = &bucket{key: key, lim: rate.NewLimiter(m.limit, m.burst)}
		m.keys[key] = m.lru.PushFront(b)
	}
	b.last = now
	if b.lim.AllowN(now, 1) {
		return true, 0, nil
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, max(time.Nanosecond, time.Duration(missing/float64(m.limit)*float64(time.Second))), nil
}

func (m *Memory) remove(el *list.Element) {
	delete(m.keys, el.Value.(*bucket).key)
	m.lru.Remove(el)
}

// Len is how many keys are tracked now.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}
