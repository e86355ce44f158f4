// Package queuetest is the conformance suite every couponq.Queue must pass.
// The in-memory Queue runs it, so do the Redis backends; a host with its own
// Queue runs it too:
//
//	func TestMyQueue(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) couponq.Queue { return newMyQueue(t) })
//	}
//
// Tests use real time with short leases (hundreds of milliseconds) and a
// fresh campaign ID each, so a factory may hand out one shared backend.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
)

// Run runs the suite; newQueue is called once per subtest.
func Run(t *testing.T, newQueue func(t *testing.T) couponq.Queue) {
	tests := []struct {
		name string
		fn   func(t *testing.T, q couponq.Queue, campaign string)
	}{
		{"AdmitNumbersAndPositions", testAdmitNumbers},
		{"AdmitRepeatReturnsSameTicket", testAdmitRepeat},
		{"AdmitRejectsBadIDsWithoutWriting", testAdmitBadIDs},
		{"AdmitConcurrentUniqueGapFree", testAdmitConcurrent},
		{"StatusNotFound", testStatusNotFound},
		{"LeaseFIFOAndBounded", testLeaseFIFO},
		{"LeaseExpiryRedeliversExactlyUnacked", testLeaseExpiry},
		{"AckDeadlineRedispatchesLostResults", testAckDeadline},
		{"ReleaseReturnsToHead", testRelease},
		{"LateAckTakesEntryOutOfLine", testLateAck},
		{"ConcurrentLeasesNeverShareAnEntry", testConcurrentLease},
		{"RecordMakesTerminal", testRecord},
		{"RecordIsIdempotentIssuedWins", testRecordIdempotent},
		{"RecordWithoutAdmission", testRecordV1},
		{"PerUserLimitAllowsLiningUpAgain", testPerUserLimit},
		{"SoldOutStopsTheLine", testSoldOut},
		{"CampaignsAreIndependent", testIndependent},
		{"CancelledContext", testCancelled},
		{"IssuedCountCountsDistinctIssuedEntries", testIssuedCount},
		{"LineStatsCountsEntriesByWhereTheyAre", testLineStats},
		{"ReopenLetsNewUsersInAfterSoldOut", testReopen},
		{"ArchiveKeepsOutcomesForRetention", testArchive},
		{"LineCapRefusesWithoutWriting", testLineCap},
		{"ClaimedCountsIssuedAndInFlight", testClaimed},
		{"TraceTravelsWithTheEntry", testTrace},
		{"SeatOrdersThePreQueueAsSeatOrderSays", testSeat},
		{"SeatSkipsEntriesOutOfLine", testSeatSkips},
		{"SeatOfNoneOrOneEntry", testSeatSmall},
		{"SeatWhileUsersArrive", testSeatConcurrent},
		{"SealEndsThePreQueue", testSeal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t)
			tc.fn(t, q, campaignID(t))
		})
	}
}

var seq atomic.Int64

// campaignID returns an ID unique to this process run and test.
func campaignID(t *testing.T) string {
	return fmt.Sprintf("qt-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
}

func admit(t *testing.T, q couponq.Queue, campaign, user string) couponq.Ticket {
	t.Helper()
	tk, err := q.Admit(context.Background(), couponq.Admission{Campaign: campaign, User: user, At: time.Now()})
	require.NoError(t, err)
	return tk
}

func numbers(es []couponq.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Number
	}
	return out
}

// pick returns the entries of es with the given numbers.
func pick(es []couponq.Entry, nums ...int64) []couponq.Entry {
	var out []couponq.Entry
	for _, e := range es {
		for _, n := range nums {
			if e.Number == n {
				out = append(out, e)
			}
		}
	}
	return out
}

func status(t *testing.T, q couponq.Queue, campaign, user string) couponq.Status {
	t.Helper()
	st, err := q.Status(context.Background(), campaign, user)
	require.NoError(t, err)
	return st
}

func testAdmitNumbers(t *testing.T, q couponq.Queue, c string) {
	for i := 1; i <= 5; i++ {
		tk := admit(t, q, c, fmt.Sprintf("u%d", i))
		assert.Equal(t, int64(i), tk.Entry, "entry number")
		assert.Equal(t, int64(i), tk.Position, "position")
		assert.Equal(t, couponq.StateWaiting, tk.State)
		assert.False(t, tk.Repeat)
		assert.Equal(t, c, tk.Campaign)
		assert.Equal(t, fmt.Sprintf("u%d", i), tk.User)
	}
	st := status(t, q, c, "u3")
	assert.Equal(t, couponq.StateWaiting, st.State)
	assert.Equal(t, int64(3), st.Entry)
	assert.Equal(t, int64(3), st.Position)
}

func testAdmitRepeat(t *testing.T, q couponq.Queue, c string) {
	admit(t, q, c, "a")
	first := admit(t, q, c, "b")
	again := admit(t, q, c, "b")
	assert.True(t, again.Repeat)
	assert.Equal(t, first.Entry, again.Entry)
	assert.Equal(t, first.Position, again.Position)
	next := admit(t, q, c, "c")
	assert.Equal(t, int64(3), next.Entry, "a repeat must not use up an entry number")
	// Still the same ticket while in flight.
	leased, err := q.Lease(context.Background(), c, 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, leased, 2)
	inFlight := admit(t, q, c, "b")
	assert.True(t, inFlight.Repeat)
	assert.Equal(t, first.Entry, inFlight.Entry)
	assert.Equal(t, couponq.StateInFlight, inFlight.State)
	assert.Zero(t, inFlight.Position)
}

