package couponq

import (
	"context"
	"time"
)

// Registry is where campaigns live: hosts write to it while the service runs, shared
// by every process: campaigns are created, updated (stock, batch size,
// interval, window, pause) and listed at runtime. Implementations validate
// (Campaign.Validate) before writing anything, and version every campaign.
// Package registrytest is its conformance suite.
type Registry interface {
	// Campaign returns the campaign; an error wrapping ErrUnknownCampaign
	// if there is none.
	Campaign(ctx context.Context, id string) (Campaign, error)
	// List returns every campaign, ordered by ID.
	List(ctx context.Context) ([]Campaign, error)
	// Create stores c (its Version must be 0) with its defaults applied, at
	// Version 1 and the ID's next Incarnation (1 for an ID never created,
	// one more than the last creation of a deleted one; c.Incarnation is
	// ignored), and returns it; ErrCampaignExists if the ID is taken. A
	// campaign that does not validate, or has a Version other than 0, gets
	// an error wrapping ErrInvalidCampaign and nothing is written.
	Create(ctx context.Context, c Campaign) (Campaign, error)
	// Update replaces the stored campaign with c if the stored Version is
	// c.Version, and returns it at Version+1 with the stored Incarnation
	// (c.Incarnation is ignored); ErrVersionConflict if the
	// versions differ, ErrUnknownCampaign if there is none. A campaign that
	// does not validate, or has Version 0, gets an error wrapping
	// ErrInvalidCampaign and nothing is written. The Registry does not know
	// how many units were issued, so it lets Stock go below that: a caller
	// lowering Stock checks it against the issued count first (see Modify).
	Update(ctx context.Context, c Campaign) (Campaign, error)
	// Delete removes the campaign if its stored Version is version, and
	// returns nil; ErrVersionConflict if the versions differ (someone
	// changed it since it was read), ErrUnknownCampaign if there is none. A
	// version <= 0 (not read from the Registry) is an error wrapping
	// ErrInvalidCampaign. Once deleted, the ID is free: Create may use it
	// again, at Version 1, as its next Incarnation (so the Registry keeps
	// a count of the ID's creations across Delete). Delete touches only the Registry: the node's
	// RetireCampaign archives the campaign's line first.
	Delete(ctx context.Context, id string, version int64) error
}

// Agenda is the set of campaigns that have entries to move, shared by every
// process, so a scheduler drives only campaigns with people in line or in
// flight and idle campaigns cost nothing. Admission wakes a campaign; the
// scheduler lets it rest once its line and flight are empty.
type Agenda interface {
	// Wake puts the campaign on the agenda; waking an awake campaign is a
	// no-op.
	Wake(ctx context.Context, campaign string) error
	// Awake returns the campaigns on the agenda.
	Awake(ctx context.Context) ([]string, error)
	// Rest takes the campaign off the agenda if its line and flight are
	// both empty, and reports whether it did. An admission racing with Rest
	// is never left unserved: either Rest sees its entry and keeps the
	// campaign awake, or the admission's Wake comes after.
	Rest(ctx context.Context, campaign string) (bool, error)
}

// LineStats counts a campaign's entries by where they are.
type LineStats struct {
	// Admitted is how many entries were ever admitted (the last entry number).
	Admitted int64
	// Waiting and InFlight count entries in line and handed downstream.
	Waiting, InFlight int64
	// Head is the entry number at the head of the line (the lowest waiting
	// number), 0 when nobody waits. Entries leave the line from the head and
	// return to it, never from the middle, so a waiting entry n stands at
	// position n - Head + 1 at most, and exactly that unless entries ahead
	// of it were handed downstream out of turn (a lease that ran out, then
	// went back) — status pushers use it to derive every waiting user's
	// position from one read per campaign.
	Head int64
	// Issued counts distinct entries recorded as issued.
	Issued int64
	// SoldOut tells whether the campaign is marked sold out.
	SoldOut bool
}

// LineStatser is implemented by Queues that can count a campaign's entries
// cheaply (a few O(1) reads), for operators' live numbers.
type LineStatser interface {
	LineStats(ctx context.Context, campaign string) (LineStats, error)
}

// Reopener is implemented by Queues that can take back a campaign's
// sold-out mark (Recorder.MarkSoldOut), for a campaign whose stock was
// raised after it sold out: admission of new users resumes.
type Reopener interface {
	Reopen(ctx context.Context, campaign string) error
}

