package couponq

import (
	"fmt"
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
type Campaign struct {
	// ID names the campaign; see ValidateID for the allowed form. Required.
	ID string
	// Stock is how many issuances exist in total. Required, > 0.
	Stock int64
	// PerUserLimit is how many issuances one user may hold. Zero means 1.
	PerUserLimit int
	// OpensAt, if not zero, is when admission opens; earlier requests get ErrNotOpen.
	OpensAt time.Time
	// ClosesAt, if not zero, is when admission closes; later requests get
	// ErrClosed. Entries admitted before it are still served.
	ClosesAt time.Time
	// BatchSize is the most entries the throttle hands downstream per tick.
	// Zero means 100.
	BatchSize int
	// Interval is the throttle's tick. Zero means 1s.
	Interval time.Duration
	// Mode selects V2 (QueueFirst, the zero value) or V1 (ValidateFirst).
	Mode Mode
	// MaxWaiting caps the line: once this many entries wait, admission of
	// new users answers ErrLineFull (which is ErrSoldOut to errors.Is)
	// without growing the line, so a drop of 100 units does not hold a
	// million people in a line that can never serve them. Zero means no
	// cap. The seed's design capped the line at ten times the stock.
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
	// Shards > 1. Zero means no pre-queue: strict arrival order from
	// OpensAt, ErrNotOpen before it.
	PreQueue time.Duration
	// Version is set by a Registry: 1 when created, one more at each
	// update. An update must name the version it read, so a stale writer
	// cannot overwrite a newer change. Zero outside a Registry.
	Version int64
}

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

// Validate reports whether c, after defaults, is usable. The error wraps
// ErrInvalidCampaign (and ErrInvalidID for a bad ID).
func (c Campaign) Validate() error {
	if err := ValidateID(c.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCampaign, err)
	}
	c = c.WithDefaults()
	switch {
	case c.Stock <= 0:
		return fmt.Errorf("%w: %s: stock must be > 0, got %d", ErrInvalidCampaign, c.ID, c.Stock)
	case c.PerUserLimit < 0:
		return fmt.Errorf("%w: %s: per-user limit must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.PerUserLimit)
	case c.BatchSize < 0:
		return fmt.Errorf("%w: %s: batch size must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.BatchSize)
	case c.Interval < 0:
		return fmt.Errorf("%w: %s: interval must be >= 0, got %s", ErrInvalidCampaign, c.ID, c.Interval)
	case !c.OpensAt.IsZero() && !c.ClosesAt.IsZero() && !c.ClosesAt.After(c.OpensAt):
		return fmt.Errorf("%w: %s: closes at %s, not after opens at %s", ErrInvalidCampaign, c.ID, c.ClosesAt, c.OpensAt)
	case c.Mode != QueueFirst && c.Mode != ValidateFirst:
		return fmt.Errorf("%w: %s: unknown mode %d", ErrInvalidCampaign, c.ID, c.Mode)
	case c.MaxWaiting < 0:
		return fmt.Errorf("%w: %s: max waiting must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.MaxWaiting)
	case c.Version < 0:
		return fmt.Errorf("%w: %s: version must be >= 0, got %d", ErrInvalidCampaign, c.ID, c.Version)
	case strings.Contains(c.ID, subLineMark):
		return fmt.Errorf("%w: %s: %q is reserved for sub-lines", ErrInvalidCampaign, c.ID, subLineMark)
	case c.Shards < 0 || c.Shards > MaxShards:
		return fmt.Errorf("%w: %s: shards must be 0 to %d, got %d", ErrInvalidCampaign, c.ID, MaxShards, c.Shards)
	case c.Shards > 1 && c.Mode != QueueFirst:
		return fmt.Errorf("%w: %s: shards need V2 (queue-first)", ErrInvalidCampaign, c.ID)
	case c.Shards > 1 && len(c.ID) > MaxIDLen-4:
		return fmt.Errorf("%w: %s: a sharded campaign's ID is at most %d bytes", ErrInvalidCampaign, c.ID, MaxIDLen-4)
	case c.PreQueue < 0:
		return fmt.Errorf("%w: %s: pre-queue must be >= 0, got %s", ErrInvalidCampaign, c.ID, c.PreQueue)
	case c.PreQueue > 0 && c.OpensAt.IsZero():
		return fmt.Errorf("%w: %s: a pre-queue needs OpensAt", ErrInvalidCampaign, c.ID)
	case c.PreQueue > 0 && c.Mode != QueueFirst:
		return fmt.Errorf("%w: %s: a pre-queue needs V2 (queue-first)", ErrInvalidCampaign, c.ID)
	case c.PreQueue > 0 && c.Shards > 1:
		return fmt.Errorf("%w: %s: a pre-queue and shards together are not supported", ErrInvalidCampaign, c.ID)
	}
	return nil
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

// EstimatedWait is how long the entry at a 1-based position in line waits
// for the throttle to hand it downstream, at BatchSize per Interval.
// Position 0 (not waiting) gives 0.
func (c Campaign) EstimatedWait(position int64) time.Duration {
	if position <= 0 {
		return 0
	}
	c = c.WithDefaults()
	ticks := (position + int64(c.BatchSize) - 1) / int64(c.BatchSize)
	return time.Duration(ticks) * c.Interval
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
