package issuer

import (
	"context"
	"time"

	"github.com/couponq/couponq/couponq"
)

// DeadLetter receives entries the issuer gave up on, with the reason. The
// host should keep them where someone looks: replaying one later is safe,
// since the Store is idempotent by entry key.
type DeadLetter interface {
	DeadLetter(ctx context.Context, e couponq.Entry, reason error) error
}

// DeadLetterFunc adapts a function to DeadLetter.
type DeadLetterFunc func(ctx context.Context, e couponq.Entry, reason error) error

// DeadLetter calls f.
func (f DeadLetterFunc) DeadLetter(ctx context.Context, e couponq.Entry, reason error) error {
	return f(ctx, e, reason)
}

// OverIssue reports that a campaign's recorded issuances exceed its stock.
type OverIssue struct {
	Campaign string
	// Issued is the count of distinct entries recorded as issued.
	Issued int64
	// Stock is the campaign's stock when the count was read.
	Stock int64
}

// StoreCall describes one call to the Store.
type StoreCall struct {
	// Entries is how many requests the call decided: 1 for Issue, the
	// batch's size for IssueBatch.
	Entries  int
	Duration time.Duration
	// Err is the call's error (nil when it answered).
	Err error
}

// Event describes one decided entry.
type Event struct {
	Entry    couponq.Entry
	Result   couponq.Result
	Attempts int
	Duration time.Duration
}
