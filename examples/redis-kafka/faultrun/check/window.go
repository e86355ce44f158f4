package check

import (
	"slices"
	"time"
)

// sortTimes returns ts sorted ascending (a copy; ts is left as it was).
func sortTimes(ts []time.Time) []time.Time {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	return s
}

// sweep calls fn(i, count) for every i, where count is how many of the
// sorted times fall in the half-open window [ts[i], ts[i]+w). Two pointers:
// O(n). Windows that start anywhere else hold no more than one of these
// (sliding a window's start forward to its first element loses nothing), so
// the maximum over these is the maximum over all windows.
func sweep(ts []time.Time, w time.Duration, fn func(i, count int)) {
	j := 0
	for i := range ts {
		if j < i {
			j = i
		}
		end := ts[i].Add(w)
		for j < len(ts) && ts[j].Before(end) {
			j++
		}
		fn(i, j-i)
	}
}

// windowMax returns the most of the sorted times that any half-open window
// [t, t+w) holds, and the earliest t (one of the times) where that happens.
// Zero and the zero time for no times.
func windowMax(ts []time.Time, w time.Duration) (int, time.Time) {
	best, at := 0, time.Time{}
	sweep(ts, w, func(i, n int) {
		if n > best {
			best, at = n, ts[i]
		}
	})
	return best, at
}
