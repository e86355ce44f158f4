package adminsession

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocations records the sessions logged out before they expired. A
// session's ID need only be kept until the session expires: after that the
// expiry refuses it anyway.
type Revocations interface {
	// Revoke records that s is revoked, until s.Expires.
	Revoke(ctx context.Context, s Session) error
	// Revoked reports whether s was revoked.
	Revoked(ctx context.Context, s Session) (bool, error)
}

// DefaultMaxRevoked is MemoryRevocations' default bound.
const DefaultMaxRevoked = 10_000

// MemoryRevocations keeps revocations in this process, bounded: an entry
// goes once its session has expired, and should more than Max unexpired
// sessions be revoked at once, it forgets them all and refuses instead
// every session issued until then (everyone logs in again), so that no
// revoked session ever comes back. Its zero value is ready to use. It suits
// an api whose sessions are its own (a random Config.Key); apis sharing a
// key want shared revocations (RedisRevocations).
type MemoryRevocations struct {
	Max int              // zero: DefaultMaxRevoked
	Now func() time.Time // nil: time.Now

	mu        sync.Mutex
	ids       map[string]time.Time // revoked ID → its session's expiry
	notBefore time.Time            // sessions issued before are refused
}

func (m *MemoryRevocations) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Revoke implements Revocations.
func (m *MemoryRevocations) Revoke(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if !now.Before(s.Expires) {
		return nil
	}
	if m.ids == nil {
		m.ids = make(map[string]time.Time)
	}
	limit := m.Max
	if limit <= 0 {
		limit = DefaultMaxRevoked
	}
	if len(m.ids) >= limit {
		for id, exp := range m.ids {
			if !now.Before(exp) {
				delete(m.ids, id)
			}
		}
	}
	if len(m.ids) >= limit {
		// Sessions carry their issue time in whole seconds: refuse all of
		// this second's too.
		m.notBefore = now.Truncate(time.Second).Add(time.Second)
		clear(m.ids)
		return nil
	}
	m.ids[s.ID] = s.Expires
	return nil
}

// Revoked implements Revocations.
func (m *MemoryRevocations) Revoked(_ context.Context, s Session) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Issued.Before(m.notBefore) {
		return true, nil
	}
	_, ok := m.ids[s.ID]
	return ok, nil
}

// Len returns how many revocations it holds.
func (m *MemoryRevocations) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ids)
}

// RedisRevocations keeps revocations in Redis, one key per revoked session
// ("PREFIX:admin-session:revoked:ID") expiring with the session: every api
// of a fleet sharing a session key sees a logout at once.
type RedisRevocations struct {
	Client redis.UniversalClient
	Prefix string
}

func (r RedisRevocations) key(id string) string { return r.Prefix + ":admin-session:revoked:" + id }

// Revoke implements Revocations.
func (r RedisRevocations) Revoke(ctx context.Context, s Session) error {
	if !time.Now().Before(s.Expires) {
		return nil
	}
	return r.Client.SetArgs(ctx, r.key(s.ID), "1", redis.SetArgs{ExpireAt: s.Expires}).Err()
}

// Revoked implements Revocations.
func (r RedisRevocations) Revoked(ctx context.Context, s Session) (bool, error) {
	n, err := r.Client.Exists(ctx, r.key(s.ID)).Result()
	return n > 0, err
}
