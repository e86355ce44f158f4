package couponq

import (
	"context"
	"errors"
	"time"
)

// ErrCampaignBusy reports an Archive (or an operator's delete) of a campaign
// that still has entries waiting in line or in flight: their outcomes are
// not decided yet, so the campaign cannot be put away.
var ErrCampaignBusy = errors.New("couponq: campaign busy")

// Archiver is implemented by Queues that can put away a finished campaign,
// so that a host running campaign after campaign does not keep every
// campaign's records for ever.
type Archiver interface {
	// Archive puts the campaign away once its line and flight are both
	// empty; otherwise it changes nothing and returns an error wrapping
	// ErrCampaignBusy. The campaign's outcome records (every user's latest
	// entry and outcome, the issued count, the entry counter, the sold-out
	// mark, the admission clock, and V1's counters) are kept for retention,
	// so Status goes on answering users who come back to read their
	// outcome, and then expire: from then on the campaign is as if it never
	// ran (Status answers ErrNotFound, LineStats counts zero, and the ID may
	// be used again, numbering from 1). A retention of 0 drops them at
	// once; a negative one is an error wrapping ErrInvalidConfig. The
	// campaign is also taken off the Agenda, if the Queue is one.
	// Archiving a campaign that has no records does nothing; archiving an
	// archived one sets its retention anew.
	//
	// Archive does not stop admission: it is for a campaign that admits
	// nobody any more (closed, sold out, or gone from the catalog in every
	// process). An entry admitted after Archive is not covered by it, and
	// the Store's own records (the host's persistence) are not touched.
	Archive(ctx context.Context, campaign string, retention time.Duration) error
}
