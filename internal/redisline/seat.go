package redisline

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/couponq/couponq/couponq"
)

var (
	//go:embed lua/seat_begin.lua
	seatBeginLua string
	//go:embed lua/seat.lua
	seatLua string
	//go:embed lua/seal.lua
	sealLua string

	sealScript = redis.NewScript(sealLua)

	seatBeginScript = redis.NewScript(seatBeginLua)
	seatScript      = redis.NewScript(lineLua + lineWriteLua + seatLua)
)

var _ couponq.Seater = (*Queue)(nil)

// Seal implements couponq.Seater: one script marks, unless a mark is
// there, the pre-queue's end at the entry counter now, in the seat hash
// (field "seal"), which Seat's first script reads for n.
func (q *Queue) Seal(ctx context.Context, campaign string) error {
	if err := couponq.ValidateID(campaign); err != nil {
		return fmt.Errorf("redisq: seal: %w", err)
	}
	k := q.keys(campaign)
	if err := sealScript.Run(ctx, q.rdb, []string{k.Seat, k.Seq}).Err(); err != nil {
		return fmt.Errorf("redisq: seal %s: %w", campaign, err)
	}
	return nil
}

// seatChunk is how many swaps one seating script call applies: each reads
// and writes a few keys per swap, so a chunk takes milliseconds of Redis
// time and other calls to the campaign go between chunks.
const seatChunk = 1000

// Seat implements couponq.Seater. The seating's record is the campaign's
// hash Keys.Seat (seed, n, step, done): a first script records seed and n
// (the entry counter now) unless they are there, and answers the record;
// then Seat draws the swaps from the recorded seed (couponq.SeatSwaps) and
// sends them in chunks of 1,000 to a second script, which applies a chunk
// only if the recorded step is where the chunk starts, and moves the step
// on. A Seat that stops (an error, its context ending) leaves the seating
// at a chunk's end; the next Seat, from this process or another, goes on
// from there with the recorded seed; two Seats at once share the work,
// each skipping the steps the other applied. A swap exchanges the users
// waiting at two entry numbers (their index entries and order buckets);
// the numbers keep their admission times, and the counts of those out of
// line do not change. Seating n entries takes about n/1,000 round trips
// and O(n) Redis time; Archive puts the record away with the campaign's
// other keys.
func (q *Queue) Seat(ctx context.Context, campaign string, seed uint64) (couponq.Seating, error) {
	if err := couponq.ValidateID(campaign); err != nil {
		return couponq.Seating{}, fmt.Errorf("redisq: seat: %w", err)
	}
	k := q.keys(campaign)
	res, err := seatBeginScript.Run(ctx, q.rdb, []string{k.Seat, k.Seq}, strconv.FormatUint(seed, 10)).Slice()
	if err != nil {
		return couponq.Seating{}, fmt.Errorf("redisq: seat %s: %w", campaign, err)
	}
	if len(res) != 4 {
		return couponq.Seating{}, fmt.Errorf("redisq: seat %s: unexpected reply %v", campaign, res)
	}
	rec := couponq.Seating{Entries: toInt(res[1]), Done: toInt(res[3]) == 1}
	if rec.Seed, err = strconv.ParseUint(toStr(res[0]), 10, 64); err != nil {
		return couponq.Seating{}, fmt.Errorf("redisq: seat %s: corrupt seed %v: %w", campaign, res[0], err)
	}
	if rec.Done {
		return rec, nil
	}
	step := toInt(res[2])
	var (
		pairs  []any // the chunk: i, j for the steps from first on
		first  int64
		failed error // why seating stopped, if it failed
	)
	// flush sends the chunk, and reports whether seating goes on. A chunk
	// refused because another seater went on is sent again without the
	// steps that seater applied.
	flush := func() bool {
		for len(pairs) > 0 {
			if err := ctx.Err(); err != nil {
				failed = err
				return false
			}
			ok, at, done, err := q.seatApply(ctx, k, first, pairs)
			if err != nil {
				failed = err
				return false
			}
			step, rec.Done = at, done
			if ok || done {
				pairs = pairs[:0]
				return !done
			}
			if at < first {
				failed = fmt.Errorf("the recorded step went back from %d to %d", first, at)
				return false
			}
			skip := at - first
			if 2*skip >= int64(len(pairs)) {
				pairs = pairs[:0]
				return true
			}
			pairs, first = append([]any(nil), pairs[2*skip:]...), at
		}
		return true
	}
	couponq.SeatSwaps(rec.Seed, rec.Entries, func(s, i, j int64) bool {
		if s < step {
			return true
		}
		if len(pairs) == 0 {
			first = s
		}
		pairs = append(pairs, i, j)
		if len(pairs) < 2*seatChunk {
			return true
		}
		return flush()
	})
	if failed == nil && !rec.Done {
		flush()
	}
	if failed != nil {
		return rec, fmt.Errorf("redisq: seat %s: at step %d of %d: %w", campaign, step, max(rec.Entries-1, 0), failed)
	}
	if !rec.Done {
		return rec, fmt.Errorf("redisq: seat %s: every swap sent, but the seating stands at step %d of %d", campaign, step, rec.Entries-1)
	}
	return rec, nil
}

// seatApply runs the seating script on one chunk of swaps (i, j pairs)
// starting at step from; it answers whether the chunk was applied, the
// recorded step after the call and whether seating is done.
func (q *Queue) seatApply(ctx context.Context, k Keys, from int64, pairs []any) (ok bool, step int64, done bool, err error) {
	res, err := seatScript.Run(ctx, q.rdb, []string{k.Seat, k.Line}, append([]any{from}, pairs...)...).Slice()
	if err != nil {
		return false, 0, false, err
	}
	if len(res) != 3 {
		return false, 0, false, fmt.Errorf("unexpected reply %v", res)
	}
	return toInt(res[0]) == 1, toInt(res[1]), toInt(res[2]) == 1, nil
}