// Seater is implemented by Queues that can seat a campaign's pre-queue
// (Campaign.PreQueue). The scheduler calls it at OpensAt, before it leases
// any of the campaign's entries.
type Seater interface {
	// Seal marks the end of the campaign's pre-queue at its last entry
	// number now, unless it is marked already (the first mark stands).
	// Service calls it once per process and campaign before its first
	// admission at or after OpensAt, so nobody who arrives after opening is
	// seated with the pre-queue, however late seating begins.
	Seal(ctx context.Context, campaign string) error
	// Seat puts the pre-queue's entries — entry numbers 1 to n, n being the
	// mark Seal left or, if there is none yet, the last entry number when
	// seating begins — into the uniformly random order SeatSwaps draws
	// from seed: the user waiting with entry i moves to the place
	// SeatOrder gives, keeping entry numbers and their admission times
	// with the places. Entries admitted later keep their numbers (> n), so
	// they stay behind. The first call records seed and
	// n; a later call (a resumed seating, another scheduler, a read by an
	// auditor) goes on from where seating stands with the recorded seed and
	// ignores its own. Seating is done in steps that each commit
	// atomically, so it can stop at any point and resume; it returns once
	// done. An entry not waiting when its swap comes (taken out of line)
	// is skipped.
	Seat(ctx context.Context, campaign string, seed uint64) (Seating, error)
}

// Seating is the record of a campaign's pre-queue seating, for an audit:
// SeatOrder(Seed, Entries) replays it.
type Seating struct {
	// Seed is the seed the order was drawn from.
	Seed uint64
	// Entries is n: the last entry number when seating began.
	Entries int64
	// Done tells whether every swap was applied.
	Done bool
}

// Admitter puts users in line.
type Admitter interface {
	// Admit atomically puts the user in the campaign's line with the next
	// entry number and returns the ticket. A user already waiting or in
	// flight, or already served (issued PerUserLimit times, or rejected),
	// gets the same ticket back with Repeat set and nothing is written. Once
	// the campaign is marked sold out, a new user gets ErrSoldOut and the
	// line does not grow.
	Admit(ctx context.Context, a Admission) (Ticket, error)
}

// StatusReader answers where a user's entry stands.
type StatusReader interface {
	// Status returns the user's latest entry; ErrNotFound if there is none.
	// A waiting entry of a campaign marked sold out reports rejected/sold_out:
	// stock never comes back, so that is its outcome.
	Status(ctx context.Context, campaign, user string) (Status, error)
}

// Leaser is the reliable hand-off from the line to the downstream. Entries
// are never popped destructively: they are leased, and a lease that is not
// acknowledged in time returns the entry to the head of the line.
type Leaser interface {
	// Lease first returns every entry whose lease or hand-off deadline has
	// passed to the line (keeping its entry number, so it goes back to the
	// head), then moves up to max of the oldest waiting entries into flight
	// under a lease that ends after ttl, and returns them in entry-number
	// order. On a campaign marked sold out it instead resolves waiting
	// entries as rejected/sold_out in bulk — at least max of them, more if
	// the implementation can (the shipped queues take up to 10,000 per
	// call: the Store is not involved, so the throttle's pace need not
	// apply) — and returns none.
	Lease(ctx context.Context, campaign string, max int, ttl time.Duration) ([]Entry, error)
	// Ack records that the downstream holds the entries durably: their
	// deadline becomes now+ttl, the time their result has to arrive by before
	// they are handed downstream again. Entries not in flight or in line
	// (decided, or unknown) are ignored.
	Ack(ctx context.Context, campaign string, entries []Entry, ttl time.Duration) error
	// Release returns leased entries the downstream did not take to the line
	// at once. Entries not in flight are ignored.
	Release(ctx context.Context, campaign string, entries []Entry) error
}

// Recorder keeps decided outcomes so StatusReader can report them.
type Recorder interface {
	// Record makes each result's entry terminal and takes it out of line and
	// flight. The user's status follows their latest entry. Record is
	// idempotent: a decided entry keeps its first outcome, except that an
	// issued result replaces a rejection (the Store is the last word); a
	// duplicate rejection never replaces an issued status; a result for an
	// older entry only counts toward the user's issuances. A result for an
	// entry the queue never saw (V1 mode) is recorded too.
	Record(ctx context.Context, campaign string, results ...Result) error
	// MarkSoldOut records that the campaign's stock is gone: from then on
	// admission of new users answers ErrSoldOut without growing the line.
	MarkSoldOut(ctx context.Context, campaign string) error
}

// Queue is a campaign's waiting line: admission, status, the leased
// hand-off to the throttle, and the record of outcomes.
type Queue interface {
	Admitter
	StatusReader
	Leaser
	Recorder
}

// Store is the host's persistence and the last word on stock and duplicates.
// Package storetest states its laws in full and checks them.
type Store interface {
	// Issue atomically issues one unit iff the user holds fewer than
	// r.PerUserLimit issuances of the campaign and the campaign's issued
	// count is below r.Stock. A repeated r.Key gets the first outcome back
	// (Issued with the same ID) and changes nothing, not even the user's
	// count toward the limit. A user at the limit hears Duplicate even
	// once the stock is gone. Issuance.SoldOut tells whether any stock
	// remains after the call, computed now (a replay does not repeat an old
	// value). A request with an empty Campaign, User or Key, or Stock <= 0,
	// is an error; a call whose ctx is already done decides nothing.
	Issue(ctx context.Context, r IssueRequest) (Issuance, error)
}

