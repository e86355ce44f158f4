package storetest

import "github.com/couponq/couponq/couponq"

// CheckLaw checks the named law against s, reporting to t, so the suite's
// own tests can run a law against a broken Store without failing
// themselves. It reports false if no law has that name.
func CheckLaw(t interface {
	Helper()
	Errorf(format string, args ...any)
	FailNow()
}, name string, s couponq.Store) bool {
	for _, l := range append(singleLaws[:len(singleLaws):len(singleLaws)], batchLaws...) {
		if l.Name == name {
			checkLaw(t, l, s)
			return true
		}
	}
	return false
}
