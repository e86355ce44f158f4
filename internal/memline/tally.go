package memline

import (
	"context"
	"sync"

	"github.com/couponq/couponq/couponq"
)

// Tally is an in-memory couponq.Tally for V1 admission, safe for concurrent use.
type Tally struct {
	mu     sync.Mutex
	sets   map[string]map[string]struct{}
	counts map[string]int64
}

// NewTally returns an empty Tally.
func NewTally() *Tally {
	return &Tally{sets: map[string]map[string]struct{}{}, counts: map[string]int64{}}
}

var _ couponq.Tally = (*Tally)(nil)

// Add implements couponq.Tally.
func (t *Tally) Add(ctx context.Context, campaign, user string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.sets[campaign]
	if set == nil {
		set = map[string]struct{}{}
		t.sets[campaign] = set
	}
	if _, ok := set[user]; ok {
		return false, nil
	}
	set[user] = struct{}{}
	return true, nil
}

// Remove implements couponq.Tally.
func (t *Tally) Remove(ctx context.Context, campaign, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sets[campaign], user)
	return nil
}

// Has implements couponq.Tally.
func (t *Tally) Has(ctx context.Context, campaign, user string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.sets[campaign][user]
	return ok, nil
}

// Incr implements couponq.Tally.
func (t *Tally) Incr(ctx context.Context, campaign string, delta int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[campaign] += delta
	return t.counts[campaign], nil
}

// drop forgets the campaign's counters (its records were put away).
func (t *Tally) drop(campaign string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sets, campaign)
	delete(t.counts, campaign)
}
