package redisline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/redisline"
	"github.com/couponq/couponq/internal/redistest"
)

// lineModel is what a campaign's line must hold: who waits and who is in
// flight, with their entry numbers, and who was decided.
type lineModel struct {
	admitted int64
	waiting  map[string]int64
	flight   map[string]int64
	decided  map[string]couponq.State
}

// positions returns the waiting entries' numbers in order, and each
// waiting user's position.
func (m *lineModel) positions() ([]int64, map[string]int64) {
	nums := make([]int64, 0, len(m.waiting))
	for _, n := range m.waiting {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	pos := make(map[string]int64, len(m.waiting))
	for u, n := range m.waiting {
		i, _ := slices.BinarySearch(nums, n)
		pos[u] = int64(i) + 1
	}
	return nums, pos
}

// TestLineMatchesModel drives one campaign through thousands of
// admissions (concurrent, with repeats), leases across many order buckets,
// releases, late acks, expired leases and records, then a sold-out drain
// in several calls, and after each round checks every answer against a
// model of the line: tickets, the entries Lease returns and their order,
// each waiting user's Status and position, and LineStats. At the end no
// bucket of the line is left in Redis.
func TestLineMatchesModel(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		for _, coalesce := range []bool{false, true} {
			t.Run(fmt.Sprintf("coalesce=%v", coalesce), func(t *testing.T) { testLineMatchesModel(t, c, coalesce) })
		}
	})
}