func testAdmitBadIDs(t *testing.T, q couponq.Queue, c string) {
	for _, a := range []couponq.Admission{
		{Campaign: c, User: ""},
		{Campaign: c, User: "has space"},
		{Campaign: c, User: "brace{tag}"},
		{Campaign: "", User: "u"},
		{Campaign: c, User: string(make([]byte, couponq.MaxIDLen+1))},
		{Campaign: c, User: "u", RequestID: "bad/id"},
	} {
		_, err := q.Admit(context.Background(), a)
		assert.ErrorIs(t, err, couponq.ErrInvalidID, "%+v", a)
	}
	tk := admit(t, q, c, "ok")
	assert.Equal(t, int64(1), tk.Entry, "refused admissions must not write")
}

func testAdmitConcurrent(t *testing.T, q couponq.Queue, c string) {
	const users, perUser = 300, 3
	var mu sync.Mutex
	got := map[string]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, users*perUser)
	for i := range users * perUser {
		wg.Go(func() {
			u := fmt.Sprintf("u%d", i%users)
			tk, err := q.Admit(context.Background(), couponq.Admission{Campaign: c, User: u, At: time.Now()})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := got[u]; ok && prev != tk.Entry {
				errs <- fmt.Errorf("user %s got entries %d and %d", u, prev, tk.Entry)
			}
			got[u] = tk.Entry
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	nums := make([]int64, 0, len(got))
	for _, n := range got {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	require.Len(t, nums, users)
	for i, n := range nums {
		require.Equal(t, int64(i+1), n, "entry numbers must be unique and gap-free")
	}
}

func testStatusNotFound(t *testing.T, q couponq.Queue, c string) {
	_, err := q.Status(context.Background(), c, "nobody")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
	admit(t, q, c, "somebody")
	_, err = q.Status(context.Background(), c, "nobody")
	assert.ErrorIs(t, err, couponq.ErrNotFound)
}

func testLeaseFIFO(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	empty, err := q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, empty)
	for i := range 10 {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	got, err := q.Lease(ctx, c, 4, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4}, numbers(got))
	assert.Equal(t, "u0", got[0].User)
	assert.Equal(t, c, got[0].Campaign)
	assert.False(t, got[0].AdmittedAt.IsZero())
	assert.Equal(t, couponq.StateInFlight, status(t, q, c, "u0").State)
	assert.Equal(t, int64(1), status(t, q, c, "u4").Position, "the line moves up")
	got, err = q.Lease(ctx, c, 100, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{5, 6, 7, 8, 9, 10}, numbers(got))
	got, err = q.Lease(ctx, c, 0, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, got)
}

const shortTTL = 300 * time.Millisecond

func testLeaseExpiry(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	for i := range 6 {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	got, err := q.Lease(ctx, c, 4, shortTTL)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4}, numbers(got))
	require.NoError(t, q.Ack(ctx, c, pick(got, 1, 3), time.Minute))

	time.Sleep(shortTTL + 150*time.Millisecond)
	// 2 and 4 expired: they come back at the head, before 5 and 6, and only they.
	got, err = q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 4, 5}, numbers(got))
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{6}, numbers(got), "each expired lease comes back exactly once")
}

func testAckDeadline(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	admit(t, q, c, "a")
	admit(t, q, c, "b")
	got, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, q.Ack(ctx, c, got, shortTTL))
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "x"}))
	again, err := q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, again, "handed entries are not re-sent before their deadline")
	time.Sleep(shortTTL + 150*time.Millisecond)
	// b's result never came: it goes downstream again. a is decided and stays decided.
	again, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{2}, numbers(again))
	assert.Equal(t, couponq.StateIssued, status(t, q, c, "a").State)
}

func testRelease(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	for i := range 5 {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	got, err := q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3}, numbers(got))
	require.NoError(t, q.Ack(ctx, c, pick(got, 1), time.Minute))
	ghost := couponq.Entry{Campaign: c, User: "ghost", Number: 99}
	stale := couponq.Entry{Campaign: c, User: "u4", Number: 1} // right number, wrong user
	require.NoError(t, q.Release(ctx, c, append(pick(got, 2, 3), ghost, stale)))
	assert.Equal(t, couponq.StateWaiting, status(t, q, c, "u1").State)
	assert.Equal(t, int64(1), status(t, q, c, "u1").Position, "released entries go back to the head")
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3, 4, 5}, numbers(got))
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, got, "the acked entry 1 stays handed off")
}

func testLateAck(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	admit(t, q, c, "a")
	admit(t, q, c, "b")
	first, err := q.Lease(ctx, c, 1, shortTTL)
	require.NoError(t, err)
	time.Sleep(shortTTL + 150*time.Millisecond)
	// The lease ran out; a Lease call puts entry 1 back in line...
	got, err := q.Lease(ctx, c, 0, time.Minute)
	require.NoError(t, err)
	require.Empty(t, got)
	assert.Equal(t, couponq.StateWaiting, status(t, q, c, "a").State)
	// ...but the transport did take it: the late ack takes it out of line.
	require.NoError(t, q.Ack(ctx, c, first, time.Minute))
	assert.Equal(t, couponq.StateInFlight, status(t, q, c, "a").State)
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{2}, numbers(got))
}

func testConcurrentLease(t *testing.T, q couponq.Queue, c string) {
	const n = 400
	for i := range n {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				got, err := q.Lease(context.Background(), c, 7, time.Minute)
				if !assert.NoError(t, err) || len(got) == 0 {
					return
				}
				assert.LessOrEqual(t, len(got), 7)
				mu.Lock()
				for _, e := range got {
					seen[e.Number]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, seen, n)
	for num, k := range seen {
		assert.Equal(t, 1, k, "entry %d leased %d times", num, k)
	}
}

func testRecord(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	admit(t, q, c, "a")
	admit(t, q, c, "b")
	admit(t, q, c, "w")
	got, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, c,
		couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "iss-1"},
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeDuplicate},
	))
	a := status(t, q, c, "a")
	assert.Equal(t, couponq.StateIssued, a.State)
	assert.Equal(t, "iss-1", a.IssuanceID)
	assert.Equal(t, int64(1), a.Entry)
	b := status(t, q, c, "b")
	assert.Equal(t, couponq.StateRejected, b.State)
	assert.Equal(t, couponq.CodeDuplicate, b.Reason)

	again := admit(t, q, c, "a")
	assert.True(t, again.Repeat, "a served user gets the same ticket back")
	assert.Equal(t, couponq.StateIssued, again.State)
	assert.Equal(t, int64(1), again.Entry)
	assert.Equal(t, int64(1), status(t, q, c, "w").Position)

	// Decided entries are never leased again, even after their lease would have run out.
	rest, err := q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, numbers(rest))

	err = q.Record(ctx, c, couponq.Result{Entry: rest[0], State: couponq.StateWaiting})
	assert.Error(t, err, "a non-terminal result is refused")
}

