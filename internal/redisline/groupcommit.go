package redisline

import "sync"

// groupCommit is the group commit admissions and status reads share: per
// campaign, whether a call is on its way to Redis, and the calls that
// arrived meanwhile, which go together when it is back, up to max at a
// time. The first caller to find nothing on its way leads: it sends its own
// call at once and then drains the queue; the others wait for their
// answer. It starts no goroutines.
type groupCommit[T comparable] struct {
	max int

	mu       sync.Mutex
	pending  map[string][]T // by campaign
	flushing map[string]bool
}

func newGroupCommit[T comparable](max int) *groupCommit[T] {
	return &groupCommit[T]{max: max, pending: map[string][]T{}, flushing: map[string]bool{}}
}

// leadOrQueue reports whether the caller leads campaign's next round
// (nothing of it is on its way; the caller must drain); if not, it queues
// the call newCall makes and returns it.
func (g *groupCommit[T]) leadOrQueue(campaign string, newCall func() T) (call T, lead bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.flushing[campaign] {
		g.flushing[campaign] = true
		return call, true
	}
	call = newCall()
	g.pending[campaign] = append(g.pending[campaign], call)
	return call, false
}

// drain sends campaign's queued calls, batch after batch, with send, until
// none is left; then nothing of the campaign is on its way, and the
// campaign's entries are gone from the maps.
func (g *groupCommit[T]) drain(campaign string, send func([]T)) {
	for {
		g.mu.Lock()
		batch := g.pending[campaign]
		if len(batch) > g.max {
			batch = batch[:g.max]
		}
		g.pending[campaign] = g.pending[campaign][len(batch):]
		if len(batch) == 0 {
			delete(g.pending, campaign)
			delete(g.flushing, campaign)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		send(batch)
	}
}

// withdraw takes a call that is still queued out of campaign's queue and
// reports whether it did; false means a drain has taken it into a batch.
func (g *groupCommit[T]) withdraw(campaign string, call T) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.pending[campaign]
	for i, p := range q {
		if p == call {
			g.pending[campaign] = append(q[:i:i], q[i+1:]...)
			return true
		}
	}
	return false
}
