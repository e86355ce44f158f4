package redisline

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// For the labs of the external test package (bench_test.go).
var (
	RedisCPU = redisCPU
	SelfCPU  = selfCPU
)

// redisCPU is Redis's CPU time so far (INFO cpu, user + system, seconds)
// and how many EVALSHA calls it has served.
func redisCPU(t testing.TB, c redis.UniversalClient) (float64, int64) {
	t.Helper()
	info, err := c.Info(context.Background(), "cpu", "commandstats").Result()
	require.NoError(t, err)
	var cpu float64
	var calls int64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "used_cpu_user", "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case "cmdstat_evalsha":
			f, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			calls, _ = strconv.ParseInt(f, 10, 64)
		}
	}
	return cpu, calls
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU(t testing.TB) float64 {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
