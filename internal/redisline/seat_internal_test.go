package redisline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redistest"
)

// seatLine admits n users, u0001 to u<n>, with admit_many calls of 500
// (entry k is user k), and returns them by entry number (index 0 unused).
func seatLine(t *testing.T, c redis.UniversalClient, k Keys, n int) []string {
	t.Helper()
	ctx := context.Background()
	users := make([]string, n+1)
	for from := 1; from <= n; from += 500 {
		args := []any{1, time.Now().UnixMilli(), 0}
		for e := from; e < from+500 && e <= n; e++ {
			users[e] = fmt.Sprintf("u%04d", e)
			args = append(args, users[e], "", userBucket(users[e]))
		}
		require.NoError(t, admitManyScript.Run(ctx, c, k.AdmitKeys(), args...).Err())
	}
	return users
}

// swapsFrom returns the i, j pairs of the seating's steps from..to-1.
func swapsFrom(seed uint64, n, from, to int64) []any {
	var pairs []any
	couponq.SeatSwaps(seed, n, func(s, i, j int64) bool {
		if s >= from {
			pairs = append(pairs, i, j)
		}
		return s+1 < to
	})
	return pairs
}

// checkSeated leases the whole line and checks it is seated as
// SeatOrder(seed, n) says.
func checkSeated(t *testing.T, q *Queue, campaign string, users []string, seed uint64) {
	t.Helper()
	n := int64(len(users) - 1)
	got, err := q.Lease(context.Background(), campaign, int(n)+1, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, int(n))
	order := couponq.SeatOrder(seed, n)
	for k, e := range got {
		require.EqualValues(t, k+1, e.Number)
		require.Equal(t, users[order[k]], e.User, "the user at entry %d", k+1)
	}
}

// A seating stopped after its first chunk (the scripts called directly, as
// a Seat that stopped there would have) resumes from the recorded step
// with the recorded seed, whatever seed the resuming Seat names; a chunk
// sent at a stale step is refused and changes nothing; one that does not
// fit the seating is an error and changes nothing.
func TestSeatResumesFromTheRecordedStep(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		q, err := New(Config{Client: c, Prefix: redistest.Prefix(t, c)})
		require.NoError(t, err)
		k := q.keys("resume")
		const n = 2500 // three chunks: 1,000, 1,000 and 499 swaps
		const seed = uint64(1<<63 + 12345)
		users := seatLine(t, c, k, n)

		rec, err := seatBeginScript.Run(ctx, c, []string{k.Seat, k.Seq}, strconv.FormatUint(seed, 10)).StringSlice()
		require.NoError(t, err)
		assert.Equal(t, []string{strconv.FormatUint(seed, 10), "2500", "0", "0"}, rec)
		first := swapsFrom(seed, n, 0, seatChunk)
		require.Len(t, first, 2*seatChunk)
		ok, step, done, err := q.seatApply(ctx, k, 0, first)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.EqualValues(t, seatChunk, step)
		assert.False(t, done)

		ok, step, done, err = q.seatApply(ctx, k, 0, first)
		require.NoError(t, err)
		assert.False(t, ok, "a chunk at a stale step is refused")
		assert.EqualValues(t, seatChunk, step, "and answers the recorded step")
		assert.False(t, done)
		_, _, _, err = q.seatApply(ctx, k, seatChunk, []any{5, 1})
		assert.ErrorContains(t, err, "COUPONQ_SEAT", "a swap that is not the step's")
		_, _, _, err = q.seatApply(ctx, k, seatChunk, swapsFrom(seed, n+1, seatChunk, n+1))
		assert.ErrorContains(t, err, "COUPONQ_SEAT", "more swaps than are left")
		state, err := c.HGetAll(ctx, k.Seat).Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"seed": strconv.FormatUint(seed, 10), "n": "2500", "step": "1000", "done": "0"},
			state, "refused chunks write nothing")

		got, err := q.Seat(ctx, "resume", 1)
		require.NoError(t, err)
		assert.Equal(t, couponq.Seating{Seed: seed, Entries: n, Done: true}, got, "the recorded seed, not the resuming call's")
		state, err = c.HGetAll(ctx, k.Seat).Result()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"seed": strconv.FormatUint(seed, 10), "n": "2500", "step": "2499", "done": "1"}, state)
		checkSeated(t, q, "resume", users, seed)

		_, _, _, err = q.seatApply(ctx, q.keys("never"), 0, nil)
		assert.ErrorContains(t, err, "COUPONQ_SEAT", "a chunk of a seating never begun")
	})
}

