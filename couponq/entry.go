package couponq

import (
	"fmt"
	"strconv"
	"time"
)

// Request is one user's ask for a campaign's stock, as the API receives it.
type Request struct {
	// Campaign is the campaign's ID.
	Campaign string
	// User identifies the requester. Hosts take it from their own
	// authentication, never from a request body they do not trust.
	User string
	// RequestID is an optional client-chosen ID carried along for tracing.
	RequestID string
}

// Validate checks the request's IDs; the error wraps ErrInvalidID.
func (r Request) Validate() error {
	if err := ValidateID(r.Campaign); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	if err := ValidateID(r.User); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if r.RequestID != "" {
		if err := ValidateID(r.RequestID); err != nil {
			return fmt.Errorf("request id: %w", err)
		}
	}
	return nil
}

// Entry is a user's place in a campaign's line, the unit that travels from
// the Queue through the Dispatcher to the issuer.
type Entry struct {
	Campaign string
	User     string
	// Number is the campaign's entry number, from a monotonic counter: the
	// first admitted entry is 1. Lower numbers are served first.
	Number int64
	// AdmittedAt is when the entry was admitted.
	AdmittedAt time.Time
	// RequestID is the admitting request's optional ID.
	RequestID string
	// Trace is the entry's trace context as a Tracer serialized it (see
	// Tracer), carried from admission to the issuer; "" when not traced.
	// It is at most MaxTraceLen bytes.
	Trace string
}

// Key is the entry's idempotency key, "campaign/number/user". The Store
// answers a repeated Key with the outcome it gave the first time. The
// issuer sends the Store Campaign.StoreKey, which is Key for a campaign's
// first incarnation.
func (e Entry) Key() string {
	return e.Campaign + "/" + strconv.FormatInt(e.Number, 10) + "/" + e.User
}

// State is where a user's entry stands.
type State string

const (
	// StateWaiting: in line; Status.Position says where.
	StateWaiting State = "waiting"
	// StateInFlight: taken from the line and handed downstream; the outcome
	// is being decided.
	StateInFlight State = "in_flight"
	// StateIssued: the Store issued it; Status.IssuanceID names the issuance.
	StateIssued State = "issued"
	// StateRejected: final without an issuance; Status.Reason says why.
	StateRejected State = "rejected"
)

// Terminal reports whether s is final (issued or rejected).
func (s State) Terminal() bool { return s == StateIssued || s == StateRejected }

// Admission is what Queue.Admit records.
type Admission struct {
	Campaign  string
	User      string
	RequestID string
	// PerUserLimit lets a user who was issued fewer than this many line up
	// again; zero means 1.
	PerUserLimit int
	// MaxWaiting, if > 0, caps the line: a new user finding this many
	// entries waiting gets ErrLineFull and nothing is written.
	MaxWaiting int64
	// At is the admission time.
	At time.Time
	// Trace is the admission's trace context (Entry.Trace), kept with the
	// entry while it waits and returned by Lease; "" when not traced.
	Trace string
}

// Ticket is what admission answers.
type Ticket struct {
	Campaign string
	User     string
	// Entry is the entry number.
	Entry int64
	// Position is the 1-based place in line while waiting, else 0 (an
	// estimate for a sharded campaign: see package shard).
	Position int64
	// EstimatedWait is filled in by Service from the campaign's throttle
	// rate; zero when BeyondStock.
	EstimatedWait time.Duration
	// Claimed is, for a waiting entry, how many of the campaign's units were
	// issued or in flight when the position was read; -1 if the Queue does
	// not say.
	Claimed int64
	// BeyondStock is set by Service when the position is past the stock
	// that remains (Stock - Claimed): unless entries ahead fail, the user
	// will hear sold out.
	BeyondStock bool
	// State is the entry's state: waiting for a fresh V2 admission, in
	// flight for a V1 admission, anything for a repeat.
	State State
	// Repeat is true when the user already had this entry: the same ticket
	// is answered again and nothing was written.
	Repeat bool
	// PreQueue is set by Service for an entry waiting in the campaign's
	// pre-queue (Campaign.PreQueue): its place is drawn at OpensAt, so
	// Position and EstimatedWait are 0 until then.
	PreQueue bool
}

// Status is what a user polls.
type Status struct {
	Campaign string
	User     string
	State    State
	Entry    int64
	// Position is the 1-based place in line while waiting, else 0 (an
	// estimate for a sharded campaign: see package shard).
	Position int64
	// EstimatedWait is filled in by Service while waiting; zero when
	// BeyondStock.
	EstimatedWait time.Duration
	// Claimed and BeyondStock are as in Ticket.
	Claimed     int64
	BeyondStock bool
	// IssuanceID is set when State is StateIssued.
	IssuanceID string
	// Reason is set when State is StateRejected: a code (Code) saying
	// why: CodeSoldOut (the stock was gone before the entry's turn),
	// CodeDuplicate (the user already held PerUserLimit units) or
	// CodeFailed (the entry kept failing and went to the dead letter).
	Reason string
	// PreQueue is as in Ticket.
	PreQueue bool
}

// Result is an entry's decided outcome, recorded so Status reports it.
type Result struct {
	Entry Entry
	// State is StateIssued or StateRejected.
	State      State
	IssuanceID string
	// Reason is set when State is StateRejected, as in Status.
	Reason string
}

// Outcome is the Store's typed answer.
type Outcome uint8

const (
	// Issued: this entry got an issuance (the first time, or again on redelivery).
	Issued Outcome = iota + 1
	// Duplicate: the user already holds PerUserLimit issuances.
	Duplicate
	// SoldOut: the campaign's Stock is used up.
	SoldOut
)

// String returns "issued", "duplicate" or "sold_out".
func (o Outcome) String() string {
	switch o {
	case Issued:
		return "issued"
	case Duplicate:
		return "duplicate"
	case SoldOut:
		return "sold_out"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// IssueRequest asks the Store to issue one unit of a campaign to a user.
type IssueRequest struct {
	// Campaign is the campaign's store name (Campaign.StoreCampaign): its
	// ID, or ID~n for the n-th incarnation of a re-created ID. A Store
	// treats it as an opaque name.
	Campaign string
	User     string
	// Key is the idempotency key (Campaign.StoreKey, which is Entry.Key
	// for a first incarnation): a repeated Key gets the first outcome back
	// and changes nothing.
	Key string
	// Stock and PerUserLimit are the campaign's limits.
	Stock        int64
	PerUserLimit int
}

// Issuance is the Store's answer to an IssueRequest.
type Issuance struct {
	Outcome Outcome
	// ID names the issuance when Outcome is Issued.
	ID string
	// SoldOut is true when, after this call, no stock remains.
	SoldOut bool
}
