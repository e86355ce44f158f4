package redisline

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

var (
	//go:embed lua/archive.lua
	archiveLua    string
	archiveScript = redis.NewScript(archiveLua)
)

// errCodeBusy is what the archive script answers for a campaign with
// entries in line or in flight.
const errCodeBusy = "COUPONQ_BUSY"

var _ couponq.Archiver = (*Queue)(nil)

// All returns every key of the campaign that the Queue and the Tally
// write, line and flight first: the keys Queue.Archive puts away. It does
// not hold the Registry's record ("prefix:{campaign}:campaign"), which
// Registry.Delete removes, nor the Store's keys.
func (k Keys) All() []string {
	return []string{k.Line, k.Flight, k.Held, k.Seq, k.Out, k.Done, k.SoldOut, k.Clock, k.Issued, k.Trace, k.Seat, k.V1Users, k.V1Count}
}

// Archive implements couponq.Archiver with one script on the campaign's
// slot, which checks that the line and flight are empty and then sets every
// key of the campaign (Keys.All) to expire after retention, rounded up to
// whole milliseconds (PEXPIRE), or unlinks them all for a retention of 0;
// then it takes the campaign off the agenda (Rest, a command of its own
// since the agenda is outside the slot). Until they expire, the keys answer
// as before: Status reads outcomes, LineStats counts, IssuedCount counts.
// Two to four round trips.
//
// A write to the campaign after Archive (a late MarkSoldOut, an admission)
// may make a key without an expiry; archive the campaign again to put it
// away. Archive also forgets the campaign's cached key names.
func (q *Queue) Archive(ctx context.Context, campaign string, retention time.Duration) error {
	if retention < 0 {
		return fmt.Errorf("%w: redisq: archive %s: negative retention %s", couponq.ErrInvalidConfig, campaign, retention)
	}
	if err := couponq.ValidateID(campaign); err != nil {
		return fmt.Errorf("redisq: archive: %w", err)
	}
	ms := retention.Milliseconds()
	if retention%time.Millisecond != 0 {
		ms++ // a retention under a millisecond does not become "now"
	}
	k, _ := q.lookKeys(campaign)
	err := archiveScript.Run(ctx, q.rdb, k.All(), ms).Err()
	var re redis.Error
	if errors.As(err, &re) {
		if counts, ok := strings.CutPrefix(re.Error(), errCodeBusy+" "); ok {
			waiting, inFlight, _ := strings.Cut(counts, " ")
			return fmt.Errorf("redisq: archive: %w: %s has %s waiting and %s in flight",
				couponq.ErrCampaignBusy, campaign, waiting, inFlight)
		}
	}
	if err != nil {
		return fmt.Errorf("redisq: archive %s: %w", campaign, err)
	}
	_, err = q.Rest(ctx, campaign)
	q.forget(campaign)
	if err != nil {
		return fmt.Errorf("redisq: archive %s: records archived, but: %w", campaign, err)
	}
	return nil
}