// afterSeatCall calls do after each successful seating script call of
// the campaign whose second key ends with second (":seq": the beginning,
// ":line": a chunk), and counts them.
type afterSeatCall struct {
	seat, second string
	do           func()
	calls        atomic.Int64
}

func (h *afterSeatCall) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterSeatCall) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if err == nil && len(args) > 4 && args[3] == h.seat {
			if key, _ := args[4].(string); strings.HasSuffix(key, h.second) {
				h.calls.Add(1)
				h.do()
			}
		}
		return err
	}
}
func (h *afterSeatCall) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A Seat whose context ends after one chunk returns the error and leaves
// the seating at that chunk's end, not done; the next Seat finishes it
// with the same order.
func TestSeatStoppedMidwayResumes(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		q, err := New(Config{Client: c, Prefix: redistest.Prefix(t, c)})
		require.NoError(t, err)
		k := q.keys("stop")
		const n = 2200
		const seed = uint64(99)
		users := seatLine(t, c, k, n)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := &afterSeatCall{seat: k.Seat, second: ":line", do: cancel}
		c.AddHook(h)
		_, err = q.Seat(ctx, "stop", seed)
		require.ErrorIs(t, err, context.Canceled)
		require.EqualValues(t, 1, h.calls.Load(), "one chunk went out")
		state, err := c.HGetAll(context.Background(), k.Seat).Result()
		require.NoError(t, err)
		assert.Equal(t, "1000", state["step"])
		assert.Equal(t, "0", state["done"])

		got, err := q.Seat(context.Background(), "stop", 7)
		require.NoError(t, err)
		assert.Equal(t, couponq.Seating{Seed: seed, Entries: n, Done: true}, got)
		checkSeated(t, q, "stop", users, seed)
	})
}

// Seats of one campaign at once (schedulers racing) share the work: each
// skips the steps another applied, all answer the same done record, and
// the order is the one the seed draws.
func TestSeatsAtOnceShareTheWork(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		q, err := New(Config{Client: c, Prefix: redistest.Prefix(t, c)})
		require.NoError(t, err)
		k := q.keys("race")
		const n = 6000
		users := seatLine(t, c, k, n)
		var wg sync.WaitGroup
		recs := make([]couponq.Seating, 4)
		errs := make([]error, 4)
		for i := range recs {
			wg.Go(func() { recs[i], errs[i] = q.Seat(ctx, "race", uint64(100+i)) })
		}
		wg.Wait()
		for i := range recs {
			require.NoError(t, errs[i])
			assert.Equal(t, recs[0], recs[i])
		}
		require.True(t, recs[0].Done)
		assert.EqualValues(t, n, recs[0].Entries)
		checkSeated(t, q, "race", users, recs[0].Seed)
	})
}

// A Seat whose first chunk another seater partly applied meanwhile (here
// 300 swaps, between the Seat's beginning and its first chunk) is refused,
// then sends the rest of the chunk from the recorded step, and finishes
// with the order the seed draws.
func TestSeatSendsTheRestOfAPartlyAppliedChunk(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		q, err := New(Config{Client: c, Prefix: redistest.Prefix(t, c)})
		require.NoError(t, err)
		k := q.keys("part")
		const n = 1500
		const seed = uint64(4242)
		users := seatLine(t, c, k, n)
		var once sync.Once
		h := &afterSeatCall{seat: k.Seat, second: ":seq", do: func() {
			once.Do(func() {
				ok, step, _, err := q.seatApply(ctx, k, 0, swapsFrom(seed, n, 0, 300))
				assert.NoError(t, err)
				assert.True(t, ok)
				assert.EqualValues(t, 300, step)
			})
		}}
		chunks := &afterSeatCall{seat: k.Seat, second: ":line", do: func() {}}
		c.AddHook(h)
		c.AddHook(chunks)
		got, err := q.Seat(ctx, "part", seed)
		require.NoError(t, err)
		assert.Equal(t, couponq.Seating{Seed: seed, Entries: n, Done: true}, got)
		// The other seater's chunk, the refused one, the rest of it (700
		// swaps) and the last 499.
		assert.EqualValues(t, 4, chunks.calls.Load())
		checkSeated(t, q, "part", users, seed)
	})
}
