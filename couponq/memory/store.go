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

var _ couponq.Store = (*Store)(nil)

// Issue implements couponq.Store.
func (s *Store) Issue(ctx context.Context, r couponq.IssueRequest) (couponq.Issuance, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Issuance{}, err
	}
	if r.Campaign == "" || r.User == "" || r.Key == "" || r.Stock <= 0 {
		return couponq.Issuance{}, fmt.Errorf("couponq/memory: issue request needs campaign, user, key and stock > 0: %+v", r)
	}
	limit := max(r.PerUserLimit, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.campaigns[r.Campaign]
	if c == nil {
		c = &stock{byUser: map[string]int{}, byKey: map[string]string{}}
		s.campaigns[r.Campaign] = c
	}
	if id, ok := c.byKey[r.Key]; ok {
		return couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: c.issued >= r.Stock}, nil
	}
	switch {
	case c.byUser[r.User] >= limit:
		return couponq.Issuance{Outcome: couponq.AlreadyIssued, SoldOut: c.issued >= r.Stock}, nil
	case c.issued >= r.Stock:
		return couponq.Issuance{Outcome: couponq.SoldOut, SoldOut: true}, nil
	}
	id := newID()
	c.issued++
	c.byUser[r.User]++
	c.byKey[r.Key] = id
	return couponq.Issuance{Outcome: couponq.Issued, ID: id, SoldOut: c.issued >= r.Stock}, nil
}

// Issued returns how many units of the campaign were issued.
func (s *Store) Issued(campaign string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.campaigns[campaign]; c != nil {
		return c.issued
	}
	return 0
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
