package memline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/internal/memline"
)

// Chi-square quantiles the uniformity test compares with: the 0.999
// quantile of the chi-square distribution with 7 degrees of freedom (one
// arrival index's row of 8 places) and with 49 = (8-1)^2 (the whole 8x8
// table, whose rows and columns each sum to the number of runs; see
// chiSquare).
const (
	chi2Q999df7  = 24.32
	chi2Q999df49 = 85.35
)

const (
	seatUsers = 8    // users per seating
	seatRuns  = 8000 // seatings, seeds 1 to seatRuns: 1,000 expected per cell
)

// seatTable counts, over seatRuns runs of shuffle, how often the user who
// arrived k'th (row k) ends up at place p (column p), both 0-based; shuffle
// returns, for run seed, the arrival index (1-based) at each place, as
// couponq.SeatOrder does.
func seatTable(t *testing.T, shuffle func(seed uint64) []int64) [seatUsers][seatUsers]int {
	t.Helper()
	var table [seatUsers][seatUsers]int
	for seed := uint64(1); seed <= seatRuns; seed++ {
		order := shuffle(seed)
		require.Len(t, order, seatUsers)
		var seen [seatUsers]bool
		for place, arrival := range order {
			require.True(t, arrival >= 1 && arrival <= seatUsers, "seed %d: arrival %d at place %d", seed, arrival, place+1)
			require.False(t, seen[arrival-1], "seed %d: user %d seated twice", seed, arrival)
			seen[arrival-1] = true
			table[arrival-1][place]++
		}
	}
	return table
}

// chiSquare returns Pearson's statistic of each row against a uniform
// spread (runs/8 per cell), chi-square with 7 degrees of freedom, and the
// whole table's, chi-square with 49.
//
// A row is a plain multinomial (one place per run, each 1/8), so its sum
// of (got - want)^2 / want is the usual statistic. The table's cells are
// not independent: each run adds a permutation matrix, so every row and
// column sums to the runs exactly, and the deviations live in the
// (n-1)^2-dimensional space of tables whose rows and columns sum to 0,
// where (by symmetry) their covariance is isotropic. The sum over all 64
// cells then has mean n(n-1) = 56, not 49: it is n/(n-1) times a
// chi-square with (n-1)^2 degrees of freedom. Scaled by (n-1)/n it is that
// chi-square (a simulation of 3,000 tables of 1,000 random permutations
// agrees: unscaled, 1.5% of them pass 85.35; scaled, 0.13%).
func chiSquare(table [seatUsers][seatUsers]int) (rows [seatUsers]float64, total float64) {
	want := float64(seatRuns) / seatUsers
	for r := range table {
		for _, got := range table[r] {
			d := float64(got) - want
			rows[r] += d * d / want
		}
		total += rows[r]
	}
	return rows, total * (seatUsers - 1) / seatUsers
}

// seatedOrder seats seatUsers users admitted in order to a fresh Queue
// with seed and reads the order back by leasing the whole line: the
// arrival index (1-based) of the user at each place.
func seatedOrder(t *testing.T, seed uint64) []int64 {
	t.Helper()
	ctx := context.Background()
	q := memline.NewQueue(nil)
	arrival := map[string]int64{}
	for k := int64(1); k <= seatUsers; k++ {
		u := fmt.Sprintf("u%d", k)
		arrival[u] = k
		_, err := q.Admit(ctx, couponq.Admission{Campaign: "pre", User: u})
		require.NoError(t, err)
	}
	rec, err := q.Seat(ctx, "pre", seed)
	require.NoError(t, err)
	require.Equal(t, couponq.Seating{Seed: seed, Entries: seatUsers, Done: true}, rec)
	got, err := q.Lease(ctx, "pre", seatUsers+1, time.Minute)
	require.NoError(t, err)
	order := make([]int64, len(got))
	for i, e := range got {
		require.EqualValues(t, i+1, e.Number)
		order[i] = arrival[e.User]
	}
	return order
}

// Seating is uniform: over 8,000 seatings of 8 users (seeds 1 to 8,000),
// each user lands at each place about 1,000 times, within the 0.999
// chi-square quantile per arrival index and over the whole table; and
// each seating puts each user at exactly one place (seatTable checks).
// The seeds are fixed, so the test is deterministic.
func TestSeatIsUniform(t *testing.T) {
	table := seatTable(t, func(seed uint64) []int64 { return seatedOrder(t, seed) })
	for r := range table {
		sum := 0
		for _, n := range table[r] {
			sum += n
		}
		assert.Equal(t, seatRuns, sum, "user %d is seated once per run", r+1)
	}
	for p := range seatUsers {
		sum := 0
		for r := range table {
			sum += table[r][p]
		}
		assert.Equal(t, seatRuns, sum, "place %d holds one user per run", p+1)
	}
	rows, total := chiSquare(table)
	for r, x := range rows {
		assert.Less(t, x, chi2Q999df7, "user %d's places: chi-square %.2f (7 df); row %v", r+1, x, table[r])
	}
	assert.Less(t, total, chi2Q999df49, "the whole table: chi-square %.2f (49 df)", total)
	t.Logf("chi-square per arrival index %.2f, overall %.2f", rows, total)
}

// The statistic has power: a shuffle with a known bias (Sattolo's, whose
// j is drawn from 1..i-1, never i, so nobody keeps their place) fails it,
// per arrival index and overall. The Queue's own seating, identical but
// for j's range, passes (TestSeatIsUniform).
func TestSeatUniformityTestCanFail(t *testing.T) {
	sattolo := func(seed uint64) []int64 {
		r := rand.New(rand.NewPCG(seed, 0))
		order := make([]int64, seatUsers)
		for k := range order {
			order[k] = int64(k) + 1
		}
		for i := int64(seatUsers); i > 1; i-- {
			j := 1 + r.Int64N(i-1) // 1..i-1: the bias
			order[i-1], order[j-1] = order[j-1], order[i-1]
		}
		return order
	}
	rows, total := chiSquare(seatTable(t, sattolo))
	for r, x := range rows {
		assert.Greater(t, x, chi2Q999df7, "user %d's places under Sattolo's shuffle: chi-square %.2f", r+1, x)
	}
	assert.Greater(t, total, chi2Q999df49, "the whole table under Sattolo's shuffle: chi-square %.2f", total)
}
