package couponq

import "math/bits"

// SeatSwaps draws the pre-queue's order: a Fisher–Yates shuffle of entry
// numbers 1..n from seed, as the swaps that apply it, and calls swap(i, j)
// for step = 0, 1, ... n-2 in turn (i = n - step, j uniform in 1..i; i == j
// is a swap that changes nothing, still a step). Queues apply these swaps
// in this order to the users waiting at numbers i and j (Seater). It stops
// early when swap returns false.
//
// The draw is specified so an audit in any language can replay it: the
// generator is SplitMix64 (state = seed; each draw adds
// 0x9E3779B97F4A7C15 to the state and mixes it with the standard
// finalizer), and j = 1 + the draw reduced to 0..i-1 by Lemire's
// multiply-shift with rejection (draws whose low 64 bits of draw*i fall
// below (2^64 - i) mod i are drawn again), so every j is exactly equally
// likely.
func SeatSwaps(seed uint64, n int64, swap func(step, i, j int64) bool) {
	g := splitmix{state: seed}
	for step := int64(0); step < n-1; step++ {
		i := n - step
		j := 1 + int64(g.below(uint64(i)))
		if !swap(step, i, j) {
			return
		}
	}
}

// SeatOrder replays a seating: order[k] is the entry number at arrival of
// the user seated at place k+1 (entry number k+1 after seating), for the
// n entries waiting when seating began.
func SeatOrder(seed uint64, n int64) []int64 {
	order := make([]int64, n)
	for k := range order {
		order[k] = int64(k) + 1
	}
	SeatSwaps(seed, n, func(_, i, j int64) bool {
		order[i-1], order[j-1] = order[j-1], order[i-1]
		return true
	})
	return order
}

// splitmix is SplitMix64 (Steele, Lea, Flood 2014).
type splitmix struct{ state uint64 }

func (g *splitmix) next() uint64 {
	g.state += 0x9E3779B97F4A7C15
	z := g.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// below returns a uniform value in [0, n), n > 0 (Lemire 2019).
func (g *splitmix) below(n uint64) uint64 {
	hi, lo := bits.Mul64(g.next(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(g.next(), n)
		}
	}
	return hi
}
