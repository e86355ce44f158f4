package main

import (
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"github.com/couponq/couponq/examples/internal/frameworktest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	goleak.VerifyTestMain(m)
}

// The checks are shared with the other framework examples; this example
// gives them its newRouter and run.

func TestRouter(t *testing.T) { frameworktest.Router(t, newRouter) }

func TestShutdownWithOpenLiveStream(t *testing.T) { frameworktest.ShutdownWithOpenLiveStream(t, run) }
