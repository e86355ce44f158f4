package memline

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/couponq/couponq/couponq"
)

// Queue is an in-memory couponq.Queue, safe for concurrent use. Leases and
// hand-off deadlines expire exactly as in the Redis Queue, so entries are
// redelivered the same way. Its state lives and dies with the process.
type Queue struct {
	mu        sync.Mutex
	campaigns map[string]*line
	agenda    map[string]time.Time       // campaigns on the Agenda, by wake time (agenda.go)
	watchers  map[chan struct{}]struct{} // WatchWakes's channels (agenda.go)
	archive   archives                   // archived campaigns until their records expire (archive.go)
	now       func() time.Time
	tally     *Tally // V1's counters, put away with the campaign's records (SetTally)
}

// NewQueue returns an empty Queue. now supplies the time for leases; nil
// means time.Now.
func NewQueue(now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{campaigns: make(map[string]*line), now: now}
}

var (
	_ couponq.Queue         = (*Queue)(nil)
	_ couponq.IssuedCounter = (*Queue)(nil)
)

type line struct {
	seq     int64
	waiting []int64            // entry numbers in line, ascending
	flight  map[int64]deadline // leased or handed downstream
	entries map[int64]couponq.Entry
	users   map[string]*userRec
	soldOut bool
	issued  int64            // distinct entries recorded as issued
	seat    *couponq.Seating // the pre-queue's seating, once Seat was called (seat.go)
	seal    int64            // the pre-queue's last entry number, once sealed (Seal)
	sealed  bool
}

type deadline struct {
	at     time.Time
	handed bool // acked: the downstream holds it
}

type userRec struct {
	entry  int64
	state  couponq.State
	reason string
	id     string
	issued []int64 // entry numbers recorded as issued
}

func (q *Queue) line(campaign string) *line {
	l := q.lookup(campaign)
	if l == nil {
		l = &line{flight: map[int64]deadline{}, entries: map[int64]couponq.Entry{}, users: map[string]*userRec{}}
		q.campaigns[campaign] = l
	}
	return l
}

func (l *line) rank(n int64) int64 {
	i, ok := slices.BinarySearch(l.waiting, n)
	if !ok {
		return 0
	}
	return int64(i) + 1
}

func (l *line) insert(n int64) {
	i, ok := slices.BinarySearch(l.waiting, n)
	if !ok {
		l.waiting = slices.Insert(l.waiting, i, n)
	}
}

func (l *line) remove(n int64) {
	if i, ok := slices.BinarySearch(l.waiting, n); ok {
		l.waiting = slices.Delete(l.waiting, i, i+1)
	}
}

func (l *line) ticket(campaign, user string, u *userRec, repeat bool) couponq.Ticket {
	t := couponq.Ticket{Campaign: campaign, User: user, Entry: u.entry, State: u.state, Repeat: repeat}
	switch {
	case u.state == couponq.StateWaiting && l.soldOut:
		t.State = couponq.StateRejected // its outcome, though the line has not reached it yet
	case u.state == couponq.StateWaiting:
		t.Position = l.rank(u.entry)
		t.Claimed = l.claimed()
	}
	return t
}

// claimed counts units issued or in flight.
func (l *line) claimed() int64 { return l.issued + int64(len(l.flight)) }

// Admit implements couponq.Admitter.
func (q *Queue) Admit(ctx context.Context, a couponq.Admission) (couponq.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Ticket{}, err
	}
	if err := (couponq.Request{Campaign: a.Campaign, User: a.User, RequestID: a.RequestID}).Validate(); err != nil {
		return couponq.Ticket{}, err
	}
	limit := max(a.PerUserLimit, 1)
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.line(a.Campaign)
	u := l.users[a.User]
	if u != nil && (!u.state.Terminal() || u.state == couponq.StateRejected || len(u.issued) >= limit) {
		return l.ticket(a.Campaign, a.User, u, true), nil
	}
	if l.soldOut {
		return couponq.Ticket{}, fmt.Errorf("%w: %s", couponq.ErrSoldOut, a.Campaign)
	}
	if a.MaxWaiting > 0 && int64(len(l.waiting)) >= a.MaxWaiting {
		return couponq.Ticket{}, fmt.Errorf("%w: %s holds %d waiting", couponq.ErrLineFull, a.Campaign, len(l.waiting))
	}
	l.seq++
	n := l.seq
	l.entries[n] = couponq.Entry{Campaign: a.Campaign, User: a.User, Number: n, AdmittedAt: a.At, RequestID: a.RequestID, Trace: a.Trace}
	l.waiting = append(l.waiting, n) // n is the largest number yet
	if u == nil {
		u = &userRec{}
		l.users[a.User] = u
	}
	u.entry, u.state, u.reason, u.id = n, couponq.StateWaiting, "", ""
	return l.ticket(a.Campaign, a.User, u, false), nil
}

