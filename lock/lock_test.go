package lock_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/lock/locktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	locktest.Run(t, func(t *testing.T) lock.Locker { return lock.NewMemory() })
}
