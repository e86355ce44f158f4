package couponq

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error returned by this module that has one of these
// meanings wraps the sentinel, so callers test with errors.Is.
var (
	// ErrInvalidID reports a campaign, user or request ID that is empty, too
	// long or outside the safe character set (see ValidateID).
	ErrInvalidID = errors.New("couponq: invalid id")
	// ErrInvalidCampaign reports a Campaign whose fields do not validate.
	ErrInvalidCampaign = errors.New("couponq: invalid campaign")
	// ErrInvalidConfig reports a constructor Config that does not validate.
	ErrInvalidConfig = errors.New("couponq: invalid config")
	// ErrUnknownCampaign reports a campaign ID the Catalog does not know.
	ErrUnknownCampaign = errors.New("couponq: unknown campaign")
	// ErrCampaignExists reports a Registry.Create of an ID already taken.
	ErrCampaignExists = errors.New("couponq: campaign exists")
	// ErrVersionConflict reports a Registry.Update whose Version is not the
	// stored one: someone changed the campaign since it was read.
	ErrVersionConflict = errors.New("couponq: campaign version conflict")
	// ErrNotOpen reports an admission before the campaign's OpensAt.
	ErrNotOpen = errors.New("couponq: campaign not open yet")
	// ErrClosed reports an admission at or after the campaign's ClosesAt.
	ErrClosed = errors.New("couponq: campaign closed")
	// ErrSoldOut reports that the campaign's whole stock is taken.
	ErrSoldOut = errors.New("couponq: sold out")
	// ErrLineFull reports an admission refused because the campaign's line
	// holds Campaign.MaxWaiting entries already. It wraps ErrSoldOut: to
	// the user it means the same (the stock will be gone before their turn).
	ErrLineFull = fmt.Errorf("couponq: line full: %w", ErrSoldOut)
	// ErrDuplicate reports that the user already holds PerUserLimit
	// issuances of the campaign (or, in V1 mode, already passed the gate).
	ErrDuplicate = errors.New("couponq: already issued to this user")
	// ErrNotFound reports a status lookup for a user who has no entry.
	ErrNotFound = errors.New("couponq: not found")
	// ErrUnavailable wraps a backend failure (queue, store, transport): the
	// request was not accepted and may be retried.
	ErrUnavailable = errors.New("couponq: backend unavailable")
	// ErrUnsupported reports a campaign the node has no backends for: V1
	// (ValidateFirst) without a Tally and a Transport, a pre-queue on a
	// Queue that cannot seat one, or sub-lines on a Queue that cannot
	// carry them. The node refuses to create or update such a campaign;
	// an admission to one made elsewhere hears it too.
	ErrUnsupported = errors.New("couponq: campaign not supported by this node")
	// ErrStockBelowIssued reports an update that would lower a campaign's
	// Stock below the units already issued.
	ErrStockBelowIssued = errors.New("couponq: stock below the units issued")
	// ErrBusy reports that a V1 admission could not take its lock in time.
	ErrBusy = errors.New("couponq: busy, try again")
)

// PartialError is returned by Dispatcher.Dispatch when some entries of a
// batch were durably accepted and others were not. Failed maps the index of
// each failed entry in the batch to its cause; every index not in Failed was
// accepted.
type PartialError struct {
	Failed map[int]error
}

func (e *PartialError) Error() string {
	first, cause := -1, error(nil)
	for i, err := range e.Failed {
		if first < 0 || i < first {
			first, cause = i, err
		}
	}
	if cause == nil {
		return "couponq: dispatch partially failed"
	}
	return "couponq: dispatch failed for " + strconv.Itoa(len(e.Failed)) + " entries, first at index " +
		strconv.Itoa(first) + ": " + cause.Error()
}

// Unwrap returns the per-entry causes so errors.Is sees them.
func (e *PartialError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// FailedEntries reads the result of Dispatcher.Dispatch for a batch of n
// entries: nil error means none failed, a *PartialError names the failed
// indexes, and any other error means every entry failed.
func FailedEntries(err error, n int) []bool {
	failed := make([]bool, n)
	if err == nil {
		return failed
	}
	var pe *PartialError
	if errors.As(err, &pe) {
		for i := range pe.Failed {
			if i >= 0 && i < n {
				failed[i] = true
			}
		}
		return failed
	}
	for i := range failed {
		failed[i] = true
	}
	return failed
}