func testRecordIdempotent(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	admit(t, q, c, "a")
	admit(t, q, c, "b")
	got, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	issued := couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "first"}
	require.NoError(t, q.Record(ctx, c, issued))
	require.NoError(t, q.Record(ctx, c, issued))
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	a := status(t, q, c, "a")
	assert.Equal(t, couponq.StateIssued, a.State, "the first outcome stays")
	assert.Equal(t, "first", a.IssuanceID)

	later := couponq.Entry{Campaign: c, User: "a", Number: 99}
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: later, State: couponq.StateRejected, Reason: couponq.CodeDuplicate}))
	assert.Equal(t, couponq.StateIssued, status(t, q, c, "a").State, "a duplicate rejection never replaces an issued status")

	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeFailed}))
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[1], State: couponq.StateIssued, IssuanceID: "late"}))
	b := status(t, q, c, "b")
	assert.Equal(t, couponq.StateIssued, b.State, "an issuance replaces a rejection")
	assert.Equal(t, "late", b.IssuanceID)
}

func testRecordV1(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	e := couponq.Entry{Campaign: c, User: "v1user", Number: 7, AdmittedAt: time.Now()}
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "id7"}))
	st := status(t, q, c, "v1user")
	assert.Equal(t, couponq.StateIssued, st.State)
	assert.Equal(t, int64(7), st.Entry)
	assert.Equal(t, "id7", st.IssuanceID)
}

func testPerUserLimit(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	adm := couponq.Admission{Campaign: c, User: "fan", PerUserLimit: 2, At: time.Now()}
	first, err := q.Admit(ctx, adm)
	require.NoError(t, err)
	got, err := q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "one"}))
	second, err := q.Admit(ctx, adm)
	require.NoError(t, err)
	assert.False(t, second.Repeat, "below the limit a served user lines up again")
	assert.Greater(t, second.Entry, first.Entry)
	got, err = q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "two"}))
	// A redelivered old result changes neither the count nor the latest entry.
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: couponq.Entry{Campaign: c, User: "fan", Number: first.Entry}, State: couponq.StateIssued, IssuanceID: "one"}))
	third, err := q.Admit(ctx, adm)
	require.NoError(t, err)
	assert.True(t, third.Repeat, "at the limit the user gets the last ticket back")
	assert.Equal(t, second.Entry, third.Entry)
	assert.Equal(t, couponq.StateIssued, third.State)
}

func testSoldOut(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	for i := range 5 {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	got, err := q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "last"}))
	require.NoError(t, q.MarkSoldOut(ctx, c))
	require.NoError(t, q.MarkSoldOut(ctx, c), "marking twice is fine")

	_, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "late", At: time.Now()})
	assert.ErrorIs(t, err, couponq.ErrSoldOut)
	_, err = q.Status(ctx, c, "late")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "a sold-out refusal writes nothing")
	again := admit(t, q, c, "u0")
	assert.True(t, again.Repeat, "an issued user still gets their ticket")
	assert.Equal(t, couponq.StateIssued, again.State)

	st := status(t, q, c, "u3")
	assert.Equal(t, couponq.StateRejected, st.State, "waiting entries of a sold-out campaign are final")
	assert.Equal(t, couponq.CodeSoldOut, st.Reason)
	waiting := admit(t, q, c, "u3")
	assert.True(t, waiting.Repeat)
	assert.Equal(t, couponq.StateRejected, waiting.State, "a waiting user asking again hears the outcome")
	assert.Zero(t, waiting.Position)

	// Lease drains the line as sold out, at least max per call (in bulk:
	// the Store is not involved), and hands nothing downstream.
	drained, err := q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, drained)
	drained, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, drained)
	for i := 1; i < 5; i++ {
		st := status(t, q, c, fmt.Sprintf("u%d", i))
		assert.Equal(t, couponq.StateRejected, st.State)
		assert.Equal(t, couponq.CodeSoldOut, st.Reason)
		assert.Zero(t, st.Position)
	}
	_, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "u4", At: time.Now()})
	assert.NoError(t, err, "a rejected user gets the rejected ticket back, not an error from the queue")
}

func testIndependent(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	other := c + "-other"
	admit(t, q, c, "u")
	tk := admit(t, q, other, "u")
	assert.Equal(t, int64(1), tk.Entry)
	assert.False(t, tk.Repeat)
	require.NoError(t, q.MarkSoldOut(ctx, other))
	admit(t, q, c, "v")
	got, err := q.Lease(ctx, other, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2}, numbers(got))
}

func testCancelled(t *testing.T, q couponq.Queue, c string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := q.Admit(ctx, couponq.Admission{Campaign: c, User: "u", At: time.Now()})
	assert.True(t, errors.Is(err, context.Canceled), "admit: %v", err)
	_, err = q.Lease(ctx, c, 1, time.Minute)
	assert.Error(t, err)
	_, err = q.Status(context.Background(), c, "u")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "a cancelled admission writes nothing")
}

