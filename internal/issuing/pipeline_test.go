package issuing_test

import (
	"testing"

	"github.com/couponq/couponq/couponq/memory"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/lock"
)

func TestPipelineInvariants(t *testing.T) {
	pipelinetest.Run(t, func(t *testing.T) pipelinetest.Backends {
		return pipelinetest.Backends{Queue: memory.NewQueue(nil), Tally: memory.NewTally(), Locker: lock.NewMemory()}
	})
}
