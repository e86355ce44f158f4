package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/couponq/couponq/couponq"
)

// Store is an in-memory couponq.Store, safe for concurrent use: the embedded
// default and the reference the conformance suite is checked against.
type Store struct {
	mu        sync.Mutex
	campaigns map[string]*stock
}

type stock struct {
	issued int64
	byUser map[string]int
	byKey  map[string]string // idempotency key -> issuance ID
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{campaigns: make(map[string]*stock)} }

var (
	_ couponq.BatchStore    = (*Store)(nil)
	_ couponq.IssuedCounter = (*Store)(nil)
)

// Issue implements couponq.Store.
func (s *Store) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Issuance{}, err
	}
	if err := check(r); err != nil {
		return couponq.Issuance{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issue(r), nil
}

// IssueBatch implements couponq.BatchStore: the whole batch is decided
// under one lock, in order.
func (s *Store) IssueBatch(ctx context.Context, rs []couponq.IssueRequest) ([]couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, r := range rs {
		if err := check(r); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	out := make([]couponq.Issuance, len(rs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range rs {
		out[i] = s.issue(r)
	}
	return out, nil
}

func check(r couponq.IssueRequest) error {
	if r.Campaign == "" || r.User == "" || r.Key == "" || r.Stock <= 0 {
		return fmt.Errorf("couponq/memory: issue request needs campaign, user, key and stock > 0: %+v", r)
	}
	return nil
}

// issue decides r; s.mu is held.
func (s *Store) issue(r couponq.IssueRequest) couponq.Issuance {
	limit := max(r.PerUserLimit, 1)
	c := s.campaigns[r.Campaign]
	if c == nil {
		c = &stock{byUser: map[string]int{}, byKey: map[string]string{}}
		s.campaigns[r.Campaign] = c
	}
	if id, ok := c.byKey[r.Key]; ok {
		return couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: c.issued >= r.Stock}
	}
	switch {
	case c.byUser[r.User] >= limit:
		return couponq.Issuance{Outcome: couponq.Duplicate, SoldOut: c.issued >= r.Stock}
	case c.issued >= r.Stock:
		return couponq.Issuance{Outcome: couponq.SoldOut, SoldOut: true}
	}
	id := newID()
	c.issued++
	c.byUser[r.User]++
	c.byKey[r.Key] = id
	return couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: c.issued >= r.Stock}
}

// IssuedCount implements couponq.IssuedCounter: how many units of the
// campaign were issued. It never fails.
func (s *Store) IssuedCount(_ context.Context, campaign string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.campaigns[campaign]; c != nil {
		return c.issued, nil
	}
	return 0, nil
}

// Holders returns, per user, how many units of the campaign the user holds.
func (s *Store) Holders(campaign string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	if c := s.campaigns[campaign]; c != nil {
		for u, n := range c.byUser {
			out[u] = n
		}
	}
	return out
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