// testIssuedCount checks couponq.IssuedCounter, for queues that have it: the
// count of distinct entries recorded as issued, which the issuer compares
// with the stock to detect an over-issue.
func testIssuedCount(t *testing.T, q couponq.Queue, c string) {
	counter, ok := q.(couponq.IssuedCounter)
	if !ok {
		t.Skipf("%T is not a couponq.IssuedCounter", q)
	}
	ctx := context.Background()
	count := func() int64 {
		t.Helper()
		n, err := counter.IssuedCount(ctx, c)
		require.NoError(t, err)
		return n
	}
	assert.Zero(t, count(), "a campaign with no records counts 0")
	admit(t, q, c, "a")
	admit(t, q, c, "b")
	admit(t, q, c, "d")
	got, err := q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 3)
	issued := couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"}
	require.NoError(t, q.Record(ctx, c, issued, issued))
	require.NoError(t, q.Record(ctx, c, issued))
	assert.EqualValues(t, 1, count(), "one entry recorded issued three times counts once")
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	assert.EqualValues(t, 1, count(), "a rejection does not count")
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[1], State: couponq.StateIssued, IssuanceID: "i2"}))
	assert.EqualValues(t, 2, count(), "an issuance replacing a rejection counts")
	v1 := couponq.Entry{Campaign: c, User: "v1user", Number: 77}
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: v1, State: couponq.StateIssued, IssuanceID: "i3"}))
	assert.EqualValues(t, 3, count(), "a recorded V1 issuance counts")
	n, err := counter.IssuedCount(ctx, c+"-other")
	require.NoError(t, err)
	assert.Zero(t, n, "campaigns count apart")
}

// testLineStats checks couponq.LineStatser, for queues that have it: each
// count follows the entries through admit, lease, ack, release, record and
// the sold-out mark.
func testLineStats(t *testing.T, q couponq.Queue, c string) {
	statser, ok := q.(couponq.LineStatser)
	if !ok {
		t.Skipf("%T is not a couponq.LineStatser", q)
	}
	ctx := context.Background()
	stats := func(campaign string) couponq.LineStats {
		t.Helper()
		s, err := statser.LineStats(ctx, campaign)
		require.NoError(t, err)
		return s
	}
	assert.Equal(t, couponq.LineStats{}, stats(c), "a campaign with no entries counts 0")
	for _, u := range []string{"a", "b", "d", "e"} {
		admit(t, q, c, u)
	}
	admit(t, q, c, "a") // a repeat adds nothing
	assert.Equal(t, couponq.LineStats{Admitted: 4, Waiting: 4, Head: 1}, stats(c))

	got, err := q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, couponq.LineStats{Admitted: 4, Waiting: 1, InFlight: 3, Head: 4}, stats(c), "leased")
	require.NoError(t, q.Ack(ctx, c, got[:2], time.Minute))
	require.NoError(t, q.Release(ctx, c, got[2:]))
	assert.Equal(t, couponq.LineStats{Admitted: 4, Waiting: 2, InFlight: 2, Head: 3}, stats(c), "acked stays in flight, released waits: the head goes back")

	issued := couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"}
	require.NoError(t, q.Record(ctx, c, issued,
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeDuplicate}))
	require.NoError(t, q.Record(ctx, c, issued))
	assert.Equal(t, couponq.LineStats{Admitted: 4, Waiting: 2, Issued: 1, Head: 3}, stats(c), "recorded")

	require.NoError(t, q.MarkSoldOut(ctx, c))
	assert.Equal(t, couponq.LineStats{Admitted: 4, Waiting: 2, Issued: 1, SoldOut: true, Head: 3}, stats(c), "marked sold out")
	drained, err := q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, drained)
	assert.Equal(t, couponq.LineStats{Admitted: 4, Issued: 1, SoldOut: true}, stats(c), "the line resolved as sold out")

	assert.Equal(t, couponq.LineStats{}, stats(c+"-other"), "campaigns count apart")
}

// testReopen checks couponq.Reopener, for queues that have it: after the
// sold-out mark is taken back, new users are admitted again and waiting
// entries are handed downstream, not resolved as sold out; entries resolved
// as sold out before keep that outcome.
func testReopen(t *testing.T, q couponq.Queue, c string) {
	reopener, ok := q.(couponq.Reopener)
	if !ok {
		t.Skipf("%T is not a couponq.Reopener", q)
	}
	ctx := context.Background()
	require.NoError(t, reopener.Reopen(ctx, c), "reopening a campaign that is not sold out is fine")
	for i := range 4 {
		admit(t, q, c, fmt.Sprintf("u%d", i))
	}
	got, err := q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "last"}))
	require.NoError(t, q.MarkSoldOut(ctx, c))
	_, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "late", At: time.Now()})
	require.ErrorIs(t, err, couponq.ErrSoldOut)

	// Reopened before the drain: the waiting entries wait again.
	require.NoError(t, reopener.Reopen(ctx, c))
	require.NoError(t, reopener.Reopen(ctx, c), "reopening twice is fine")
	st := status(t, q, c, "u2")
	assert.Equal(t, couponq.StateWaiting, st.State, "waiting entries wait again")
	assert.Equal(t, int64(2), st.Position)
	got, err = q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{2}, numbers(got), "Lease hands the line downstream again")

	// Sold out again and drained: the drained entries keep their outcome
	// after the next reopen.
	require.NoError(t, q.MarkSoldOut(ctx, c))
	drained, err := q.Lease(ctx, c, 1, time.Minute) // resolves u2 and u3 as sold out
	require.NoError(t, err)
	require.Empty(t, drained)
	require.NoError(t, reopener.Reopen(ctx, c))
	late := admit(t, q, c, "late")
	assert.False(t, late.Repeat)
	assert.Equal(t, couponq.StateWaiting, late.State)
	assert.Equal(t, int64(5), late.Entry, "the sold-out refusal used no entry number")
	assert.Equal(t, int64(1), late.Position, "the drained entries left the line")
	for _, u := range []string{"u2", "u3"} {
		st = status(t, q, c, u)
		assert.Equal(t, couponq.StateRejected, st.State, "an entry resolved as sold out keeps its outcome (%s)", u)
		assert.Equal(t, couponq.CodeSoldOut, st.Reason)
	}
	got, err = q.Lease(ctx, c, 10, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []int64{5}, numbers(got), "a newcomer after the reopen is served")
	if statser, ok := q.(couponq.LineStatser); ok {
		s, err := statser.LineStats(ctx, c)
		require.NoError(t, err)
		assert.False(t, s.SoldOut)
	}

	require.NoError(t, q.MarkSoldOut(ctx, c))
	_, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "later", At: time.Now()})
	assert.ErrorIs(t, err, couponq.ErrSoldOut, "the campaign can sell out again")
}

