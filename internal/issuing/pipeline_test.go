package issuing_test

import (
	"testing"

	"github.com/couponq/couponq/internal/memline"
	"github.com/couponq/couponq/internal/pipelinetest"
	"github.com/couponq/couponq/lock"
)

func TestPipelineInvariants(t *testing.T) {
	pipelinetest.Run(t, func(t *testing.T) pipelinetest.Backends {
		return pipelinetest.Backends{Queue: memline.NewQueue(nil), Tally: memline.NewTally(), Locker: lock.NewMemory()}
	})
}
