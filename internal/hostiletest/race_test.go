//go:build race

package hostiletest_test

// raceEnabled: the race detector slows every request two- to fivefold.
const raceEnabled = true