// testLineCap: with Admission.MaxWaiting, a new user finding the line full
// gets ErrLineFull (an ErrSoldOut) and nothing is written; users already in
// line keep their tickets; once the line shortens, new users get in again.
func testLineCap(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	capped := func(user string) (couponq.Ticket, error) {
		return q.Admit(ctx, couponq.Admission{Campaign: c, User: user, MaxWaiting: 2, At: time.Now()})
	}
	for _, u := range []string{"a", "b"} {
		_, err := capped(u)
		require.NoError(t, err, "room in line for %s", u)
	}
	_, err := capped("c")
	require.ErrorIs(t, err, couponq.ErrLineFull, "a third user with MaxWaiting 2")
	assert.ErrorIs(t, err, couponq.ErrSoldOut, "a full line means sold out to the user")
	_, err = q.Status(ctx, c, "c")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "a refused admission writes nothing")
	tk, err := capped("a")
	require.NoError(t, err, "a user in line asking again")
	assert.True(t, tk.Repeat)
	assert.EqualValues(t, 1, tk.Position)
	got, err := q.Lease(ctx, c, 1, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 1)
	tk, err = capped("c")
	require.NoError(t, err, "the line shortened: room again")
	assert.EqualValues(t, 3, tk.Entry, "entry numbers have no gap for the refused admission")
	tk, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "d", At: time.Now()})
	require.NoError(t, err, "MaxWaiting 0 means no cap")
	assert.EqualValues(t, 3, tk.Position)
}

// testClaimed: a waiting entry's Ticket and Status report the campaign's
// units issued or in flight, from which Service tells whether the position
// is beyond the remaining stock.
func testClaimed(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	for _, u := range []string{"a", "b", "d", "e"} {
		tk := admit(t, q, c, u)
		assert.Zero(t, tk.Claimed, "nothing issued or in flight yet (%s)", u)
	}
	got, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.EqualValues(t, 2, status(t, q, c, "d").Claimed, "two in flight")
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"},
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeDuplicate}))
	st := status(t, q, c, "d")
	assert.EqualValues(t, 1, st.Claimed, "one issued, none in flight: a rejection claims nothing")
	assert.EqualValues(t, 1, st.Position)
	tk, err := q.Admit(ctx, couponq.Admission{Campaign: c, User: "e", At: time.Now()})
	require.NoError(t, err)
	assert.True(t, tk.Repeat)
	assert.EqualValues(t, 1, tk.Claimed, "a repeat of a waiting entry reports it too")
}

// archiveRetention is how long testArchive keeps an archived campaign's
// outcomes: long enough to read them back, short enough to wait out.
const archiveRetention = 500 * time.Millisecond

