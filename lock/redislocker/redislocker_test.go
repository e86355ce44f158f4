package redislocker_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/internal/redistest"
	"github.com/couponq/couponq/lock"
	"github.com/couponq/couponq/lock/locktest"
	"github.com/couponq/couponq/lock/redislocker"
)

func TestConformance(t *testing.T) {
	redistest.Both(t, func(t *testing.T, c redis.UniversalClient) {
		locktest.Run(t, func(t *testing.T) lock.Locker {
			l, err := redislocker.New(c, redistest.Prefix(t, c))
			require.NoError(t, err)
			return l
		})
	})
}
