package lifecycle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/internal/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStop(t *testing.T) {
	var r lifecycle.Runner
	require.NoError(t, r.Stop(context.Background()), "Stop before Start")
	var r2 lifecycle.Runner
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, r2.Start(ctx, func(ctx context.Context) error { <-ctx.Done(); return boom }))
	cancel() // the caller's ctx does not end the run; only Stop does
	time.Sleep(10 * time.Millisecond)
	assert.ErrorIs(t, r2.Start(context.Background(), func(context.Context) error { return nil }), lifecycle.ErrStarted)
	assert.ErrorIs(t, r2.Stop(context.Background()), boom)
	assert.ErrorIs(t, r2.Stop(context.Background()), boom, "Stop twice returns the same")
	assert.ErrorIs(t, r2.Start(context.Background(), func(context.Context) error { return nil }), lifecycle.ErrStarted)
}

func TestStopHonoursContext(t *testing.T) {
	var r lifecycle.Runner
	release := make(chan struct{})
	require.NoError(t, r.Start(context.Background(), func(context.Context) error { <-release; return nil }))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, r.Stop(ctx), context.DeadlineExceeded)
	close(release)
	assert.NoError(t, r.Stop(context.Background()))
}
