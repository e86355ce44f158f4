package couponq

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Mode selects how a campaign admits requests.
type Mode uint8

const (
	// QueueFirst is V2, the "receptionist": admission only enqueues the user
	// and answers at once; a throttle moves bounded batches downstream where
	// the issuer checks duplicates and stock. It is the zero value.
	QueueFirst Mode = iota
	// ValidateFirst is V1, the "gatekeeper": the request takes a lock, checks
	// duplicates and stock, hands the entry downstream and only then answers.
	// Kept as a selectable mode and as the baseline for benchmarks.
	ValidateFirst
)

// String returns "v2-queue-first" or "v1-validate-first".
func (m Mode) String() string {
	switch m {
	case QueueFirst:
		return "v2-queue-first"
	case ValidateFirst:
		return "v1-validate-first"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Defaults applied by Campaign.WithDefaults.
const (
	DefaultPerUserLimit = 1
	DefaultBatchSize    = 100
	DefaultInterval     = time.Second
)

// Campaign describes one limited stock handed out first come, first served.
//
// Every numeric field is bounded (Validate says which bound a value
// breaks), so that nothing computed from a campaign overflows: counts stay
// below 2^53, exact as a double (Redis scripts, JSON read by JavaScript),
// and the throttle's figures fit a time.Duration.
type Campaign struct {
	// ID names the campaign; see ValidateID for the allowed form. Required.
	ID string
	// Stock is how many issuances exist in total. Required: 1 to 10^15.
	Stock int64
	// PerUserLimit is how many issuances one user may hold: 0 to
	// 1,000,000. Zero means 1.
	PerUserLimit int
	// OpensAt, if not zero, is when admission opens; earlier requests get
	// ErrNotOpen. In the years 1 to 9999 (what RFC 3339 can write).
	OpensAt time.Time
	// ClosesAt, if not zero, is when admission closes; later requests get
	// ErrClosed. Entries admitted before it are still served. After
	// OpensAt, in the years 1 to 9999.
	ClosesAt time.Time
	// BatchSize is the most entries the throttle hands downstream per tick:
	// 1 to 100,000. Zero means 100.
	BatchSize int
	// Interval is the throttle's tick: 1ms to 1h. Zero means 1s.
	Interval time.Duration
	// Mode selects V2 (QueueFirst, the zero value) or V1 (ValidateFirst).
	Mode Mode
	// MaxWaiting caps the line: once this many entries wait, admission of
	// new users answers ErrLineFull (which is ErrSoldOut to errors.Is)
	// without growing the line, so a drop of 100 units does not hold a
	// million people in a line that can never serve them. Zero means no
	// cap; at most 10^15. The seed's design capped the line at ten times
	// the stock.
	MaxWaiting int64
	// Paused stops the throttle: nobody is moved downstream while it is
	// true, though admission goes on (users keep their places).
	Paused bool
	// Shards spreads the campaign's line over this many sub-lines, each
	// under its own hash tag, so a Redis Cluster spreads one hot
	// campaign's admissions over its masters (package shard). Zero or 1
	// means one line, exact first come, first served; N > 1 (at most
	// MaxShards) orders by admission time across sub-lines, within a
	// bounded, measured displacement. V2 only; fixed once created (a
	// Registry refuses to change it), since a user's sub-line is derived
	// from it. The ID of a sharded campaign is at most MaxIDLen - 4 bytes
	// (room for the sub-line suffix).
	Shards int
	// PreQueue, if > 0, opens a pre-queue that long before OpensAt: users
	// arriving in it are admitted (Ticket.PreQueue) instead of hearing
	// ErrNotOpen, and at OpensAt the scheduler seats them in a uniformly
	// random order drawn from a recorded seed (Seater), ahead of everyone
	// who arrives after opening. Requires OpensAt; V2 only; not with
	// Shards > 1; at most 7 days (168h). Zero means no pre-queue: strict
	// arrival order from OpensAt, ErrNotOpen before it.
	PreQueue time.Duration
	// Version is set by a Registry: 1 when created, one more at each
	// update. An update must name the version it read, so a stale writer
	// cannot overwrite a newer change. Zero outside a Registry; never
	// negative.
	Version int64
	// Incarnation is set by a Registry: 1 for the first creation of an ID,
	// one more each time the ID is created again after Delete (a retired
	// campaign re-created). Ignored on input to Create and Update (Update
	// keeps the stored one); zero outside a Registry, which counts as 1.
	// The Store knows each incarnation as a campaign of its own
	// (StoreCampaign), so a re-created ID starts from zero there.
	Incarnation int64
}

// incarnationMark separates a campaign's ID from its incarnation in
// StoreCampaign. ValidateID refuses it, so no ID is another's store name.
const incarnationMark = "~"

// StoreCampaign is the name the Store knows this incarnation of the
// campaign by (IssueRequest.Campaign, the prefix of its keys, and what
// IssuedCounter counts): the ID for the first incarnation (Incarnation 0
// or 1), and ID~n for the n-th, so a campaign created again after Delete
// shares no stock, users or keys with the ones before it.
func (c Campaign) StoreCampaign() string {
	if c.Incarnation <= 1 {
		return c.ID
	}
	return c.ID + incarnationMark + strconv.FormatInt(c.Incarnation, 10)
}

// StoreKey is the Store's idempotency key of entry e of this incarnation
// of the campaign (IssueRequest.Key): Entry.Key with StoreCampaign in place
// of the campaign's ID.
func (c Campaign) StoreKey(e Entry) string {
	return c.StoreCampaign() + "/" + strconv.FormatInt(e.Number, 10) + "/" + e.User
}

// The bounds Validate enforces, documented on each field of Campaign.
const (
	// maxCount bounds Stock and MaxWaiting: 10^15, below 2^53, so counts
	// are exact as doubles (Redis scripts, JavaScript) and leave room for
	// arithmetic on them.
	maxCount        = 1_000_000_000_000_000
	maxPerUserLimit = 1_000_000
	// maxBatchSize is 1,000 times the default: at the shortest Interval,
	// 10^8 entries a second, beyond what any Store takes.
	maxBatchSize = 100_000
	minInterval  = time.Millisecond
	maxInterval  = time.Hour
	maxPreQueue  = 7 * 24 * time.Hour
	// minYear and maxYear bound OpensAt and ClosesAt to what RFC 3339 (and
	// so JSON and every Registry) writes.
	minYear, maxYear = 1, 9999
)

// State is a campaign's state as operators see it.
func (c Campaign) State(now time.Time, soldOut bool) CampaignState {
	switch {
	case soldOut:
		return CampaignSoldOut
	case !c.ClosesAt.IsZero() && !now.Before(c.ClosesAt):
		return CampaignClosed
	case c.Paused:
		return CampaignPaused
	case c.InPreQueue(now):
		return CampaignPreQueue
	case !c.OpensAt.IsZero() && now.Before(c.OpensAt):
		return CampaignScheduled
	}
	return CampaignOpen
}

// CampaignState names where a campaign stands.
type CampaignState string

const (
	// CampaignScheduled: before OpensAt.
	CampaignScheduled CampaignState = "scheduled"
	// CampaignPreQueue: before OpensAt, admitting to the pre-queue.
	CampaignPreQueue CampaignState = "pre_queue"
	// CampaignOpen: admitting, and the throttle moves entries.
	CampaignOpen CampaignState = "open"
	// CampaignPaused: admitting, but the throttle moves nobody.
	CampaignPaused CampaignState = "paused"
	// CampaignClosed: at or after ClosesAt; entries admitted before are
	// still served.
	CampaignClosed CampaignState = "closed"
	// CampaignSoldOut: the stock is gone.
	CampaignSoldOut CampaignState = "sold_out"
)

// WithDefaults returns c with zero fields replaced by their documented defaults.
func (c Campaign) WithDefaults() Campaign {
	if c.PerUserLimit == 0 {
		c.PerUserLimit = DefaultPerUserLimit
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	return c
}

// Validate reports whether c, after defaults, is usable: every field
// within the bounds documented on it. The error wraps ErrInvalidCampaign
// (and ErrInvalidID for a bad ID) and names the field and its bound; its
// method CampaignField() string gives the field's Go name ("Interval"),
// for a handler to translate (the admin API answers its JSON name).
func (c Campaign) Validate() error {
	if err := ValidateID(c.ID); err != nil {
		return invalidField("ID", fmt.Errorf("%w: %w", ErrInvalidCampaign, err))
	}
	c = c.WithDefaults()
	switch {
	case c.Stock <= 0:
		return invalidField("Stock", fmt.Errorf("%w: %s: stock must be > 0, got %d", ErrInvalidCampaign, c.ID, c.Stock))
	case c.Stock > maxCount:
		return invalidField("Stock", fmt.Errorf("%w: %s: stock must be at most %d, got %d", ErrInvalidCampaign, c.ID, int64(maxCount), c.Stock))
	case c.PerUserLimit < 0:
		return invalidField("PerUserLimit", fmt.Errorf("%w: %s: per-user limit must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.PerUserLimit))
	case c.PerUserLimit > maxPerUserLimit:
		return invalidField("PerUserLimit", fmt.Errorf("%w: %s: per-user limit must be at most %d, got %d", ErrInvalidCampaign, c.ID, maxPerUserLimit, c.PerUserLimit))
	case c.BatchSize < 0 || c.BatchSize > maxBatchSize:
		return invalidField("BatchSize", fmt.Errorf("%w: %s: batch size must be 1 to %d (0 means %d), got %d",
			ErrInvalidCampaign, c.ID, maxBatchSize, DefaultBatchSize, c.BatchSize))
	case c.Interval < minInterval || c.Interval > maxInterval:
		return invalidField("Interval", fmt.Errorf("%w: %s: interval must be %s to %s (0 means %s), got %s",
			ErrInvalidCampaign, c.ID, minInterval, maxInterval, DefaultInterval, c.Interval))
	case !inYears(c.OpensAt):
		return invalidField("OpensAt", fmt.Errorf("%w: %s: opens at %s, outside the years %d to %d", ErrInvalidCampaign, c.ID, c.OpensAt, minYear, maxYear))
	case !inYears(c.ClosesAt):
		return invalidField("ClosesAt", fmt.Errorf("%w: %s: closes at %s, outside the years %d to %d", ErrInvalidCampaign, c.ID, c.ClosesAt, minYear, maxYear))
	case !c.OpensAt.IsZero() && !c.ClosesAt.IsZero() && !c.ClosesAt.After(c.OpensAt):
		return invalidField("ClosesAt", fmt.Errorf("%w: %s: closes at %s, not after opens at %s", ErrInvalidCampaign, c.ID, c.ClosesAt, c.OpensAt))
	case c.Mode != QueueFirst && c.Mode != ValidateFirst:
		return invalidField("Mode", fmt.Errorf("%w: %s: unknown mode %d", ErrInvalidCampaign, c.ID, c.Mode))
	case c.MaxWaiting < 0 || c.MaxWaiting > maxCount:
		return invalidField("MaxWaiting", fmt.Errorf("%w: %s: max waiting must be 0 (no cap) to %d, got %d", ErrInvalidCampaign, c.ID, int64(maxCount), c.MaxWaiting))
	case c.Version < 0:
		return invalidField("Version", fmt.Errorf("%w: %s: version must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.Version))
	case strings.Contains(c.ID, subLineMark):
		return invalidField("ID", fmt.Errorf("%w: %s: %q is reserved for sub-lines", ErrInvalidCampaign, c.ID, subLineMark))
	case c.Shards < 0 || c.Shards > MaxShards:
		return invalidField("Shards", fmt.Errorf("%w: %s: shards must be 0 to %d, got %d", ErrInvalidCampaign, c.ID, MaxShards, c.Shards))
	case c.Shards > 1 && c.Mode != QueueFirst:
		return invalidField("Shards", fmt.Errorf("%w: %s: shards need V2 (queue-first)", ErrInvalidCampaign, c.ID))
	case c.Shards > 1 && len(c.ID) > MaxIDLen-4:
		return invalidField("ID", fmt.Errorf("%w: %s: a sharded campaign's ID is at most %d bytes", ErrInvalidCampaign, c.ID, MaxIDLen-4))
	case c.PreQueue < 0 || c.PreQueue > maxPreQueue:
		return invalidField("PreQueue", fmt.Errorf("%w: %s: pre-queue must be 0 (none) to %s, got %s", ErrInvalidCampaign, c.ID, maxPreQueue, c.PreQueue))
	case c.PreQueue > 0 && c.OpensAt.IsZero():
		return invalidField("PreQueue", fmt.Errorf("%w: %s: a pre-queue needs OpensAt", ErrInvalidCampaign, c.ID))
	case c.PreQueue > 0 && c.Mode != QueueFirst:
		return invalidField("PreQueue", fmt.Errorf("%w: %s: a pre-queue needs V2 (queue-first)", ErrInvalidCampaign, c.ID))
	case c.PreQueue > 0 && c.Shards > 1:
		return invalidField("PreQueue", fmt.Errorf("%w: %s: a pre-queue and shards together are not supported", ErrInvalidCampaign, c.ID))
	}
	return nil
}

// fieldError is Validate's error: the field it is about, and the message
// (which wraps ErrInvalidCampaign). Handlers that speak another naming
// (the admin API's JSON names) find the field through errors.As with an
// interface{ CampaignField() string }.
type fieldError struct {
	field string
	err   error
}

func invalidField(field string, err error) error { return &fieldError{field: field, err: err} }

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// CampaignField is the name of the Campaign field the error is about
// ("Interval").
func (e *fieldError) CampaignField() string { return e.field }

// inYears reports whether t is zero or in the years minYear to maxYear (UTC).
func inYears(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	y := t.UTC().Year()
	return y >= minYear && y <= maxYear
}

// MaxShards is the most sub-lines a campaign's line may have.
const MaxShards = 64

// subLineMark separates a sharded campaign's ID from its sub-line number in
// the sub-lines' IDs; campaign IDs may not contain it.
const subLineMark = "@@"

// InPreQueue reports whether now is in the campaign's pre-queue: at most
// PreQueue before OpensAt, and before it.
func (c Campaign) InPreQueue(now time.Time) bool {
	return c.PreQueue > 0 && now.Before(c.OpensAt) && !now.Before(c.OpensAt.Add(-c.PreQueue))
}

// CheckWindow returns ErrNotOpen before OpensAt (before the pre-queue opens,
// for a campaign with one), ErrClosed from ClosesAt on, and nil in between.
func (c Campaign) CheckWindow(now time.Time) error {
	if !c.OpensAt.IsZero() && now.Before(c.OpensAt) && !c.InPreQueue(now) {
		return ErrNotOpen
	}
	if !c.ClosesAt.IsZero() && !now.Before(c.ClosesAt) {
		return ErrClosed
	}
	return nil
}

// EstimateWait is how long the entry at a 1-based position in line waits
// for the scheduler to hand it downstream, at BatchSize per Interval: one
// Interval per BatchSize entries up to and including it, rounded up. claimed
// is how many units were claimed (issued or in flight, as Ticket.Claimed
// and Status.Claimed; negative if unknown, which counts the whole Stock as
// remaining). A position past the stock that remains (Stock - claimed)
// counts as the first one past it: by the time that stock has drained,
// everyone further back hears sold out. Never negative: it saturates at the
// longest time.Duration, whatever the campaign's values. known is false when there is no
// estimate: position 0 or less (not waiting), or the campaign is paused
// (nobody moves until it resumes). A known wait is at least one Interval.
func (c Campaign) EstimateWait(position, claimed int64) (wait time.Duration, known bool) {
	if position <= 0 || c.Paused {
		return 0, false
	}
	remaining := c.Stock
	if claimed >= 0 {
		remaining = max(0, c.Stock-min(claimed, c.Stock)) // no overflow
	}
	return c.waitFor(position, remaining), true
}

// waitFor is the wait of a 1-based position in line when at most remaining
// units are left to hand out: ⌈min(position, remaining+1) / BatchSize⌉
// Intervals, saturating at the longest time.Duration. Values a Campaign
// would not validate with count as the nearest valid ones (a BatchSize
// below 1 as 1; an Interval below 0 as 0), so it never panics nor turns
// negative.
func (c Campaign) waitFor(position, remaining int64) time.Duration {
	if position <= 0 {
		return 0
	}
	c = c.WithDefaults()
	if remaining >= 0 && position > remaining {
		position = remaining + 1 // remaining < position <= MaxInt64: no overflow
	}
	batch := max(int64(c.BatchSize), 1)
	ticks := position / batch
	if position%batch != 0 {
		ticks++
	}
	return mulDuration(ticks, c.Interval)
}

// maxDuration is where wait estimates saturate.
const maxDuration = time.Duration(math.MaxInt64)

// mulDuration is n × d for n >= 0, saturating at maxDuration; 0 for d <= 0.
func mulDuration(n int64, d time.Duration) time.Duration {
	if n <= 0 || d <= 0 {
		return 0
	}
	if n > int64(maxDuration/d) {
		return maxDuration
	}
	return time.Duration(n) * d
}

// Lock key scopes for V1 admission.
type LockScope uint8

const (
	// LockPerUser takes one lock per campaign and user, as the seed's own
	// implementation does. The zero value.
	LockPerUser LockScope = iota
	// LockPerCampaign takes one lock per campaign: every request of the
	// campaign contends for it, the contention the seed's text describes.
	LockPerCampaign
)

// BeyondStock reports whether a waiting position is past the stock that
// remains, given how many units were claimed (issued or in flight;
// negative if unknown): unless entries ahead fail, that user will hear sold
// out. Service sets Ticket.BeyondStock and Status.BeyondStock with it, and
// status pushers deriving positions themselves use it too.
func (c Campaign) BeyondStock(position, claimed int64) bool {
	return position > 0 && claimed >= 0 && position > c.Stock-claimed
}
