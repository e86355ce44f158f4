//go:build !race

package hostiletest_test

const raceEnabled = false
