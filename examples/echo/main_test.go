package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/couponq/couponq/examples/internal/demo/demotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRouter(t *testing.T) { demotest.Router(t, newRouter) }

// Serve with this router shuts down cleanly when its context ends (goleak
// checks that nothing is left running).
func TestRunShutdown(t *testing.T) { demotest.Shutdown(t, newRouter) }