func testLineMatchesModel(t *testing.T, c redis.UniversalClient, coalesce bool) {
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix, DisableCoalescing: !coalesce, MaxRecover: 300})
	require.NoError(t, err)
	const campaign = "model"
	rng := rand.New(rand.NewPCG(7, uint64(len(prefix))))
	m := &lineModel{waiting: map[string]int64{}, flight: map[string]int64{}, decided: map[string]couponq.State{}}
	users := 0
	soldOut := false

	pick := func(from map[string]int64, k int) []couponq.Entry {
		var es []couponq.Entry
		for u, n := range from {
			if len(es) == k {
				break
			}
			es = append(es, couponq.Entry{Campaign: campaign, User: u, Number: n})
		}
		return es
	}
	check := func(round int) {
		t.Helper()
		nums, pos := m.positions()
		st, err := q.LineStats(ctx, campaign)
		require.NoError(t, err)
		head := int64(0)
		if len(nums) > 0 {
			head = nums[0]
		}
		require.Equal(t, couponq.LineStats{Admitted: m.admitted, Waiting: int64(len(m.waiting)), InFlight: int64(len(m.flight)),
			Head: head, Issued: st.Issued, SoldOut: soldOut}, st, "round %d", round)
		// Every waiting user's Status, and a few others.
		type want struct {
			user string
			st   couponq.Status
		}
		var wants []want
		for u, n := range m.waiting {
			if soldOut { // a waiting entry of a sold-out campaign has its outcome
				wants = append(wants, want{u, couponq.Status{State: couponq.StateRejected, Entry: n}})
				continue
			}
			wants = append(wants, want{u, couponq.Status{State: couponq.StateWaiting, Entry: n, Position: pos[u]}})
		}
		for u, n := range m.flight {
			if rng.IntN(4) == 0 {
				wants = append(wants, want{u, couponq.Status{State: couponq.StateInFlight, Entry: n}})
			}
		}
		for u, s := range m.decided {
			if rng.IntN(8) == 0 {
				wants = append(wants, want{u, couponq.Status{State: s}})
			}
		}
		var wg sync.WaitGroup
		work := make(chan want)
		for range 16 {
			wg.Go(func() {
				for w := range work {
					got, err := q.Status(ctx, campaign, w.user)
					if !assert.NoError(t, err, w.user) {
						continue
					}
					if w.st.Entry == 0 { // decided: the state is enough
						assert.Equal(t, w.st.State, got.State, "round %d: %s", round, w.user)
						continue
					}
					assert.Equal(t, w.st, couponq.Status{State: got.State, Entry: got.Entry, Position: got.Position},
						"round %d: %s", round, w.user)
				}
			})
		}
		for _, w := range wants {
			work <- w
		}
		close(work)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// lease checks that Lease hands out the lowest waiting entries, in order.
	lease := func(k int, ttl time.Duration) []couponq.Entry {
		t.Helper()
		nums, _ := m.positions()
		got, err := q.Lease(ctx, campaign, k, ttl)
		require.NoError(t, err)
		want := nums[:min(k, len(nums))]
		gotNums := []int64{}
		for _, e := range got {
			gotNums = append(gotNums, e.Number)
			require.Equal(t, m.waiting[e.User], e.Number, "%s leased under its own number", e.User)
			require.False(t, e.AdmittedAt.IsZero())
			delete(m.waiting, e.User)
			m.flight[e.User] = e.Number
		}
		require.Equal(t, want, gotNums, "Lease hands out the lowest entries, in order")
		return got
	}

	for round := range 14 {
		// Admissions: new users and repeats, all at once.
		var batch []string
		for range 150 + rng.IntN(300) {
			if users > 0 && rng.IntN(5) == 0 {
				batch = append(batch, fmt.Sprintf("user-%05d", rng.IntN(users)))
				continue
			}
			batch = append(batch, fmt.Sprintf("user-%05d", users))
			users++
		}
		_, before := m.positions()
		tickets := make([]couponq.Ticket, len(batch))
		var wg sync.WaitGroup
		for i, u := range batch {
			wg.Go(func() {
				tk, err := q.Admit(ctx, couponq.Admission{Campaign: campaign, User: u, At: time.Now()})
				assert.NoError(t, err, u)
				tickets[i] = tk
			})
		}
		wg.Wait()
		require.False(t, t.Failed())
		fresh := map[string]int64{}
		for i, tk := range tickets {
			u := batch[i]
			switch {
			case m.waiting[u] != 0 && before[u] != 0:
				require.True(t, tk.Repeat, u)
				require.Equal(t, couponq.StateWaiting, tk.State, u)
				require.Equal(t, m.waiting[u], tk.Entry, u)
				require.Equal(t, before[u], tk.Position, "%s: a repeat keeps its place", u)
			case m.flight[u] != 0:
				require.True(t, tk.Repeat, u)
				require.Equal(t, couponq.StateInFlight, tk.State, u)
			case m.decided[u] != "":
				require.True(t, tk.Repeat, u)
				require.Equal(t, m.decided[u], tk.State, u)
			default: // new in this round, perhaps asked twice
				require.Equal(t, couponq.StateWaiting, tk.State, u)
				require.Greater(t, tk.Entry, m.admitted, u)
				if n, ok := fresh[u]; ok {
					require.Equal(t, n, tk.Entry, "%s asked twice in one round", u)
					continue
				}
				fresh[u] = tk.Entry
			}
		}
		// New users got the next numbers, each once, and a position that
		// counts everyone waiting before them.
		var got []int64
		for _, n := range fresh {
			got = append(got, n)
		}
		slices.Sort(got)
		for i, n := range got {
			require.Equal(t, m.admitted+int64(i)+1, n, "entry numbers unique and gap-free")
		}
		for u, n := range fresh {
			m.waiting[u] = n
		}
		m.admitted += int64(len(got))
		_, after := m.positions()
		for i, tk := range tickets {
			if u := batch[i]; fresh[u] != 0 {
				// New in this round: nobody left the line meanwhile, so its
				// position counts the old line and the new users admitted
				// before it, as the line stands now.
				require.Equal(t, after[u], tk.Position, u)
			}
		}
		check(round)

		// Lease a large batch (across order buckets), then hand some back,
		// acknowledge some and decide some.
		got2 := lease(1+rng.IntN(400), time.Minute)
		rng.Shuffle(len(got2), func(i, j int) { got2[i], got2[j] = got2[j], got2[i] })
		third := len(got2) / 3
		release := got2[:third]
		require.NoError(t, q.Release(ctx, campaign, release))
		for _, e := range release {
			delete(m.flight, e.User)
			m.waiting[e.User] = e.Number
		}
		require.NoError(t, q.Ack(ctx, campaign, got2[third:], time.Minute))
		var results []couponq.Result
		for i, e := range got2[third : third+third] {
			r := couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "i-" + e.User}
			if i%3 == 0 {
				r = couponq.Result{Entry: e, State: couponq.StateRejected, Reason: couponq.CodeDuplicate}
			}
			results = append(results, r)
			delete(m.flight, e.User)
			m.decided[e.User] = r.State
		}
		require.NoError(t, q.Record(ctx, campaign, results...))
		check(round)

		// Leases that run out: they come back to the line under their own
		// numbers; a late ack takes some out again; a result recorded for a
		// waiting entry takes it out of line.
		short := lease(1+rng.IntN(200), time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		none, err := q.Lease(ctx, campaign, 0, time.Minute)
		require.NoError(t, err)
		require.Empty(t, none)
		for _, e := range short {
			delete(m.flight, e.User)
			m.waiting[e.User] = e.Number
		}
		check(round)
		late := short[:len(short)/4]
		require.NoError(t, q.Ack(ctx, campaign, late, time.Minute))
		for _, e := range late {
			delete(m.waiting, e.User)
			m.flight[e.User] = e.Number
		}
		var decideWaiting []couponq.Result
		for _, e := range pick(m.waiting, 1+rng.IntN(20)) {
			decideWaiting = append(decideWaiting, couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "w-" + e.User})
			delete(m.waiting, e.User)
			m.decided[e.User] = couponq.StateIssued
		}
		require.NoError(t, q.Record(ctx, campaign, decideWaiting...))
		// A release of an entry that is not in flight, and a stale number,
		// change nothing.
		if es := pick(m.waiting, 2); len(es) == 2 {
			stale := es[1]
			stale.Number = es[0].Number
			require.NoError(t, q.Release(ctx, campaign, []couponq.Entry{es[0], stale}))
		}
		check(round)
	}

	// Sold out: Lease resolves the line in calls of MaxRecover (300)
	// entries, lowest first, and the line is gone.
	require.NoError(t, q.MarkSoldOut(ctx, campaign))
	soldOut = true
	for len(m.waiting) > 0 {
		nums, _ := m.positions()
		drained, err := q.Lease(ctx, campaign, 1, time.Minute)
		require.NoError(t, err)
		require.Empty(t, drained)
		cut := nums[min(300, len(nums))-1]
		for u, n := range m.waiting {
			if n <= cut {
				delete(m.waiting, u)
				m.decided[u] = couponq.StateRejected
			}
		}
		check(-1)
	}
	var rest []couponq.Result
	for _, e := range pick(m.flight, len(m.flight)) {
		rest = append(rest, couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "r"})
		delete(m.flight, e.User)
		m.decided[e.User] = couponq.StateIssued
	}
	require.NoError(t, q.Record(ctx, campaign, rest...))
	check(-2)
	for key := range campaignKeys(t, c, prefix, campaign) {
		assert.False(t, strings.Contains(key, ":q:") || strings.Contains(key, ":u:") || strings.HasSuffix(key, ":line"),
			"%s is left once nobody waits", key)
	}
	t.Logf("%d users, %d entries admitted", users, m.admitted)
}

