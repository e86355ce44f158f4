package couponq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/couponq/couponq/couponq"
)

func TestCode(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                            "",
		couponq.ErrInvalidID:                           "invalid_id",
		couponq.ErrInvalidCampaign:                     "invalid_campaign",
		couponq.ErrInvalidConfig:                       "invalid_config",
		couponq.ErrUnknownCampaign:                     "unknown_campaign",
		couponq.ErrCampaignExists:                      "campaign_exists",
		couponq.ErrVersionConflict:                     "version_conflict",
		couponq.ErrCampaignBusy:                        "campaign_busy",
		couponq.ErrNotFound:                            "not_found",
		couponq.ErrNotOpen:                             "not_open",
		couponq.ErrClosed:                              "closed",
		couponq.ErrDuplicate:                           "duplicate",
		couponq.ErrLineFull:                            "line_full",
		couponq.ErrSoldOut:                             "sold_out",
		couponq.ErrUnsupported:                         "unsupported",
		couponq.ErrBusy:                                "busy",
		couponq.ErrUnavailable:                         "unavailable",
		context.DeadlineExceeded:                       "unavailable",
		context.Canceled:                               "unavailable",
		errors.New("boom"):                             "internal",
		fmt.Errorf("admit c: %w", couponq.ErrLineFull): "line_full",
		fmt.Errorf("%w: %w", couponq.ErrUnavailable, context.DeadlineExceeded):  "unavailable",
		&couponq.PartialError{Failed: map[int]error{0: couponq.ErrUnavailable}}: "unavailable",
	} {
		assert.Equal(t, want, couponq.Code(err), "Code(%v)", err)
	}
}
