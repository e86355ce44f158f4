// Package lifecycle gives a blocking Run(ctx) function the Start/Stop pair
// couponq's long-running components offer.
package lifecycle

import (
	"context"
	"errors"
	"sync"
)

// ErrStarted is returned by Start on a component that is already running or
// has been stopped.
var ErrStarted = errors.New("couponq: already started")

// Runner runs one function in a goroutine between Start and Stop. The zero
// value is ready to use.
type Runner struct {
	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// Start runs run in a goroutine with a context derived from ctx (without its
// cancellation: only Stop ends the run). It may be called once.
func (r *Runner) Start(ctx context.Context, run func(context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return ErrStarted
	}
	r.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.err = run(runCtx)
	}()
	return nil
}

// Stop cancels the run and waits for it to return, or for ctx to be done.
// It returns the run's error. Calling it again, or without Start, is safe.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.started = true // a stopped runner is not started again
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