// Status implements couponq.StatusReader.
func (q *Queue) Status(ctx context.Context, campaign, user string) (couponq.Status, error) {
	if err := ctx.Err(); err != nil {
		return couponq.Status{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	var u *userRec
	if l != nil {
		u = l.users[user]
	}
	if u == nil {
		return couponq.Status{}, fmt.Errorf("%w: %s/%s", couponq.ErrNotFound, campaign, user)
	}
	st := couponq.Status{Campaign: campaign, User: user, State: u.state, Entry: u.entry, IssuanceID: u.id, Reason: u.reason}
	if u.state == couponq.StateWaiting {
		if l.soldOut {
			st.State, st.Reason = couponq.StateRejected, couponq.CodeSoldOut
		} else {
			st.Position = l.rank(u.entry)
			st.Claimed = l.claimed()
		}
	}
	return st, nil
}

// soldOutDrain is how many waiting entries of a sold-out campaign one Lease
// resolves at least: the line empties in bulk, not at the throttle's pace.
const soldOutDrain = 10_000

// Lease implements couponq.Leaser.
func (q *Queue) Lease(ctx context.Context, campaign string, n int, ttl time.Duration) ([]couponq.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n < 0 || ttl <= 0 {
		return nil, fmt.Errorf("%w: lease of %d entries for %s", couponq.ErrInvalidConfig, n, ttl)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l == nil {
		return nil, nil
	}
	now := q.now()
	for num, d := range l.flight {
		if !now.Before(d.at) {
			delete(l.flight, num)
			l.insert(num)
			l.users[l.entries[num].User].state = couponq.StateWaiting
		}
	}
	if l.soldOut {
		n = max(n, soldOutDrain)
	}
	take := l.waiting[:min(n, len(l.waiting))]
	if l.soldOut {
		for _, num := range take {
			e := l.entries[num]
			u := l.users[e.User]
			u.state, u.reason = couponq.StateRejected, couponq.CodeSoldOut
			delete(l.entries, num)
		}
		l.waiting = l.waiting[len(take):]
		return nil, nil
	}
	out := make([]couponq.Entry, len(take))
	for i, num := range take {
		out[i] = l.entries[num]
		l.flight[num] = deadline{at: now.Add(ttl)}
		l.users[out[i].User].state = couponq.StateInFlight
	}
	l.waiting = l.waiting[len(take):]
	return out, nil
}

// Ack implements couponq.Leaser.
func (q *Queue) Ack(ctx context.Context, campaign string, entries []couponq.Entry, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: ack ttl %s", couponq.ErrInvalidConfig, ttl)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l == nil {
		return nil
	}
	at := q.now().Add(ttl)
	for _, acked := range entries {
		num := acked.Number
		e, ok := l.entries[num]
		if !ok || e.User != acked.User {
			continue // decided, or unknown
		}
		if _, inFlight := l.flight[num]; !inFlight {
			if l.rank(num) == 0 {
				continue
			}
			// Its lease ran out but the downstream has it after all: take it
			// out of line again rather than send it twice.
			l.remove(num)
		}
		l.flight[num] = deadline{at: at, handed: true}
		l.users[e.User].state = couponq.StateInFlight
	}
	return nil
}

// Release implements couponq.Leaser.
func (q *Queue) Release(ctx context.Context, campaign string, entries []couponq.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l == nil {
		return nil
	}
	for _, e := range entries {
		num := e.Number
		if _, ok := l.flight[num]; !ok || l.entries[num].User != e.User {
			continue
		}
		delete(l.flight, num)
		l.insert(num)
		l.users[l.entries[num].User].state = couponq.StateWaiting
	}
	return nil
}

// Record implements couponq.Recorder.
func (q *Queue) Record(ctx context.Context, campaign string, results ...couponq.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range results {
		if r.State != couponq.StateIssued && r.State != couponq.StateRejected {
			return fmt.Errorf("couponq/memory: record of entry %d with non-terminal state %q", r.Entry.Number, r.State)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.line(campaign)
	for _, r := range results {
		num := r.Entry.Number
		issued := r.State == couponq.StateIssued
		u := l.users[r.Entry.User]
		if u == nil {
			u = &userRec{entry: num}
			l.users[r.Entry.User] = u
		}
		if issued && !slices.Contains(u.issued, num) {
			u.issued = append(u.issued, num)
			l.issued++
		}
		delete(l.flight, num)
		l.remove(num)
		delete(l.entries, num)
		switch {
		case num < u.entry:
			continue // an older entry of a user who lined up again; counted above
		case u.state == couponq.StateIssued && r.Reason == couponq.CodeDuplicate:
			continue // "already issued" adds nothing to an issued status
		case num == u.entry && u.state == couponq.StateIssued:
			continue // decided already: the first outcome stays
		case num == u.entry && u.state == couponq.StateRejected && !issued:
			continue // decided already; only an issuance replaces a rejection
		}
		u.entry, u.state, u.reason, u.id = num, r.State, r.Reason, r.IssuanceID
	}
	return nil
}

// IssuedCount implements couponq.IssuedCounter.
func (q *Queue) IssuedCount(ctx context.Context, campaign string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if l := q.lookup(campaign); l != nil {
		return l.issued, nil
	}
	return 0, nil
}

// MarkSoldOut implements couponq.Recorder.
func (q *Queue) MarkSoldOut(ctx context.Context, campaign string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.line(campaign).soldOut = true
	return nil
}

// Stats counts a campaign's entries by where they are, for tests and tools.
type Stats struct {
	Admitted, Waiting, InFlight int64
}

// Stats reports the campaign's counts.
func (q *Queue) Stats(campaign string) Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lookup(campaign)
	if l == nil {
		return Stats{}
	}
	return Stats{Admitted: l.seq, Waiting: int64(len(l.waiting)), InFlight: int64(len(l.flight))}
}
