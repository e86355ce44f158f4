package couponq

import (
	"context"
	"errors"
)

// Codes name what an error means, for machines: the public HTTP handler
// answers them as its error codes, and metrics adapters label admissions
// with them. Code maps an error to one.
const (
	CodeInvalidID        = "invalid_id"
	CodeInvalidCampaign  = "invalid_campaign"
	CodeInvalidConfig    = "invalid_config"
	CodeUnknownCampaign  = "unknown_campaign"
	CodeCampaignExists   = "campaign_exists"
	CodeVersionConflict  = "version_conflict"
	CodeStockBelowIssued = "stock_below_issued"
	CodeCampaignBusy     = "campaign_busy"
	CodeNotFound         = "not_found"
	CodeNotOpen          = "not_open"
	CodeClosed           = "closed"
	CodeDuplicate        = "duplicate"
	CodeLineFull         = "line_full"
	CodeSoldOut          = "sold_out"
	CodeUnsupported      = "unsupported"
	CodeBusy             = "busy"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	// CodeFailed is the reason of an entry rejected because it kept
	// failing (dead-lettered); no error maps to it.
	CodeFailed = "failed"
)

// Code returns the code of err's meaning: "" for nil, the code of the first
// of this package's sentinels err wraps (ErrLineFull before ErrSoldOut, which
// it wraps), CodeUnavailable for a context that ended (the request was not
// served, and may be retried), and CodeInternal for anything else. It is the
// one mapping from errors to codes: hosts writing their own metrics or
// transports use it too, so every label agrees.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// codes is in the order Code tests them: more specific sentinels first.
var codes = []struct {
	err  error
	code string
}{
	{ErrInvalidID, CodeInvalidID},
	{ErrInvalidCampaign, CodeInvalidCampaign},
	{ErrInvalidConfig, CodeInvalidConfig},
	{ErrUnknownCampaign, CodeUnknownCampaign},
	{ErrCampaignExists, CodeCampaignExists},
	{ErrVersionConflict, CodeVersionConflict},
	{ErrStockBelowIssued, CodeStockBelowIssued},
	{ErrCampaignBusy, CodeCampaignBusy},
	{ErrNotFound, CodeNotFound},
	{ErrNotOpen, CodeNotOpen},
	{ErrClosed, CodeClosed},
	{ErrDuplicate, CodeDuplicate},
	{ErrLineFull, CodeLineFull},
	{ErrSoldOut, CodeSoldOut},
	{ErrUnsupported, CodeUnsupported},
	{ErrBusy, CodeBusy},
	{ErrUnavailable, CodeUnavailable},
	{context.DeadlineExceeded, CodeUnavailable},
	{context.Canceled, CodeUnavailable},
}