// testArchive checks couponq.Archiver, for queues that have it: a campaign
// with entries waiting or in flight is refused; a drained one keeps
// answering Status, LineStats and IssuedCount for the retention, then is
// gone as if it never ran (and its ID numbers from 1 again); a retention
// of 0 drops it at once; it leaves the agenda.
func testArchive(t *testing.T, q couponq.Queue, c string) {
	archiver, ok := q.(couponq.Archiver)
	if !ok {
		t.Skipf("%T is not a couponq.Archiver", q)
	}
	ctx := context.Background()
	statser, _ := q.(couponq.LineStatser)
	counter, _ := q.(couponq.IssuedCounter)
	agenda, _ := q.(couponq.Agenda)
	stats := func(campaign string) couponq.LineStats {
		t.Helper()
		if statser == nil {
			return couponq.LineStats{}
		}
		s, err := statser.LineStats(ctx, campaign)
		require.NoError(t, err)
		return s
	}
	issuedCount := func(campaign string) int64 {
		t.Helper()
		if counter == nil {
			return 0
		}
		n, err := counter.IssuedCount(ctx, campaign)
		require.NoError(t, err)
		return n
	}
	// drain records every entry of the campaign issued.
	drain := func(campaign string) {
		t.Helper()
		got, err := q.Lease(ctx, campaign, 100, time.Minute)
		require.NoError(t, err)
		for _, e := range got {
			require.NoError(t, q.Record(ctx, campaign, couponq.Result{Entry: e, State: couponq.StateIssued, IssuanceID: "i-" + e.User}))
		}
	}

	require.NoError(t, archiver.Archive(ctx, c+"-never", time.Minute), "archiving a campaign with no records does nothing")
	assert.ErrorIs(t, archiver.Archive(ctx, c, -time.Second), couponq.ErrInvalidConfig, "negative retention")

	admit(t, q, c, "a")
	admit(t, q, c, "b")
	admit(t, q, c, "d")
	if agenda != nil {
		require.NoError(t, agenda.Wake(ctx, c))
	}
	assert.ErrorIs(t, archiver.Archive(ctx, c, archiveRetention), couponq.ErrCampaignBusy, "entries waiting")
	got, err := q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.ErrorIs(t, archiver.Archive(ctx, c, archiveRetention), couponq.ErrCampaignBusy, "entries in flight")
	require.NoError(t, q.Record(ctx, c,
		couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i-a"},
		couponq.Result{Entry: got[1], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	require.NoError(t, q.MarkSoldOut(ctx, c))
	assert.ErrorIs(t, archiver.Archive(ctx, c, archiveRetention), couponq.ErrCampaignBusy, "one entry still in flight")
	st := status(t, q, c, "d")
	assert.Equal(t, couponq.StateInFlight, st.State, "a refused Archive changes nothing")
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[2], State: couponq.StateRejected, Reason: couponq.CodeSoldOut}))
	before := stats(c)

	start := time.Now()
	require.NoError(t, archiver.Archive(ctx, c, archiveRetention))
	a, aErr := q.Status(ctx, c, "a")
	b, bErr := q.Status(ctx, c, "b")
	during, count := stats(c), issuedCount(c)
	if time.Since(start) < archiveRetention { // else too slow to tell
		require.NoError(t, aErr, "an archived campaign answers Status for the retention")
		require.NoError(t, bErr)
		assert.Equal(t, couponq.StateIssued, a.State)
		assert.Equal(t, "i-a", a.IssuanceID)
		assert.Equal(t, couponq.StateRejected, b.State)
		assert.Equal(t, couponq.CodeSoldOut, b.Reason)
		assert.Equal(t, before, during, "and LineStats")
		if statser != nil {
			assert.Equal(t, couponq.LineStats{Admitted: 3, Issued: 1, SoldOut: true}, during)
		}
		if counter != nil {
			assert.EqualValues(t, 1, count, "and IssuedCount")
		}
	}
	if agenda != nil {
		awake, err := agenda.Awake(ctx)
		require.NoError(t, err)
		assert.NotContains(t, awake, c, "an archived campaign is off the agenda")
	}

	// After the retention, the campaign is gone.
	time.Sleep(time.Until(start.Add(archiveRetention)))
	require.Eventually(t, func() bool {
		_, err := q.Status(ctx, c, "a")
		return errors.Is(err, couponq.ErrNotFound)
	}, 5*time.Second, 10*time.Millisecond, "Status of an archived campaign after its retention")
	for _, u := range []string{"a", "b", "d"} {
		_, err := q.Status(ctx, c, u)
		assert.ErrorIs(t, err, couponq.ErrNotFound, u)
	}
	assert.Equal(t, couponq.LineStats{}, stats(c), "LineStats after the retention")
	assert.Zero(t, issuedCount(c), "IssuedCount after the retention")
	again := admit(t, q, c, "a")
	assert.False(t, again.Repeat, "the ID starts over")
	assert.EqualValues(t, 1, again.Entry)
	assert.Equal(t, couponq.StateWaiting, again.State, "no sold-out mark is left")

	// Retention 0: gone at once.
	now := c + "-now"
	admit(t, q, now, "u")
	drain(now)
	require.Equal(t, couponq.StateIssued, status(t, q, now, "u").State)
	require.NoError(t, archiver.Archive(ctx, now, 0))
	_, err = q.Status(ctx, now, "u")
	assert.ErrorIs(t, err, couponq.ErrNotFound, "retention 0 drops the records at once")
	assert.Equal(t, couponq.LineStats{}, stats(now))
	assert.Zero(t, issuedCount(now))
	require.NoError(t, archiver.Archive(ctx, now, 0), "archiving twice is fine")
}

// testTrace checks that an admission's trace carrier comes back on its
// leased entry, again after a release, and that untraced entries carry none.
func testTrace(t *testing.T, q couponq.Queue, c string) {
	ctx := context.Background()
	const carrier = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, err := q.Admit(ctx, couponq.Admission{Campaign: c, User: "traced", At: time.Now(), Trace: carrier})
	require.NoError(t, err)
	admit(t, q, c, "plain")
	_, err = q.Admit(ctx, couponq.Admission{Campaign: c, User: "traced", At: time.Now(), Trace: "another"})
	require.NoError(t, err, "a repeat")

	got, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, carrier, got[0].Trace, "the first admission's carrier; a repeat writes nothing")
	assert.Empty(t, got[1].Trace)
	require.NoError(t, q.Release(ctx, c, got))
	again, err := q.Lease(ctx, c, 2, time.Minute)
	require.NoError(t, err)
	require.Len(t, again, 2)
	assert.Equal(t, carrier, again[0].Trace, "kept until the entry is decided")
	require.NoError(t, q.Record(ctx, c,
		couponq.Result{Entry: again[0], State: couponq.StateIssued, IssuanceID: "i"},
		couponq.Result{Entry: again[1], State: couponq.StateIssued, IssuanceID: "j"}))
}

// seatSeed is the seed the Seat tests draw from: above 2^53, so a queue
// that stores it as a floating-point number (a Lua number) loses it.
const seatSeed = uint64(18446744073709551557) // the largest prime below 2^64

// seater returns q as a couponq.Seater, or skips the test.
func seater(t *testing.T, q couponq.Queue) couponq.Seater {
	t.Helper()
	s, ok := q.(couponq.Seater)
	if !ok {
		t.Skipf("%T is not a couponq.Seater", q)
	}
	return s
}

