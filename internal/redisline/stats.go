package redisline

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

var (
	//go:embed lua/stats.lua
	statsLua    string
	statsScript = redis.NewScript(lineLua + lineWriteLua + lineMoreLua + statsLua)
)

var (
	_ couponq.LineStatser = (*Queue)(nil)
	_ couponq.Reopener    = (*Queue)(nil)
)

// LineStats implements couponq.LineStatser with one script call (five O(1)
// reads and the line's head: log2 of the order buckets reads, on the
// campaign's slot). A campaign with no keys counts zero
// everywhere. An entry whose lease ran out counts as in flight until the
// next Lease returns it to the line.
func (q *Queue) LineStats(ctx context.Context, campaign string) (couponq.LineStats, error) {
	k, cached := q.lookKeys(campaign)
	res, err := statsScript.Run(ctx, q.rdb, []string{k.Seq, k.Line, k.Flight, k.Issued, k.SoldOut}).Slice()
	if err != nil {
		return couponq.LineStats{}, fmt.Errorf("redisq: line stats: %w", err)
	}
	if len(res) != 6 {
		return couponq.LineStats{}, fmt.Errorf("redisq: line stats: unexpected reply %v", res)
	}
	if !cached && toInt(res[0]) > 0 { // the campaign has keys: it admitted someone
		q.remember(campaign, k)
	}
	return couponq.LineStats{
		Admitted: toInt(res[0]),
		Waiting:  toInt(res[1]),
		InFlight: toInt(res[2]),
		Issued:   toInt(res[3]),
		SoldOut:  toInt(res[4]) == 1,
		Head:     toInt(res[5]),
	}, nil
}

// Reopen implements couponq.Reopener by deleting the campaign's sold-out
// flag: new users are admitted again, and Lease hands waiting entries
// downstream instead of resolving them as sold out. Entries already resolved
// as sold out keep that outcome. Reopening a campaign that is not sold out
// does nothing.
func (q *Queue) Reopen(ctx context.Context, campaign string) error {
	k, _ := q.lookKeys(campaign)
	if err := q.rdb.Del(ctx, k.SoldOut).Err(); err != nil {
		return fmt.Errorf("redisq: reopen: %w", err)
	}
	return nil
}