// A campaign whose line is still in the older layout (one sorted set at
// the line key) fails every operation loudly, before anything is written,
// rather than losing the people in it.
func TestOlderLayoutFailsLoudly(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		k := redisline.KeysFor(prefix, "old")
		require.NoError(t, c.ZAdd(ctx, k.Line, redis.Z{Score: 1, Member: "early"}).Err())
		require.NoError(t, c.Set(ctx, k.Seq, 1, 0).Err())
		before := campaignKeys(t, c, prefix, "old")

		_, err = q.Admit(ctx, couponq.Admission{Campaign: "old", User: "late", At: time.Now()})
		assert.ErrorContains(t, err, "WRONGTYPE")
		_, err = q.Status(ctx, "old", "early")
		assert.ErrorContains(t, err, "WRONGTYPE")
		_, err = q.Lease(ctx, "old", 10, time.Minute)
		assert.ErrorContains(t, err, "WRONGTYPE")
		_, err = q.LineStats(ctx, "old")
		assert.ErrorContains(t, err, "WRONGTYPE")
		assert.ErrorContains(t, q.Archive(ctx, "old", 0), "WRONGTYPE")
		assert.Equal(t, before, campaignKeys(t, c, prefix, "old"), "nothing written")
		n, err := c.ZCard(ctx, k.Line).Result()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "the older line is intact")
	})
}

// Should an order bucket go missing behind the Queue's back (deleted by
// hand), Lease still hands out everyone else in order and the line does
// not stall.
func TestLineOutlivesAMissingBucket(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix})
		require.NoError(t, err)
		for i := 1; i <= 600; i++ {
			_, err := q.Admit(ctx, couponq.Admission{Campaign: "gap", User: fmt.Sprintf("u%03d", i), At: time.Now()})
			require.NoError(t, err)
		}
		require.NoError(t, c.Del(ctx, redisline.KeysFor(prefix, "gap").OrderBucket(8)).Err()) // entries 256..287
		var got []int64
		for range 20 {
			es, err := q.Lease(ctx, "gap", 100, time.Minute)
			require.NoError(t, err)
			for _, e := range es {
				got = append(got, e.Number)
			}
		}
		var want []int64
		for n := int64(1); n <= 600; n++ {
			if n < 256 || n > 287 {
				want = append(want, n)
			}
		}
		assert.Equal(t, want, got)
		st, err := q.LineStats(ctx, "gap")
		require.NoError(t, err)
		assert.Zero(t, st.Waiting)
	})
}

// A line whose tree covers fewer order buckets than its entries need was
// written with wider buckets (by another version): admissions, alone or
// coalesced, refuse it before writing anything rather than misplace anyone.
func TestAdmitRefusesALineOfAnotherBucketWidth(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.Prefix(t, c)
		k := redisline.KeysFor(prefix, "wide")
		for _, coalesce := range []bool{false, true} {
			q, err := redisline.New(redisline.Config{Client: c, Prefix: prefix, DisableCoalescing: !coalesce})
			require.NoError(t, err)
			if !coalesce {
				for i := 1; i <= 40; i++ {
					_, err := q.Admit(ctx, couponq.Admission{Campaign: "wide", User: fmt.Sprintf("u%03d", i), At: time.Now()})
					require.NoError(t, err)
				}
				// 40 entries span order buckets 0 and 1; 128-wide buckets
				// would have put them all in bucket 0, with a tree of one.
				require.NoError(t, c.BitField(ctx, k.Out, "SET", "i32", "#0", 1).Err())
			}
			_, err = q.Admit(ctx, couponq.Admission{Campaign: "wide", User: "late", At: time.Now()})
			require.ErrorContains(t, err, "order buckets of another width")
			seq, err := c.Get(ctx, k.Seq).Int64()
			require.NoError(t, err)
			assert.EqualValues(t, 40, seq, "nothing written")
			_, err = q.Status(ctx, "wide", "late")
			assert.ErrorIs(t, err, couponq.ErrNotFound, "the refused user is not indexed")
		}
	})
}