// BatchStore is a Store that can decide many requests in one round trip (one
// transaction, one script). The issuer uses it, when the Store has it, to
// decide a whole delivered batch at once instead of one call per entry.
type BatchStore interface {
	Store
	// IssueBatch decides rs in slice order, exactly as if Issue were called
	// for each request in turn, and returns one Issuance per request (same
	// index). The laws of Issue hold per request: a Key repeated within the
	// batch or from an earlier call gets the first outcome back, a user at
	// PerUserLimit gets Duplicate, and each Issuance.SoldOut tells
	// whether stock remained after that request. The requests may name
	// several campaigns. On error nothing is returned and any subset of the
	// requests may have been decided; retrying the same batch is safe, since
	// decided keys answer with their first outcome.
	IssueBatch(ctx context.Context, rs []IssueRequest) ([]Issuance, error)
}

// IssuedCounter counts a campaign's issued units. Recorders implement it
// with the distinct entries recorded as issued: the issuer compares that
// count with the campaign's Stock after recording issuances, and a count
// above Stock means the Store over-issued (for example, two workers each
// running their own in-memory Store), which it reports at error level and
// through its OnOverIssue hook. Stores implement it with the units they
// issued, by any route: the scheduler reads it for the exact cutoff (see
// package dispatch), falling back to the Queue's count for a Store
// without it.
type IssuedCounter interface {
	IssuedCount(ctx context.Context, campaign string) (int64, error)
}

// StoreFunc adapts a function to Store.
type StoreFunc func(ctx context.Context, r IssueRequest) (Issuance, error)

// Issue calls f.
func (f StoreFunc) Issue(ctx context.Context, r IssueRequest) (Issuance, error) { return f(ctx, r) }

// Dispatcher is the transport the throttle (and V1 admission) hands entries to.
type Dispatcher interface {
	// Dispatch returns once the transport holds the batch durably. It returns
	// nil when every entry was accepted, a *PartialError naming the entries
	// that were not, or any other error when none was. See FailedEntries.
	Dispatch(ctx context.Context, batch []Entry) error
}

// DispatcherFunc adapts a function to Dispatcher.
type DispatcherFunc func(ctx context.Context, batch []Entry) error

// Dispatch calls f.
func (f DispatcherFunc) Dispatch(ctx context.Context, batch []Entry) error { return f(ctx, batch) }

// Handler processes one delivered entry. Returning nil commits the delivery;
// returning an error leaves it to be delivered again.
type Handler func(ctx context.Context, e Entry) error

// BatchHandler processes several delivered entries at once. Returning nil
// commits every entry of the batch; returning an error leaves them all to be
// delivered again (the Store answers redelivered keys with their first
// outcome, so entries decided before the error are not decided twice).
type BatchHandler func(ctx context.Context, batch []Entry) error

// Batch adapts h to a BatchHandler that calls h for each entry in order and
// stops at the first error (nil for a nil h), so a BatchConsumer can serve
// Consume with ConsumeBatches.
func (h Handler) Batch() BatchHandler {
	if h == nil {
		return nil
	}
	return func(ctx context.Context, batch []Entry) error {
		for _, e := range batch {
			if err := h(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}
}

// BatchConsumer is a Consumer that can also deliver entries in batches.
type BatchConsumer interface {
	Consumer
	// ConsumeBatches is Consume with batches: h gets up to max entries (at
	// least one) that are ready at once; it never waits to fill a batch.
	// Entries of one batch keep their delivery order.
	ConsumeBatches(ctx context.Context, max int, h BatchHandler) error
}

// Consumer is the Dispatcher's receiving side. It delivers every dispatched
// entry at least once: an entry is delivered again if its handler returned
// an error or the consumer stopped before the handler returned.
type Consumer interface {
	// Consume calls h for delivered entries until ctx is done, then waits
	// for running handlers and returns nil; it returns an error only when it
	// cannot go on.
	Consume(ctx context.Context, h Handler) error
}

// Tally holds V1's counters: the per-campaign set of users who passed the
// gate (the seed's SADD) and the counter of stock taken (INCR/DECR).
type Tally interface {
	// Add puts user in the campaign's set; false if already there.
	Add(ctx context.Context, campaign, user string) (bool, error)
	// Remove takes user out of the set (rollback).
	Remove(ctx context.Context, campaign, user string) error
	// Has reports whether user is in the set.
	Has(ctx context.Context, campaign, user string) (bool, error)
	// Incr adds delta to the campaign's counter and returns the new value.
	Incr(ctx context.Context, campaign string, delta int64) (int64, error)
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(ctx context.Context, h Handler) error

// Consume calls f.
func (f ConsumerFunc) Consume(ctx context.Context, h Handler) error { return f(ctx, h) }
