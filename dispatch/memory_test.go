package dispatch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/couponq"
	"github.com/couponq/couponq/dispatch"
	"github.com/couponq/couponq/dispatch/dispatchtest"
)

func TestMain(m *testing.M) {
	// go-redis keeps a pool reaper briefly alive after Close.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

func TestMemoryConformance(t *testing.T) {
	dispatchtest.Run(t, func(t *testing.T) (couponq.Dispatcher, couponq.Consumer) {
		m, err := dispatch.NewMemory(dispatch.MemoryConfig{})
		require.NoError(t, err)
		return m, m
	})
}

func TestMemoryPartialFailure(t *testing.T) {
	boom := errors.New("boom")
	m, err := dispatch.NewMemory(dispatch.MemoryConfig{Reject: func(e couponq.Entry) error {
		if e.Number%2 == 0 {
			return boom
		}
		return nil
	}})
	require.NoError(t, err)
	es := []couponq.Entry{{Number: 1}, {Number: 2}, {Number: 3}, {Number: 4}}
	err = m.Dispatch(context.Background(), es)
	var pe *couponq.PartialError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []bool{false, true, false, true}, couponq.FailedEntries(err, len(es)))
	assert.Equal(t, 2, m.Len())

	err = m.Dispatch(context.Background(), es[1:2])
	require.Error(t, err)
	assert.NotErrorAs(t, err, &pe, "a wholly failed batch is a plain error")
	assert.Equal(t, []bool{true}, couponq.FailedEntries(err, 1))
}

func TestNewMemoryValidates(t *testing.T) {
	_, err := dispatch.NewMemory(dispatch.MemoryConfig{Workers: -1})
	assert.ErrorIs(t, err, couponq.ErrInvalidConfig)
}