// leaseAll leases every waiting entry of the campaign and checks that it
// is the line seated expects: the entry numbers of seated, ascending,
// each entry's user the one seated gives for its number, every user once, and admission times that do not go
// down with the numbers (they stay with the places).
func leaseAll(t *testing.T, q couponq.Queue, c string, seated map[int64]string) []couponq.Entry {
	t.Helper()
	got, err := q.Lease(context.Background(), c, len(seated)+10, time.Minute)
	require.NoError(t, err)
	nums := make([]int64, 0, len(seated))
	for n := range seated {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	require.Equal(t, nums, numbers(got), "the leased entry numbers")
	seen := map[string]int{}
	for k, e := range got {
		assert.Equal(t, seated[e.Number], e.User, "the user leased with entry %d", e.Number)
		seen[e.User]++
		if k > 0 && !e.AdmittedAt.IsZero() && !got[k-1].AdmittedAt.IsZero() {
			assert.False(t, e.AdmittedAt.Before(got[k-1].AdmittedAt),
				"entry %d admitted at %s, before entry %d at %s: admission times stay with the numbers",
				e.Number, e.AdmittedAt, got[k-1].Number, got[k-1].AdmittedAt)
		}
	}
	assert.Len(t, seen, len(seated), "every user leased")
	for u, k := range seen {
		assert.Equal(t, 1, k, "user %s leased %d times", u, k)
	}
	return got
}

// testSeat checks couponq.Seater, for queues that have it: seating n
// waiting users moves the user who arrived with entry SeatOrder(seed,
// n)[k-1] to entry k, which Status, Admit's repeat answers and Lease all
// see; the user's own data (its trace) goes along, the admission times
// stay with the numbers; a user admitted after seating is behind everyone
// seated; a second Seat answers the first record and changes nothing.
func testSeat(t *testing.T, q couponq.Queue, c string) {
	s := seater(t, q)
	ctx := context.Background()
	const n = 300 // three of the Redis line's order buckets of 128
	const traced = 7
	arrived := make([]string, n+1) // arrived[k]: the user admitted with entry k
	for k := 1; k <= n; k++ {
		arrived[k] = fmt.Sprintf("u%03d", k)
		a := couponq.Admission{Campaign: c, User: arrived[k], At: time.Now()}
		if k == traced {
			a.Trace = "trace-of-" + arrived[k]
		}
		tk, err := q.Admit(ctx, a)
		require.NoError(t, err)
		require.EqualValues(t, k, tk.Entry)
	}
	rec, err := s.Seat(ctx, c, seatSeed)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: seatSeed, Entries: n, Done: true}, rec)

	order := couponq.SeatOrder(seatSeed, n)
	seated := map[int64]string{}
	moved := 0
	for k := int64(1); k <= n; k++ {
		u := arrived[order[k-1]]
		seated[k] = u
		if order[k-1] != k {
			moved++
		}
		st := status(t, q, c, u)
		assert.Equal(t, couponq.StateWaiting, st.State, u)
		assert.Equal(t, k, st.Entry, "the entry of %s, who arrived %d'th", u, order[k-1])
		assert.Equal(t, k, st.Position, "the position of %s", u)
	}
	require.Greater(t, moved, n/2, "the seed shuffles: most users moved")
	for k := int64(1); k <= n; k += 7 {
		tk := admit(t, q, c, seated[k])
		assert.True(t, tk.Repeat, "%s asking again", seated[k])
		assert.Equal(t, k, tk.Entry, "the repeat answer of %s: its new entry", seated[k])
		assert.Equal(t, k, tk.Position)
	}

	late := admit(t, q, c, "late")
	assert.False(t, late.Repeat)
	assert.EqualValues(t, n+1, late.Entry, "admitted after seating: behind everyone seated")
	assert.EqualValues(t, n+1, late.Position)
	seated[n+1] = "late"

	again, err := s.Seat(ctx, c, seatSeed+2)
	require.NoError(t, err)
	assert.Equal(t, rec, again, "a second Seat answers the first record, whatever its seed")
	for _, k := range []int64{1, 2, n / 2, n} {
		assert.Equal(t, k, status(t, q, c, seated[k]).Entry, "a second Seat changes nothing (%s)", seated[k])
	}

	got := leaseAll(t, q, c, seated)
	for _, e := range got {
		if e.User == arrived[traced] {
			assert.Equal(t, "trace-of-"+e.User, e.Trace, "the trace goes with its user")
		} else {
			assert.Empty(t, e.Trace, "entry %d of %s", e.Number, e.User)
		}
	}
}

// testSeatSkips: entries taken out of line before seating (leased,
// handed downstream, decided) keep their numbers and states, and the swaps
// that name them are skipped while the others apply, in step order.
func testSeatSkips(t *testing.T, q couponq.Queue, c string) {
	s := seater(t, q)
	ctx := context.Background()
	const n = 12
	out := map[int64]bool{1: true, 2: true, 3: true, 6: true} // taken out of line below
	// A seed whose swaps both skip some pairs and apply others.
	var seed uint64
	for seed = 1; ; seed++ {
		skipped, applied := 0, 0
		couponq.SeatSwaps(seed, n, func(_, i, j int64) bool {
			switch {
			case i == j:
			case out[i] || out[j]:
				skipped++
			default:
				applied++
			}
			return true
		})
		if skipped >= 2 && applied >= 2 {
			break
		}
	}
	arrived := make([]string, n+1)
	for k := 1; k <= n; k++ {
		arrived[k] = fmt.Sprintf("u%02d", k)
		admit(t, q, c, arrived[k])
	}
	got, err := q.Lease(ctx, c, 3, time.Minute)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3}, numbers(got))
	require.NoError(t, q.Record(ctx, c, couponq.Result{Entry: got[0], State: couponq.StateIssued, IssuanceID: "i1"}))
	require.NoError(t, q.Ack(ctx, c, got[1:2], time.Minute))
	require.NoError(t, q.Record(ctx, c, couponq.Result{
		Entry: couponq.Entry{Campaign: c, User: arrived[6], Number: 6}, State: couponq.StateRejected, Reason: couponq.CodeFailed,
	}))

	rec, err := s.Seat(ctx, c, seed)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: seed, Entries: n, Done: true}, rec)

	// What seating must do: the swaps in step order, on waiting places only.
	at := map[int64]string{}
	for k := int64(1); k <= n; k++ {
		if !out[k] {
			at[k] = arrived[k]
		}
	}
	couponq.SeatSwaps(seed, n, func(_, i, j int64) bool {
		if _, ok := at[i]; ok {
			if _, ok := at[j]; ok {
				at[i], at[j] = at[j], at[i]
			}
		}
		return true
	})
	position := int64(0)
	for k := int64(1); k <= n; k++ {
		if out[k] {
			continue
		}
		position++
		st := status(t, q, c, at[k])
		assert.Equal(t, couponq.StateWaiting, st.State, at[k])
		assert.Equal(t, k, st.Entry, "the entry of %s", at[k])
		assert.Equal(t, position, st.Position, "the position of %s", at[k])
	}
	for _, want := range []couponq.Status{
		{User: arrived[1], State: couponq.StateIssued, Entry: 1, IssuanceID: "i1"},
		{User: arrived[2], State: couponq.StateInFlight, Entry: 2},
		{User: arrived[3], State: couponq.StateInFlight, Entry: 3},
		{User: arrived[6], State: couponq.StateRejected, Entry: 6, Reason: couponq.CodeFailed},
	} {
		st := status(t, q, c, want.User)
		assert.Equal(t, want.State, st.State, want.User)
		assert.Equal(t, want.Entry, st.Entry, want.User)
		assert.Equal(t, want.IssuanceID, st.IssuanceID, want.User)
		assert.Equal(t, want.Reason, st.Reason, want.User)
	}

	// The leased entry 3 goes back to its own place, at the head.
	require.NoError(t, q.Release(ctx, c, got[2:]))
	assert.EqualValues(t, 1, status(t, q, c, arrived[3]).Position)
	at[3] = arrived[3]
	leaseAll(t, q, c, at)
}

// testSeatSmall: a line of no entry or one has nothing to swap: Seat
// records n and is done at once, and a campaign seated empty stays as it
// was seated (later users keep their arrival order). Archive forgets the
// record with the campaign's other state.
func testSeatSmall(t *testing.T, q couponq.Queue, c string) {
	s := seater(t, q)
	ctx := context.Background()
	rec, err := s.Seat(ctx, c, 7)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: 7, Entries: 0, Done: true}, rec, "a campaign with no entries")
	for _, u := range []string{"a", "b", "d"} {
		admit(t, q, c, u)
	}
	rec, err = s.Seat(ctx, c, 8)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: 7, Entries: 0, Done: true}, rec, "the first record stays")
	leaseAll(t, q, c, map[int64]string{1: "a", 2: "b", 3: "d"})

	one := c + "-one"
	admit(t, q, one, "x")
	rec, err = s.Seat(ctx, one, 9)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: 9, Entries: 1, Done: true}, rec, "a campaign with one entry")
	assert.EqualValues(t, 1, status(t, q, one, "x").Position)

	archiver, ok := q.(couponq.Archiver)
	if !ok {
		return
	}
	gone := c + "-gone"
	rec, err = s.Seat(ctx, gone, 10)
	require.NoError(t, err)
	require.Equal(t, couponq.Seating{Seed: 10, Done: true}, rec)
	require.NoError(t, archiver.Archive(ctx, gone, 0))
	rec, err = s.Seat(ctx, gone, 11)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: 11, Done: true}, rec, "Archive forgets the seating")
}

// testSeatConcurrent: users admitted while seating goes on are either
// among the n seated (admitted before it began) or behind them with their
// arrival numbers, never lost, doubled or put among the seated.
func testSeatConcurrent(t *testing.T, q couponq.Queue, c string) {
	s := seater(t, q)
	ctx := context.Background()
	const early, late = 200, 50
	arrived := map[int64]string{}
	for k := int64(1); k <= early; k++ {
		u := fmt.Sprintf("e%03d", k)
		require.EqualValues(t, k, admit(t, q, c, u).Entry)
		arrived[k] = u
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lateErr error
	)
	wg.Go(func() {
		for k := range late {
			u := fmt.Sprintf("l%03d", k)
			tk, err := q.Admit(ctx, couponq.Admission{Campaign: c, User: u, At: time.Now()})
			mu.Lock()
			if err != nil {
				lateErr = err
				mu.Unlock()
				return
			}
			arrived[tk.Entry] = u
			mu.Unlock()
		}
	})
	rec, err := s.Seat(ctx, c, seatSeed)
	wg.Wait()
	require.NoError(t, err)
	require.NoError(t, lateErr)
	require.Len(t, arrived, early+late, "every admission its own entry number")
	assert.True(t, rec.Done)
	assert.Equal(t, seatSeed, rec.Seed)
	require.GreaterOrEqual(t, rec.Entries, int64(early))
	require.LessOrEqual(t, rec.Entries, int64(early+late))

	order := couponq.SeatOrder(rec.Seed, rec.Entries)
	seated := map[int64]string{}
	for k := int64(1); k <= early+late; k++ {
		if k <= rec.Entries {
			seated[k] = arrived[order[k-1]]
		} else {
			seated[k] = arrived[k]
		}
	}
	for k := int64(1); k <= early+late; k += 11 {
		assert.Equal(t, k, status(t, q, c, seated[k]).Entry, "the entry of %s", seated[k])
	}
	leaseAll(t, q, c, seated)
}

// testSeal: Seal marks the pre-queue's end at the last entry number then,
// the first mark stands, and Seat seats exactly the entries up to it, so
// users admitted after the mark keep their arrival numbers behind the
// seated, however late seating begins.
func testSeal(t *testing.T, q couponq.Queue, c string) {
	s := seater(t, q)
	ctx := context.Background()
	var pre []string
	for i := range 40 {
		u := fmt.Sprintf("pre%02d", i)
		admit(t, q, c, u)
		pre = append(pre, u)
	}
	require.NoError(t, s.Seal(ctx, c))
	admit(t, q, c, "post0")
	require.NoError(t, s.Seal(ctx, c)) // a second mark changes nothing
	admit(t, q, c, "post1")
	rec, err := s.Seat(ctx, c, 99)
	require.NoError(t, err)
	assert.Equal(t, couponq.Seating{Seed: 99, Entries: 40, Done: true}, rec, "n is the mark, not the counter")
	seated := map[int64]string{41: "post0", 42: "post1"}
	for k, from := range couponq.SeatOrder(99, 40) {
		seated[int64(k)+1] = pre[from-1]
	}
	leaseAll(t, q, c, seated)
}
